//! What `daca up` runs in a folder: its daca.yaml; else its Tiltfile; else its Kubernetes
//! manifests, as written for the cluster. The last two go through the reader of
//! `daca init --from-tilt`/`--from-k8s` ([`crate::export::import`]) into a project held in
//! memory. Nothing is written into the user's folders: the Dapr resources the sidecars load and
//! the daca.yaml daca made of them (to look at, or to start one from) go under
//! `.daca/imported/`, and Secrets stay in memory.

use std::path::{Path, PathBuf};

use crate::error::Problem;
use crate::export::import::{self, Imported};
use crate::manifest::{self, Manifest};

/// Where an imported project's files go, under its folder.
const IMPORTED: &str = ".daca/imported";

/// A project ready to start, and what `daca up` says it read.
pub struct Loaded {
    pub manifest: Manifest,
    /// `read Tiltfile: 1 app, 3 Dapr resources, …` (none for a daca.yaml).
    pub summary: Option<String>,
    /// What the Tiltfile printed.
    pub notes: Vec<String>,
}

/// The file (or folder) to read when the command line names `file`: `file` itself when it was
/// named or exists, else the Tiltfile beside it, else its folder when that has Kubernetes
/// manifests.
pub fn locate(file: &Path, named: bool) -> PathBuf {
    if named || file.exists() {
        return file.to_path_buf();
    }
    let dir = file.parent().filter(|d| !d.as_os_str().is_empty());
    let dir = dir.unwrap_or(Path::new("."));
    if dir.join("Tiltfile").is_file() {
        return dir.join("Tiltfile");
    }
    match import::has_deployments(dir) {
        true => dir.to_path_buf(),
        false => file.to_path_buf(),
    }
}

/// Reads the project at `file` (a daca.yaml, a Tiltfile, or a folder of manifests).
pub fn load(file: &Path) -> crate::Result<Loaded> {
    if file.is_dir() {
        let root = std::path::absolute(file)?;
        let (docs, parts) = import::read_in_place(&root)?;
        let files = dedup(docs.iter().map(|(f, _)| f.clone()));
        let command = format!("daca up -d {}", file.display());
        let imported = import::import_documents(&root, docs, &parts, &command)?;
        let summary = summary(
            &format!("Kubernetes manifests in {}", file.display()),
            &imported,
            None,
        );
        let notes = imported.notes.clone();
        let manifest = in_memory(&root, &root, files, imported)?;
        return Ok(Loaded {
            manifest,
            summary: Some(summary),
            notes,
        });
    }
    if file.file_name().is_some_and(|n| n == "Tiltfile") {
        let tiltfile = std::path::absolute(file)?;
        let root = tiltfile.parent().map(Path::to_path_buf).unwrap_or_default();
        let read = crate::tilt::project::read(&root)?;
        let command = format!("daca up -d {}", root.display());
        let imported =
            import::import_documents(&root, read.documents.clone(), &read.parts, &command)?;
        let summary = summary("Tiltfile", &imported, read.provided_line());
        let mut notes = read.notes;
        notes.extend(imported.notes.iter().cloned());
        let manifest = in_memory(&tiltfile, &root, read.files.clone(), imported)?;
        return Ok(Loaded {
            manifest,
            summary: Some(summary),
            notes,
        });
    }
    Ok(Loaded {
        manifest: manifest::load(file)?,
        summary: None,
        notes: Vec::new(),
    })
}

/// `read WHAT: N app(s), M Dapr resource(s)[, provided]`.
fn summary(what: &str, imported: &Imported, provided: Option<String>) -> String {
    let plural = |n: usize, one: &str| match n {
        1 => format!("1 {one}"),
        n => format!("{n} {one}s"),
    };
    let mut line = format!(
        "read {what}: {}, {}",
        plural(imported.apps.len(), "app"),
        plural(imported.resources, "Dapr resource")
    );
    if let Some(provided) = provided {
        line.push_str(&format!(", {provided}"));
    }
    line
}

/// The imported project as a [`Manifest`] read from `source` (a Tiltfile or a folder): its
/// resources written under `.daca/imported/`, its Secrets put into its apps' env.
fn in_memory(
    source: &Path,
    root: &Path,
    read_from: Vec<PathBuf>,
    imported: Imported,
) -> crate::Result<Manifest> {
    let out = root.join(IMPORTED);
    // What an earlier read wrote may name resources that are gone. The volumes' files are
    // rewritten in place instead: a running container sees its folder's new content.
    let _ = std::fs::remove_dir_all(out.join("resources"));
    std::fs::create_dir_all(out.join("volumes"))?;
    // Secrets' keys are files there: for this user only (containers see them through their
    // own mounts).
    std::fs::set_permissions(
        out.join("volumes"),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )?;
    let mut text = String::new();
    let mut secrets = Vec::new();
    for (path, content) in &imported.files {
        match path.as_str() {
            "daca.yaml" => text = content.clone(),
            p if p.ends_with("/.env") => {
                secrets.push((root.join(p.trim_end_matches("/.env")), content))
            }
            p => {
                let target = out.join(p);
                std::fs::create_dir_all(target.parent().unwrap_or(&out))?;
                std::fs::write(&target, content)?;
            }
        }
    }
    let text = text
        .replace(
            &format!("resources: {}\n", import::RESOURCES),
            &format!("resources: ./{IMPORTED}/resources\n"),
        )
        .replace(
            &format!("\"{}/", crate::export::volumes::VOLUMES),
            &format!("\"./{IMPORTED}/volumes/"),
        );
    std::fs::write(out.join("daca.yaml"), &text)?;
    let mut manifest = manifest::parse(&root.join(manifest::FILE_NAME), &text).map_err(|err| {
        let first = err.to_string().lines().next().unwrap_or_default().to_string();
        Problem::new(format!("what daca made of {}: {first}", source.display())).hint(format!(
            "see {}/daca.yaml; `daca init --from-tilt` writes it beside the Tiltfile for you to fix",
            out.display()
        ))
    })?;
    for (dir, env) in secrets {
        let dir = normalize(&dir);
        for app in manifest
            .apps
            .iter_mut()
            .filter(|a| normalize(&a.dir) == dir)
        {
            for (key, value) in crate::env::parse_dot_env(env) {
                app.process.env.entry(key).or_insert(value);
            }
        }
    }
    manifest.file = source.to_path_buf();
    manifest.read_from = read_from;
    Ok(manifest)
}

/// `a/./b/` as `a/b`, to compare folders written two ways.
fn normalize(path: &Path) -> PathBuf {
    path.components().collect()
}

fn dedup(files: impl Iterator<Item = PathBuf>) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for file in files {
        if !out.contains(&file) {
            out.push(file);
        }
    }
    out
}
