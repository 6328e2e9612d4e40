//! PostgreSQL connections for the components that use one (`bindings.postgresql`,
//! `state.postgresql`): the connection string checked without ever repeating it (it usually
//! holds a password), one connection per component made on first use and again after the
//! server closed it, and pgx's wording of server errors, which Dapr's messages carry.

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio_postgres::types::{Format, IsNull, ToSql, Type, to_sql_checked};
use tokio_postgres::{Client, Config, NoTls};

use crate::components::Component;

/// How long connecting may take (components-contrib's `timeout` default, 20 s).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

/// What a component without a usable `connectionString` is told.
pub const CONNECTION_STRING_HINT: &str = "a libpq string (`host=localhost port=5432 user=postgres dbname=app`) or a URL (`postgres://user@localhost:5432/app`), often from a `secretKeyRef`";

/// A `connectionString`, parsed; the message never repeats it.
pub fn parse_config(text: &str) -> Result<Config, String> {
    text.parse()
        .map_err(|err| format!("invalid `connectionString`: {err}"))
}

/// Where a component written for a cluster really connects (see `crate::pgserver::point`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    pub host: String,
    pub port: u16,
    /// daca runs that server: the role and database the component names are made on it
    /// when missing, as the official image does for `POSTGRES_USER`/`POSTGRES_DB`.
    pub provision: bool,
}

/// The connection string of a component, checked, with its redirect applied.
pub fn config(component: &Component) -> Result<Config, String> {
    let mut config = parse_config(component.get("connectionString").unwrap_or_default())?;
    if let Some(redirect) = &component.redirect {
        config = redirected(&config, redirect);
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    Ok(config)
}

/// `config` at another address: everything but the hosts and ports carried over.
fn redirected(config: &Config, to: &Redirect) -> Config {
    let mut out = Config::new();
    out.host(&to.host).port(to.port);
    if let Some(user) = config.get_user() {
        out.user(user);
    }
    if let Some(password) = config.get_password() {
        out.password(password);
    }
    if let Some(dbname) = config.get_dbname() {
        out.dbname(dbname);
    }
    if let Some(options) = config.get_options() {
        out.options(options);
    }
    if let Some(name) = config.get_application_name() {
        out.application_name(name);
    }
    if let Some(timeout) = config.get_connect_timeout() {
        out.connect_timeout(*timeout);
    }
    out.ssl_mode(config.get_ssl_mode());
    out
}

/// One component's connection.
pub struct Connection {
    config: Config,
    provision: bool,
    provisioned: std::sync::atomic::AtomicBool,
    client: tokio::sync::Mutex<Option<Arc<Client>>>,
}

impl Connection {
    pub fn new(component: &Component) -> Result<Connection, String> {
        Ok(Connection {
            config: config(component)?,
            provision: component.redirect.as_ref().is_some_and(|r| r.provision),
            provisioned: Default::default(),
            client: tokio::sync::Mutex::new(None),
        })
    }

    /// The client, connecting first if there is none or the server closed it.
    pub async fn client(&self) -> Result<Arc<Client>, String> {
        let mut slot = self.client.lock().await;
        if let Some(client) = slot.as_ref().filter(|c| !c.is_closed()) {
            return Ok(client.clone());
        }
        // Made before the first connection (which would otherwise fail, and the server log
        // it as FATAL), and again should they be gone (a server started afresh).
        if self.provision && !self.provisioned.load(std::sync::atomic::Ordering::Relaxed) {
            crate::pgserver::provision::create(&self.config).await?;
            self.provisioned
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        let (client, connection) = match self.config.connect(NoTls).await {
            Err(err) if self.provision && crate::pgserver::provision::missing(&err) => {
                crate::pgserver::provision::create(&self.config).await?;
                self.config.connect(NoTls).await
            }
            other => other,
        }
        .map_err(|err| pg_error(&err))?;
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!("postgresql: connection ended: {err}");
            }
        });
        let client = Arc::new(client);
        *slot = Some(client.clone());
        Ok(client)
    }

    pub async fn close(&self) {
        *self.client.lock().await = None;
    }
}

/// pgx's wording of a server error (`ERROR: relation "x" does not exist (SQLSTATE 42P01)`);
/// other errors as tokio-postgres says them.
pub fn pg_error(err: &tokio_postgres::Error) -> String {
    match err.as_db_error() {
        Some(db) => format!(
            "{}: {} (SQLSTATE {})",
            db.severity(),
            db.message(),
            db.code().code()
        ),
        None => err.to_string(),
    }
}

/// A parameter in text format: the server parses it as the statement's parameter type, as
/// pgx does with a Go string (so `"42"` fills an `integer`, a JSON text a `jsonb`).
#[derive(Debug)]
pub struct TextParam(pub Option<String>);

impl ToSql for TextParam {
    fn to_sql(
        &self,
        _: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match &self.0 {
            None => Ok(IsNull::Yes),
            Some(text) => {
                out.extend_from_slice(text.as_bytes());
                Ok(IsNull::No)
            }
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    fn encode_format(&self, _: &Type) -> Format {
        Format::Text
    }

    to_sql_checked!();
}
