//! Who is who for the four-eyes rule: actor names compared after Unicode
//! normalisation, so one person cannot pass as two by spelling their name differently.
//!
//! [`canonical_name`]: NFKC, zero-width and other invisible format characters removed,
//! whitespace trimmed and collapsed, lower-cased, and Cyrillic/Greek letters that look
//! like Latin ones mapped to them (`mіa` with a Cyrillic `і` is `mia`). [`same_person`]
//! compares two names that way; the workflow's sign-off check and the workbench use it.

use unicode_normalization::UnicodeNormalization;

/// Characters that render as nothing (zero-width spaces and joiners, word joiner, BOM,
/// soft hyphen, bidirectional marks and overrides, Mongolian vowel separator).
fn invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{061C}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
    )
}

/// Lower-case Cyrillic and Greek letters that are drawn like a Latin letter (after
/// lower-casing), mapped to that letter. A small table in the spirit of Unicode's
/// confusables list, limited to the letters a name could be spelled with.
fn latin_lookalike(c: char) -> char {
    match c {
        // Cyrillic
        'а' => 'a',
        'в' => 'b',
        'с' => 'c',
        'ԁ' => 'd',
        'е' | 'ё' => 'e',
        'һ' => 'h',
        'і' | 'ї' => 'i',
        'ј' => 'j',
        'к' => 'k',
        'ӏ' => 'l',
        'м' => 'm',
        'н' => 'h',
        'о' => 'o',
        'р' => 'p',
        'ԛ' => 'q',
        'ѕ' => 's',
        'т' => 't',
        'υ' => 'u',
        'ѵ' => 'v',
        'ԝ' => 'w',
        'х' => 'x',
        'у' => 'y',
        'ᴢ' => 'z',
        // Greek
        'α' => 'a',
        'β' => 'b',
        'ε' => 'e',
        'η' => 'n',
        'ι' => 'i',
        'κ' => 'k',
        'ν' => 'v',
        'ο' => 'o',
        'ρ' => 'p',
        'τ' => 't',
        'χ' => 'x',
        'γ' => 'y',
        'ζ' => 'z',
        other => other,
    }
}

/// The form of a name that identity comparisons use.
pub fn canonical_name(name: &str) -> String {
    let folded: String = name
        .nfkc()
        .filter(|c| !invisible(*c))
        .collect::<String>()
        .to_lowercase();
    let mapped: String = folded.chars().map(latin_lookalike).collect();
    // NFKC again: mapping and lower-casing may leave sequences that compose.
    let normal: String = mapped.nfkc().collect();
    normal.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Whether two actor names name the same person.
pub fn same_person(a: &str, b: &str) -> bool {
    canonical_name(a) == canonical_name(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_of_one_name_are_one_person() {
        for other in [
            "Mia",
            "mia ",
            " MIA",
            "m\u{0456}a",        // Cyrillic і
            "\u{041C}ia",        // Cyrillic М
            "mi\u{0430}",        // Cyrillic а
            "m\u{200B}ia",       // zero-width space
            "\u{FEFF}mia",       // BOM
            "mi\u{200D}a",       // zero-width joiner
            "\u{FF4D}\u{FF49}a", // fullwidth m i
            "m\u{03B9}a",        // Greek iota
            "mi\u{202E}a",       // right-to-left override
        ] {
            assert!(same_person("mia", other), "{other:?}");
        }
        assert!(same_person("Ana  Lopez", "ana lopez"));
        assert!(same_person("Zoë", "zoe\u{0308}"));
    }

    #[test]
    fn different_people_stay_different() {
        for (a, b) in [
            ("mia", "max"),
            ("mia", "mila"),
            ("ana", "anna"),
            ("mia", ""),
            ("zoe", "zoë"),
        ] {
            assert!(!same_person(a, b), "{a} vs {b}");
        }
    }
}
