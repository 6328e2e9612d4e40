//! Errors as daca reports them. A [`Problem`] is a mistake the user can fix, worded as
//! STYLE.md says (what is wrong and where, then `hint:` what to do); [`Error`] is every error
//! the library hands to the command line, and [`Error::kind`] decides the exit code.

use std::fmt;

/// A problem the user can fix: one line saying what is wrong (and where), and a hint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    message: String,
    hint: Option<String>,
}

impl Problem {
    pub fn new(message: impl Into<String>) -> Problem {
        Problem {
            message: message.into(),
            hint: None,
        }
    }

    /// What to do about it.
    pub fn hint(mut self, hint: impl Into<String>) -> Problem {
        self.hint = Some(hint.into());
        self
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    /// Several problems found together, one after the other.
    pub fn all(problems: Vec<Problem>) -> Problem {
        let text: Vec<String> = problems.iter().map(Problem::to_string).collect();
        Problem::new(text.join("\n"))
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problem {}

/// Whose the error is: the exit code says it (1 the user's, 2 daca's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Something the user can fix: a bad manifest, a busy port, a missing tool.
    User,
    /// A failure of daca's or of the machine's: a bug report is welcome.
    Internal,
}

/// What a command can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Problem(#[from] Problem),
    #[error(transparent)]
    Manifest(#[from] crate::manifest::ManifestError),
    #[error(transparent)]
    Redis(#[from] crate::redis::RedisError),
    #[error(transparent)]
    Postgres(#[from] crate::pgserver::PgError),
    #[error(transparent)]
    Components(#[from] crate::sidecar::ComponentsLoadError),
    #[error(transparent)]
    StateDir(#[from] crate::project::StateError),
    #[error(transparent)]
    Control(#[from] crate::control::client::ClientError),
    #[error(transparent)]
    Export(#[from] crate::export::ExportError),
    #[error(transparent)]
    Docker(#[from] crate::docker::DockerError),
    #[error(transparent)]
    Tilt(#[from] crate::tilt::TiltError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Json(#[from] serde_json::Error),
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Io(_) | Error::Json(_) => ErrorKind::Internal,
            _ => ErrorKind::User,
        }
    }
}

impl From<crate::components::ComponentsError> for Error {
    fn from(err: crate::components::ComponentsError) -> Error {
        Error::Components(err.into())
    }
}

/// What library functions the command line calls return.
pub type Result<T, E = Error> = std::result::Result<T, E>;
