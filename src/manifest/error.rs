//! Manifest diagnostics: each problem with its file, line, column, the offending line and a hint.
//!
//! All problems found in one pass are returned together, so a user fixes them in one edit.

use std::fmt;
use std::path::{Path, PathBuf};

/// One problem in a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// 1-based line; 0 when the problem has no position (e.g. an unreadable file).
    pub line: u64,
    /// 1-based column.
    pub column: u64,
    /// What is wrong, in one line.
    pub message: String,
    /// What to do about it, when there is something to say.
    pub hint: Option<String>,
}

impl Diagnostic {
    /// A problem at a position.
    pub fn at(line: u64, column: u64, message: impl Into<String>) -> Self {
        Diagnostic {
            line,
            column,
            message: message.into(),
            hint: None,
        }
    }

    /// Adds a hint.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// Every problem found in one manifest, with the text needed to show the lines.
#[derive(Debug, thiserror::Error)]
pub struct ManifestError {
    /// The manifest's path as the user named it.
    pub file: PathBuf,
    /// The manifest's text (empty when it could not be read).
    pub source_text: String,
    /// The problems, in file order.
    pub diagnostics: Vec<Diagnostic>,
}

impl ManifestError {
    pub fn new(file: &Path, source_text: &str, mut diagnostics: Vec<Diagnostic>) -> Self {
        diagnostics.sort_by_key(|d| (d.line, d.column));
        diagnostics.dedup();
        ManifestError {
            file: file.to_path_buf(),
            source_text: source_text.to_string(),
            diagnostics,
        }
    }
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.diagnostics.len();
        for (index, diagnostic) in self.diagnostics.iter().enumerate() {
            if index > 0 {
                writeln!(f)?;
            }
            render(f, &self.file, &self.source_text, diagnostic)?;
        }
        if count > 1 {
            write!(f, "\n{count} problems in {}", self.file.display())?;
        }
        Ok(())
    }
}

/// rustc-style: `error: msg`, ` --> file:line:col`, the line with a caret, `= hint: ...`.
fn render(f: &mut fmt::Formatter<'_>, file: &Path, text: &str, d: &Diagnostic) -> fmt::Result {
    writeln!(f, "error: {}", d.message)?;
    let number = d.line.to_string();
    let pad = " ".repeat(number.len());
    if d.line == 0 {
        writeln!(f, "{pad}--> {}", file.display())?;
    } else {
        writeln!(f, "{pad}--> {}:{}:{}", file.display(), d.line, d.column)?;
        if let Some(source_line) = text.lines().nth(d.line as usize - 1) {
            let caret_pad = " ".repeat(d.column.saturating_sub(1) as usize);
            writeln!(f, "{pad} |")?;
            writeln!(f, "{number} | {source_line}")?;
            writeln!(f, "{pad} | {caret_pad}^")?;
        }
    }
    if let Some(hint) = &d.hint {
        writeln!(f, "{pad} = hint: {hint}")?;
    }
    Ok(())
}
