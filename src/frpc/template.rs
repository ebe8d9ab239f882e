//! The part of Go's `text/template` that frpc config files use.
//!
//! frpc renders every config file as a Go template before it parses it, with the process
//! environment as `.Envs` and two functions for port ranges. Supported here: `{{ .Envs.NAME }}`,
//! `{{ $.Envs.NAME }}`, `{{ index .Envs "NAME" }}`, comments, `{{-`/`-}}` trimming, and
//! `{{ range [$i,] $v := parseNumberRange "1000-1005,2000" }} … {{ else }} … {{ end }}` with
//! `parseNumberRangePair` and `$v.First`/`$v.Second`. Anything else inside `{{ }}` is an error
//! rather than being copied through, so a file never loads with half-rendered text in it.

use std::collections::BTreeMap;

/// What Go prints for a map key that is not there (`missingkey=default`): an unset variable
/// renders as this text, not as an empty string, exactly as in frpc.
const NO_VALUE: &str = "<no value>";

/// A range function may not produce more numbers than this: ports end at 65535, and an
/// unbounded range would let one config line take all memory.
const MAX_RANGE_NUMBERS: usize = 100_000;

/// The rendered text may not grow beyond this (nested ranges multiply).
const MAX_OUTPUT: usize = 64 << 20;

/// A template error, worded as Go's: `template: frp:LINE: …`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError(pub String);

/// Renders `input` with `envs` as `.Envs` and frpc's range functions.
pub fn render(input: &str, envs: &BTreeMap<String, String>) -> Result<String, TemplateError> {
    render_with(input, envs, true)
}

/// Renders a legacy INI file: frpc gives those templates `.Envs` but no functions.
pub fn render_legacy(
    input: &str,
    envs: &BTreeMap<String, String>,
) -> Result<String, TemplateError> {
    render_with(input, envs, false)
}

fn render_with(
    input: &str,
    envs: &BTreeMap<String, String>,
    funcs: bool,
) -> Result<String, TemplateError> {
    let tokens = lex(input)?;
    let mut parser = Parser {
        tokens: tokens.into_iter().peekable(),
        funcs,
    };
    let (nodes, stop) = parser.nodes()?;
    if let Some((word, line)) = stop {
        return Err(err(line, &format!("unexpected {{{{{word}}}}}")));
    }
    let mut out = String::with_capacity(input.len());
    let mut eval = Eval {
        envs,
        vars: Vec::new(),
    };
    eval.run(&nodes, &Val::Root, &mut out)?;
    Ok(out)
}

fn err(line: usize, msg: &str) -> TemplateError {
    TemplateError(format!("template: frp:{line}: {msg}"))
}

/// Text between actions (already trimmed) or one action's inside, with its line.
enum Token<'a> {
    Text(&'a str),
    Action(&'a str, usize),
}

/// Splits the input into text and actions, applying `{{-` and `-}}` trimming and dropping
/// comments.
fn lex(input: &str) -> Result<Vec<Token<'_>>, TemplateError> {
    let mut tokens = Vec::new();
    let mut rest = input;
    let mut line = 1usize;
    while let Some(open) = rest.find("{{") {
        let (text, after) = rest.split_at(open);
        let after = &after[2..];
        let trim_left = after.starts_with("- ")
            || after.starts_with("-\t")
            || after.starts_with("-\n")
            || after == "-";
        line += text.matches('\n').count();
        tokens.push(Token::Text(if trim_left { text.trim_end() } else { text }));
        let Some(close) = after.find("}}") else {
            return Err(err(line, "unclosed action"));
        };
        let mut action = &after[..close];
        let action_line = line;
        line += action.matches('\n').count();
        if trim_left {
            action = &action[1..];
        }
        let trim_right =
            action.ends_with(" -") || action.ends_with("\t-") || action.ends_with("\n-");
        if trim_right {
            action = &action[..action.len() - 1];
        }
        let action = action.trim();
        if action.starts_with("/*") {
            if !(action.ends_with("*/") && action.len() >= 4) {
                return Err(err(action_line, "unclosed comment"));
            }
        } else {
            tokens.push(Token::Action(action, action_line));
        }
        rest = &after[close + 2..];
        if trim_right {
            let trimmed = rest.trim_start();
            line += rest[..rest.len() - trimmed.len()].matches('\n').count();
            rest = trimmed;
        }
    }
    tokens.push(Token::Text(rest));
    Ok(tokens)
}

