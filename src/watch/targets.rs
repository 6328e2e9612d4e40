//! What a project's watcher watches (every app's folder, the manifest and the files it was
//! read from, the resources folder, the steps' files), and which `on_change:` steps a change
//! of an app's files triggers.

use std::path::PathBuf;

use super::{Change, Filter, Scope, Target, Watched, normalize};
use crate::manifest::Manifest;

/// The app's `on_change:` steps that `change` triggers: those with no trigger, and those a
/// changed file matches (globs relative to the app's folder).
pub fn on_change_due<'a>(
    app: &'a crate::manifest::AppSpec,
    change: &Change,
) -> Vec<&'a crate::manifest::OnChange> {
    app.reload
        .on_change
        .iter()
        .filter(|step| {
            if step.trigger.is_empty() {
                return true;
            }
            let dir = normalize(&app.dir);
            let matcher = super::filter::ruleset(&dir, &step.trigger);
            change.paths.iter().any(|path| {
                path.strip_prefix(&dir).is_ok()
                    && matcher.matched_path_or_any_parents(path, false).is_ignore()
            })
        })
        .collect()
}

/// Whether nothing of the app's folder reaches its container: a ready-made image (a tracing
/// backend, a database) with no mount. A save in the project has nothing to reload in it.
fn runs_nothing_of_its_folder(app: &crate::manifest::AppSpec) -> bool {
    use crate::manifest::{ImageSource, MountChoice};
    matches!(app.process.image, Some(ImageSource::Image(_)))
        && !matches!(app.process.mount, MountChoice::At(_))
}

/// What `daca up` watches in a project: every app's folder, the manifest, the resources
/// folder. `outputs` are files daca itself writes (its redirected stdout and stderr).
pub fn targets(manifest: &Manifest, outputs: &[PathBuf]) -> Vec<Watched> {
    let file = normalize(&manifest.file);
    let own_reload = "a file with its own reload (not the app's)";
    // A Tiltfile and the manifests it names (or a folder's manifests) reconcile the project,
    // as daca.yaml does: they never reload the app whose folder they are in.
    let sources: Vec<PathBuf> = match manifest.file.is_dir() {
        true => manifest.read_from.iter().map(|f| normalize(f)).collect(),
        false => std::iter::once(file.clone())
            .chain(manifest.read_from.iter().map(|f| normalize(f)))
            .collect(),
    };
    let mut excluded: Vec<(PathBuf, String)> = sources
        .iter()
        .map(|f| (f.clone(), own_reload.to_string()))
        .collect();
    excluded.push((
        manifest.root.join(".daca"),
        "daca's state folder".to_string(),
    ));
    if let Some(resources) = &manifest.resources {
        excluded.push((
            resources.clone(),
            "the resources folder, which has its own reload".into(),
        ));
    }
    for output in outputs {
        let why = "daca's own output (its stdout or stderr is written there)";
        excluded.push((output.clone(), why.to_string()));
    }
    let mut targets: Vec<Watched> = manifest
        .apps
        .iter()
        .filter(|app| !runs_nothing_of_its_folder(app))
        .map(|app| Watched {
            target: Target::App(app.id.clone()),
            scope: Scope::Folder(Filter::new(
                &app.dir,
                &manifest.root,
                excluded.clone(),
                &app.watch.ignore,
                &app.watch.only,
            )),
        })
        .collect();
    for step in manifest.steps.iter().filter(|s| !s.watch.is_empty()) {
        targets.push(Watched {
            target: Target::Step(step.name.clone()),
            scope: Scope::Folder(Filter::new(
                &step.dir,
                &manifest.root,
                excluded.clone(),
                &[],
                &step.watch,
            )),
        });
    }
    let mut seen = Vec::new();
    for source in sources {
        if !seen.contains(&source) {
            seen.push(source.clone());
            targets.push(Watched {
                target: Target::Manifest,
                scope: Scope::File(source),
            });
        }
    }
    if let Some(resources) = &manifest.resources {
        targets.push(Watched {
            target: Target::Resources,
            scope: Scope::Yaml(normalize(resources)),
        });
    }
    targets
}
