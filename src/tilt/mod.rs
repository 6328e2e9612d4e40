//! Tiltfiles, as the course writes them: evaluated by a real Starlark interpreter (the
//! `starlark` crate) with Tilt's functions defined by daca (`builtins.rs`). Evaluation records
//! each call of a Tilt function with its arguments (as JSON) and where it was made; what the
//! calls mean for a daca project is `project.rs`'s business. A function Tilt has and daca does
//! not understand, or a name that is not defined, stops evaluation with `Tiltfile:line:col`.

mod builtins;
mod call;
mod config;
mod extensions;
mod local;
mod probes;
pub mod project;

/// Helm charts whose part daca plays itself: the Dapr control plane (daca's sidecars), Dapr's
/// dashboard (daca's), Redis (daca's managed Redis).
pub const PROVIDED_CHARTS: &[&str] = &["dapr", "dapr-dashboard", "redis", "redis-stack"];

use std::path::{Path, PathBuf};

use starlark::environment::Module;
use starlark::eval::Evaluator;
use starlark::syntax::{AstModule, Dialect};

pub use call::{Call, Recorded};

/// A place in the Tiltfile (1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct At {
    pub line: usize,
    pub column: usize,
}

impl At {
    /// Where `span` begins.
    pub fn of(span: &starlark::codemap::FileSpan) -> At {
        let begin = span.resolve_span().begin;
        At {
            line: begin.line + 1,
            column: begin.column + 1,
        }
    }
}

/// Why a Tiltfile could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TiltError {
    #[error("cannot read {file}: {source}")]
    Read {
        file: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Yaml(#[from] crate::export::ExportError),
    #[error("{file}:{}:{}: {message}\n  hint: {hint}", at.line, at.column)]
    At {
        file: String,
        at: At,
        message: String,
        hint: String,
    },
}

/// A Tiltfile's calls, in the order it made them.
#[derive(Debug, Default)]
pub struct Tiltfile {
    pub path: PathBuf,
    pub calls: Vec<Call>,
    /// What `print` printed.
    pub printed: Vec<String>,
}

impl Tiltfile {
    /// The calls of one function.
    pub fn calls_of<'a>(&'a self, function: &'a str) -> impl Iterator<Item = &'a Call> + 'a {
        self.calls.iter().filter(move |c| c.function == function)
    }

    /// An error at `at` in this file.
    pub fn error(&self, at: At, message: impl Into<String>, hint: impl Into<String>) -> TiltError {
        TiltError::At {
            file: self.path.display().to_string(),
            at,
            message: message.into(),
            hint: hint.into(),
        }
    }
}

/// Evaluates the Tiltfile at `path` (its folder is where its relative paths start).
pub fn evaluate(path: &Path) -> Result<Tiltfile, TiltError> {
    let text = std::fs::read_to_string(path).map_err(|source| TiltError::Read {
        file: path.display().to_string(),
        source,
    })?;
    evaluate_text(path, &text)
}

/// Evaluates `text` as the Tiltfile at `path`.
pub fn evaluate_text(path: &Path, text: &str) -> Result<Tiltfile, TiltError> {
    let file = path.display().to_string();
    let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
    let located = |err: starlark::Error| located(&file, err);
    let ast = AstModule::parse(&file, text.to_string(), &Dialect::Extended).map_err(located)?;
    let globals = builtins::globals();
    let loader = extensions::Extensions::new(&globals);
    let recorded = Recorded::new(dir);
    let module = Module::new();
    {
        let mut eval = Evaluator::new(&module);
        eval.extra = Some(&recorded);
        eval.set_loader(&loader);
        eval.set_print_handler(&recorded);
        eval.eval_module(ast, &globals).map_err(located)?;
    }
    let (calls, printed) = recorded.finish();
    Ok(Tiltfile {
        path: path.to_path_buf(),
        calls,
        printed,
    })
}

/// A starlark error as `file:line:col: message`, with a hint for the usual causes.
fn located(file: &str, err: starlark::Error) -> TiltError {
    let at = err.span().map(At::of).unwrap_or_default();
    let message = err.without_diagnostic().to_string();
    let message = message
        .lines()
        .next()
        .unwrap_or_default()
        .trim()
        .to_string();
    let hint = match err.kind() {
        starlark::ErrorKind::Scope(_) => {
            "daca understands the Tilt functions the course uses (docs/tilt.md lists them); write a daca.yaml for the rest"
        }
        starlark::ErrorKind::Parser(_) => "fix the Starlark syntax there",
        _ => "see docs/tilt.md for what daca reads from a Tiltfile",
    };
    TiltError::At {
        file: file.to_string(),
        at,
        message,
        hint: hint.to_string(),
    }
}

#[cfg(test)]
mod tests;
