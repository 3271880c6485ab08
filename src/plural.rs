//! Counts in messages: `1 day`, `2 days`, `1 decision`, `0 decisions`.

/// `count` and the noun in the form that goes with it (`plural` for anything but 1).
pub fn count(n: impl Into<i128>, singular: &str, plural: &str) -> String {
    let n = n.into();
    format!("{n} {}", if n == 1 { singular } else { plural })
}

/// `count` with a regular English plural (the noun plus `s`).
pub fn n(n: impl Into<i128>, noun: &str) -> String {
    let n = n.into();
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_is_singular_everything_else_plural() {
        assert_eq!(n(1u64, "decision"), "1 decision");
        assert_eq!(n(0u64, "decision"), "0 decisions");
        assert_eq!(n(2i64, "day"), "2 days");
        assert_eq!(n(-1i64, "day"), "-1 days");
        assert_eq!(count(1usize as u64, "entry", "entries"), "1 entry");
        assert_eq!(count(3u32, "entry", "entries"), "3 entries");
    }
}
