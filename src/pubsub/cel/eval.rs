//! Evaluating a parsed expression against an event.

use super::*;

/// Selects a child without cloning when the parent is borrowed from the event.
pub(super) fn sub<'a>(
    v: Cow<'a, Value>,
    f: impl Fn(&Value) -> Option<&Value>,
) -> Option<Cow<'a, Value>> {
    match v {
        Cow::Borrowed(b) => f(b).map(Cow::Borrowed),
        Cow::Owned(o) => f(&o).cloned().map(Cow::Owned),
    }
}

pub(super) fn truth(r: Res) -> Result<bool, String> {
    match r?.as_ref() {
        Value::Bool(b) => Ok(*b),
        v => Err(format!("expected bool, got {}", tname(v))),
    }
}

/// What names an expression can read: a routing rule's `event`, or a set of variables (a
/// circuit breaker's `trip` reads its counts).
#[derive(Clone, Copy)]
pub(super) enum Env<'a> {
    Event(&'a Value),
    Vars(&'a serde_json::Map<String, Value>),
}

pub(super) fn run<'a>(n: &'a Node, ev: Env<'a>) -> Res<'a> {
    let bool = |b| Ok(Cow::Owned(Value::Bool(b)));
    match n {
        Node::Lit(v) => Ok(Cow::Borrowed(v)),
        Node::Ident(x) => match ev {
            Env::Event(event) if x == "event" => Ok(Cow::Borrowed(event)),
            Env::Vars(vars) if vars.contains_key(x) => Ok(Cow::Borrowed(&vars[x])),
            _ => Err(format!("undeclared reference to `{x}`")),
        },
        Node::List(xs) => Ok(Cow::Owned(Value::Array(
            xs.iter()
                .map(|x| run(x, ev).map(Cow::into_owned))
                .collect::<Result<_, _>>()?,
        ))),
        Node::Select(o, f) => {
            let v = run(o, ev)?;
            if !v.is_object() {
                return Err(format!("type {} has no field `{f}`", tname(&v)));
            }
            sub(v, |v| v.get(f)).ok_or_else(|| format!("no such key: {f}"))
        }
        Node::Has(o, f) => match run(o, ev)?.as_ref() {
            Value::Object(m) => bool(m.contains_key(f)),
            v => Err(format!("has() on type {}", tname(v))),
        },
        Node::Index(o, k) => {
            let (v, k) = (run(o, ev)?, run(k, ev)?);
            let found = match (k.as_ref(), v.as_ref()) {
                (Value::Number(n), Value::Array(_)) => n
                    .as_u64()
                    .and_then(|i| usize::try_from(i).ok())
                    .and_then(|i| sub(v, |x| x.get(i))),
                (Value::String(s), Value::Object(_)) => sub(v, |x| x.get(s)),
                _ => return Err(format!("no such overload: {}[{}]", tname(&v), tname(&k))),
            };
            found.ok_or_else(|| format!("no such key or index: {k}"))
        }
        Node::Un(op, x) => match (*op, run(x, ev)?.as_ref()) {
            ("!", Value::Bool(b)) => bool(!b),
            ("-", v @ Value::Number(_)) => {
                arith("-", Num::I(0), num(v).unwrap_or(Num::I(0))).map(Cow::Owned)
            }
            (op, v) => Err(format!("no such overload: {op}{}", tname(v))),
        },
        // CEL's logic is commutative: a decisive operand wins even if another one errs.
        Node::Logic(op, xs) => {
            let decisive = *op == "||";
            let mut first_err = None;
            for x in xs {
                match truth(run(x, ev)) {
                    Ok(b) if b == decisive => return bool(decisive),
                    Ok(_) => {}
                    Err(e) => first_err = first_err.or(Some(e)),
                }
            }
            first_err.map_or_else(|| bool(!decisive), Err)
        }
        Node::Bin(op, l, r) => binop(op, &*run(l, ev)?, &*run(r, ev)?).map(Cow::Owned),
        Node::Cond(c, a, b) => run(if truth(run(c, ev))? { a } else { b }, ev),
        Node::Call(name, args) => {
            let args = args.iter().map(|a| run(a, ev));
            let args = args.collect::<Result<Vec<_>, _>>()?;
            func(name, &args.iter().map(|a| &**a).collect::<Vec<_>>()).map(Cow::Owned)
        }
    }
}

pub(super) fn func(name: &str, args: &[&Value]) -> Result<Value, String> {
    let len = |n: usize| Ok(Value::from(i64::try_from(n).unwrap_or(i64::MAX)));
    let range = || Err(format!("{name}() argument out of range"));
    match (name, args) {
        ("size", [Value::String(s)]) => len(s.chars().count()),
        ("size", [Value::Array(a)]) => len(a.len()),
        ("size", [Value::Object(m)]) => len(m.len()),
        (
            f @ ("startsWith" | "endsWith" | "contains" | "matches"),
            [Value::String(s), Value::String(p)],
        ) => {
            // Without a regex engine, only patterns that are plain literals can be honoured.
            if f == "matches" && p.contains(|c| REGEX_META.contains(c)) {
                return Err("matches() with regex is not supported (only literal patterns)".into());
            }
            Ok(Value::Bool(match f {
                "startsWith" => s.starts_with(p.as_str()),
                "endsWith" => s.ends_with(p.as_str()),
                _ => s.contains(p.as_str()),
            }))
        }
        ("int", [v @ Value::Number(_)]) => match num(v) {
            Some(Num::I(i)) => Ok(Value::from(i)),
            // 2^63 bounds: `as` would saturate silently where CEL reports a range error.
            Some(Num::F(f)) if f > -9.223_372_036_854_776e18 && f < 9.223_372_036_854_776e18 => {
                Ok(Value::from(f.trunc() as i64))
            }
            _ => range(),
        },
        ("int", [Value::String(s)]) => s
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| format!("cannot convert {s:?} to int")),
        ("double", [v @ Value::Number(_)]) => Number::from_f64(v.as_f64().unwrap_or(f64::NAN))
            .map(Value::Number)
            .map_or_else(range, Ok),
        ("double", [Value::String(s)]) => {
            let f = s
                .parse::<f64>()
                .map_err(|_| format!("cannot convert {s:?} to double"))?;
            Number::from_f64(f)
                .map(Value::Number)
                .map_or_else(range, Ok)
        }
        ("string", [v @ Value::String(_)]) => Ok((*v).clone()),
        ("string", [Value::Number(n)]) => Ok(Value::String(n.to_string())),
        ("string", [Value::Bool(b)]) => Ok(Value::String(b.to_string())),
        _ => {
            let types: Vec<&str> = args.iter().map(|v| tname(v)).collect();
            Err(format!("no such overload: {name}({})", types.join(", ")))
        }
    }
}

