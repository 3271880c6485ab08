//! Text normalisation for customer names and invoice numbers.

/// Legal-form words dropped from the end (and anywhere) of a customer name before comparing.
const LEGAL: &[&str] = &[
    "inc",
    "incorporated",
    "corp",
    "corporation",
    "gmbh",
    "ltd",
    "limited",
    "pty",
    "llc",
    "bv",
    "sa",
    "ag",
    "co",
    "company",
    "plc",
    "srl",
    "sarl",
    "spa",
    "nv",
    "oy",
    "ab",
    "as",
    "kg",
    "llp",
    "lp",
    "kk",
];

/// Lower-cases, drops punctuation and legal suffixes (Inc/Incorporated, Corp/Corporation,
/// GmbH, Ltd/Limited, Pty Ltd, LLC, BV, SA, AG, Co, ...) and joins the remaining words with
/// single spaces: `"Cedarwind Corp."` and `"CEDARWIND  Corporation"` both give `"cedarwind"`.
pub fn normalise_customer(name: &str) -> String {
    let lowered: String = name
        .chars()
        .flat_map(|c| c.to_lowercase())
        .map(|c| if c.is_alphanumeric() { c } else { ' ' })
        .collect();
    // Dotted abbreviations such as "p t y" from "P.T.Y." are rare; join single letters.
    let mut words: Vec<&str> = lowered.split_whitespace().collect();
    while words.len() > 1 {
        match words.last() {
            Some(w) if LEGAL.contains(w) => {
                words.pop();
            }
            _ => break,
        }
    }
    if words.is_empty() {
        return lowered.split_whitespace().collect::<Vec<_>>().join(" ");
    }
    words.join(" ")
}

/// Similarity of two normalised names in [0,1] (normalised Damerau-Levenshtein on the
/// names without spaces; 1 = identical).
pub fn name_similarity(a: &str, b: &str) -> f64 {
    if a == b {
        return 1.0;
    }
    let a: String = a.chars().filter(|c| !c.is_whitespace()).collect();
    let b: String = b.chars().filter(|c| !c.is_whitespace()).collect();
    if a == b {
        return 1.0;
    }
    strsim::normalized_damerau_levenshtein(&a, &b)
}

/// Edit distance between two invoice numbers (case-insensitive).
pub fn invoice_distance(a: &str, b: &str) -> usize {
    if a.eq_ignore_ascii_case(b) {
        return 0;
    }
    strsim::levenshtein(&a.to_lowercase(), &b.to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legal_suffixes_and_case_vanish() {
        assert_eq!(normalise_customer("Cedarwind Corp."), "cedarwind");
        assert_eq!(normalise_customer("CEDARWIND  Corporation"), "cedarwind");
        assert_eq!(normalise_customer("Redwood Pty. Ltd."), "redwood");
        assert_eq!(normalise_customer("Acme Group"), "acme group");
        assert_eq!(normalise_customer("Nord GmbH"), "nord");
        // a name that is only a legal word is kept
        assert_eq!(normalise_customer("Inc"), "inc");
    }

    #[test]
    fn similarity_separates_different_customers() {
        assert_eq!(name_similarity("cedarwind", "cedarwind"), 1.0);
        assert!(name_similarity("copperfield", "copperwind") < 0.8);
        assert!(name_similarity("zurichport", "zuricport") > 0.85);
        assert_eq!(invoice_distance("INV-1-123", "INV-1-1x23"), 1);
    }
}
