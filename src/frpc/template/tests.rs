use super::*;

fn envs() -> BTreeMap<String, String> {
    [
        ("FRP_TOKEN", "s3cret"),
        ("PORT", "7000"),
        ("RANGE", "10-11"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

fn ok(s: &str) -> String {
    render(s, &envs()).unwrap()
}

fn fails(s: &str) -> String {
    render(s, &envs()).unwrap_err().0
}

#[test]
fn substitutes_envs() {
    assert_eq!(
        ok("token = \"{{ .Envs.FRP_TOKEN }}\"\nport = {{.Envs.PORT}}"),
        "token = \"s3cret\"\nport = 7000"
    );
    assert_eq!(ok(r#"a = "{{ index .Envs "PORT" }}""#), r#"a = "7000""#);
    assert_eq!(ok("{{ $.Envs.PORT }}"), "7000");
    assert_eq!(ok("{{ index $.Envs `PORT` }}"), "7000");
}

#[test]
fn missing_variable_is_go_no_value() {
    assert_eq!(ok("{{ .Envs.NOPE }}"), "<no value>");
    assert_eq!(ok(r#"{{ index .Envs "NOPE" }}"#), "<no value>");
}

#[test]
fn trims_and_comments() {
    assert_eq!(ok("a = 1\n{{- /* gone */ -}}\nb = 2"), "a = 1b = 2");
    assert_eq!(ok("x{{/* c */}}y"), "xy");
}

#[test]
fn range_over_numbers_like_frpc() {
    let t = "{{- range $_, $v := parseNumberRangePair \"6000-6001,6005\" \"7000-7002\" }}\n\
             [[proxies]]\nname = \"tcp-{{ $v.First }}\"\nlocalPort = {{ $v.First }}\n\
             remotePort = {{ $v.Second }}\n{{- end }}\n";
    assert_eq!(
        ok(t),
        "\n[[proxies]]\nname = \"tcp-6000\"\nlocalPort = 6000\nremotePort = 7000\
         \n[[proxies]]\nname = \"tcp-6001\"\nlocalPort = 6001\nremotePort = 7001\
         \n[[proxies]]\nname = \"tcp-6005\"\nlocalPort = 6005\nremotePort = 7002\n"
    );
    assert_eq!(
        ok("{{ range $p := parseNumberRange \"1-3\" }}{{ $p }},{{ end }}"),
        "1,2,3,"
    );
    assert_eq!(
        ok("{{ range $i, $p := parseNumberRange \"5,9\" }}{{ $i }}={{ . }} {{ end }}"),
        "0=5 1=9 "
    );
    assert_eq!(
        ok("{{ range parseNumberRange \"4\" }}[{{ . }}]{{ end }}"),
        "[4]"
    );
    // Arguments may come from the environment; inside a range `$` is still the root.
    assert_eq!(
        ok("{{ range $p := parseNumberRange .Envs.RANGE }}{{ $p }}:{{ $.Envs.PORT }} {{ end }}"),
        "10:7000 11:7000 "
    );
    // Nested ranges and else.
    assert_eq!(
        ok("{{ range $a := parseNumberRange \"1-2\" }}{{ range $b := parseNumberRange \"3-4\" }}{{ $a }}{{ $b }} {{ end }}{{ end }}"),
        "13 14 23 24 "
    );
    assert_eq!(
        ok("{{ range $v := parseNumberRange \"7\" }}x{{ else }}none{{ end }}"),
        "x"
    );
    // As in frp, an empty range text is an error, not an empty list.
    assert!(fails("{{ range $v := parseNumberRange \"\" }}{{ end }}").contains("invalid syntax"));
}

#[test]
fn range_errors_are_go_like() {
    assert!(fails("{{ range $v := parseNumberRange \"5-1\" }}{{ end }}")
        .contains("error calling parseNumberRange: range number is invalid"));
    assert!(
        fails("{{ range $v := parseNumberRangePair \"1-3\" \"1\" }}{{ end }}")
            .contains("first and second range numbers are not in pairs")
    );
    assert!(fails("{{ range $v := parseNumberRange \"a\" }}{{ end }}").contains("invalid syntax"));
    assert!(fails("{{ range $v := parseNumberRange \"1-3\" }}").contains("unexpected EOF"));
    assert!(fails("{{ end }}").contains("unexpected {{end}}"));
    assert!(
        fails("{{ range $v := parseNumberRange \"1\" }}{{ .Envs.PORT }}{{ end }}")
            .contains("can't evaluate field Envs in type int64")
    );
    assert!(fails("{{ .Envs.PORT.X }}").contains("can't evaluate field X"));
    assert!(
        fails("{{ range $v := parseNumberRange \"0-1000000000\" }}{{ end }}").contains("more than")
    );
    assert!(fails("{{ if .Envs.PORT }}x{{ end }}").contains("not supported"));
    assert!(fails("{{ $nope }}").contains("undefined variable"));
    assert!(fails("{{ parseNumberRange }}").contains("wrong number of args"));
}

#[test]
fn legacy_has_no_functions() {
    let e =
        render_legacy("{{ range $v := parseNumberRange \"1\" }}{{ end }}", &envs()).unwrap_err();
    assert!(
        e.0.contains("function \"parseNumberRange\" not defined"),
        "{}",
        e.0
    );
    assert_eq!(render_legacy("{{ .Envs.PORT }}", &envs()).unwrap(), "7000");
}

#[test]
fn errors_name_the_line() {
    assert_eq!(
        fails("a\nb\n{{ .Envs.X"),
        "template: frp:3: unclosed action"
    );
    assert!(fails("a\n{{ foo \"1-3\" }}").starts_with("template: frp:2: "));
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
        "{{ \"\\",
        "{{ range }}",
        "{{ range $a, := x }}",
        "{{ range $a $b := parseNumberRange \"1\" }}{{end}}",
        "{{ $ }}",
        "{{ $. }}",
        "{{ . }}",
        "{{ , }}",
        "{{ range $v := parseNumberRange \"1\" }}{{ else }}{{ else }}{{ end }}",
        "{{ parseNumberRange \"1\" }}",
        "{{ parseNumberRangePair \"1\" \"2\" }}",
        "{{ range $v := .Envs }}{{ end }}",
        "{{ index 1 2 }}",
    ] {
        let _ = render(s, &envs());
    }
}
