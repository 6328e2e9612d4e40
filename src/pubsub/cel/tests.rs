use super::Expr;
use serde_json::{Value, json};

fn event() -> Value {
    json!({"type": "widget", "source": "shop", "topic": "orders.eu", "data": {"price": 150,
        "ratio": 0.5, "kind": null, "name": "Ann", "tags": ["vip", "new"], "n": {"a": 1}}})
}
fn t(src: &str) -> Result<bool, String> {
    Expr::parse(src)?.eval(&event())
}
fn ok(src: &str) -> bool {
    t(src).unwrap_or_else(|e| panic!("{src}: {e}"))
}
fn err(src: &str) -> String {
    t(src).expect_err(src)
}

#[test]
fn equality_and_selection() {
    assert!(ok(r#"event.type == "widget""#));
    assert!(ok("event.type != 'gadget'"));
    assert!(ok(r#"event["data"]["tags"][1] == "new""#));
    assert!(ok(
        r#"event.data.n == event["data"]["n"] && event.data.n != [1]"#
    ));
    assert!(ok(
        "event.data.price == 150.0 && 1 == 1.0 && event.data.kind == null"
    ));
    assert!(!ok("1 == '1'"));
    assert!(ok("[1, 'x', [true]] == [1.0, \"x\", [true]]"));
}

#[test]
fn comparisons_and_arithmetic() {
    assert!(ok(r#"event.data.price > 100 && event.source != "legacy""#));
    assert!(ok(
        "event.data.ratio < 1 && event.data.ratio >= 0.5 && 'abc' < 'abd'"
    ));
    assert!(ok(
        "1 + 2 * 3 == 7 && (1 + 2) * 3 == 9 && 7 / 2 == 3 && 7 % 3 == 1 && 1.5e1 == 15"
    ));
    assert!(ok(
        "-event.data.price == -150 && !false && 'a' + \"b\" == 'ab' && [1] + [2] == [1, 2]"
    ));
    assert!(err("event.type < 3").contains("no such overload: string < int"));
    assert_eq!(err("1 / 0"), "division by zero");
    assert_eq!(err("9223372036854775807 + 1 > 0"), "integer overflow");
}

#[test]
fn precedence_and_ternary() {
    assert!(ok("true || false && false"));
    assert!(!ok("(true || false) && false"));
    assert!(ok(
        "event.data.price > 100 ? event.type == 'widget' : false"
    ));
    assert!(ok("false ? 1 : true ? 2 == 2 : 3 == 4"));
    assert!(err("1 ? true : false").contains("expected bool"));
}

#[test]
fn error_absorption() {
    assert!(!ok("false && event.nokey"));
    assert!(!ok("event.nokey && false"));
    assert!(ok("event.nokey || true"));
    assert!(ok("true || 1 / 0 == 1"));
    assert_eq!(err("true && event.nokey"), "no such key: nokey");
    assert_eq!(
        err("event.nokey || event.data.price == 1"),
        "no such key: nokey"
    );
    assert!(ok("event.nokey || event.data.price == 150"));
}

#[test]
fn missing_keys_and_types() {
    assert_eq!(err("event.nokey == 1"), "no such key: nokey");
    assert_eq!(err("event.type.x == 1"), "type string has no field `x`");
    assert_eq!(err("event.data.tags[5] == 1"), "no such key or index: 5");
    assert_eq!(err("x == 1"), "undeclared reference to `x`");
    assert_eq!(
        err("event.type"),
        "expression evaluated to string, not bool"
    );
}

#[test]
fn has_macro() {
    assert!(ok("has(event.data.kind) && has(event.type)"));
    assert!(!ok("has(event.data.nope)"));
    assert_eq!(err("has(event.nope.kind)"), "no such key: nope");
    assert!(err("has(event.type.x)").contains("has() on type string"));
    assert!(Expr::parse("has(event)").unwrap_err().contains("at 0"));
}

#[test]
fn in_operator() {
    assert!(ok(
        "'vip' in event.data.tags && !('old' in event.data.tags)"
    ));
    assert!(ok(
        "1 in [1.0, 2] && 'price' in event.data && !('zz' in event.data)"
    ));
    assert!(err("1 in 'abc'").contains("no such overload"));
}

#[test]
fn functions() {
    assert!(ok(
        "event.topic.startsWith('orders') && event.topic.endsWith('.eu')"
    ));
    assert!(ok(
        "event.data.name.contains('n') && size(event.data.tags) == 2 && 'héé'.size() == 3"
    ));
    assert!(ok(
        "size(event.data) == 6 && int('42') == 42 && int(2.9) == 2 && double(1) == 1.0"
    ));
    assert!(ok(
        "string(150) == '150' && string(true) == 'true' && double('0.5') == event.data.ratio"
    ));
    assert!(ok(
        "event.topic.matches('ders') && !event.type.matches('x')"
    ));
    assert!(err("event.topic.matches('^ord.*')").contains("regex is not supported"));
    assert!(err("int('x') == 1").contains("cannot convert"));
    assert!(err("size(1) == 1").contains("no such overload: size(int)"));
}

#[test]
fn literals_and_escapes() {
    assert!(ok(
        r#"'it\'s' == "it's" && "a\"b" == 'a"b' && '\\' + "\n\t" == "\\\n\t""#
    ));
    assert!(ok("null == null && .5 == 0.5 && 1e3 == 1000 && [] == []"));
}

#[test]
fn syntax_errors() {
    let e = |s: &str| Expr::parse(s).unwrap_err();
    assert_eq!(e("event.type =="), "unexpected end of input at 13");
    assert_eq!(e(r#"event.type == "a"#), "unterminated string at 14");
    assert_eq!(e("(("), "unexpected end of input at 2");
    assert_eq!(e("event.type == 'a')"), "unexpected `)` at 17");
    assert_eq!(e("event.type = 'a'"), "unexpected `=` at 11");
    assert_eq!(e("(true"), "unexpected end of input at 5, expected `)`");
    assert_eq!(
        e("foo(1)"),
        "unknown function `foo` with 1 argument(s) at 0"
    );
    assert_eq!(e("'a\\q'"), "invalid escape sequence at 2");
    assert_eq!(
        e("99999999999999999999 == 1"),
        "invalid number `99999999999999999999` at 0"
    );
    assert_eq!(e("é == 1"), "unexpected `é` at 0");
}

#[test]
fn hostile_input_is_bounded() {
    let e = |s: &str| Expr::parse(s).unwrap_err();
    assert_eq!(
        e(&format!("{}1", "(".repeat(60))),
        "expression nested too deeply at 32"
    );
    assert!(e(&"(".repeat(50_000)).starts_with("expression too long"));
    assert!(e(&format!("{}true", "!".repeat(200))).contains("over 100 levels"));
    assert!(e(&format!("1{} == 0", " + 1".repeat(2000))).contains("over 100 levels"));
    // The deepest trees that pass the limits must evaluate on a 2 MiB test thread.
    assert!(ok(&format!("{}true", "!".repeat(98))));
    assert!(ok(&format!("{}true{}", "(".repeat(31), ")".repeat(31))));
    assert!(ok(&format!("1{} == 98", " + 1".repeat(97))));
    assert_eq!(
        err(&format!("has(event{})", ".a".repeat(98))),
        "no such key: a"
    );
    assert!(ok(&format!(
        "event.type == 'x'{}",
        " || event.type == 'widget'".repeat(500)
    )));
}
