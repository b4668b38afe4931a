//! Property tests standing in for a fuzzer (cargo-fuzz needs a nightly toolchain, which this
//! project cannot use): arbitrary text and template-shaped token soup go through `parse` and
//! `execute`; neither may panic, hang or exceed the limits.
//!
//! Run: `cargo test -p eso-template --test fuzz`; for a longer run
//! `PROPTEST_CASES=20000 cargo test --release -p eso-template --test fuzz`.

// Test helpers outside #[test] functions unwrap too: a failure is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use eso_template::{Limits, ParseOptions, Template, Value};
use proptest::prelude::*;

const FRAGMENTS: &[&str] = &[
    "{{",
    "}}",
    "{{- ",
    " -}}",
    " ",
    "\n",
    "x",
    ".user",
    ".pass",
    ".json",
    ".",
    "$",
    "$x",
    "$y",
    ":=",
    "=",
    "|",
    "(",
    ")",
    ",",
    "\"s\"",
    "`r`",
    "'c'",
    "1",
    "-2",
    "3.5",
    "1e9",
    "0x1f",
    "nil",
    "true",
    "if",
    "else",
    "end",
    "range",
    "with",
    "define \"a\"",
    "template \"a\"",
    "block \"b\" .",
    "break",
    "continue",
    "/*",
    "*/",
    "len",
    "index",
    "printf \"%v %d %s %x %q %T %5.2f\"",
    "print",
    "println",
    "eq",
    "ne",
    "lt",
    "and",
    "or",
    "not",
    "html",
    "js",
    "urlquery",
    "slice",
    "list",
    "dict",
    "set",
    "get",
    "keys",
    "merge",
    "toJson",
    "fromJson",
    "toYaml",
    "fromYaml",
    "b64enc",
    "b64dec",
    "upper",
    "repeat",
    "until",
    "seq",
    "indent",
    "replace",
    "regexReplaceAll \"a*\"",
    "split",
    "sortAlpha",
    "default",
    "ternary",
    "deepCopy",
    "deepEqual",
    "add",
    "div",
    "mod",
    "round",
    "trunc",
    "substr",
    "abbrevboth",
    "wrap",
    "filterPEM",
    "certSANs",
    "pkcs12key",
    "pemTruststoreToPKCS12",
    "semver",
    "semverCompare \">1 || ~2.x\"",
    "jwkPublicKeyPem",
    "dig",
    "chunk",
    "concat",
    "uniq",
    "has",
    "typeOf",
    "kindOf",
    "urlParse",
    "urlJoin",
    "encryptAES",
    "decryptAES",
    "toDecimal",
];

fn data() -> Value {
    Value::from_string_map(BTreeMap::from([
        ("user", "admin".to_string()),
        ("pass", "p\u{e9}\u{0}ss".to_string()),
        ("json", r#"{"a":[1,{"b":null}],"c":1e300}"#.to_string()),
    ]))
}

fn opts() -> ParseOptions {
    ParseOptions::default().limits(Limits {
        max_output_bytes: 1 << 16,
        max_depth: 20,
        max_iterations: 10_000,
    })
}

fn run(text: &str) {
    if let Ok(t) = Template::parse("fuzz", text, &opts()) {
        let _ = t.execute(&data());
    }
}

proptest! {
    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        run(&text);
    }

    #[test]
    fn template_shaped_input_never_panics(parts in prop::collection::vec(prop::sample::select(FRAGMENTS), 0..40)) {
        run(&parts.concat());
    }

    #[test]
    fn arbitrary_action_bodies_never_panic(body in "[ -~]{0,60}") {
        run(&format!("{{{{ {body} }}}}"));
        run(&format!("{{{{ range $k, $v := . }}}}{{{{ {body} }}}}{{{{ end }}}}"));
    }

    #[test]
    fn semver_inputs_never_panic(c in "[ 0-9xX*.,|<>=!~^v+a-z-]{0,30}", v in "[0-9.a-z+-]{0,15}") {
        run(&format!("{{{{ semverCompare {c:?} {v:?} }}}}{{{{ (semver {v:?}).Major }}}}"));
    }

    #[test]
    fn printf_never_panics(format in "[%a-zA-Z0-9 .#+*\\-\\[\\]]{0,20}", n in any::<i64>(), f in any::<f64>()) {
        let tpl = format!("{{{{ printf {format:?} {n} \"s\" (list 1) }}}}{{{{ printf {format:?} {f:?} nil }}}}");
        run(&tpl);
    }
}

#[test]
fn cyclic_maps_do_not_hang() {
    let tpl = "{{ $d := dict }}{{ $_ := set $d \"a\" $d }}{{ $_ := set $d \"b\" $d }}{{ $d }}{{ toJson $d }}{{ toYaml $d }}{{ deepCopy $d }}{{ deepEqual $d (deepCopy $d) }}{{ merge $d $d }}";
    let t = Template::parse("cycle", tpl, &opts()).unwrap();
    assert!(t.execute(&data()).is_err());
}

#[test]
fn deep_nesting_is_rejected_not_overflowed() {
    let deep = format!("{{{{ {}1{} }}}}", "(".repeat(5000), ")".repeat(5000));
    assert!(Template::parse("deep", &deep, &opts()).is_err());
    let ifs = format!("{}x{}", "{{ if 1 }}".repeat(5000), "{{ end }}".repeat(5000));
    assert!(Template::parse("deep", &ifs, &opts()).is_err());
}
