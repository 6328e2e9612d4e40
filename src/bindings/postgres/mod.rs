//! `bindings.postgresql`: an output binding that runs SQL as components-contrib's does
//! (`exec`, `query`, `close`), on tokio-postgres. `sql` and `params` (a JSON array) come in the
//! request's metadata; `query` answers the rows as arrays of values, in column order.
//!
//! Parameters go to the server as text in the types the prepared statement asks for, so
//! `"2024-01-01"` fills a `date` and `42` an `integer`, as pgx encodes Go values; result cells
//! are decoded per column type (`cells.rs`).

mod cells;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Instant, SystemTime};

use serde_json::Value;
use tokio_postgres::types::ToSql;

use super::{BindingError, OutputRequest, OutputResponse};
use crate::components::Component;
use crate::postgres::{Connection, TextParam, pg_error};

pub const OPERATIONS: &[&str] = &["exec", "query", "close"];

pub struct PostgresBinding {
    connection: Connection,
    closed: AtomicBool,
}

impl PostgresBinding {
    pub fn new(component: &Component) -> Result<PostgresBinding, String> {
        Ok(PostgresBinding {
            connection: Connection::new(component)?,
            closed: AtomicBool::new(false),
        })
    }

    /// One operation; `close` answers nothing (daprd's 204).
    pub async fn invoke(
        &self,
        request: OutputRequest,
    ) -> Result<Option<OutputResponse>, BindingError> {
        if request.operation == "close" {
            self.closed.store(true, Ordering::Relaxed);
            self.connection.close().await;
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
        let client = self
            .connection
            .client()
            .await
            .map_err(|err| BindingError::new(format!("unable to connect to the DB: {err}")))?;
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
