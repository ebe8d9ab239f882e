//! Which log lines are shown: the `EXPOSE_LOG` filter and the built-in defaults.
//!
//! The filter is a list of comma-separated directives, each `target=level`, a bare `level`
//! (every target) or a bare `target` (every level of it), the most specific target winning.
//! This is `tracing-subscriber`'s `Targets` filter, parsed here rather than by its `EnvFilter`
//! because `EnvFilter` brings a regular-expression engine (regex-automata: 1.05 MB of the
//! stripped binary, docs/benchmarks.md "Binary size, pass 2") for span and field-value filters
//! that none of our own logs use. The parsing follows `EnvFilter`'s rules: directives are
//! trimmed, empty ones skipped, an empty level means `trace`, a target must start with a letter,
//! digit, `_`, `-` or `:`. A span or field filter (`target[span{field=value}]=level`) applies to
//! its whole target, so it shows at least what it asked for.

use tracing_subscriber::filter::{LevelFilter, Targets};

/// An `EXPOSE_LOG` value that is not a filter; the default filter is used instead.
#[derive(Debug, PartialEq)]
pub struct InvalidFilter;

/// Parses a filter: comma-separated `target=level`, `level` or `target` directives.
pub fn parse(spec: &str) -> Result<Targets, InvalidFilter> {
    let mut targets = Targets::new();
    for directive in spec.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let (target, level) = split_directive(directive)?;
        targets = match target {
            Some(t) => targets.with_target(t, level),
            None => targets.with_default(level),
        };
    }
    Ok(targets)
}

/// One directive's target (none: every target) and level.
fn split_directive(directive: &str) -> Result<(Option<&str>, LevelFilter), InvalidFilter> {
    let first = directive.chars().next().ok_or(InvalidFilter)?;
    if !(first.is_alphanumeric() || matches!(first, '-' | ':' | '_' | '[')) {
        return Err(InvalidFilter);
    }
    let (target, level) = match directive.find('[') {
        // `target[span{field=value}]=level`: the span part may itself hold `=`.
        Some(open) => {
            let close = directive
                .rfind(']')
                .filter(|&c| c > open)
                .ok_or(InvalidFilter)?;
            let level = match &directive[close + 1..] {
                "" => None,
                rest => Some(rest.strip_prefix('=').ok_or(InvalidFilter)?),
            };
            (Some(&directive[..open]), level)
        }
        None => match directive.split_once('=') {
            Some((target, level)) => (Some(target), Some(level)),
            None => match directive.parse::<LevelFilter>() {
                Ok(level) => return Ok((None, level)),
                Err(_) => (Some(directive), None),
            },
        },
    };
    let level = match level {
        None | Some("") => LevelFilter::TRACE,
        Some(l) => l.parse().map_err(|_| InvalidFilter)?,
    };
    Ok((target.filter(|t| !t.is_empty()), level))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;

    fn shows(spec: &str, target: &str, level: Level) -> bool {
        parse(spec).unwrap().would_enable(target, &level)
    }

    #[test]
    fn the_defaults_parse() {
        let spec = "off,expose::tunnel=warn,expose::prime=warn,expose::nofile=warn,yamux=warn";
        assert!(shows(spec, "expose::tunnel", Level::WARN));
        assert!(shows(spec, "expose::tunnel::create", Level::ERROR));
        assert!(!shows(spec, "expose::tunnel", Level::INFO));
        assert!(!shows(spec, "expose::frp::control", Level::ERROR));
        assert!(!shows(spec, "yamux::connection", Level::INFO));
    }

    #[test]
    fn levels_targets_and_the_most_specific_target() {
        assert!(shows("debug", "anything", Level::DEBUG));
        assert!(!shows("debug", "anything", Level::TRACE));
        assert!(shows("DEBUG", "anything", Level::DEBUG));
        assert!(shows("4", "anything", Level::DEBUG));
        assert!(!shows("4", "anything", Level::TRACE));
        assert!(shows("info,hyper=trace", "hyper::proto", Level::TRACE));
        let ours = "expose=trace,yamux=warn";
        assert!(shows(ours, "expose::frp", Level::TRACE));
        assert!(shows(ours, "yamux::connection", Level::WARN));
        assert!(!shows(ours, "yamux::connection", Level::INFO));
        assert!(!shows(ours, "rustls", Level::ERROR));
        assert!(shows("info,frp_proto=debug", "frp_proto::v2", Level::DEBUG));
        assert!(!shows("info,frp_proto=debug", "hyper", Level::DEBUG));
        assert!(!shows("off", "expose", Level::ERROR));
        assert!(!shows("hyper=trace,info", "rustls", Level::DEBUG));
        assert!(shows(
            "trace,expose::frp=warn",
            "expose::tunnel",
            Level::TRACE
        ));
        assert!(!shows(
            "trace,expose::frp=warn",
            "expose::frp::work",
            Level::INFO
        ));
        // A bare target shows all of its levels, and only its own.
        assert!(shows("expose", "expose::tunnel", Level::TRACE));
        assert!(!shows("expose", "hyper", Level::ERROR));
        // An empty level means trace.
        assert!(shows("rustls=", "rustls", Level::TRACE));
    }

    #[test]
    fn spaces_and_empty_directives_are_ignored() {
        assert!(shows(" info , hyper=debug ,", "hyper", Level::DEBUG));
        assert!(!shows(" info , hyper=debug ,", "hyper", Level::TRACE));
        // Nothing at all: every log line off, as with an empty `EnvFilter`.
        assert!(!shows("", "expose", Level::ERROR));
        assert!(!shows(" , ", "expose", Level::ERROR));
    }

    #[test]
    fn span_and_field_filters_apply_to_their_target() {
        assert!(shows("h2[conn]=debug", "h2::proto", Level::DEBUG));
        assert!(shows("h2[conn{id=3}]=debug", "h2", Level::DEBUG));
        assert!(!shows("h2[conn{id=3}]=debug", "h2", Level::TRACE));
        assert!(shows("[conn]=info", "quinn", Level::INFO));
        assert!(!shows("[conn]=info", "quinn", Level::DEBUG));
    }

    #[test]
    fn invalid_filters_are_refused() {
        for spec in [
            "info,hyper=loud",
            "*=debug",
            "a=b=c",
            "h2[conn=debug",
            "x[s]debug",
        ] {
            assert_eq!(parse(spec).err(), Some(InvalidFilter), "{spec}");
        }
    }
}
