//! Watching the project: each app's folder, the manifest and the resources folder.
//!
//! How it works: one `notify` watcher with a non-recursive watch per folder that some target
//! does not ignore (so `.venv` or `node_modules` cost no inotify watch), a watch added for every
//! new folder, and a debouncer: the events of one target are batched until it has been quiet
//! for [`QUIET`] (an editor's save is several events: a temp file, a rename, a chmod), or for at
//! most [`LONGEST`], then sent as one [`Change`].

pub mod filter;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher as _};
use tokio::sync::mpsc;

pub use filter::{Filter, Verdict, is_dependency_file, normalize};

/// Quiet time that ends a batch.
pub const QUIET: Duration = Duration::from_millis(30);
/// Longest a batch waits while events keep coming.
pub const LONGEST: Duration = Duration::from_millis(400);

/// Something watched.
pub enum Target {
    /// An app's folder, through its filter.
    App { name: String, filter: Filter },
    /// One file (the manifest).
    File { name: String, path: PathBuf },
    /// The YAML files of one folder (the resources).
    Folder { name: String, path: PathBuf },
}

impl Target {
    fn name(&self) -> &str {
        match self {
            Target::App { name, .. } | Target::File { name, .. } | Target::Folder { name, .. } => {
                name
            }
        }
    }

    fn wants(&self, path: &Path) -> bool {
        match self {
            Target::App { filter, .. } => filter.verdict(path, path.is_dir()) == Verdict::Watched,
            Target::File { path: file, .. } => &normalize(path) == file,
            Target::Folder { path: folder, .. } => {
                path.parent() == Some(folder.as_path())
                    && path.extension().is_some_and(|e| e == "yaml" || e == "yml")
            }
        }
    }

    /// Whether the folder `dir` needs a watch for this target.
    fn watches_dir(&self, dir: &Path) -> bool {
        match self {
            Target::App { filter, .. } => filter.watches_dir(dir),
            Target::File { path, .. } => path.parent() == Some(dir),
            Target::Folder { path, .. } => path == dir,
        }
    }

    /// The folder where watching starts.
    fn root(&self) -> PathBuf {
        match self {
            Target::App { filter, .. } => filter.root.clone(),
            Target::File { path, .. } => path.parent().map(Path::to_path_buf).unwrap_or_default(),
            Target::Folder { path, .. } => path.clone(),
        }
    }
}

/// One batch of changes of one target.
#[derive(Debug, Clone)]
pub struct Change {
    pub target: String,
    pub paths: Vec<PathBuf>,
    /// When the first event of the batch arrived: the start of "change → ready".
    pub first_seen: Instant,
}

struct Shared {
    targets: Vec<Target>,
    watcher: Option<RecommendedWatcher>,
    watched: HashSet<PathBuf>,
    limit_warned: bool,
}

/// The running watcher; dropping it stops watching.
pub struct Watch {
    _shared: Arc<Mutex<Shared>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts watching; batches arrive on the returned channel.
pub fn start(targets: Vec<Target>) -> Result<(Watch, mpsc::UnboundedReceiver<Change>), String> {
    let (raw_tx, mut raw_rx) = mpsc::unbounded_channel::<notify::Event>();
    let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event {
            let _ = raw_tx.send(event);
        }
    })
    .map_err(|err| format!("cannot watch files: {err}"))?;
    let shared = Arc::new(Mutex::new(Shared {
        targets,
        watcher: Some(watcher),
        watched: HashSet::new(),
        limit_warned: false,
    }));
    {
        let mut guard = shared.lock().unwrap_or_else(|p| p.into_inner());
        let roots: Vec<PathBuf> = guard.targets.iter().map(Target::root).collect();
        for root in roots {
            add_tree(&mut guard, &root);
        }
    }
    let (tx, rx) = mpsc::unbounded_channel();
    let state = shared.clone();
    let task = tokio::spawn(async move {
        let mut pending: BTreeMap<String, (Vec<PathBuf>, Instant, Instant)> = BTreeMap::new();
        let mut tick = tokio::time::interval(Duration::from_millis(10));
        loop {
            tokio::select! {
                event = raw_rx.recv() => match event {
                    Some(event) => collect(&state, event, &mut pending),
                    None => return,
                },
                _ = tick.tick(), if !pending.is_empty() => {
                    let now = Instant::now();
                    let due: Vec<String> = pending
                        .iter()
                        .filter(|(_, (_, first, last))| now - *last >= QUIET || now - *first >= LONGEST)
                        .map(|(name, _)| name.clone())
                        .collect();
                    for name in due {
                        if let Some((paths, first_seen, _)) = pending.remove(&name) {
                            let _ = tx.send(Change { target: name, paths, first_seen });
                        }
                    }
                }
            }
        }
    });
    Ok((
        Watch {
            _shared: shared,
            task,
        },
        rx,
    ))
}

type Pending = BTreeMap<String, (Vec<PathBuf>, Instant, Instant)>;

