//! The kustomize writer: one file per app (its ConfigMap, Deployment, Service), `redis.yaml`,
//! `namespace.yaml`, one file per Dapr resource under `dapr/`, and `kustomization.yaml`
//! listing them. `.env` values go to `secrets/<app>.env` (git-ignored), from which kustomize's
//! secretGenerator makes each app's Secret; they are never written into a manifest.

use std::path::Path;

use serde::Serialize;

use super::{ExportError, Plan};

const HEADER: &str =
    "# Written by `daca export k8s` from daca.yaml; edit daca.yaml and export again.\n";

/// Every file of the export, relative path → text, in a stable order.
pub fn render(plan: &Plan) -> Result<Vec<(String, String)>, ExportError> {
    let mut files: Vec<(String, String)> = Vec::new();
    let mut resources: Vec<String> = Vec::new();
    let mut add = |name: String, docs: Vec<String>, resources: &mut Vec<String>| {
        resources.push(name.clone());
        files.push((name, format!("{HEADER}{}", docs.join("---\n"))));
    };
    if let Some(namespace) = &plan.namespace {
        add(
            "namespace.yaml".into(),
            vec![yaml(namespace)?],
            &mut resources,
        );
    }
    if let Some((service, statefulset)) = &plan.redis {
        add(
            "redis.yaml".into(),
            vec![yaml(service)?, yaml(statefulset)?],
            &mut resources,
        );
    }
    let mut secrets = Vec::new();
    for app in &plan.apps {
        let mut docs = Vec::new();
        if let Some(config) = &app.config {
            docs.push(yaml(config)?);
        }
        docs.push(yaml(&app.deployment)?);
        if let Some(service) = &app.service {
            docs.push(yaml(service)?);
        }
        add(format!("{}.yaml", app.id), docs, &mut resources);
        if let Some(env) = &app.secret_env {
            secrets.push((app.id.clone(), env.clone()));
        }
    }
    secrets.extend(plan.dapr_secrets.clone());
    for (stem, doc) in &plan.dapr {
        add(
            format!("dapr/{stem}.yaml"),
            vec![yaml(doc)?],
            &mut resources,
        );
    }
    let namespace = plan
        .namespace
        .as_ref()
        .and_then(|n| n.metadata.name.clone())
        .unwrap_or_else(|| "default".into());
    files.push((
        "kustomization.yaml".into(),
        kustomization(&namespace, &resources, &secrets),
    ));
    if !secrets.is_empty() {
        files.push((
            ".gitignore".into(),
            "# .env values of the apps and the components' secrets: keep them out of git.\nsecrets/\n".into(),
        ));
        for (id, env) in secrets {
            files.push((format!("secrets/{id}.env"), env));
        }
    }
    Ok(files)
}

fn kustomization(namespace: &str, resources: &[String], secrets: &[(String, String)]) -> String {
    let mut out = format!(
        "{HEADER}apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: {namespace}\nresources:\n"
    );
    for resource in resources {
        out.push_str(&format!("  - {resource}\n"));
    }
    if !secrets.is_empty() {
        out.push_str("secretGenerator:\n");
        for (id, _) in secrets {
            out.push_str(&format!(
                "  - name: {id}-secrets\n    envs: [secrets/{id}.env]\n    options:\n      disableNameSuffixHash: true\n"
            ));
        }
    }
    out
}

/// One object as YAML (serde-saphyr quotes what Kubernetes would misread: `on`, `yes`, `0755`).
fn yaml(value: &impl Serialize) -> Result<String, ExportError> {
    serde_saphyr::to_string(value).map_err(|e| ExportError::Read {
        file: "(export)".into(),
        message: format!("cannot write YAML: {e}"),
    })
}

/// Writes the files under `dir`. An earlier export there is removed first (its YAML files and
/// `dapr/`, known by the header daca writes), so an app dropped from daca.yaml leaves no file.
pub fn write(dir: &Path, files: &[(String, String)]) -> Result<(), ExportError> {
    clear_previous(dir);
    for (name, text) in files {
        let path = dir.join(name);
        let failed = |source| ExportError::Write {
            file: path.display().to_string(),
            source,
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(failed)?;
        }
        std::fs::write(&path, text).map_err(failed)?;
    }
    Ok(())
}

fn clear_previous(dir: &Path) {
    let ours =
        |path: &Path| std::fs::read_to_string(path).is_ok_and(|text| text.starts_with(HEADER));
    if !ours(&dir.join("kustomization.yaml")) {
        return;
    }
    for folder in [dir.to_path_buf(), dir.join("dapr")] {
        for path in std::fs::read_dir(&folder)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
        {
            if path.extension().is_some_and(|e| e == "yaml") && ours(&path) {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}
