//! A fast reader for the common shape of a data-set line: one flat JSON object whose
//! values are strings without escapes, whole numbers, `null`, `true` or `false`.
//!
//! It only ever says "here are the members" or "not this shape": anything else (an
//! escape sequence, a nested value, a float, bad syntax, trailing text) makes it give
//! up, and the caller reads the line with `serde_json`, which accepts what JSON allows
//! and explains what it does not. So for every line it accepts, the members it
//! reports are exactly what `serde_json` would read, and it never rejects a row.

/// A member's value as the fast reader reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Val<'a> {
    /// A string without escape sequences (its text between the quotes).
    Str(&'a str),
    /// A whole number that fits in `i64`.
    Int(i64),
    Null,
    /// `true` or `false`.
    Bool(bool),
}

/// Calls `each(key, value)` for every member of `line`, in order, when the line is a
/// flat object of the shape above; returns `false` as soon as it is not (or `each`
/// returns `false`), and the caller falls back to the full parser.
pub fn scan<'a>(line: &'a str, mut each: impl FnMut(&'a str, Val<'a>) -> bool) -> bool {
    let b = line.as_bytes();
    let mut i = ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return false;
    }
    i = ws(b, i + 1);
    if b.get(i) == Some(&b'}') {
        return ws(b, i + 1) == b.len();
    }
    loop {
        let Some((key, next)) = string(line, i) else {
            return false;
        };
        i = ws(b, next);
        if b.get(i) != Some(&b':') {
            return false;
        }
        i = ws(b, i + 1);
        let (val, next) = match b.get(i) {
            Some(b'"') => match string(line, i) {
                Some((s, n)) => (Val::Str(s), n),
                None => return false,
            },
            Some(b'-' | b'0'..=b'9') => match integer(b, i) {
                Some((n, next)) => (Val::Int(n), next),
                None => return false,
            },
            Some(b'n') if b[i..].starts_with(b"null") => (Val::Null, i + 4),
            Some(b't') if b[i..].starts_with(b"true") => (Val::Bool(true), i + 4),
            Some(b'f') if b[i..].starts_with(b"false") => (Val::Bool(false), i + 5),
            _ => return false,
        };
        if !each(key, val) {
            return false;
        }
        i = ws(b, next);
        match b.get(i) {
            Some(b',') => i = ws(b, i + 1),
            Some(b'}') => return ws(b, i + 1) == b.len(),
            _ => return false,
        }
    }
}

/// The index of the first byte at or after `i` that is not JSON whitespace.
fn ws(b: &[u8], mut i: usize) -> usize {
    while let Some(b' ' | b'\t' | b'\n' | b'\r') = b.get(i) {
        i += 1;
    }
    i
}

/// A string starting with the quote at `i`: its text and the index after its closing
/// quote; `None` when it has an escape or a control character, or never ends.
fn string(line: &str, i: usize) -> Option<(&str, usize)> {
    let b = line.as_bytes();
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let start = i + 1;
    // The closing quote or an escape, found a word at a time; then no control
    // character may sit in between (a branch-free pass the compiler vectorises).
    let j = start + memchr::memchr2(b'"', b'\\', b.get(start..)?)?;
    if b[j] == b'\\' || b[start..j].iter().fold(false, |bad, &c| bad | (c < 0x20)) {
        return None;
    }
    // `start` and `j` sit next to ASCII quotes: both are character boundaries.
    Some((line.get(start..j)?, j + 1))
}

