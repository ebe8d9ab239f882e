//! `includes`: the files of one directory whose names match a shell pattern, as frpc finds them
//! (Go's `filepath.Match` on the base name: `*`, `?`, `[a-z]`, `[^…]`, `\` escapes; the
//! directory part is taken literally, relative to the working directory as in frpc).

use super::types::ConfigError;
use std::path::{Path, PathBuf};

/// The regular files matching `pattern`, in name order.
pub fn matching_files(pattern: &str) -> Result<Vec<PathBuf>, ConfigError> {
    let p = Path::new(pattern);
    let dir = match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let base = p.file_name().and_then(|b| b.to_str()).unwrap_or("");
    if !dir.is_dir() {
        return Err(ConfigError::Invalid(format!(
            "include: directory of {pattern} not exist"
        )));
    }
    let entries = std::fs::read_dir(&dir)
        .map_err(|e| ConfigError::Read(format!("open {}: {e}", dir.display())))?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| ConfigError::Read(format!("open {}: {e}", dir.display())))?;
        let is_file = entry.file_type().map(|t| !t.is_dir()).unwrap_or(false);
        let name = entry.file_name();
        if let (true, Some(name)) = (is_file, name.to_str()) {
            if matches(base, name) {
                files.push(entry.path());
            }
        }
    }
    files.sort();
    Ok(files)
}

/// Go's `filepath.Match` for one path element (a malformed pattern matches nothing).
pub fn matches(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    match_from(&p, &n)
}

fn match_from(p: &[char], n: &[char]) -> bool {
    let Some((&first, rest)) = p.split_first() else {
        return n.is_empty();
    };
    match first {
        '*' => (0..=n.len()).any(|skip| match_from(rest, &n[skip..])),
        '?' => !n.is_empty() && match_from(rest, &n[1..]),
        '[' => {
            let Some((&c, n_rest)) = n.split_first() else {
                return false;
            };
            match class(rest, c) {
                Some((true, after)) => match_from(after, n_rest),
                _ => false,
            }
        }
        '\\' => match rest.split_first() {
            Some((&lit, after)) => n.first() == Some(&lit) && match_from(after, &n[1..]),
            None => false,
        },
        lit => n.first() == Some(&lit) && match_from(rest, &n[1..]),
    }
}

/// Matches `c` against the class whose text follows `[`; returns whether it matched and the
/// pattern after `]`, or `None` for an unterminated class.
fn class(p: &[char], c: char) -> Option<(bool, &[char])> {
    let (negate, mut i) = match p.first() {
        Some('^') => (true, 1),
        _ => (false, 0),
    };
    let mut hit = false;
    let mut first = true;
    loop {
        let &lo = p.get(i)?;
        if lo == ']' && !first {
            return Some((hit != negate, &p[i + 1..]));
        }
        first = false;
        let lo = if lo == '\\' {
            i += 1;
            *p.get(i)?
        } else {
            lo
        };
        i += 1;
        if p.get(i) == Some(&'-') && p.get(i + 1).is_some_and(|&h| h != ']') {
            let mut hi = p[i + 1];
            i += 2;
            if hi == '\\' {
                hi = *p.get(i)?;
                i += 1;
            }
            hit |= lo <= c && c <= hi;
        } else {
            hit |= lo == c;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn go_match_rules() {
        assert!(matches("*.toml", "web.toml"));
        assert!(!matches("*.toml", "web.yaml"));
        assert!(matches("proxy-?.ini", "proxy-1.ini"));
        assert!(matches("[a-c]*", "blog"));
        assert!(!matches("[^a-c]*", "blog"));
        assert!(matches("\\*", "*"));
        assert!(!matches("[", "x"));
        assert!(!matches("[a-", "a"));
        assert!(matches("*", ""));
    }
}
