//! An edited daca.yaml as the smallest set of steps: a pure function of the manifest that runs
//! and the one that was saved (kube's reconcile: desired against actual, nothing else).
//!
//! An app is stopped and started again only when its process would run differently (its
//! folder, command, image, env, ports or protocol); what only daca reads (readiness, restart
//! policy, grace periods, the sidecar's body limit, reload settings, watch globs) is applied to
//! the running app.

use crate::manifest::{AppId, AppSpec, Manifest};

/// One step of applying an edit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// A change only a new `daca up` can apply; it is reported and nothing else happens for it.
    Unapplied(String),
    /// Stop the app and forget it (its sidecar too). Stops come first, dependents first.
    Stop(AppId),
    /// Make the app from the new manifest and start it, after its dependencies; its sidecar
    /// keeps its ports when it had them and the edit left them alone.
    Start(AppId),
    /// Run the app's new supervision settings from its next start on.
    Supervise(AppId),
    /// Give the app's sidecar its new body limit.
    Resize(AppId),
    /// Give the app's reload driver its new settings.
    Reconfigure(AppId),
    /// Read the resources folder again (it moved, appeared or went).
    ReloadComponents,
    /// Watch what the new manifest names (apps, folders, globs changed).
    Rewatch,
}

/// The steps from `current` to `next`, in the order they must run.
pub fn diff(current: &Manifest, next: &Manifest) -> Vec<Action> {
    let mut actions = Vec::new();
    if current.name != next.name {
        actions.push(Action::Unapplied(format!(
            "the project's name (`{}` → `{}`) applies at the next `daca up`",
            current.name, next.name
        )));
    }
    if current.steps != next.steps {
        actions.push(Action::Unapplied(
            "`steps:` run when daca starts: the edited ones run at the next `daca up`".into(),
        ));
    }
    if current.namespace != next.namespace {
        actions.push(Action::Unapplied(
            "`namespace:` changes apply at the next `daca up`".into(),
        ));
    }
    if current.redis != next.redis {
        actions.push(Action::Unapplied(
            "`redis:` changes apply at the next `daca up` (the running apps keep their Redis)"
                .into(),
        ));
    }
    let replaced = |app: &AppSpec| {
        next.app(app.id.as_str())
            .is_some_and(|n| runs_differently(app, n))
    };
    // Stops in reverse start order: an app stops before what it depends on.
    for app in current.apps.iter().rev() {
        if next.app(app.id.as_str()).is_none() || replaced(app) {
            actions.push(Action::Stop(app.id.clone()));
        }
    }
    for app in &next.apps {
        let Some(old) = current.app(app.id.as_str()) else {
            actions.push(Action::Start(app.id.clone()));
            continue;
        };
        if runs_differently(old, app) {
            actions.push(Action::Start(app.id.clone()));
            continue;
        }
        if old.supervision != app.supervision {
            actions.push(Action::Supervise(app.id.clone()));
        }
        if old.sidecar.max_body_size != app.sidecar.max_body_size {
            actions.push(Action::Resize(app.id.clone()));
        }
        if old.reload != app.reload {
            actions.push(Action::Reconfigure(app.id.clone()));
        }
    }
    if current.resources != next.resources {
        actions.push(Action::ReloadComponents);
    }
    if watches_differently(current, next) {
        actions.push(Action::Rewatch);
    }
    actions
}

/// Whether `next` needs a new process: something the process is made of, or sees, changed.
fn runs_differently(old: &AppSpec, next: &AppSpec) -> bool {
    old.dir != next.dir
        || old.process != next.process
        || old.sidecar.http_port != next.sidecar.http_port
        || old.sidecar.grpc_port != next.sidecar.grpc_port
        // A pod's host ports are its pod's: a new pod, so a new app container in it.
        || old.network != next.network
}

