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
        .map(|c| if c == '\u{2019}' { '\'' } else { c })
        .collect::<String>()
        .replace("int'l", "international")
        .replace('&', " and ")
        .chars()
        .map(|c| if c.is_alphanumeric() { c } else { ' ' })
        .collect();
    // Dotted abbreviations ("L.L.C.", "S.A.") become runs of single letters: join them.
    let mut joined: Vec<String> = Vec::new();
    let mut run = String::new();
    for w in lowered.split_whitespace() {
        if w.chars().count() == 1 {
            run.push_str(w);
        } else {
            if !run.is_empty() {
                joined.push(std::mem::take(&mut run));
            }
            joined.push(w.to_string());
        }
    }
    if !run.is_empty() {
        joined.push(run);
    }
    let mut words: Vec<&str> = joined.iter().map(|w| spelled_out(w)).collect();
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

/// The written-out form of a common abbreviation in company names ("Intl" is
/// "International"), so both spellings compare equal.
fn spelled_out(word: &str) -> &str {
    match word {
        "intl" => "international",
        "hldgs" | "hldg" => "holdings",
        "grp" => "group",
        "mfg" => "manufacturing",
        "svcs" => "services",
        "natl" => "national",
        "assoc" => "associates",
        "bros" => "brothers",
        other => other,
    }
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
    if a.is_ascii() && b.is_ascii() {
        return levenshtein_ascii_ci(a.as_bytes(), b.as_bytes());
    }
    strsim::levenshtein(&a.to_lowercase(), &b.to_lowercase())
}

/// Levenshtein distance of two ASCII strings, ignoring ASCII case, without allocating
/// for short strings (the same number `strsim::levenshtein` gives on the lower-cased text).
/// A common prefix and suffix never change the distance, so they are skipped first.
fn levenshtein_ascii_ci(a: &[u8], b: &[u8]) -> usize {
    let prefix = a
        .iter()
        .zip(b)
        .take_while(|(x, y)| x.eq_ignore_ascii_case(y))
        .count();
    let (a, b) = (&a[prefix..], &b[prefix..]);
    let suffix = a
        .iter()
        .rev()
        .zip(b.iter().rev())
        .take_while(|(x, y)| x.eq_ignore_ascii_case(y))
        .count();
    let (a, b) = (&a[..a.len() - suffix], &b[..b.len() - suffix]);
    if a.is_empty() {
        return b.len();
    }
    if b.is_empty() {
        return a.len();
    }
    let mut stack = [0usize; 65];
    let mut heap;
    let row: &mut [usize] = if b.len() < stack.len() {
        &mut stack[..=b.len()]
    } else {
        heap = vec![0usize; b.len() + 1];
        &mut heap[..]
    };
    for (j, r) in row.iter_mut().enumerate() {
        *r = j;
    }
    for (i, &ca) in a.iter().enumerate() {
        let ca = ca.to_ascii_lowercase();
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb.to_ascii_lowercase());
            let v = (diag + cost).min(row[j] + 1).min(row[j + 1] + 1);
            diag = row[j + 1];
            row[j + 1] = v;
        }
    }
    row[b.len()]
}

/// True when one invoice number is the other with something added (`INV-1` / `INV-1-A`),
/// ignoring case and surrounding spaces.
pub fn invoice_contains(a: &str, b: &str) -> bool {
    let (a, b) = (a.trim(), b.trim());
    if a.is_ascii() && b.is_ascii() {
        let (x, y) = (a.as_bytes(), b.as_bytes());
        let prefix = |long: &[u8], short: &[u8]| {
            long.len() >= short.len() && long[..short.len()].eq_ignore_ascii_case(short)
        };
        return x.len().min(y.len()) >= 4
            && !a.eq_ignore_ascii_case(b)
            && (prefix(x, y) || prefix(y, x));
    }
    let (a, b) = (a.to_lowercase(), b.to_lowercase());
    a.len().min(b.len()) >= 4 && a != b && (a.starts_with(&b) || b.starts_with(&a))
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
        assert_eq!(normalise_customer("Pioneer L.L.C."), "pioneer");
        assert_eq!(normalise_customer("Lumen S.A."), "lumen");
        // a name that is only a legal word is kept
        assert_eq!(normalise_customer("Inc"), "inc");
    }

    #[test]
    fn common_abbreviations_are_the_written_out_word() {
        for (a, b) in [
            ("Northstone Intl", "Northstone International"),
            ("Northstone Int'l Inc.", "NORTHSTONE INTERNATIONAL"),
            ("Acme Hldgs", "Acme Holdings Ltd"),
            ("Smith & Sons", "Smith and Sons"),
        ] {
            assert_eq!(normalise_customer(a), normalise_customer(b), "{a} / {b}");
        }
        assert_ne!(
            normalise_customer("Northstone International"),
            normalise_customer("Northstone Industries")
        );
    }

    #[test]
    fn similarity_separates_different_customers() {
        assert_eq!(name_similarity("cedarwind", "cedarwind"), 1.0);
        assert!(name_similarity("copperfield", "copperwind") < 0.8);
        assert!(name_similarity("zurichport", "zuricport") > 0.85);
        assert_eq!(invoice_distance("INV-1-123", "INV-1-1x23"), 1);
    }

    #[test]
    fn invoice_helpers_match_the_lowercased_reference() {
        let cases = [
            ("INV-1-123", "inv-1-123"),
            ("INV-1-123", "INV-1-1x23"),
            ("INV-2024-0001", "INV-2024-0010"),
            ("", "ABC"),
            ("kitten", "SITTING"),
            ("INV-1", "INV-1-A"),
            ("  inv-77 ", "INV-77-B"),
            ("Ärger-1", "ärger-12"),
            ("abc", "abd"),
            ("INV-00099-713361", "INV-00099-713316"),
            ("INV-00099-713361", "inv-00099-71336"),
            ("aaaa", "aa"),
            ("abcabc", "abc"),
            ("xabcx", "xbcax"),
        ];
        for (a, b) in cases {
            let reference = strsim::levenshtein(&a.to_lowercase(), &b.to_lowercase());
            assert_eq!(invoice_distance(a, b), reference, "{a} / {b}");
            assert_eq!(invoice_distance(b, a), reference, "{b} / {a}");
            let (x, y) = (a.trim().to_lowercase(), b.trim().to_lowercase());
            let contains =
                x.len().min(y.len()) >= 4 && x != y && (x.starts_with(&y) || y.starts_with(&x));
            assert_eq!(invoice_contains(a, b), contains, "{a} / {b}");
        }
        let long_a = "A".repeat(100) + "x";
        let long_b = "a".repeat(99) + "yz";
        assert_eq!(
            invoice_distance(&long_a, &long_b),
            strsim::levenshtein(&long_a.to_lowercase(), &long_b.to_lowercase())
        );
    }
}
