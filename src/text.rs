//! Untrusted text on screen: every text that comes from data (PRM, import, notes,
//! reasons, names) goes through [`sanitize`] before it is drawn or printed, so an escape
//! sequence in a partner name cannot clear the screen, set the window title or reorder
//! what the reader sees.
//!
//! Removed: C0 controls (except tab and newline in [`sanitize_multiline`]), DEL, C1
//! controls, and the bidirectional embedding / override / isolate characters
//! (U+202A–U+202E, U+2066–U+2069) and marks (U+200E, U+200F, U+061C).

use std::borrow::Cow;
use std::io::{self, Write};

/// Whether `c` is a bidirectional formatting character (embedding, override, isolate,
/// mark): it reorders the text around it on screen.
pub fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}'
    )
}

/// Whether `c` never reaches the terminal from data (control or bidi formatting).
pub fn is_unsafe(c: char) -> bool {
    c.is_control() || is_bidi_control(c)
}

/// One line of data made safe to draw or print: control and bidi formatting characters
/// are dropped; tabs and line breaks become one space each (a table cell stays one line).
/// Borrows when there is nothing to change.
pub fn sanitize(s: &str) -> Cow<'_, str> {
    clean(s, false)
}

/// Like [`sanitize`], but keeps line breaks (`\n`) and tabs: for multi-line notes and
/// reports. A `\r` is dropped.
pub fn sanitize_multiline(s: &str) -> Cow<'_, str> {
    clean(s, true)
}

fn clean(s: &str, keep_lines: bool) -> Cow<'_, str> {
    let kept = |c: char| keep_lines && (c == '\n' || c == '\t');
    if !s.chars().any(|c| is_unsafe(c) && !kept(c)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if kept(c) || !is_unsafe(c) {
            out.push(c);
        } else if matches!(c, '\n' | '\t') {
            out.push(' ');
        }
    }
    Cow::Owned(out)
}

/// `s` sanitized and cut to `w` display columns, with an ellipsis when cut.
pub fn fit(s: &str, w: usize) -> String {
    use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};
    let s = sanitize(s);
    if s.width() <= w {
        return s.into_owned();
    }
    if w == 0 {
        return String::new();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars() {
        let cw = c.width().unwrap_or(0);
        if used + cw + 1 > w {
            break;
        }
        out.push(c);
        used += cw;
    }
    out.push('…');
    out
}

/// A writer that passes text through [`sanitize_multiline`] (keeps `\n` and `\t`): wrap
/// the CLI's table and text outputs in it. Bytes that are not UTF-8 are passed on as
/// U+FFFD; a character split between two writes is held until its end arrives.
pub struct Clean<W: Write> {
    inner: W,
    pending: Vec<u8>,
    active: bool,
}

impl<W: Write> Clean<W> {
    pub fn new(inner: W) -> Clean<W> {
        Clean {
            inner,
            pending: Vec::new(),
            active: true,
        }
    }

    /// Cleans only when `active` (table and text output); otherwise passes every byte
    /// through unchanged (machine formats such as jsonl keep the data exact; JSON
    /// escapes control characters itself).
    pub fn when(active: bool, inner: W) -> Clean<W> {
        Clean {
            active,
            ..Clean::new(inner)
        }
    }

    pub fn into_inner(mut self) -> io::Result<W> {
        self.flush_pending()?;
        // `Clean` has no Drop, so the writer can be moved out.
        Ok(self.inner)
    }

    fn flush_pending(&mut self) -> io::Result<()> {
        if !self.pending.is_empty() {
            let rest = std::mem::take(&mut self.pending);
            let text = String::from_utf8_lossy(&rest);
            self.inner.write_all(sanitize_multiline(&text).as_bytes())?;
        }
        Ok(())
    }
}

impl<W: Write> Write for Clean<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if !self.active {
            return self.inner.write(buf);
        }
        self.pending.extend_from_slice(buf);
        // Keep an incomplete trailing UTF-8 sequence (at most 3 bytes) for the next write.
        let cut = match std::str::from_utf8(&self.pending) {
            Ok(_) => self.pending.len(),
            Err(e) if e.error_len().is_none() => e.valid_up_to(),
            Err(_) => self.pending.len(),
        };
        let rest = self.pending.split_off(cut);
        let head = std::mem::replace(&mut self.pending, rest);
        let text = String::from_utf8_lossy(&head);
        self.inner.write_all(sanitize_multiline(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.pending.len() > 3 {
            self.flush_pending()?;
        }
        self.inner.flush()
    }
}

/// A [`Clean`] stdout, buffered: what the CLI's table and text printers write to.
pub fn clean_stdout() -> Clean<io::BufWriter<io::StdoutLock<'static>>> {
    Clean::new(io::BufWriter::new(io::stdout().lock()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_and_bidi_overrides_are_removed() {
        let hostile = "Acme\x1b[2J\x1b[H Corp\x1b]0;pwned\x07 \u{202E}gnp.exe\u{202C}\u{9b}";
        let s = sanitize(hostile);
        assert!(!s.chars().any(is_unsafe), "{s:?}");
        assert_eq!(s, "Acme[2J[H Corp]0;pwned gnp.exe");
        assert!(matches!(sanitize("Müller & Søn · Gold"), Cow::Borrowed(_)));
        assert_eq!(sanitize("a\nb\tc\r"), "a b c");
        assert_eq!(sanitize_multiline("a\nb\tc\r\x1b"), "a\nb\tc");
    }

    #[test]
    fn the_writer_cleans_characters_split_between_writes() {
        let mut w = Clean::new(Vec::new());
        let text = "name \u{202E}x\u{202C} \x1b[31mred\n";
        let bytes = text.as_bytes();
        // Byte by byte: every multi-byte character arrives in pieces.
        for b in bytes {
            w.write_all(std::slice::from_ref(b)).unwrap();
        }
        w.flush().unwrap();
        let out = String::from_utf8(w.into_inner().unwrap()).unwrap();
        assert_eq!(out, "name x [31mred\n");
    }
}
