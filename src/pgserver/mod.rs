//! Managed PostgreSQL (`postgres:` in daca.yaml), run the way Redis is: the user's own
//! (`postgres.url`), a container through the Docker engine, or the machine's own server
//! binaries (Debian's `postgresql` package, or `postgres` and `initdb` on PATH) supervised
//! like an app, its data under `.daca/postgres/`.
//!
//! Components written for a cluster (`host=postgres.default.svc.cluster.local`) reach it
//! unchanged: [`point`] redirects them, and the database and role they name are created on
//! first use (see `crate::postgres`), as the official image does for `POSTGRES_DB`.

mod point;
pub mod provision;
pub mod run;
mod unit;

use std::ffi::OsString;
use std::path::{Path, PathBuf};

pub use point::point;

use crate::docker::Owner;
use crate::manifest::{PostgresConfig, PostgresProvider};
use crate::ports::{PortPicker, is_free};
use crate::redis::EngineOffer;

/// The name a managed PostgreSQL's log lines and container carry.
pub const UNIT_NAME: &str = "postgres";
/// Where Kubernetes charts and the official image put PostgreSQL.
pub const DEFAULT_PORT: u16 = 5432;
/// The superuser daca's server is made with (no password: it listens on loopback only).
pub const SUPERUSER: &str = "postgres";

/// What daca will do for PostgreSQL in this run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PgPlan {
    /// The user's server; never started or stopped by daca.
    External { url: String },
    /// The machine's server binaries, run by `daca __postgres` (see [`run`]).
    Server {
        bin_dir: PathBuf,
        port: u16,
        data_dir: PathBuf,
        persistence: bool,
    },
    /// A container on the host's network, data in a named volume.
    Container {
        image: String,
        port: u16,
        persistence: bool,
        owner: Owner,
        /// The engine lacks the image: it is pulled before anything starts.
        pull: bool,
    },
}

/// Why PostgreSQL cannot be provided as asked.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    #[error(
        "postgres.provider is `postgres`, but no PostgreSQL server binaries were found (`postgres` and `initdb` on PATH or under /usr/lib/postgresql/*/bin)\n  hint: install them (Debian/Ubuntu: `sudo apt-get install postgresql`) or set `postgres: {{ provider: auto }}`"
    )]
    BinariesMissing,
    #[error(
        "postgres.provider is `docker`, but no Docker engine answers\n  hint: start Docker (or set DOCKER_HOST), or set `postgres: {{ provider: auto }}`"
    )]
    NoEngine,
    #[error(
        "`postgres:` asks for a PostgreSQL server, but this machine has neither its binaries nor a Docker engine\n  hint: install PostgreSQL (Debian/Ubuntu: `sudo apt-get install postgresql`) or Docker, or point at your own with `postgres: {{ url: postgres://user@host:5432/db }}`"
    )]
    NothingToRun,
    #[error(
        "postgres.port {0} is already in use\n  hint: stop what listens there, pick another `postgres.port`, or remove `port` to let daca choose"
    )]
    PortBusy(u16),
}

/// Where Debian's `postgresql` package puts each major's binaries.
const DEBIAN_BINARIES: &str = "/usr/lib/postgresql";

/// Decides how PostgreSQL is provided; `None` when the manifest asks for none.
pub fn plan(
    config: Option<&PostgresConfig>,
    state_dir: &Path,
    search_path: Option<OsString>,
    picker: &mut PortPicker,
    engine: Option<&EngineOffer>,
) -> Result<Option<PgPlan>, PgError> {
    let binaries = (search_path, Path::new(DEBIAN_BINARIES));
    plan_with(config, state_dir, binaries, picker, engine)
}

