//! `bindings.postgresql`: an output binding that runs SQL as components-contrib's does
//! (`exec`, `query`, `close`), on tokio-postgres. `sql` and `params` (a JSON array) come in the
//! request's metadata; `query` answers the rows as arrays of values, in column order.
//!
//! Parameters go to the server as text in the types the prepared statement asks for, so
//! `"2024-01-01"` fills a `date` and `42` an `integer`, as pgx encodes Go values; result cells
//! are decoded per column type (`cells.rs`).

mod cells;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use bytes::BytesMut;
use serde_json::Value;
use tokio_postgres::types::{Format, IsNull, ToSql, Type, to_sql_checked};
use tokio_postgres::{Client, Config, NoTls};

use super::{BindingError, OutputRequest, OutputResponse};
use crate::components::Component;

pub const OPERATIONS: &[&str] = &["exec", "query", "close"];

/// How long connecting may take (components-contrib's `timeout` default, 20 s).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

pub struct PostgresBinding {
    config: Config,
    client: tokio::sync::Mutex<Option<Arc<Client>>>,
    closed: AtomicBool,
}

/// The connection string of a component, checked; the message never repeats the string (it
/// usually holds a password).
pub fn config(component: &Component) -> Result<Config, String> {
    let text = component.get("connectionString").unwrap_or_default();
    let mut config: Config = text
        .parse()
        .map_err(|err| format!("invalid `connectionString`: {err}"))?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    Ok(config)
}

impl PostgresBinding {
    pub fn new(component: &Component) -> Result<PostgresBinding, String> {
        Ok(PostgresBinding {
            config: config(component)?,
            client: tokio::sync::Mutex::new(None),
            closed: AtomicBool::new(false),
        })
    }

    /// The connection, made on first use and again after the server closed it.
    async fn client(&self) -> Result<Arc<Client>, BindingError> {
        let mut slot = self.client.lock().await;
        if let Some(client) = slot.as_ref().filter(|c| !c.is_closed()) {
            return Ok(client.clone());
        }
        let (client, connection) = self.config.connect(NoTls).await.map_err(|err| {
            BindingError::new(format!("unable to connect to the DB: {}", pg_error(&err)))
        })?;
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!("bindings.postgresql: connection ended: {err}");
            }
        });
        let client = Arc::new(client);
        *slot = Some(client.clone());
        Ok(client)
    }

    /// One operation; `close` answers nothing (daprd's 204).
    pub async fn invoke(
        &self,
        request: OutputRequest,
    ) -> Result<Option<OutputResponse>, BindingError> {
        if request.operation == "close" {
            self.closed.store(true, Ordering::Relaxed);
            *self.client.lock().await = None;
            return Ok(None);
        }
        if self.closed.load(Ordering::Relaxed) {
            return Err(BindingError::new("component is closed"));
        }
        let sql = request
            .metadata
            .get("sql")
            .filter(|s| !s.is_empty())
            .ok_or_else(|| BindingError::new("required metadata not set: sql"))?;
        let params = params(request.metadata.get("params").map(String::as_str))?;
        let started = (SystemTime::now(), Instant::now());
        let mut response = OutputResponse::default();
        let metadata = &mut response.metadata;
        metadata.insert("operation".into(), request.operation.clone());
        metadata.insert("sql".into(), sql.clone());
        metadata.insert("start-time".into(), rfc3339(started.0));
        let client = self.client().await?;
        let failed = |err: tokio_postgres::Error| {
            BindingError::new(format!("error executing query: {}", pg_error(&err)))
        };
        let statement = client.prepare(sql).await.map_err(failed)?;
        let args = params.iter().map(|p| p as &(dyn ToSql + Sync));
        if request.operation == "exec" {
            let affected = client.execute_raw(&statement, args).await.map_err(failed)?;
            metadata.insert("rows-affected".into(), affected.to_string());
        } else {
            let rows: Vec<tokio_postgres::Row> = client
                .query(&statement, &args.collect::<Vec<_>>())
                .await
                .map_err(failed)?;
            let rows = rows
                .iter()
                .map(cells::row)
                .collect::<Result<Vec<Value>, String>>()
                .map_err(|err| BindingError::new(format!("error reading result: {err}")))?;
            response.data = serde_json::to_vec(&rows).unwrap_or_default().into();
        }
        let metadata = &mut response.metadata;
        metadata.insert("end-time".into(), rfc3339(SystemTime::now()));
        let took = i64::try_from(started.1.elapsed().as_nanos()).unwrap_or(i64::MAX);
        metadata.insert(
            "duration".into(),
            crate::timespec::go_string(crate::timespec::GoDuration(took)),
        );
        Ok(Some(response))
    }
}

/// pgx's wording of a server error (`ERROR: relation "x" does not exist (SQLSTATE 42P01)`);
/// other errors as tokio-postgres says them.
fn pg_error(err: &tokio_postgres::Error) -> String {
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

fn rfc3339(at: SystemTime) -> String {
    jiff::Timestamp::try_from(at).map_or_else(|_| String::new(), |t| t.to_string())
}

/// `params`: a JSON array; each value is sent as text (null as SQL NULL).
fn params(text: Option<&str>) -> Result<Vec<TextParam>, BindingError> {
    let Some(text) = text.filter(|t| !t.is_empty()) else {
        return Ok(Vec::new());
    };
    let values: Vec<Value> = serde_json::from_str(text).map_err(|err| {
        BindingError::new(format!(
            "invalid metadata property params: failed to unserialize into an array: {err}"
        ))
    })?;
    Ok(values
        .into_iter()
        .map(|value| {
            TextParam(match value {
                Value::Null => None,
                Value::String(text) => Some(text),
                Value::Bool(b) => Some(b.to_string()),
                Value::Number(n) => Some(n.to_string()),
                other => Some(other.to_string()),
            })
        })
        .collect())
}

/// A parameter in text format: the server parses it as the statement's parameter type.
#[derive(Debug)]
struct TextParam(Option<String>);

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