/// The functions frpc registers.
#[derive(Debug, Clone, Copy)]
enum Func {
    Range,
    RangePair,
    Index,
}

/// Where a field chain starts.
#[derive(Debug)]
enum Base {
    Dot,
    Root,
    Var(String),
}

/// One argument or printed value.
#[derive(Debug)]
enum Expr {
    Str(String),
    Field(Base, Vec<String>),
    Call(Func, Vec<Expr>),
}

#[derive(Debug)]
enum Node {
    Text(String),
    Print(Expr, usize),
    Range {
        vars: Vec<String>,
        over: Expr,
        body: Vec<Node>,
        otherwise: Vec<Node>,
        line: usize,
    },
}

/// What ended a list of nodes: `{{ end }}` or `{{ else }}` with its line, or the input's end.
type Stop = Option<(&'static str, usize)>;

struct Parser<'a> {
    tokens: std::iter::Peekable<std::vec::IntoIter<Token<'a>>>,
    funcs: bool,
}

impl Parser<'_> {
    /// Nodes until `{{ end }}`/`{{ else }}` (returned with its line) or the end of input.
    fn nodes(&mut self) -> Result<(Vec<Node>, Stop), TemplateError> {
        let mut nodes = Vec::new();
        while let Some(token) = self.tokens.next() {
            match token {
                Token::Text(t) => {
                    if !t.is_empty() {
                        nodes.push(Node::Text(t.to_owned()));
                    }
                }
                Token::Action(action, line) => {
                    let words = split_words(action, line)?;
                    match words.first().map(String::as_str) {
                        None => return Err(err(line, "missing value for command")),
                        Some("end") if words.len() == 1 => return Ok((nodes, Some(("end", line)))),
                        Some("else") if words.len() == 1 => {
                            return Ok((nodes, Some(("else", line))))
                        }
                        Some("range") => nodes.push(self.range(&words[1..], line)?),
                        Some(
                            w @ ("if" | "with" | "define" | "template" | "block" | "else" | "end"
                            | "break" | "continue"),
                        ) => {
                            return Err(err(
                                line,
                                &format!("{{{{{w}}}}} is not supported yet (only range)"),
                            ))
                        }
                        Some(_) => nodes.push(Node::Print(self.expr(&words, line)?, line)),
                    }
                }
            }
        }
        Ok((nodes, None))
    }

    fn range(&mut self, words: &[String], line: usize) -> Result<Node, TemplateError> {
        let (vars, pipeline) = match words.iter().position(|w| w == ":=") {
            Some(at) => {
                let decl = &words[..at];
                let vars: Vec<String> = decl.iter().filter(|w| *w != ",").cloned().collect();
                let shape_ok = match vars.len() {
                    1 => decl.len() == 1,
                    2 => decl.len() == 3 && decl[1] == ",",
                    _ => false,
                };
                if !shape_ok || !vars.iter().all(|v| is_var(v)) {
                    return Err(err(line, "range can only initialize variables"));
                }
                (vars, &words[at + 1..])
            }
            None => (Vec::new(), words),
        };
        if pipeline.is_empty() {
            return Err(err(line, "missing value for range"));
        }
        let over = self.expr(pipeline, line)?;
        let (body, stop) = self.nodes()?;
        let otherwise = match stop {
            Some(("end", _)) => Vec::new(),
            Some(("else", _)) => match self.nodes()? {
                (nodes, Some(("end", _))) => nodes,
                (_, Some((_, l))) => return Err(err(l, "expected end; found {{else}}")),
                (_, None) => return Err(err(line, "unexpected EOF")),
            },
            _ => return Err(err(line, "unexpected EOF")),
        };
        Ok(Node::Range {
            vars,
            over,
            body,
            otherwise,
            line,
        })
    }

    /// A command: one operand, or a function and its operands.
    fn expr(&self, words: &[String], line: usize) -> Result<Expr, TemplateError> {
        if words
            .iter()
            .any(|w| w == "|" || w == "(" || w == ")" || w == ":=" || w == "=")
        {
            return Err(err(
                line,
                "pipelines, parentheses and assignments are not supported yet",
            ));
        }
        let (first, args) = words
            .split_first()
            .ok_or_else(|| err(line, "missing value"))?;
        let func = match first.as_str() {
            "parseNumberRange" | "parseNumberRangePair" if !self.funcs => {
                return Err(err(line, &format!("function {first:?} not defined")))
            }
            "parseNumberRange" => Some((Func::Range, 1)),
            "parseNumberRangePair" => Some((Func::RangePair, 2)),
            "index" => Some((Func::Index, 2)),
            _ => None,
        };
        match func {
            Some((func, arity)) => {
                if args.len() != arity {
                    return Err(err(
                        line,
                        &format!(
                            "wrong number of args for {first}: want {arity} got {}",
                            args.len()
                        ),
                    ));
                }
                let args = args
                    .iter()
                    .map(|a| operand(a, line))
                    .collect::<Result<_, _>>()?;
                Ok(Expr::Call(func, args))
            }
            None if args.is_empty() => operand(first, line),
            None => Err(err(
                line,
                &format!("{first:?} is not a function this template knows"),
            )),
        }
    }
}

