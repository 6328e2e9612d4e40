//! One recorded call of a Tilt function: its arguments bound to Tilt's parameter names (so
//! `docker_build('img', '.')` and `docker_build(ref='img', context='.')` read the same), as
//! JSON, and where it was made.

use std::cell::RefCell;
use std::path::PathBuf;

use serde_json::{Map, Value as Json};
use starlark::any::ProvidesStaticType;
use starlark::collections::SmallMap;
use starlark::eval::Evaluator;
use starlark::values::Value;

use super::At;

/// A call of a Tilt function.
#[derive(Debug, Clone)]
pub struct Call {
    pub function: String,
    pub args: Map<String, Json>,
    pub at: At,
}

impl Call {
    /// A string argument.
    pub fn str(&self, name: &str) -> Option<&str> {
        self.args.get(name).and_then(Json::as_str)
    }

    /// A string or a list of strings, as a list.
    pub fn strings(&self, name: &str) -> Vec<String> {
        match self.args.get(name) {
            Some(Json::String(one)) => vec![one.clone()],
            Some(Json::Array(items)) => items
                .iter()
                .filter_map(|i| i.as_str().map(String::from))
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// What evaluation gathers (the evaluator's `extra`).
#[derive(Debug, ProvidesStaticType)]
pub struct Recorded {
    /// The Tiltfile's folder: relative paths start there.
    pub dir: PathBuf,
    calls: RefCell<Vec<Call>>,
    printed: RefCell<Vec<String>>,
}

impl Recorded {
    pub fn new(dir: PathBuf) -> Recorded {
        Recorded {
            dir,
            calls: RefCell::default(),
            printed: RefCell::default(),
        }
    }

    pub fn finish(self) -> (Vec<Call>, Vec<String>) {
        (self.calls.into_inner(), self.printed.into_inner())
    }

    pub fn print(&self, line: String) {
        self.printed.borrow_mut().push(line);
    }

    fn push(&self, call: Call) {
        self.calls.borrow_mut().push(call);
    }
}

impl starlark::PrintHandler for Recorded {
    fn println(&self, text: &str) -> starlark::Result<()> {
        self.print(text.to_string());
        Ok(())
    }
}

/// The evaluation's [`Recorded`].
pub fn recorded<'a>(eval: &Evaluator<'_, 'a, '_>) -> anyhow::Result<&'a Recorded> {
    eval.extra
        .and_then(|extra| extra.downcast_ref::<Recorded>())
        .ok_or_else(|| anyhow::anyhow!("internal: the Tiltfile's evaluation has no record"))
}

/// Binds a call's arguments to `params` (Tilt's names, in Tilt's order), and records it.
pub fn record<'v>(
    eval: &mut Evaluator<'v, '_, '_>,
    function: &str,
    params: &[&str],
    args: &[Value<'v>],
    kwargs: SmallMap<String, Value<'v>>,
) -> anyhow::Result<Call> {
    if args.len() > params.len() {
        anyhow::bail!(
            "`{function}` takes at most {} positional arguments, got {}",
            params.len(),
            args.len()
        );
    }
    let mut bound = Map::new();
    for (name, value) in params.iter().zip(args) {
        bound.insert(name.to_string(), json(function, name, *value)?);
    }
    for (name, value) in kwargs {
        if !params.contains(&name.as_str()) {
            anyhow::bail!("`{function}` has no parameter `{name}`");
        }
        if bound.contains_key(&name) {
            anyhow::bail!("`{function}` got `{name}` twice");
        }
        let value = json(function, &name, value)?;
        bound.insert(name, value);
    }
    let at = eval
        .call_stack_top_location()
        .map(|span| At::of(&span))
        .unwrap_or_default();
    let call = Call {
        function: function.to_string(),
        args: bound,
        at,
    };
    recorded(eval)?.push(call.clone());
    Ok(call)
}

fn json(function: &str, name: &str, value: Value) -> anyhow::Result<Json> {
    value
        .to_json_value()
        .map_err(|e| anyhow::anyhow!("`{function}`'s `{name}` is not plain data: {e}"))
}
