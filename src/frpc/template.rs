//! The part of Go's `text/template` that frpc config files use: `{{ .Envs.NAME }}` and
//! `{{ index .Envs "NAME" }}`, comments, and the `{{-`/`-}}` whitespace trimming.
//!
//! frpc renders every config file as a Go template with the process environment as `.Envs`
//! before it parses it. Anything else inside `{{ }}` (ranges, other functions) is an error here
//! rather than being copied through, so a file never loads with half-rendered text in it.

use std::collections::BTreeMap;

/// What Go prints for a map key that is not there (`missingkey=default`): an unset variable
/// renders as this text, not as an empty string, exactly as in frpc.
const NO_VALUE: &str = "<no value>";

/// A template error, worded as Go's: `template: frp:LINE: …`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError(pub String);

/// Renders `input` with `envs` as `.Envs`.
pub fn render(input: &str, envs: &BTreeMap<String, String>) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    // Line of `rest`'s start, for messages.
    let mut line = 1usize;
    while let Some(open) = rest.find("{{") {
        let (text, after) = rest.split_at(open);
        let after = &after[2..];
        let trim_left = after.starts_with("- ") || after.starts_with("-\t") || after == "-";
        line += text.matches('\n').count();
        out.push_str(if trim_left { text.trim_end() } else { text });
        let Some(close) = after.find("}}") else {
            return Err(err(line, "unclosed action"));
        };
        let mut action = &after[..close];
        let action_lines = action.matches('\n').count();
        if trim_left {
            action = &action[1..];
        }
        let trim_right = action.ends_with(" -") || action.ends_with("\t-");
        if trim_right {
            action = &action[..action.len() - 1];
        }
        out.push_str(&eval(action.trim(), envs, line)?);
        line += action_lines;
        rest = &after[close + 2..];
        if trim_right {
            let trimmed = rest.trim_start();
            line += rest[..rest.len() - trimmed.len()].matches('\n').count();
            rest = trimmed;
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn err(line: usize, msg: &str) -> TemplateError {
    TemplateError(format!("template: frp:{line}: {msg}"))
}

/// One action's value.
fn eval(
    action: &str,
    envs: &BTreeMap<String, String>,
    line: usize,
) -> Result<String, TemplateError> {
    if action.starts_with("/*") {
        if action.ends_with("*/") && action.len() >= 4 {
            return Ok(String::new());
        }
        return Err(err(line, "unclosed comment"));
    }
    if action.is_empty() {
        return Err(err(line, "missing value for command"));
    }
    if let Some(name) = action.strip_prefix(".Envs.") {
        if !name.is_empty() && name.chars().all(|c| c.is_alphanumeric() || c == '_') {
            return Ok(lookup(envs, name));
        }
        return Err(err(line, &format!("bad field name in {action:?}")));
    }
    if let Some(arg) = action.strip_prefix("index .Envs ") {
        let arg = arg.trim();
        if let Some(name) = arg
            .strip_prefix('"')
            .and_then(|a| a.strip_suffix('"'))
            .filter(|n| !n.contains('"') && !n.contains('\\'))
        {
            return Ok(lookup(envs, name));
        }
        return Err(err(line, &format!("unsupported index argument {arg}")));
    }
    Err(err(
        line,
        &format!(
            "{action:?} is not supported yet (only {{{{ .Envs.NAME }}}} and {{{{ index .Envs \"NAME\" }}}})"
        ),
    ))
}

fn lookup(envs: &BTreeMap<String, String>, name: &str) -> String {
    envs.get(name)
        .cloned()
        .unwrap_or_else(|| NO_VALUE.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envs() -> BTreeMap<String, String> {
        [("FRP_TOKEN", "s3cret"), ("PORT", "7000")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    #[test]
    fn substitutes_envs() {
        let r = render(
            "token = \"{{ .Envs.FRP_TOKEN }}\"\nport = {{.Envs.PORT}}",
            &envs(),
        );
        assert_eq!(r.unwrap(), "token = \"s3cret\"\nport = 7000");
        let r = render(r#"a = "{{ index .Envs "PORT" }}""#, &envs());
        assert_eq!(r.unwrap(), r#"a = "7000""#);
    }

    #[test]
    fn missing_variable_is_go_no_value() {
        assert_eq!(render("{{ .Envs.NOPE }}", &envs()).unwrap(), "<no value>");
    }

    #[test]
    fn trims_and_comments() {
        let r = render("a = 1\n{{- /* gone */ -}}\nb = 2", &envs()).unwrap();
        assert_eq!(r, "a = 1b = 2");
        assert_eq!(render("x{{/* c */}}y", &envs()).unwrap(), "xy");
    }

    #[test]
    fn errors_name_the_line() {
        let e = render("a\nb\n{{ .Envs.X", &envs()).unwrap_err();
        assert_eq!(e.0, "template: frp:3: unclosed action");
        let e = render("a\n{{ range $v := parseNumberRange \"1-3\" }}", &envs()).unwrap_err();
        assert!(e.0.starts_with("template: frp:2: "), "{}", e.0);
        assert!(e.0.contains("not supported yet"));
        assert!(render("{{}}", &envs()).is_err());
        assert!(render("{{ .Envs.A-B }}", &envs()).is_err());
    }

    #[test]
    fn no_panic_on_odd_input() {
        for s in [
            "{{",
            "{{-",
            "{{-}}",
            "}}{{",
            "{{ - }}",
            "{{/*}}",
            "é{{-é}}",
            "{{ index .Envs \" }}",
        ] {
            let _ = render(s, &envs());
        }
    }
}