fn is_var(word: &str) -> bool {
    word.len() > 1
        && word.starts_with('$')
        && word[1..].chars().all(|c| c.is_alphanumeric() || c == '_')
}

/// A literal, `.`, `.A.B`, `$`, `$.A`, `$v`, `$v.First`.
fn operand(word: &str, line: usize) -> Result<Expr, TemplateError> {
    if let Some(s) = word.strip_prefix('"') {
        return unquote(s)
            .map(Expr::Str)
            .ok_or_else(|| err(line, "bad string literal"));
    }
    if let Some(s) = word.strip_prefix('`') {
        return s
            .strip_suffix('`')
            .map(|s| Expr::Str(s.to_owned()))
            .ok_or_else(|| err(line, "unterminated raw quoted string"));
    }
    let (base, fields) = if word == "." {
        (Base::Dot, "")
    } else if let Some(f) = word.strip_prefix('.') {
        (Base::Dot, f)
    } else if word == "$" {
        (Base::Root, "")
    } else if let Some(f) = word.strip_prefix("$.") {
        (Base::Root, f)
    } else if word.starts_with('$') {
        let (var, f) = word.split_once('.').unwrap_or((word, ""));
        if !is_var(var) {
            return Err(err(line, &format!("bad variable {var:?}")));
        }
        (Base::Var(var.to_owned()), f)
    } else {
        return Err(err(line, &format!("function {word:?} not defined")));
    };
    let path: Vec<String> = if fields.is_empty() {
        Vec::new()
    } else {
        fields.split('.').map(str::to_owned).collect()
    };
    if path
        .iter()
        .any(|f| f.is_empty() || !f.chars().all(|c| c.is_alphanumeric() || c == '_'))
    {
        return Err(err(line, &format!("bad field name in {word:?}")));
    }
    Ok(Expr::Field(base, path))
}

/// Go's double-quoted string literal (the text after the opening quote).
fn unquote(s: &str) -> Option<String> {
    let body = s.strip_suffix('"')?;
    let mut out = String::with_capacity(body.len());
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return None,
            '\\' => out.push(match chars.next()? {
                'n' => '\n',
                't' => '\t',
                'r' => '\r',
                '\\' => '\\',
                '"' => '"',
                '\'' => '\'',
                _ => return None,
            }),
            c => out.push(c),
        }
    }
    Some(out)
}

