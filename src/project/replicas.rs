//! `replicas:` as instances. An app with `replicas: 3` runs as three apps to the owner: the
//! app itself, then `<id>-2` and `<id>-3`, each with its own process, pod and sidecar, all with
//! the app's Dapr app-id (`AppSpec::app_id`). So everything that runs per app runs per
//! instance, while what Dapr keys by app-id sees one app: invocation turns through the
//! instances, their subscribers share one consumer group, actors are placed on each as a host,
//! and state keys carry the app-id. The expansion is done on each manifest the owner applies,
//! so an edit of `replicas:` starts or stops only the instances it adds or drops.

use crate::manifest::{AppId, AppSpec, Manifest};

/// What `daca up` was told about replicas: `--replicas N` runs at most N of each app.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReplicaCap(pub Option<u16>);

impl ReplicaCap {
    /// How many instances of `app` run.
    fn count(self, app: &AppSpec) -> u16 {
        self.0
            .map_or(app.replicas, |cap| app.replicas.min(cap.max(1)))
    }
}

/// The name of instance `n` (from 2) of `app`.
fn instance_name(app: &AppId, n: u16) -> String {
    format!("{app}-{n}")
}

/// Every name the instances of `manifest`'s apps will have (the log's column width).
pub fn names(manifest: &Manifest, cap: ReplicaCap) -> Vec<String> {
    manifest
        .apps
        .iter()
        .flat_map(|app| {
            let more = (2..=cap.count(app)).map(|n| instance_name(&app.id, n));
            std::iter::once(app.id.to_string()).chain(more)
        })
        .collect()
}

/// `manifest` with each app's added instances after it. An app whose instances could not
/// each have a pod (`pods(app)` false: every instance would listen on the machine's `port`)
/// runs one, and says so.
pub fn expand(
    mut manifest: Manifest,
    cap: ReplicaCap,
    pods: impl Fn(&AppSpec) -> bool,
) -> Manifest {
    let mut apps = Vec::with_capacity(manifest.apps.len());
    let mut instances: Vec<(AppId, Vec<AppId>)> = Vec::new();
    for app in std::mem::take(&mut manifest.apps) {
        let mut count = cap.count(&app);
        if count > 1 && !pods(&app) {
            tracing::warn!(
                "{}: runs 1 of its {count} replicas: without a pod of its own, each would listen on port {} of this machine",
                app.id,
                app.process.port.map_or("-".into(), |p| p.to_string())
            );
            count = 1;
        }
        let added: Vec<AppSpec> = (2..=count).filter_map(|n| instance(&app, n)).collect();
        instances.push((app.id.clone(), added.iter().map(|a| a.id.clone()).collect()));
        apps.push(app);
        apps.extend(added);
    }
    // An app that depends on one with replicas waits for each of its instances.
    for app in &mut apps {
        let mut depends = Vec::new();
        for dependency in &app.supervision.depends_on {
            depends.push(dependency.clone());
            if let Some((_, added)) = instances.iter().find(|(id, _)| id == dependency) {
                depends.extend(added.iter().cloned());
            }
        }
        app.supervision.depends_on = depends;
    }
    manifest.apps = apps;
    manifest
}

/// Instance `n` of `app`: what the app is, but what only one instance may have stays with
/// the first (fixed host and sidecar ports, the Service names that lead to the app).
fn instance(app: &AppSpec, n: u16) -> Option<AppSpec> {
    let id = AppId::parse(&instance_name(&app.id, n))
        .map_err(|err| tracing::error!("{}: its instance {n} cannot run: {err}", app.id))
        .ok()?;
    let mut spec = app.clone();
    spec.id = id;
    spec.instance_of = Some(app.id.clone());
    spec.network.ports.clear();
    spec.network.names.clear();
    spec.network.service_ports.clear();
    spec.sidecar.http_port = None;
    spec.sidecar.grpc_port = None;
    Some(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(yaml: &str) -> Manifest {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("daca.yaml");
        std::fs::write(&file, yaml).unwrap();
        crate::manifest::load(&file).unwrap()
    }

    const TWO: &str = "name: p\napps:\n  - id: api\n    command: [python3]\n    port: 8000\n    replicas: 3\n    ports: [\"9000:8000\"]\n    dapr_http_port: 3600\n    names: [api-svc]\n  - id: web\n    command: [python3]\n    depends_on: [api]\n";

    #[test]
    fn instances_follow_their_app_and_keep_its_app_id() {
        let expanded = expand(manifest(TWO), ReplicaCap::default(), |_| true);
        let ids: Vec<&str> = expanded.apps.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(ids, ["api", "api-2", "api-3", "web"]);
        let third = expanded.app("api-3").unwrap();
        assert_eq!(third.app_id().as_str(), "api");
        assert_eq!(expanded.app("api").unwrap().app_id().as_str(), "api");
        // The first keeps what only one may have.
        assert!(third.network.ports.is_empty() && third.network.names.is_empty());
        assert_eq!(third.sidecar.http_port, None);
        assert_eq!(expanded.app("api").unwrap().sidecar.http_port, Some(3600));
        let web = expanded.app("web").unwrap();
        let depends: Vec<&str> = web
            .supervision
            .depends_on
            .iter()
            .map(|d| d.as_str())
            .collect();
        assert_eq!(depends, ["api", "api-2", "api-3"]);
    }

    #[test]
    fn a_cap_or_no_pod_runs_fewer() {
        let one = expand(manifest(TWO), ReplicaCap(Some(1)), |_| true);
        assert_eq!(one.apps.len(), 2);
        let two = expand(manifest(TWO), ReplicaCap(Some(2)), |_| true);
        assert_eq!(two.apps.len(), 3);
        assert_eq!(
            names(&manifest(TWO), ReplicaCap(Some(2))),
            ["api", "api-2", "web"]
        );
        let hosted = expand(manifest(TWO), ReplicaCap::default(), |_| false);
        assert_eq!(hosted.apps.len(), 2);
    }
}
