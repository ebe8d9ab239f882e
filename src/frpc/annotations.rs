//! frpc's check of proxy annotation keys: each must be what Kubernetes calls a qualified name
//! (an optional DNS-subdomain prefix and `/`, then 1–63 alphanumerics, `-`, `_` or `.` that
//! start and end alphanumeric), and keys plus values at most 256 KiB together. The texts are
//! the Kubernetes validation library's, which frpc uses.

use std::collections::BTreeMap;

const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const QUALIFIED_NAME_MSG: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const QUALIFIED_NAME_MAX: usize = 63;
const SUBDOMAIN_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
const SUBDOMAIN_MAX: usize = 253;
/// frp's limit on the total size of one proxy's annotations.
const TOTAL_SIZE_LIMIT: usize = 256 * 1024;

/// Go's `RegexError`: the message, the examples, and the pattern.
fn regex_error(msg: &str, fmt: &str, examples: &[&str]) -> String {
    let mut out = format!("{msg} (e.g. ");
    for (i, e) in examples.iter().enumerate() {
        if i > 0 {
            out.push_str(" or ");
        }
        out.push_str(&format!("'{e}', "));
    }
    out.push_str(&format!("regex used for validation is '{fmt}')"));
    out
}

fn is_qualified_name_part(name: &str) -> bool {
    let b = name.as_bytes();
    let edge = |c: u8| c.is_ascii_alphanumeric();
    let inner = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.');
    match b {
        [] => false,
        [one] => edge(*one),
        [first, mid @ .., last] => edge(*first) && edge(*last) && mid.iter().all(|&c| inner(c)),
    }
}

fn is_dns_label(label: &str) -> bool {
    let b = label.as_bytes();
    let edge = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    match b {
        [] => false,
        [one] => edge(*one),
        [first, mid @ .., last] => {
            edge(*first) && edge(*last) && mid.iter().all(|&c| edge(c) || c == b'-')
        }
    }
}

fn dns_subdomain_errors(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > SUBDOMAIN_MAX {
        errs.push(format!("must be no more than {SUBDOMAIN_MAX} characters"));
    }
    if !value.split('.').all(is_dns_label) {
        errs.push(regex_error(SUBDOMAIN_MSG, SUBDOMAIN_FMT, &["example.com"]));
    }
    errs
}

/// Kubernetes' `IsQualifiedName`: every problem with `value`, none when it is fine.
fn qualified_name_errors(value: &str) -> Vec<String> {
    let examples = ["MyName", "my.name", "123-abc"];
    let parts: Vec<&str> = value.split('/').collect();
    let mut errs = Vec::new();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push("prefix part must be non-empty".to_owned());
            } else {
                errs.extend(
                    dns_subdomain_errors(prefix)
                        .into_iter()
                        .map(|m| format!("prefix part {m}")),
                );
            }
            *name
        }
        _ => {
            errs.push(format!(
                "a qualified name {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                regex_error(QUALIFIED_NAME_MSG, QUALIFIED_NAME_FMT, &examples)
            ));
            return errs;
        }
    };
    if name.is_empty() {
        errs.push("name part must be non-empty".to_owned());
    } else if name.len() > QUALIFIED_NAME_MAX {
        errs.push(format!(
            "name part must be no more than {QUALIFIED_NAME_MAX} characters"
        ));
    }
    if !is_qualified_name_part(name) {
        errs.push(format!(
            "name part {}",
            regex_error(QUALIFIED_NAME_MSG, QUALIFIED_NAME_FMT, &examples)
        ));
    }
    errs
}

/// frpc's `ValidateAnnotations`: all problems, joined one per line as Go's `errors.Join`.
pub fn validate(annotations: &BTreeMap<String, String>) -> Result<(), String> {
    let mut errs = Vec::new();
    for k in annotations.keys() {
        for m in qualified_name_errors(&k.to_lowercase()) {
            errs.push(format!("annotation key {k} is invalid: {m}"));
        }
    }
    let total: usize = annotations.iter().map(|(k, v)| k.len() + v.len()).sum();
    if total > TOTAL_SIZE_LIMIT {
        errs.push(format!(
            "annotations size {total} is larger than limit {TOTAL_SIZE_LIMIT}"
        ));
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(errs.join("\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(keys: &[&str]) -> Result<(), String> {
        validate(
            &keys
                .iter()
                .map(|k| (k.to_string(), "v".to_string()))
                .collect(),
        )
    }

    #[test]
    fn qualified_names_pass() {
        assert_eq!(
            check(&["owner", "example.com/team", "A.b_c-9", "x"]),
            Ok(())
        );
    }

    #[test]
    fn bad_keys_get_the_kubernetes_texts() {
        assert_eq!(
            check(&["-bad"]).unwrap_err(),
            "annotation key -bad is invalid: name part must consist of alphanumeric characters, \
             '-', '_' or '.', and must start and end with an alphanumeric character (e.g. \
             'MyName',  or 'my.name',  or '123-abc', regex used for validation is \
             '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
        );
        assert!(check(&["/x"])
            .unwrap_err()
            .contains("prefix part must be non-empty"));
        assert!(check(&["a/b/c"])
            .unwrap_err()
            .contains("a qualified name must consist"));
        assert!(
            check(&["Example.com/x"]).is_ok(),
            "keys are lowercased first"
        );
        assert!(check(&["ex_ample.com/x"])
            .unwrap_err()
            .contains("prefix part a lowercase RFC 1123 subdomain"));
        assert!(check(&[&"a".repeat(64)])
            .unwrap_err()
            .contains("name part must be no more than 63 characters"));
    }

    #[test]
    fn total_size_is_limited() {
        let big = [("k".to_string(), "v".repeat(TOTAL_SIZE_LIMIT))].into();
        assert_eq!(
            validate(&big).unwrap_err(),
            format!(
                "annotations size {} is larger than limit 262144",
                TOTAL_SIZE_LIMIT + 1
            )
        );
    }
}