/// Splits an action into words: quoted strings stay whole; `,` `|` `(` `)` stand alone.
fn split_words(action: &str, line: usize) -> Result<Vec<String>, TemplateError> {
    let mut words = Vec::new();
    let mut chars = action.char_indices().peekable();
    while let Some(&(start, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        if matches!(c, ',' | '|' | '(' | ')') {
            words.push(c.to_string());
            chars.next();
            continue;
        }
        let mut end = action.len();
        if c == '"' || c == '`' {
            chars.next();
            let mut escaped = false;
            let mut closed = false;
            for (i, ch) in chars.by_ref() {
                if c == '"' && escaped {
                    escaped = false;
                } else if c == '"' && ch == '\\' {
                    escaped = true;
                } else if ch == c {
                    end = i + 1;
                    closed = true;
                    break;
                }
            }
            if !closed {
                return Err(err(line, "unterminated quoted string"));
            }
        } else {
            while let Some(&(i, ch)) = chars.peek() {
                if ch.is_whitespace() || matches!(ch, ',' | '|' | '(' | ')') {
                    end = i;
                    break;
                }
                chars.next();
            }
        }
        words.push(action[start..end].to_owned());
    }
    Ok(words)
}

/// A value while rendering.
#[derive(Debug, Clone)]
enum Val {
    /// The template's data: only `.Envs` is in it.
    Root,
    Envs,
    Str(String),
    NoValue,
    Int(i64),
    Pair(i64, i64),
    List(Vec<Val>),
}

impl Val {
    fn type_name(&self) -> &'static str {
        match self {
            Val::Root => "*config.Values",
            Val::Envs => "map[string]string",
            Val::Str(_) | Val::NoValue => "string",
            Val::Int(_) => "int64",
            Val::Pair(..) => "config.NumberPair",
            Val::List(_) => "[]int64",
        }
    }

    fn print(&self, out: &mut String) {
        use std::fmt::Write;
        match self {
            Val::Str(s) => out.push_str(s),
            Val::NoValue => out.push_str(NO_VALUE),
            Val::Int(n) => {
                let _ = write!(out, "{n}");
            }
            Val::Pair(a, b) => {
                let _ = write!(out, "{{{a} {b}}}");
            }
            Val::List(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    item.print(out);
                }
                out.push(']');
            }
            // Printing the environment would copy every variable (secrets included) into the
            // config; frpc would, but nobody means it.
            Val::Root | Val::Envs => out.push_str(NO_VALUE),
        }
    }
}

struct Eval<'e> {
    envs: &'e BTreeMap<String, String>,
    vars: Vec<(String, Val)>,
}

