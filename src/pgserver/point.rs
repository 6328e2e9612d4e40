//! Components written for a cluster reach the project's PostgreSQL: a `connectionString`
//! whose host is a Kubernetes service name (or the `localhost:5432` of Dapr's quickstarts)
//! is redirected to it, with a notice that names the host but never the string (it
//! usually holds a password).

use super::PgPlan;
use crate::components::{Component, ComponentKind};
use crate::postgres::Redirect;

/// Redirects the PostgreSQL components of `components` to `plan`'s server where they mean
/// the project's; returns the notices to print. Without a server, a cluster name is only
/// pointed out, since nothing here can answer it.
pub fn point(components: &mut [Component], plan: Option<&PgPlan>) -> Vec<String> {
    let mut notices = Vec::new();
    for component in components.iter_mut().filter(|c| {
        matches!(
            c.kind,
            ComponentKind::StatePostgres | ComponentKind::BindingsPostgres
        )
    }) {
        let Ok(config) =
            crate::postgres::parse_config(component.get("connectionString").unwrap_or_default())
        else {
            continue; // the metadata checks say what is wrong with it
        };
        let host = match config.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
            Some(tokio_postgres::config::Host::Unix(_)) => continue,
            None => "localhost".to_string(),
        };
        let port = config
            .get_ports()
            .first()
            .copied()
            .unwrap_or(super::DEFAULT_PORT);
        let cluster = crate::components::stores::is_cluster_name(&host);
        let quickstart = crate::components::stores::is_local(&host) && port == super::DEFAULT_PORT;
        let name = &component.name;
        match plan.and_then(|p| Some((p, p.address()?))) {
            Some((plan, (to_host, to_port))) if cluster || quickstart => {
                if (to_host.as_str(), to_port) == (host.as_str(), port) {
                    continue;
                }
                notices.push(format!(
                    "component `{name}`: connectionString's host `{host}:{port}` {}; using the project's PostgreSQL at {to_host}:{to_port}",
                    if cluster { "is a Kubernetes name" } else { "is the default address" }
                ));
                component.redirect = Some(Redirect {
                    host: to_host,
                    port: to_port,
                    provision: plan.is_managed(),
                });
            }
            None if cluster => notices.push(format!(
                "component `{name}`: connectionString's host `{host}` is a Kubernetes name, and this project runs no PostgreSQL\n  hint: add `postgres: {{}}` to daca.yaml for one, or `postgres: {{ url: ... }}` for yours"
            )),
            _ => {}
        }
    }
    notices
}
