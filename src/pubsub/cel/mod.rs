//! The subset of CEL that Dapr pub/sub routing rules use in `match`, evaluated
//! directly over the CloudEvent JSON so the crate needs no CEL runtime.
//!
//! JSON integers are CEL ints and other JSON numbers are doubles; arithmetic and
//! ordering accept mixed int/double (promoting to double), which is more lenient
//! than CEL but matches what rule authors expect from JSON payloads.

mod eval;

use serde_json::{Number, Value};
use std::borrow::Cow;
use std::cmp::Ordering;

use eval::*;

/// Bounds the AST size, and so the recursion that drops a tree rejected for depth.
const MAX_TOKENS: usize = 4096;
/// Bounds parser recursion: a bracket level costs ~15 KiB of stack in a debug build.
const MAX_NESTING: usize = 32;
/// Bounds eval recursion: a debug-build frame of `run` is a few KiB and threads may have 2 MiB.
const MAX_DEPTH: usize = 100;
const REGEX_META: &str = r"\.^$*+?()[]{}|";
/// (is a method, name, argument count); `has` is a macro and handled apart.
const FUNCS: &[(bool, &str, usize)] = &[
    (false, "size", 1),
    (true, "size", 0),
    (true, "startsWith", 1),
    (true, "endsWith", 1),
    (true, "contains", 1),
    (true, "matches", 1),
    (false, "int", 1),
    (false, "string", 1),
    (false, "double", 1),
];
// Two-character operators come first so that `<=` is not lexed as `<` `=`.
const PUNCT: &str = "|| && == != <= >= < > ! + - * / % ( ) [ ] . , ? :";

