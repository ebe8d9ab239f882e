//! JSON output that matches Go's `encoding/json` byte for byte.
//!
//! Go escapes `<`, `>`, `&`, U+2028 and U+2029 inside strings (HTML-safe output is the default
//! of `json.Marshal`). serde_json does not, so a message with, say, a `&` in a header value would
//! differ from what Go frpc sends. frps decodes either form; matching Go keeps our captures
//! comparable with the reference ones.

use serde::Serialize;
use serde_json::ser::{CharEscape, Formatter, Serializer};
use std::io;

/// A serde_json formatter that adds Go's HTML escapes to the compact format.
struct GoFormatter;

impl Formatter for GoFormatter {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            let esc: Option<&[u8]> = match c {
                '<' => Some(b"\\u003c"),
                '>' => Some(b"\\u003e"),
                '&' => Some(b"\\u0026"),
                '\u{2028}' => Some(b"\\u2028"),
                '\u{2029}' => Some(b"\\u2029"),
                _ => None,
            };
            if let Some(esc) = esc {
                writer.write_all(&fragment.as_bytes()[start..i])?;
                writer.write_all(esc)?;
                start = i + c.len_utf8();
            }
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }

    fn write_char_escape<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        char_escape: CharEscape,
    ) -> io::Result<()> {
        // Go writes \n, \r, \t, \", \\ like serde_json and, since Go 1.22 (frp 0.66 is
        // built with 1.24+), \b and \f too; other control characters as \u00XX.
        let s: &[u8] = match char_escape {
            CharEscape::Quote => b"\\\"",
            CharEscape::ReverseSolidus => b"\\\\",
            CharEscape::LineFeed => b"\\n",
            CharEscape::CarriageReturn => b"\\r",
            CharEscape::Tab => b"\\t",
            CharEscape::Solidus => b"/",
            CharEscape::Backspace => b"\\b",
            CharEscape::FormFeed => b"\\f",
            CharEscape::AsciiControl(byte) => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                let buf = [
                    b'\\',
                    b'u',
                    b'0',
                    b'0',
                    HEX[(byte >> 4) as usize],
                    HEX[(byte & 0xf) as usize],
                ];
                return writer.write_all(&buf);
            }
        };
        writer.write_all(s)
    }
}

/// Serialises `value` as Go's `json.Marshal` would, appending to `out`.
pub(crate) fn to_writer<W: io::Write, T: Serialize + ?Sized>(
    out: W,
    value: &T,
) -> serde_json::Result<()> {
    let mut ser = Serializer::with_formatter(out, GoFormatter);
    value.serialize(&mut ser)
}
