//! Reading INI text the way the library frpc uses reads it with frpc's options: case-sensitive
//! keys and sections, `#`/`;` comment lines only, boolean keys, quotes removed, `"""` multi-line
//! values, a trailing backslash continues a line, repeated keys and sections merge (last value
//! wins).

use serde_json::{Map, Value};

/// One `[name]` section, keys in file order.
#[derive(Debug, Default, Clone)]
pub struct Section {
    pub name: String,
    pub keys: Vec<(String, String)>,
}

impl Section {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.keys
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn set(&mut self, key: &str, value: String) {
        self.keys.retain(|(k, _)| k != key);
        self.keys.push((key.to_owned(), value));
    }

    /// Keys starting with `prefix`, the prefix removed (frp's `GetMapWithoutPrefix`).
    pub fn with_prefix(&self, prefix: &str) -> Map<String, Value> {
        let mut out = Map::new();
        for (k, v) in &self.keys {
            if let Some(rest) = k.strip_prefix(prefix) {
                out.insert(rest.to_owned(), Value::String(v.clone()));
            }
        }
        out
    }
}

/// The name of the keys before any `[section]`.
pub const DEFAULT_SECTION: &str = "DEFAULT";

/// Go's `strconv.ParseInt(s, 0, 64)`: sign, then `0x`, `0o`, `0b` or a leading `0` for octal,
/// underscores allowed between digits only with a prefix.
pub fn go_int(s: &str) -> Option<i64> {
    let (neg, digits) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = digits.to_ascii_lowercase();
    let (radix, body, prefixed) = if let Some(b) = lower.strip_prefix("0x") {
        (16, b.to_owned(), true)
    } else if let Some(b) = lower.strip_prefix("0o") {
        (8, b.to_owned(), true)
    } else if let Some(b) = lower.strip_prefix("0b") {
        (2, b.to_owned(), true)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, lower[1..].to_owned(), true)
    } else {
        (10, lower, false)
    };
    let body = if prefixed {
        if body.starts_with('_') || body.ends_with('_') || body.contains("__") {
            return None;
        }
        body.replace('_', "")
    } else {
        body
    };
    if body.is_empty() || body.starts_with(['+', '-']) {
        return None;
    }
    let magnitude = i128::from_str_radix(&body, radix).ok()?;
    i64::try_from(if neg { -magnitude } else { magnitude }).ok()
}

/// Parses INI text into sections in file order (same-named sections merged).
pub fn parse(text: &str) -> Result<Vec<Section>, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut sections = vec![Section {
        name: DEFAULT_SECTION.to_owned(),
        keys: Vec::new(),
    }];
    let mut current = 0usize;
    let mut lines = text.lines();
    while let Some(raw) = lines.next() {
        let line = raw.trim_start();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if line.starts_with('[') {
            let Some(close) = line.rfind(']') else {
                return Err(format!("unclosed section: {line}"));
            };
            let name = line[1..close].trim();
            if name.is_empty() {
                return Err(format!("empty section name: {line}"));
            }
            current = match sections.iter().position(|s| s.name == name) {
                Some(i) => i,
                None => {
                    sections.push(Section {
                        name: name.to_owned(),
                        keys: Vec::new(),
                    });
                    sections.len() - 1
                }
            };
            continue;
        }
        let (key, rest) = split_key(line)?;
        let value = match rest {
            None => "true".to_owned(),
            Some(rest) => read_value(rest, &mut lines)?,
        };
        sections[current].set(&key, value);
    }
    Ok(sections)
}

/// The key of a line and what follows its `=`/`:` (`None`: a boolean key).
fn split_key(line: &str) -> Result<(String, Option<&str>), String> {
    for quote in ["\"\"\"", "\"", "`"] {
        if let Some(rest) = line.strip_prefix(quote) {
            let end = rest
                .find(quote)
                .ok_or_else(|| format!("key-value delimiter not found: {line}"))?;
            let key = &rest[..end];
            let after = rest[end + quote.len()..].trim_start();
            let value = after
                .strip_prefix('=')
                .or_else(|| after.strip_prefix(':'))
                .ok_or_else(|| format!("key-value delimiter not found: {line}"))?;
            return Ok((key.to_owned(), Some(value)));
        }
    }
    match line.find(['=', ':']) {
        Some(at) => {
            let key = line[..at].trim();
            if key.is_empty() {
                return Err(format!("empty key: {line}"));
            }
            Ok((key.to_owned(), Some(&line[at + 1..])))
        }
        None => Ok((line.trim().to_owned(), None)),
    }
}

/// A value: `"""` multi-line, trailing-`\` continuation, surrounding quotes removed.
fn read_value<'a>(rest: &str, lines: &mut impl Iterator<Item = &'a str>) -> Result<String, String> {
    let line = rest.trim_start();
    if let Some(body) = line.strip_prefix("\"\"\"") {
        if let Some(end) = body.find("\"\"\"") {
            return Ok(body[..end].to_owned());
        }
        let mut value = body.to_owned();
        for next in lines.by_ref() {
            value.push('\n');
            if let Some(end) = next.find("\"\"\"") {
                value.push_str(&next[..end]);
                return Ok(value);
            }
            value.push_str(next);
        }
        return Err("missing closing key quote from '\"\"\"' to '\"\"\"'".into());
    }
    let mut line = line.trim().to_owned();
    while line.ends_with('\\') {
        line.pop();
        match lines.next() {
            Some(next) => line.push_str(next.trim()),
            None => break,
        }
        line = line.trim_end().to_owned();
    }
    let quoted = line.len() >= 2
        && ((line.starts_with('"') && line.ends_with('"'))
            || (line.starts_with('\'') && line.ends_with('\'')));
    if quoted {
        line = line[1..line.len() - 1].to_owned();
    }
    Ok(line)
}
