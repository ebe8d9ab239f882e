//! Where in a file a refused field stands: frpc's message for an unknown field names only the
//! field (`json: unknown field "NAME"`), so the loader adds the file and the first line that
//! spells that key, keeping frpc's text in front for whoever matches it.

use super::types::ConfigError;
use std::path::Path;

/// `error` with ` (FILE line N)` appended when it is an unknown-field error and the file
/// (read again: this only runs on a failed load) spells that key on some line.
pub(super) fn unknown_field(error: ConfigError, path: &Path) -> ConfigError {
    let ConfigError::Parse(msg) = &error else {
        return error;
    };
    let Some(key) = field_of(msg) else {
        return error;
    };
    let Ok(text) = std::fs::read_to_string(path) else {
        return error;
    };
    match line_of(&text, key) {
        Some(n) => ConfigError::Parse(format!("{msg} ({} line {n})", path.display())),
        None => error,
    }
}

/// The field named by the last `unknown field "NAME"` in `msg`.
fn field_of(msg: &str) -> Option<&str> {
    let (_, rest) = msg.rsplit_once("unknown field \"")?;
    let (name, _) = rest.split_once('"')?;
    (!name.is_empty()).then_some(name)
}

/// The first line (from 1) on which `key` stands as a whole word, in any letter case (frpc
/// matches keys case-insensitively).
fn line_of(text: &str, key: &str) -> Option<usize> {
    let key = key.to_ascii_lowercase();
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    text.lines()
        .position(|line| {
            let lower = line.to_ascii_lowercase();
            lower.match_indices(&key).any(|(at, _)| {
                let before = lower[..at].chars().next_back();
                let after = lower[at + key.len()..].chars().next();
                !before.is_some_and(word) && !after.is_some_and(word)
            })
        })
        .map(|i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_key_as_a_word() {
        let text = "serverAddr = \"x\"\n# bogusish\n[[proxies]]\nname = \"a\"\nBogus = 1\n";
        assert_eq!(line_of(text, "bogus"), Some(5));
        assert_eq!(line_of(text, "nope"), None);
        assert_eq!(
            field_of("unmarshal ProxyConfig error: json: unknown field \"Bogus\""),
            Some("Bogus")
        );
        assert_eq!(field_of("json: invalid type"), None);
        assert_eq!(field_of("json: unknown field \"\""), None);
    }

    #[test]
    fn adds_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("frpc.yaml");
        std::fs::write(
            &file,
            "serverAddr: x\nproxies:\n  - name: a\n    lokalPort: 1\n",
        )
        .unwrap();
        let e = unknown_field(
            ConfigError::Parse(
                "unmarshal ProxyConfig error: json: unknown field \"lokalPort\"".into(),
            ),
            &file,
        );
        assert_eq!(
            e.to_string(),
            format!(
                "unmarshal ProxyConfig error: json: unknown field \"lokalPort\" ({} line 4)",
                file.display()
            )
        );
        let other = ConfigError::Invalid("x".into());
        assert_eq!(unknown_field(other.clone(), &file), other);
    }
}