/// [`plan`], looking for the binaries on `binaries.0` (a PATH) and under `binaries.1`.
fn plan_with(
    config: Option<&PostgresConfig>,
    state_dir: &Path,
    binaries: (Option<OsString>, &Path),
    picker: &mut PortPicker,
    engine: Option<&EngineOffer>,
) -> Result<Option<PgPlan>, PgError> {
    let (provider, port, persistence, image) = match config {
        None => return Ok(None),
        Some(PostgresConfig::External { url }) => {
            return Ok(Some(PgPlan::External { url: url.clone() }));
        }
        Some(PostgresConfig::Managed {
            provider,
            port,
            persistence,
            image,
        }) => (*provider, *port, *persistence, image),
    };
    let binaries = || find_binaries(binaries.0.clone(), binaries.1);
    let choice = match (provider, engine) {
        (PostgresProvider::Docker, None) => return Err(PgError::NoEngine),
        (PostgresProvider::Docker, Some(offer)) => Choice::Container(!offer.image_local, offer),
        (PostgresProvider::Postgres, _) => {
            Choice::Server(binaries().ok_or(PgError::BinariesMissing)?)
        }
        (PostgresProvider::Auto, Some(offer)) if offer.image_local => {
            Choice::Container(false, offer)
        }
        (PostgresProvider::Auto, engine) => match (binaries(), engine) {
            (Some(bin_dir), _) => Choice::Server(bin_dir),
            (None, Some(offer)) => Choice::Container(true, offer),
            (None, None) => return Err(PgError::NothingToRun),
        },
    };
    let port = match port {
        Some(port) if !is_free(port) => return Err(PgError::PortBusy(port)),
        Some(port) => {
            picker.reserve(port);
            port
        }
        None => picker.pick(DEFAULT_PORT),
    };
    Ok(Some(match choice {
        Choice::Container(pull, offer) => PgPlan::Container {
            image: image.clone(),
            port,
            persistence,
            owner: offer.owner.clone(),
            pull,
        },
        Choice::Server(bin_dir) => PgPlan::Server {
            bin_dir,
            port,
            data_dir: state_dir.join("postgres"),
            persistence,
        },
    }))
}

enum Choice<'a> {
    Container(bool, &'a EngineOffer),
    Server(PathBuf),
}

/// The folder holding `postgres` and `initdb`: PATH first, then Debian's versioned folders
/// (which are not on PATH), newest major first.
fn find_binaries(search_path: Option<OsString>, versioned: &Path) -> Option<PathBuf> {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    let both = |dir: &Path| dir.join("postgres").is_file() && dir.join("initdb").is_file();
    if let Ok(postgres) = which::which_in("postgres", search_path, cwd)
        && let Some(dir) = postgres.parent().filter(|d| both(d))
    {
        return Some(dir.to_path_buf());
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(versioned)
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let major = entry.file_name().to_str()?.parse::<u32>().ok()?;
            Some((major, entry.path().join("bin")))
        })
        .filter(|(_, bin)| both(bin))
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

impl PgPlan {
    /// Where it listens, as host and port; the user's URL's own for an external server.
    pub fn address(&self) -> Option<(String, u16)> {
        match self {
            PgPlan::Server { port, .. } | PgPlan::Container { port, .. } => {
                Some(("127.0.0.1".into(), *port))
            }
            PgPlan::External { url } => {
                let config: tokio_postgres::Config = url.parse().ok()?;
                let host = match config.get_hosts().first()? {
                    tokio_postgres::config::Host::Tcp(host) => host.clone(),
                    tokio_postgres::config::Host::Unix(_) => return None,
                };
                Some((
                    host,
                    config.get_ports().first().copied().unwrap_or(DEFAULT_PORT),
                ))
            }
        }
    }

    /// The port on the machine's loopback, when daca runs the server (what a pod reaches at
    /// its own localhost).
    pub fn loopback_port(&self) -> Option<u16> {
        match self {
            PgPlan::Server { port, .. } | PgPlan::Container { port, .. } => Some(*port),
            PgPlan::External { .. } => None,
        }
    }

    /// Whether daca runs it (and may create the databases components name on it).
    pub fn is_managed(&self) -> bool {
        !matches!(self, PgPlan::External { .. })
    }

    /// One phrase for banners and `daca ps`; never the user's URL, which may hold a password.
    pub fn describe(&self) -> String {
        match self {
            PgPlan::External { .. } => match self.address() {
                Some((host, port)) => format!("{host}:{port} (yours; daca does not manage it)"),
                None => "your server (daca does not manage it)".into(),
            },
            PgPlan::Server { port, .. } => format!("127.0.0.1:{port} (postgres)"),
            PgPlan::Container { port, image, .. } => {
                format!("127.0.0.1:{port} (container, {image})")
            }
        }
    }
}

#[cfg(test)]
mod tests;