fn collect(state: &Arc<Mutex<Shared>>, event: notify::Event, pending: &mut Pending) {
    if matches!(event.kind, EventKind::Access(_) | EventKind::Other) {
        return; // reads and opens change nothing
    }
    let mut guard = state.lock().unwrap_or_else(|p| p.into_inner());
    let now = Instant::now();
    for path in &event.paths {
        if matches!(event.kind, EventKind::Create(_) | EventKind::Modify(_)) && path.is_dir() {
            add_tree(&mut guard, path);
        }
        for target in &guard.targets {
            if target.wants(path) {
                let entry = pending
                    .entry(target.name().to_string())
                    .or_insert_with(|| (Vec::new(), now, now));
                if !entry.0.contains(path) {
                    entry.0.push(path.clone());
                }
                entry.2 = now;
            }
        }
    }
}

/// Watches `dir` and, recursively, every folder under it that some target does not ignore.
fn add_tree(shared: &mut Shared, dir: &Path) {
    if shared.watched.contains(dir) || !shared.targets.iter().any(|t| t.watches_dir(dir)) {
        return;
    }
    let Some(watcher) = shared.watcher.as_mut() else {
        return;
    };
    match watcher.watch(dir, RecursiveMode::NonRecursive) {
        Ok(()) => {
            shared.watched.insert(dir.to_path_buf());
        }
        Err(err) if matches!(err.kind, notify::ErrorKind::MaxFilesWatch) => {
            if !shared.limit_warned {
                shared.limit_warned = true;
                let limit = std::fs::read_to_string("/proc/sys/fs/inotify/max_user_watches")
                    .map(|s| s.trim().to_string())
                    .unwrap_or_else(|_| "?".into());
                tracing::warn!(
                    "the system's inotify watch limit is reached (fs.inotify.max_user_watches = {limit}): {} and some other folders are not watched\n  hint: raise it with `sudo sysctl fs.inotify.max_user_watches=524288`, or ignore big folders (`.dacaignore`, `ignore:`)",
                    dir.display()
                );
            }
            return;
        }
        Err(err) => {
            tracing::debug!("not watching {}: {err}", dir.display());
            return;
        }
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut children: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect();
    children.sort();
    for child in children {
        add_tree(shared, &child);
    }
}

/// Names of the non-app targets.
pub const MANIFEST: &str = "daca.yaml";
pub const RESOURCES: &str = "resources";

/// What `daca up` watches in a project: every app's folder, the manifest, the resources folder.
pub fn targets(manifest: &crate::manifest::Manifest) -> Vec<Target> {
    let file = std::path::absolute(&manifest.file).unwrap_or_else(|_| manifest.file.clone());
    let mut excluded = vec![file.clone(), manifest.root.join(".daca")];
    excluded.extend(manifest.resources.clone());
    let mut targets: Vec<Target> = manifest
        .apps
        .iter()
        .map(|app| Target::App {
            name: app.id.to_string(),
            filter: Filter::new(
                &app.dir,
                &manifest.root,
                excluded.clone(),
                &app.watch.ignore,
                &app.watch.only,
            ),
        })
        .collect();
    targets.push(Target::File {
        name: MANIFEST.into(),
        path: normalize(&file),
    });
    if let Some(resources) = &manifest.resources {
        targets.push(Target::Folder {
            name: RESOURCES.into(),
            path: normalize(resources),
        });
    }
    targets
}

/// For `daca explain-watch`: what a change at `path` does, one line per app.
pub fn explain(manifest: &crate::manifest::Manifest, path: &Path) -> Vec<String> {
    let path = normalize(path);
    let is_dir = path.is_dir();
    let mut lines = Vec::new();
    for target in targets(manifest) {
        let line = match &target {
            Target::App { name, filter } => match explain_verdict(filter, &path, is_dir) {
                Verdict::Watched if is_dir => {
                    format!("{name}: watched (changes under it reload {name})")
                }
                Verdict::Watched => format!("{name}: watched: a change reloads {name}"),
                Verdict::Ignored(why) => format!("{name}: ignored by {why}"),
                Verdict::NotWatched => format!("{name}: not matched by its `watch:` globs"),
                Verdict::Outside => continue,
            },
            other if other.wants(&path) => {
                format!(
                    "{}: watched: a change reconciles the running project",
                    other.name()
                )
            }
            _ => continue,
        };
        lines.push(line);
    }
    if lines.is_empty() {
        lines.push("outside every app's folder: not watched".into());
    }
    lines
}

/// A path that does not exist (yet) may become a file or a folder: if either is ignored, say so.
fn explain_verdict(filter: &Filter, path: &Path, is_dir: bool) -> Verdict {
    if path.exists() {
        return filter.verdict(path, is_dir);
    }
    match filter.verdict(path, true) {
        ignored @ Verdict::Ignored(_) => ignored,
        _ => filter.verdict(path, false),
    }
}

/// How many folders are watched (for the start-up line and tests).
pub fn watched_count(watch: &Watch) -> usize {
    watch
        ._shared
        .lock()
        .map(|s| s.watched.len())
        .unwrap_or_default()
}