fn watches_differently(current: &Manifest, next: &Manifest) -> bool {
    let watched = |m: &Manifest| -> Vec<_> {
        m.apps
            .iter()
            .map(|a| (a.id.clone(), a.dir.clone(), a.watch.clone()))
            .collect()
    };
    current.resources != next.resources || watched(current) != watched(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// A manifest in a folder with `web` and `api` folders.
    fn manifest(text: &str) -> Manifest {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        crate::manifest::parse(&dir.join("daca.yaml"), text).unwrap()
    }

    const BASE: &str = "name: p\napps:\n  - id: api\n    dir: ./src\n    command: [python3, api.py]\n    port: 9001\n  - id: web\n    dir: ./src\n    command: [python3, web.py]\n    port: 9002\n    depends_on: [api]\n";

    fn id(raw: &str) -> AppId {
        AppId::parse(raw).unwrap()
    }

    fn edited(from: &str, to: &str) -> Vec<Action> {
        assert!(BASE.contains(from), "{from}");
        diff(&manifest(BASE), &manifest(&BASE.replacen(from, to, 1)))
    }

    #[test]
    fn the_same_manifest_changes_nothing() {
        assert_eq!(diff(&manifest(BASE), &manifest(BASE)), []);
    }

    #[test]
    fn a_new_command_restarts_only_that_app() {
        let actions = edited("[python3, web.py]", "[python3, -u, web.py]");
        assert_eq!(actions, [Action::Stop(id("web")), Action::Start(id("web"))]);
    }

    #[test]
    fn new_host_ports_or_network_restart_only_that_app() {
        for edit in [
            "    port: 9002\n    ports: [\"18002:9002\"]\n",
            "    port: 9002\n    network: host\n",
        ] {
            let actions = edited("    port: 9002\n", edit);
            assert_eq!(
                actions,
                [Action::Stop(id("web")), Action::Start(id("web"))],
                "{edit}"
            );
        }
    }

    #[test]
    fn added_and_removed_apps_start_and_stop_and_are_watched() {
        let added = format!("{BASE}  - id: job\n    dir: ./src\n    command: [python3, job.py]\n");
        assert_eq!(
            diff(&manifest(BASE), &manifest(&added)),
            [Action::Start(id("job")), Action::Rewatch]
        );
        assert_eq!(
            diff(&manifest(&added), &manifest(BASE)),
            [Action::Stop(id("job")), Action::Rewatch]
        );
    }

    #[test]
    fn stops_run_dependents_first_and_starts_in_dependency_order() {
        let both = edited("name: p\n", "name: p\nredis: { provider: embedded }\n");
        assert!(matches!(&both[..], [Action::Unapplied(m)] if m.contains("redis")));
        let text = BASE
            .replace("[python3, api.py]", "[python3, api2.py]")
            .replace("[python3, web.py]", "[python3, web2.py]");
        assert_eq!(
            diff(&manifest(BASE), &manifest(&text)),
            [
                Action::Stop(id("web")),
                Action::Stop(id("api")),
                Action::Start(id("api")),
                Action::Start(id("web")),
            ]
        );
    }

    #[test]
    fn watch_globs_re_arm_the_watcher_and_restart_nothing() {
        let actions = edited(
            "    port: 9002\n",
            "    port: 9002\n    watch: [\"*.py\"]\n",
        );
        assert_eq!(actions, [Action::Rewatch]);
        let ignored = edited("    port: 9001\n", "    port: 9001\n    ignore: [data/]\n");
        assert_eq!(ignored, [Action::Rewatch]);
    }

    #[test]
    fn what_only_daca_reads_is_applied_to_the_running_app() {
        let health = edited("    port: 9002\n", "    port: 9002\n    health: /healthz\n");
        assert_eq!(health, [Action::Supervise(id("web"))]);
        let grace = edited("    port: 9001\n", "    port: 9001\n    grace_period: 1s\n");
        assert_eq!(grace, [Action::Supervise(id("api"))]);
        let body = edited(
            "    port: 9001\n",
            "    port: 9001\n    max_body_size: 1Mi\n",
        );
        assert_eq!(body, [Action::Resize(id("api"))]);
        let setup = edited(
            "    port: 9001\n",
            "    port: 9001\n    setup: [uv, sync]\n",
        );
        assert_eq!(setup, [Action::Reconfigure(id("api"))]);
        let mode = edited("    port: 9001\n", "    port: 9001\n    reload: none\n");
        assert_eq!(mode, [Action::Reconfigure(id("api"))]);
    }

    #[test]
    fn what_the_process_sees_restarts_it() {
        for (from, to) in [
            (
                "    port: 9001\n",
                "    port: 9001\n    env: { A: \"1\" }\n",
            ),
            ("    port: 9001\n", "    port: 9003\n"),
            (
                "    port: 9001\n",
                "    port: 9001\n    dapr_http_port: 3999\n",
            ),
            (
                "    port: 9001\n",
                "    port: 9001\n    app_protocol: grpc\n",
            ),
        ] {
            assert_eq!(
                edited(from, to),
                [Action::Stop(id("api")), Action::Start(id("api"))],
                "{to}"
            );
        }
    }

    #[test]
    fn a_new_resources_folder_reloads_the_components_and_is_watched() {
        let actions = edited("name: p\n", "name: p\nresources: ./src\n");
        assert_eq!(actions, [Action::ReloadComponents, Action::Rewatch]);
    }
}
