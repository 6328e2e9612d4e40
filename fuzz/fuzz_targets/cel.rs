//! CEL (subscription rules, circuit breakers' `trip`): parsed and evaluated, or an error.
#![no_main]

use std::sync::LazyLock;

static EVENT: LazyLock<serde_json::Value> = LazyLock::new(|| {
    serde_json::json!({
        "id": "1", "source": "app", "type": "order.created", "specversion": "1.0",
        "data": {"qty": 3, "price": 2.5, "tags": ["a", "b"], "nested": {"ok": true}, "s": "x"}
    })
});

libfuzzer_sys::fuzz_target!(|text: &str| {
    if let Ok(expr) = daca::pubsub::cel::Expr::parse(text) {
        let _ = expr.eval(&EVENT);
        let mut vars = serde_json::Map::new();
        vars.insert("consecutiveFailures".into(), 4.into());
        vars.insert("requests".into(), 10.into());
        let _ = expr.eval_vars(&vars);
    }
});
