//! The role and database a component names, made on daca's own server when missing (the
//! official image makes `POSTGRES_USER` and `POSTGRES_DB` the same way), and the readiness
//! check the supervisor runs.

use tokio_postgres::error::SqlState;
use tokio_postgres::{Config, NoTls};

/// Whether connecting failed because the role or the database is not there yet.
pub fn missing(err: &tokio_postgres::Error) -> bool {
    matches!(
        err.code(),
        Some(&SqlState::INVALID_CATALOG_NAME)
            | Some(&SqlState::INVALID_AUTHORIZATION_SPECIFICATION)
    )
}

/// Makes `wanted`'s role (able to log in; the server trusts loopback, so no password) and
/// its database, owned by that role, where they are missing.
pub async fn create(wanted: &Config) -> Result<(), String> {
    let role = wanted.get_user().unwrap_or(super::SUPERUSER).to_string();
    // libpq's default database is the user's name.
    let database = wanted.get_dbname().unwrap_or(&role).to_string();
    let mut admin = superuser(wanted);
    admin.dbname("postgres");
    let (client, connection) = admin
        .connect(NoTls)
        .await
        .map_err(|e| crate::postgres::pg_error(&e))?;
    tokio::spawn(connection);
    let exists = |sql: &'static str, name: String| {
        let client = &client;
        async move {
            client
                .query_opt(sql, &[&name])
                .await
                .map(|row| row.is_some())
                .map_err(|e| crate::postgres::pg_error(&e))
        }
    };
    let tolerated = |err: tokio_postgres::Error| match err.code() {
        // Made meanwhile by another component's first connection.
        Some(&SqlState::DUPLICATE_OBJECT) | Some(&SqlState::DUPLICATE_DATABASE) => Ok(0),
        _ => Err(crate::postgres::pg_error(&err)),
    };
    if !exists("SELECT 1 FROM pg_roles WHERE rolname = $1", role.clone()).await? {
        let sql = format!("CREATE ROLE {} LOGIN", quoted(&role));
        client.execute(&sql, &[]).await.or_else(tolerated)?;
        tracing::info!("postgres: created role {role}");
    }
    if !exists(
        "SELECT 1 FROM pg_database WHERE datname = $1",
        database.clone(),
    )
    .await?
    {
        let sql = format!(
            "CREATE DATABASE {} OWNER {}",
            quoted(&database),
            quoted(&role)
        );
        client.execute(&sql, &[]).await.or_else(tolerated)?;
        tracing::info!("postgres: created database {database} (owner {role})");
    }
    Ok(())
}

/// The superuser at the address of `config`.
fn superuser(config: &Config) -> Config {
    let mut admin = Config::new();
    for host in config.get_hosts() {
        if let tokio_postgres::config::Host::Tcp(host) = host {
            admin.host(host);
        }
    }
    for port in config.get_ports() {
        admin.port(*port);
    }
    admin.user(super::SUPERUSER);
    if let Some(timeout) = config.get_connect_timeout() {
        admin.connect_timeout(*timeout);
    }
    admin
}

/// An identifier as SQL quotes it.
fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Whether daca's server on 127.0.0.1:`port` takes queries (it accepts connections while it
/// still starts up, refusing them with "the database system is starting up").
pub async fn ready(port: u16) -> bool {
    let mut config = Config::new();
    config
        .host("127.0.0.1")
        .port(port)
        .user(super::SUPERUSER)
        .dbname("postgres");
    let Ok((client, connection)) = config.connect(NoTls).await else {
        // Each refused attempt is a FATAL line in the server's log: not every few ms.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        return false;
    };
    tokio::spawn(connection);
    client.simple_query("SELECT 1").await.is_ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn identifiers_are_quoted_as_sql_does() {
        assert_eq!(super::quoted("labdb"), "\"labdb\"");
        assert_eq!(super::quoted("we\"ird"), "\"we\"\"ird\"");
    }
}