/// A parsed `match` expression.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr(Node);

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Lit(Value),
    Ident(String),
    List(Vec<Node>),
    Select(Box<Node>, String),
    Has(Box<Node>, String),
    Index(Box<Node>, Box<Node>),
    Call(&'static str, Vec<Node>),
    Logic(&'static str, Vec<Node>),
    Un(&'static str, Box<Node>),
    Bin(&'static str, Box<Node>, Box<Node>),
    Cond(Box<Node>, Box<Node>, Box<Node>),
}

impl Expr {
    /// Parses `source`; Err is a one-line message saying what is wrong and where (character
    /// offset), e.g. "unexpected `)` at 14".
    pub fn parse(source: &str) -> Result<Expr, String> {
        let toks = lex(source)?;
        let mut p = Parser {
            toks,
            pos: 0,
            nesting: 0,
            len: source.chars().count(),
        };
        let node = p.expr()?;
        if *p.peek() != Tok::End {
            return Err(p.unexpected());
        }
        if !depth_ok(&node) {
            return Err(format!(
                "expression nested too deeply (over {MAX_DEPTH} levels)"
            ));
        }
        Ok(Expr(node))
    }

    /// Evaluates against `event` (the CloudEvent as JSON; the only variable is `event`).
    /// Ok(bool) when the result is a bool; Err (one line) when it is not a bool, or on a type
    /// error, or a missing key (CEL errors on `event.nokey`, except inside has()).
    pub fn eval(&self, event: &Value) -> Result<bool, String> {
        Self::boolean(run(&self.0, Env::Event(event)))
    }

    /// Evaluates with `vars` as the only names (each a top-level identifier), as a circuit
    /// breaker's `trip` reads `consecutiveFailures` and the other counts.
    pub fn eval_vars(&self, vars: &serde_json::Map<String, Value>) -> Result<bool, String> {
        Self::boolean(run(&self.0, Env::Vars(vars)))
    }

    fn boolean(result: Res) -> Result<bool, String> {
        match result?.as_ref() {
            Value::Bool(b) => Ok(*b),
            v => Err(format!("expression evaluated to {}, not bool", tname(v))),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Id(String),
    Lit(Value),
    P(&'static str),
    End,
}

fn lex(src: &str) -> Result<Vec<(Tok, usize)>, String> {
    let cs: Vec<char> = src.chars().collect();
    let at = |i: usize| cs.get(i).copied();
    let digit = |i: usize| at(i).is_some_and(|c| c.is_ascii_digit());
    let (mut out, mut i) = (Vec::new(), 0);
    while let Some(c) = at(i) {
        let start = i;
        let tok = if c.is_whitespace() {
            i += 1;
            continue;
        } else if c.is_ascii_alphanumeric() || c == '_' || (c == '.' && digit(i + 1)) {
            let num = !(c.is_ascii_alphabetic() || c == '_');
            let mut w = String::new();
            // A number also swallows letters, so `1u` or `0x1` fail as one bad literal.
            while let Some(d) = at(i).filter(|&d| {
                d.is_ascii_alphanumeric()
                    || d == '_'
                    || (num && d == '.' && digit(i + 1))
                    || (num && matches!(d, '+' | '-') && w.ends_with(['e', 'E']))
            }) {
                w.push(d);
                i += 1;
            }
            match w.as_str() {
                _ if num => {
                    let n = if w.contains(['.', 'e', 'E']) {
                        w.parse().ok().and_then(Number::from_f64)
                    } else {
                        w.parse::<i64>().ok().map(Number::from)
                    };
                    let bad = || format!("invalid number `{w}` at {start}");
                    Tok::Lit(Value::Number(n.ok_or_else(bad)?))
                }
                "true" | "false" => Tok::Lit(Value::Bool(w == "true")),
                "null" => Tok::Lit(Value::Null),
                "in" => Tok::P("in"),
                _ => Tok::Id(w),
            }
        } else if c == '"' || c == '\'' {
            let mut s = String::new();
            i += 1;
            loop {
                match at(i) {
                    None | Some('\n') => return Err(format!("unterminated string at {start}")),
                    Some(q) if q == c => break,
                    Some('\\') => {
                        i += 1;
                        s.push(match at(i) {
                            Some(e @ ('"' | '\'' | '\\')) => e,
                            Some('n') => '\n',
                            Some('t') => '\t',
                            Some('r') => '\r',
                            _ => return Err(format!("invalid escape sequence at {}", i - 1)),
                        });
                    }
                    Some(ch) => s.push(ch),
                }
                i += 1;
            }
            i += 1;
            Tok::Lit(Value::String(s))
        } else {
            let p = PUNCT
                .split_whitespace()
                .find(|p| p.chars().enumerate().all(|(k, pc)| at(i + k) == Some(pc)));
            let p = p.ok_or_else(|| format!("unexpected `{c}` at {i}"))?;
            i += p.len();
            Tok::P(p)
        };
        out.push((tok, start));
        if out.len() > MAX_TOKENS {
            return Err(format!(
                "expression too long (over {MAX_TOKENS} tokens) at {start}"
            ));
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<(Tok, usize)>,
    pos: usize,
    nesting: usize,
    len: usize,
}

impl Parser {
    fn peek(&self) -> &Tok {
        self.toks.get(self.pos).map_or(&Tok::End, |t| &t.0)
    }
    fn off(&self) -> usize {
        self.toks.get(self.pos).map_or(self.len, |t| t.1)
    }
    fn unexpected(&self) -> String {
        match self.peek() {
            Tok::End => format!("unexpected end of input at {}", self.off()),
            Tok::P(s) => format!("unexpected `{s}` at {}", self.off()),
            Tok::Id(s) => format!("unexpected `{s}` at {}", self.off()),
            Tok::Lit(v) => format!("unexpected `{v}` at {}", self.off()),
        }
    }
    fn eat(&mut self, p: &str) -> bool {
        let hit = matches!(self.peek(), Tok::P(q) if *q == p);
        self.pos += usize::from(hit);
        hit
    }
    fn expect(&mut self, p: &str) -> Result<(), String> {
        if self.eat(p) {
            Ok(())
        } else {
            Err(format!("{}, expected `{p}`", self.unexpected()))
        }
    }

    fn expr(&mut self) -> Result<Node, String> {
        self.nesting += 1;
        if self.nesting > MAX_NESTING {
            return Err(format!("expression nested too deeply at {}", self.off()));
        }
        let cond = self.bin(0)?;
        let node = if self.eat("?") {
            let a = self.bin(0)?;
            self.expect(":")?;
            Node::Cond(Box::new(cond), Box::new(a), Box::new(self.expr()?))
        } else {
            cond
        };
        self.nesting -= 1;
        Ok(node)
    }

    /// Precedence climbing over CEL's binary levels, loosest first; all are left-associative.
    fn bin(&mut self, level: usize) -> Result<Node, String> {
        const LEVELS: &[&[&str]] = &[
            &["||"],
            &["&&"],
            &["==", "!=", "<=", ">=", "<", ">", "in"],
            &["+", "-"],
            &["*", "/", "%"],
        ];
        let Some(ops) = LEVELS.get(level) else {
            return self.unary();
        };
        let mut l = self.bin(level + 1)?;
        while let Some(op) = ops.iter().copied().find(|op| self.eat(op)) {
            let r = self.bin(level + 1)?;
            l = match l {
                // Flat logic chains keep long `a || b || ...` rules within MAX_DEPTH.
                Node::Logic(o, mut xs) if o == op => {
                    xs.push(r);
                    Node::Logic(o, xs)
                }
                l if op == "||" || op == "&&" => Node::Logic(op, vec![l, r]),
                l => Node::Bin(op, Box::new(l), Box::new(r)),
            };
        }
        Ok(l)
    }

    fn unary(&mut self) -> Result<Node, String> {
        let mut ops = Vec::new();
        while let Some(op) = ["!", "-"].into_iter().find(|op| self.eat(op)) {
            ops.push(op);
        }
        let mut n = self.member()?;
        for op in ops.into_iter().rev() {
            n = Node::Un(op, Box::new(n));
        }
        Ok(n)
    }

    fn member(&mut self) -> Result<Node, String> {
        let mut n = self.primary()?;
        loop {
            if self.eat(".") {
                let at = self.off();
                let name = self.ident()?;
                n = if self.eat("(") {
                    let args = self.args(")")?;
                    call(Some(n), &name, args, at)?
                } else {
                    Node::Select(Box::new(n), name)
                };
            } else if self.eat("[") {
                let key = self.expr()?;
                self.expect("]")?;
                n = Node::Index(Box::new(n), Box::new(key));
            } else {
                return Ok(n);
            }
        }
    }

    fn primary(&mut self) -> Result<Node, String> {
        let at = self.off();
        let tok = self.peek().clone();
        self.pos += 1;
        match tok {
            Tok::Lit(v) => Ok(Node::Lit(v)),
            Tok::Id(name) if self.eat("(") => {
                let args = self.args(")")?;
                call(None, &name, args, at)
            }
            Tok::Id(name) => Ok(Node::Ident(name)),
            Tok::P("(") => {
                let e = self.expr()?;
                self.expect(")")?;
                Ok(e)
            }
            Tok::P("[") => Ok(Node::List(self.args("]")?)),
            _ => {
                self.pos -= 1;
                Err(self.unexpected())
            }
        }
    }

    fn ident(&mut self) -> Result<String, String> {
        let Tok::Id(s) = self.peek() else {
            return Err(self.unexpected());
        };
        let s = s.clone();
        self.pos += 1;
        Ok(s)
    }

    fn args(&mut self, close: &str) -> Result<Vec<Node>, String> {
        let mut v = Vec::new();
        if self.eat(close) {
            return Ok(v);
        }
        loop {
            v.push(self.expr()?);
            if self.eat(close) {
                return Ok(v);
            }
            self.expect(",")?;
        }
    }
}

/// Resolves calls at parse time so an unknown function is reported with its offset.
fn call(recv: Option<Node>, name: &str, mut args: Vec<Node>, at: usize) -> Result<Node, String> {
    if recv.is_none() && name == "has" {
        return match (args.pop(), args.is_empty()) {
            (Some(Node::Select(o, f)), true) => Ok(Node::Has(o, f)),
            _ => Err(format!(
                "has() takes a single field selection such as has(event.a.b) at {at}"
            )),
        };
    }
    let f = FUNCS
        .iter()
        .find(|(m, n, a)| *m == recv.is_some() && *n == name && *a == args.len());
    let (_, name, _) = f.ok_or_else(|| {
        format!(
            "unknown function `{name}` with {} argument(s) at {at}",
            args.len()
        )
    })?;
    // A receiver is just the first argument: `x.size()` and `size(x)` evaluate alike.
    args.splice(0..0, recv);
    Ok(Node::Call(name, args))
}

/// Iterative, so that checking a deep tree cannot itself overflow the stack.
fn depth_ok(root: &Node) -> bool {
    let mut stack = vec![(root, 1)];
    while let Some((n, d)) = stack.pop() {
        if d > MAX_DEPTH {
            return false;
        }
        let kids: Vec<&Node> = match n {
            Node::Lit(_) | Node::Ident(_) => vec![],
            Node::List(xs) | Node::Logic(_, xs) | Node::Call(_, xs) => xs.iter().collect(),
            Node::Select(x, _) | Node::Has(x, _) | Node::Un(_, x) => vec![x],
            Node::Index(a, b) | Node::Bin(_, a, b) => vec![a, b],
            Node::Cond(a, b, c) => vec![a, b, c],
        };
        stack.extend(kids.into_iter().map(|k| (k, d + 1)));
    }
    true
}

type Res<'a> = Result<Cow<'a, Value>, String>;

#[cfg(test)]
mod tests;
