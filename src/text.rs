//! Text from elsewhere (servers, the API, visitors' requests) made safe to show on a terminal or
//! in a log line.
//!
//! One rule for every place that prints such text: [`is_unsafe_char`]. It refuses characters
//! that let a hostile peer act on the terminal or change what a line appears to say:
//!
//! - control characters: C0 (ESC, BEL, CR, LF, TAB, …), DEL and C1 — escape sequences, cursor
//!   moves, forged line breaks;
//! - Unicode bidirectional controls (embeddings, overrides, isolates, the LRM/RLM/ALM marks),
//!   which reorder how a line displays;
//! - invisible format characters (zero-width spaces and joiners, the word joiner and invisible
//!   operators, the byte-order mark, interlinear annotation marks, the Mongolian vowel
//!   separator), which hide text or make two different strings look the same.
//!
//! [`strip_unsafe`] drops them, [`escape_unsafe`] writes them as `\u{..}` so they stay visible.

use std::borrow::Cow;
use std::fmt::Write as _;

/// True for a character that must not reach a terminal or a log line from untrusted text.
pub fn is_unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            // Arabic letter mark (a bidi mark).
            '\u{061C}'
            // Mongolian vowel separator (invisible).
            | '\u{180E}'
            // Zero-width space, non-joiner, joiner; left-to-right and right-to-left marks.
            | '\u{200B}'..='\u{200F}'
            // Bidi embeddings and overrides (LRE, RLE, PDF, LRO, RLO).
            | '\u{202A}'..='\u{202E}'
            // Word joiner, invisible operators, bidi isolates (LRI, RLI, FSI, PDI) and the
            // deprecated format controls up to U+206F.
            | '\u{2060}'..='\u{206F}'
            // Byte-order mark / zero-width no-break space.
            | '\u{FEFF}'
            // Interlinear annotation anchor, separator, terminator.
            | '\u{FFF9}'..='\u{FFFB}'
        )
}

/// True when `s` holds a character [`is_unsafe_char`] refuses.
pub fn has_unsafe_chars(s: &str) -> bool {
    s.chars().any(is_unsafe_char)
}

/// `s` without the characters [`is_unsafe_char`] refuses; borrowed when there are none.
pub fn strip_unsafe(s: &str) -> Cow<'_, str> {
    if !has_unsafe_chars(s) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(s.chars().filter(|c| !is_unsafe_char(*c)).collect())
}

/// `s` with every character [`is_unsafe_char`] refuses written as a `\u{..}` escape, so the
/// reader sees that something was there; borrowed when there are none.
pub fn escape_unsafe(s: &str) -> Cow<'_, str> {
    if !has_unsafe_chars(s) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        if is_unsafe_char(c) {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every character the rule must refuse, one per family.
    const UNSAFE: &[char] = &[
        '\0', '\x07', '\t', '\n', '\r', '\x1b', '\x7f', '\u{80}', '\u{9b}', '\u{9f}', '\u{061C}',
        '\u{180E}', '\u{200B}', '\u{200C}', '\u{200D}', '\u{200E}', '\u{200F}', '\u{202A}',
        '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}', '\u{2060}', '\u{2063}', '\u{2066}',
        '\u{2067}', '\u{2068}', '\u{2069}', '\u{206F}', '\u{FEFF}', '\u{FFF9}', '\u{FFFB}',
    ];

    #[test]
    fn refuses_controls_bidi_and_invisible_format_characters() {
        for &c in UNSAFE {
            assert!(is_unsafe_char(c), "U+{:04X} must be refused", c as u32);
        }
    }

    #[test]
    fn keeps_ordinary_text() {
        for c in [
            ' ', 'a', 'Z', '~', '/', '?', 'é', 'ß', '中', '…', '→', '😀', '\u{00A0}', '\u{2010}',
            '\u{2070}', '\u{FFFC}', '\u{FFFD}',
        ] {
            assert!(!is_unsafe_char(c), "U+{:04X} must be kept", c as u32);
        }
    }

    #[test]
    fn strip_drops_and_escape_shows() {
        assert_eq!(strip_unsafe("a\x1b]0;pwned\x07b\r\n"), "a]0;pwnedb");
        assert_eq!(strip_unsafe("evil\u{202E}moc.elpmaxe"), "evilmoc.elpmaxe");
        assert_eq!(strip_unsafe("zero\u{200B}width\u{FEFF}"), "zerowidth");
        assert_eq!(escape_unsafe("a\x1b[2Jb"), "a\\u{1b}[2Jb");
        assert_eq!(escape_unsafe("x\u{2066}y"), "x\\u{2066}y");
        assert!(matches!(strip_unsafe("plain"), Cow::Borrowed("plain")));
        assert!(matches!(escape_unsafe("plain"), Cow::Borrowed("plain")));
    }

    #[test]
    fn nothing_unsafe_survives_either_form() {
        let all: String = UNSAFE.iter().collect::<String>() + "ok";
        assert_eq!(strip_unsafe(&all), "ok");
        assert!(!has_unsafe_chars(&escape_unsafe(&all)));
    }
}