/// A JSON integer at `i` (`-?(0|[1-9][0-9]*)` not followed by a fraction or an
/// exponent) that fits in `i64`, and the index after it.
fn integer(b: &[u8], i: usize) -> Option<(i64, usize)> {
    let neg = b[i] == b'-';
    let start = i + usize::from(neg);
    let mut j = start;
    while b.get(j).is_some_and(u8::is_ascii_digit) {
        j += 1;
    }
    let digits = &b[start..j];
    if digits.is_empty() || (digits.len() > 1 && digits[0] == b'0') {
        return None;
    }
    // serde_json reads `-0` as the float -0.0, not as an integer.
    if let Some(b'.' | b'e' | b'E') = b.get(j) {
        return None;
    }
    if neg && digits == b"0" {
        return None;
    }
    let mut n: i64 = 0;
    for d in digits {
        let d = i64::from(d - b'0');
        n = n.checked_mul(10)?;
        n = if neg {
            n.checked_sub(d)?
        } else {
            n.checked_add(d)?
        };
    }
    Some((n, j))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(line: &str) -> Option<Vec<(String, Val<'_>)>> {
        let mut out = Vec::new();
        scan(line, |k, v| {
            out.push((k.to_string(), v));
            true
        })
        .then_some(out)
    }

    #[test]
    fn reads_a_flat_object() {
        let m = members(r#" { "a" : "x y", "b":-12,"c":null ,"d":true,"e":false,"f":0, "g":"" } "#)
            .unwrap();
        assert_eq!(
            m,
            vec![
                ("a".into(), Val::Str("x y")),
                ("b".into(), Val::Int(-12)),
                ("c".into(), Val::Null),
                ("d".into(), Val::Bool(true)),
                ("e".into(), Val::Bool(false)),
                ("f".into(), Val::Int(0)),
                ("g".into(), Val::Str("")),
            ]
        );
        assert_eq!(members("{}").unwrap(), vec![]);
        assert_eq!(
            members("{\"é\":\"ünïcode ✓\"}").unwrap(),
            vec![("é".into(), Val::Str("ünïcode ✓"))]
        );
    }

    #[test]
    fn gives_up_on_anything_else() {
        for line in [
            "",
            "[]",
            "{",
            "{\"a\":1",
            "{\"a\":1,}",
            "{\"a\" 1}",
            "{\"a\":1} x",
            "{\"a\":1}{}",
            "{a:1}",
            "{\"a\":\"x\\\"y\"}",
            "{\"a\\u0041\":1}",
            "{\"a\":\"tab\there\"}",
            "{\"a\":1.5}",
            "{\"a\":1e3}",
            "{\"a\":01}",
            "{\"a\":-0}",
            "{\"a\":-}",
            "{\"a\":9223372036854775808}",
            "{\"a\":{}}",
            "{\"a\":[1]}",
            "{\"a\":nul}",
            "{\"a\":True}",
            "{\"a\":\"unterminated}",
        ] {
            assert!(members(line).is_none(), "{line:?}");
        }
        assert_eq!(
            members("{\"a\":-9223372036854775808}").unwrap(),
            vec![("a".into(), Val::Int(i64::MIN))]
        );
        // The callback can refuse a member (a duplicate key, a wrong type).
        assert!(!scan("{\"a\":1,\"b\":2}", |k, _| k != "b"));
    }

    /// Whatever the fast reader accepts, serde_json reads the same members.
    #[test]
    fn agrees_with_serde_json_where_it_reads() {
        use proptest::prelude::*;
        let piece = prop_oneof![
            Just("{".to_string()),
            Just("}".to_string()),
            Just(",".to_string()),
            Just(":".to_string()),
            Just(" ".to_string()),
            Just("\"k\"".to_string()),
            Just("\"v w\"".to_string()),
            Just("\"\\n\"".to_string()),
            Just("null".to_string()),
            Just("true".to_string()),
            Just("-0".to_string()),
            Just("42".to_string()),
            Just("1.5".to_string()),
            Just("[".to_string()),
            Just("]".to_string()),
        ];
        proptest!(|(parts in proptest::collection::vec(piece, 0..16))| {
            let line = parts.concat();
            if let Some(m) = members(&line) {
                let v: serde_json::Value = serde_json::from_str(&line)
                    .map_err(|e| TestCaseError::fail(format!("{line:?}: {e}")))?;
                let obj = v.as_object().ok_or_else(|| TestCaseError::fail("not an object"))?;
                for (k, val) in &m {
                    let want = match val {
                        Val::Str(s) => serde_json::json!(s),
                        Val::Int(n) => serde_json::json!(n),
                        Val::Null => serde_json::Value::Null,
                        Val::Bool(b) => serde_json::json!(b),
                    };
                    // A repeated key: serde_json's map keeps the last one.
                    let last = m.iter().rev().find(|(k2, _)| k2 == k).map(|(_, v)| v);
                    if last == Some(val) {
                        prop_assert_eq!(obj.get(k), Some(&want), "{:?}", line);
                    }
                }
            }
        });
    }
}