#[derive(Clone, Copy)]
pub(super) enum Num {
    I(i64),
    F(f64),
}

pub(super) fn num(v: &Value) -> Option<Num> {
    let n = v.as_number()?;
    Some(
        n.as_i64()
            .map_or_else(|| Num::F(n.as_f64().unwrap_or(f64::NAN)), Num::I),
    )
}

pub(super) fn float(n: Num) -> f64 {
    match n {
        Num::I(i) => i as f64,
        Num::F(f) => f,
    }
}

pub(super) fn num_cmp(a: &Value, b: &Value) -> Option<Ordering> {
    match (num(a)?, num(b)?) {
        (Num::I(x), Num::I(y)) => Some(x.cmp(&y)),
        (x, y) => float(x).partial_cmp(&float(y)),
    }
}

/// CEL's heterogeneous equality: numbers compare by value across int and double, and values of
/// different kinds are unequal rather than an error.
pub(super) fn eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(_), Value::Number(_)) => num_cmp(a, b) == Some(Ordering::Equal),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| eq(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, p)| y.get(k).is_some_and(|q| eq(p, q)))
        }
        _ => a == b,
    }
}

pub(super) fn binop(op: &str, a: &Value, b: &Value) -> Result<Value, String> {
    let bad = || format!("no such overload: {} {op} {}", tname(a), tname(b));
    Ok(match (op, a, b) {
        ("==", ..) => Value::Bool(eq(a, b)),
        ("!=", ..) => Value::Bool(!eq(a, b)),
        ("<" | "<=" | ">" | ">=", ..) => {
            let o = match (a, b) {
                (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
                (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
                _ => num_cmp(a, b),
            };
            let o = o.ok_or_else(bad)?;
            Value::Bool(match op {
                "<" => o.is_lt(),
                "<=" => o.is_le(),
                ">" => o.is_gt(),
                _ => o.is_ge(),
            })
        }
        ("in", _, Value::Array(xs)) => Value::Bool(xs.iter().any(|x| eq(a, x))),
        ("in", _, Value::Object(m)) => Value::Bool(a.as_str().is_some_and(|k| m.contains_key(k))),
        ("+", Value::String(x), Value::String(y)) => Value::String(format!("{x}{y}")),
        ("+", Value::Array(x), Value::Array(y)) => {
            Value::Array(x.iter().chain(y).cloned().collect())
        }
        ("+" | "-" | "*" | "/" | "%", Value::Number(_), Value::Number(_)) => {
            arith(op, num(a).ok_or_else(bad)?, num(b).ok_or_else(bad)?)?
        }
        _ => return Err(bad()),
    })
}

pub(super) fn arith(op: &str, a: Num, b: Num) -> Result<Value, String> {
    if let (Num::I(x), Num::I(y)) = (a, b) {
        let r = match op {
            "+" => x.checked_add(y),
            "-" => x.checked_sub(y),
            "*" => x.checked_mul(y),
            "/" => x.checked_div(y),
            _ => x.checked_rem(y),
        };
        let why = if y == 0 {
            "division by zero"
        } else {
            "integer overflow"
        };
        return r.map(Value::from).ok_or_else(|| why.to_string());
    }
    let (x, y) = (float(a), float(b));
    let r = match op {
        "+" => x + y,
        "-" => x - y,
        "*" => x * y,
        "/" | "%" if y == 0.0 => return Err("division by zero".into()),
        "/" => x / y,
        _ => return Err("no such overload: double % double".into()),
    };
    Number::from_f64(r)
        .map(Value::Number)
        .ok_or_else(|| "double overflow".to_string())
}

pub(super) fn tname(v: &Value) -> &'static str {
    match v {
        Value::Null => "null_type",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_i64() => "int",
        Value::Number(_) => "double",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "map",
    }
}