impl Eval<'_> {
    fn run(&mut self, nodes: &[Node], dot: &Val, out: &mut String) -> Result<(), TemplateError> {
        for node in nodes {
            match node {
                Node::Text(t) => out.push_str(t),
                Node::Print(expr, line) => self.value(expr, dot, *line)?.print(out),
                Node::Range {
                    vars,
                    over,
                    body,
                    otherwise,
                    line,
                } => {
                    let items = match self.value(over, dot, *line)? {
                        Val::List(items) => items,
                        other => {
                            return Err(err(
                                *line,
                                &format!("range can't iterate over {}", other.type_name()),
                            ))
                        }
                    };
                    if items.is_empty() {
                        self.run(otherwise, dot, out)?;
                    }
                    for (i, item) in items.iter().enumerate() {
                        let depth = self.vars.len();
                        match vars.as_slice() {
                            [v] => self.vars.push((v.clone(), item.clone())),
                            [k, v] => {
                                self.vars.push((k.clone(), Val::Int(i as i64)));
                                self.vars.push((v.clone(), item.clone()));
                            }
                            _ => {}
                        }
                        let result = self.run(body, item, out);
                        self.vars.truncate(depth);
                        result?;
                        if out.len() > MAX_OUTPUT {
                            return Err(err(*line, "the rendered config is too large"));
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn value(&self, expr: &Expr, dot: &Val, line: usize) -> Result<Val, TemplateError> {
        match expr {
            Expr::Str(s) => Ok(Val::Str(s.clone())),
            Expr::Field(base, path) => {
                let mut v = match base {
                    Base::Dot => dot.clone(),
                    Base::Root => Val::Root,
                    Base::Var(name) => self
                        .vars
                        .iter()
                        .rev()
                        .find(|(n, _)| n == name)
                        .map(|(_, v)| v.clone())
                        .ok_or_else(|| err(line, &format!("undefined variable {name:?}")))?,
                };
                for field in path {
                    v = self.field(&v, field, line)?;
                }
                Ok(v)
            }
            Expr::Call(func, args) => {
                let args = args
                    .iter()
                    .map(|a| self.value(a, dot, line))
                    .collect::<Result<Vec<_>, _>>()?;
                self.call(*func, &args, line)
            }
        }
    }

    fn field(&self, v: &Val, field: &str, line: usize) -> Result<Val, TemplateError> {
        match (v, field) {
            (Val::Root, "Envs") => Ok(Val::Envs),
            (Val::Envs, name) => Ok(self.lookup(name)),
            (Val::Pair(a, _), "First") => Ok(Val::Int(*a)),
            (Val::Pair(_, b), "Second") => Ok(Val::Int(*b)),
            _ => Err(err(
                line,
                &format!("can't evaluate field {field} in type {}", v.type_name()),
            )),
        }
    }

    fn lookup(&self, name: &str) -> Val {
        self.envs
            .get(name)
            .map_or(Val::NoValue, |v| Val::Str(v.clone()))
    }

    fn call(&self, func: Func, args: &[Val], line: usize) -> Result<Val, TemplateError> {
        let text = |v: &Val, name: &str| match v {
            Val::Str(s) => Ok(s.clone()),
            Val::NoValue => Ok(String::new()),
            other => Err(err(
                line,
                &format!(
                    "wrong type for value; expected string; got {} (calling {name})",
                    other.type_name()
                ),
            )),
        };
        let calling = |name: &str, e: String| err(line, &format!("error calling {name}: {e}"));
        match (func, args) {
            (Func::Index, [Val::Envs, key]) => Ok(self.lookup(&text(key, "index")?)),
            (Func::Index, [other, _]) => Err(err(
                line,
                &format!(
                    "error calling index: can't index item of type {}",
                    other.type_name()
                ),
            )),
            (Func::Range, [spec]) => {
                let numbers = parse_range_numbers(&text(spec, "parseNumberRange")?)
                    .map_err(|e| calling("parseNumberRange", e))?;
                Ok(Val::List(numbers.into_iter().map(Val::Int).collect()))
            }
            (Func::RangePair, [first, second]) => {
                let name = "parseNumberRangePair";
                let a = parse_range_numbers(&text(first, name)?).map_err(|e| calling(name, e))?;
                let b = parse_range_numbers(&text(second, name)?).map_err(|e| calling(name, e))?;
                if a.len() != b.len() {
                    return Err(calling(
                        name,
                        "first and second range numbers are not in pairs".into(),
                    ));
                }
                Ok(Val::List(
                    a.into_iter().zip(b).map(|(x, y)| Val::Pair(x, y)).collect(),
                ))
            }
            _ => Err(err(line, "wrong number of arguments")),
        }
    }
}

/// frp's `ParseRangeNumbers`: `1000-2000,2001,3000-4000`, with its messages.
pub fn parse_range_numbers(spec: &str) -> Result<Vec<i64>, String> {
    let mut numbers = Vec::new();
    for part in spec.trim().split(',') {
        let bounds: Vec<&str> = part.split('-').collect();
        let number = |s: &str| {
            s.trim().parse::<i64>().map_err(|_| {
                format!(
                    "range number is invalid, strconv.ParseInt: parsing {:?}: invalid syntax",
                    s.trim()
                )
            })
        };
        match bounds.as_slice() {
            [one] => numbers.push(number(one)?),
            [low, high] => {
                let (low, high) = (number(low)?, number(high)?);
                if high < low {
                    return Err("range number is invalid".into());
                }
                let count = usize::try_from(high.abs_diff(low)).unwrap_or(usize::MAX);
                if count >= MAX_RANGE_NUMBERS.saturating_sub(numbers.len()) {
                    return Err(format!(
                        "range number is invalid: more than {MAX_RANGE_NUMBERS} numbers"
                    ));
                }
                numbers.extend(low..=high);
            }
            _ => return Err("range number is invalid".into()),
        }
        if numbers.len() > MAX_RANGE_NUMBERS {
            return Err(format!(
                "range number is invalid: more than {MAX_RANGE_NUMBERS} numbers"
            ));
        }
    }
    Ok(numbers)
}

#[cfg(test)]
mod tests;
