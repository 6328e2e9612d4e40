//! What the supervisor runs, by name: the managed Redis or PostgreSQL, or an app. Two
//! different things can never share a name, whatever the user calls an app (`id: redis` is an
//! app, not Redis).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::manifest::AppId;

/// One supervised unit.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Unit {
    /// The Redis daca manages (a `redis-server` process or a container).
    Redis,
    /// The PostgreSQL daca manages (`postgres:` in daca.yaml).
    Postgres,
    App(AppId),
}

impl Unit {
    /// The app-id, for an app.
    pub fn app(&self) -> Option<&AppId> {
        match self {
            Unit::Redis | Unit::Postgres => None,
            Unit::App(id) => Some(id),
        }
    }
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unit::Redis => f.write_str("redis"),
            Unit::Postgres => f.write_str("postgres"),
            Unit::App(id) => f.write_str(id.as_str()),
        }
    }
}

impl From<AppId> for Unit {
    fn from(id: AppId) -> Unit {
        Unit::App(id)
    }
}
