//! Watching the project: each app's folder, the manifest and the resources folder.
//!
//! How it works (as watchexec does it): one `notify` watcher with a non-recursive watch per
//! folder that some target does not ignore (so `.venv` or `node_modules` cost no inotify
//! watch), and a watch added for every new folder. notify's callback runs on its own thread,
//! so it only does a non-blocking send into a bounded channel; when that is full the event is
//! dropped and counted. One task classifies each path (which [`Target`] wants it, or why none
//! does), batches them per target ([`debounce`]) and sends each batch as one [`Change`].
//! What it saw is kept in [`Stats`], which `daca ps` shows, so that "nothing happened" can be
//! observed instead of waited for.

mod debounce;
pub mod filter;
mod targets;
mod tree;

use std::collections::VecDeque;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use notify::{EventKind, RecommendedWatcher};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use debounce::{LONGEST, QUIET};
pub use filter::{Filter, Verdict, is_dependency_file, normalize};
pub use targets::{on_change_due, targets};

use crate::error::Problem;
use crate::manifest::{AppId, Manifest};
use crate::sync::Mutex;

/// Raw events buffered between notify's thread and the classifying task.
const RAW_EVENTS: usize = 4096;
/// Batches buffered for the project (it routes them at once).
const BATCHES: usize = 256;
/// Paths `daca ps` shows with their verdicts.
const RECENT: usize = 200;

/// What a change belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Target {
    /// daca.yaml: a change reconciles the running project.
    Manifest,
    /// The resources folder: a change reloads the components.
    Resources,
    /// An app's folder: a change reloads the app.
    App(AppId),
    /// A step's `watch:` files: a change runs the step again.
    Step(String),
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Manifest => f.write_str(crate::manifest::FILE_NAME),
            Target::Resources => f.write_str("resources"),
            Target::App(id) => f.write_str(id.as_str()),
            Target::Step(name) => write!(f, "step {name}"),
        }
    }
}

/// What a target watches.
pub enum Scope {
    /// An app's folder, through its filter.
    Folder(Filter),
    /// One file (the manifest).
    File(PathBuf),
    /// The YAML files of one folder (the resources).
    Yaml(PathBuf),
}

/// A target and what it watches.
pub struct Watched {
    pub target: Target,
    pub scope: Scope,
}

impl Watched {
    fn verdict(&self, path: &Path) -> Verdict {
        match &self.scope {
            Scope::Folder(filter) => filter.verdict(path, path.is_dir()),
            Scope::File(file) if &normalize(path) == file => Verdict::Watched,
            Scope::Yaml(folder)
                if path.parent() == Some(folder.as_path())
                    && path.extension().is_some_and(|e| e == "yaml" || e == "yml") =>
            {
                Verdict::Watched
            }
            _ => Verdict::Outside,
        }
    }

    /// Whether the folder `dir` needs a watch for this target.
    fn watches_dir(&self, dir: &Path) -> bool {
        match &self.scope {
            Scope::Folder(filter) => filter.watches_dir(dir),
            Scope::File(path) => path.parent() == Some(dir),
            Scope::Yaml(path) => path == dir,
        }
    }

    /// The folder where watching starts.
    fn root(&self) -> PathBuf {
        match &self.scope {
            Scope::Folder(filter) => filter.root.clone(),
            Scope::File(path) => path.parent().map(Path::to_path_buf).unwrap_or_default(),
            Scope::Yaml(path) => path.clone(),
        }
    }
}

/// One batch of changes of one target.
#[derive(Debug, Clone)]
pub struct Change {
    pub target: Target,
    pub paths: Vec<PathBuf>,
    /// When the first event of the batch arrived: the start of "change → ready".
    pub first_seen: Instant,
}

/// A path the watcher saw, and what it made of it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Seen {
    pub path: PathBuf,
    /// The targets it counts for, or `ignored by ...`.
    pub verdict: String,
}

/// What the watcher has done so far, as `daca ps` shows it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct WatchView {
    /// Folders with an inotify watch.
    pub folders: usize,
    /// Changed paths seen.
    pub events: u64,
    /// Of those, the ones no target counted.
    pub ignored: u64,
    /// Events dropped because the classifier fell behind.
    pub dropped: u64,
    /// Batches sent to the project.
    pub batches: u64,
    /// Events and batches not yet handed to an app, the manifest or the resources.
    pub pending: u64,
    /// The last paths seen, oldest first.
    pub recent: Vec<Seen>,
}

/// The watcher's counters; they outlive a re-watch (a daca.yaml edit).
#[derive(Default)]
pub struct Stats(Mutex<StatsInner>);

#[derive(Default)]
struct StatsInner {
    view: WatchView,
    recent: VecDeque<Seen>,
    /// Events in the channel plus batches being collected.
    collecting: u64,
    routed: u64,
}

impl Stats {
    pub fn view(&self) -> WatchView {
        let inner = self.0.lock();
        let mut view = inner.view.clone();
        view.recent = inner.recent.iter().cloned().collect();
        view.pending = inner.collecting + view.batches.saturating_sub(inner.routed);
        view
    }

    /// The project has handed a batch to its target.
    pub fn routed(&self) {
        self.0.lock().routed += 1;
    }

    fn seen(&self, path: &Path, verdict: String, ignored: bool) {
        let mut inner = self.0.lock();
        inner.view.events += 1;
        inner.view.ignored += u64::from(ignored);
        if inner.recent.len() == RECENT {
            inner.recent.pop_front();
        }
        let path = path.to_path_buf();
        inner.recent.push_back(Seen { path, verdict });
    }

    fn update(&self, change: impl FnOnce(&mut StatsInner)) {
        change(&mut self.0.lock());
    }
}

/// The running watcher; dropping it stops watching (its task ends).
pub struct Watch {
    shared: Arc<Mutex<tree::Tree>>,
    token: CancellationToken,
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.token.cancel();
    }
}

impl Watch {
    /// How many folders are watched.
    pub fn folders(&self) -> usize {
        self.shared.lock().watched.len()
    }
}

/// Starts watching `targets`; its task runs on `tasks` until the [`Watch`] is dropped or
/// `token` is cancelled, and batches arrive on the returned channel.
pub fn start(
    targets: Vec<Watched>,
    stats: Arc<Stats>,
    token: &CancellationToken,
    tasks: &TaskTracker,
) -> Result<(Watch, mpsc::Receiver<Change>), Problem> {
    let (raw_tx, raw_rx) = mpsc::channel::<notify::Event>(RAW_EVENTS);
    let dropping = stats.clone();
    let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        if raw_tx.try_send(event).is_err() {
            // Full (or closed): dropped rather than block notify's thread, as watchexec does.
            dropping.update(|s| s.view.dropped += 1);
            tracing::debug!("file event dropped: the watcher is behind");
        }
    })
    .map_err(|err| {
        Problem::new(format!("cannot watch files: {err}"))
            .hint("check the inotify limits (`sysctl fs.inotify`), or run `daca up --no-watch`")
    })?;
    let shared = Arc::new(Mutex::new(tree::Tree::new(targets, watcher)));
    shared.lock().add_roots();
    stats.update(|s| s.view.folders = shared.lock().watched.len());
    let (tx, rx) = mpsc::channel(BATCHES);
    let token = token.child_token();
    tasks.spawn(run(shared.clone(), raw_rx, tx, stats, token.clone()));
    Ok((Watch { shared, token }, rx))
}

/// Classifies events, batches them, sends the batches; ends when cancelled.
async fn run(
    shared: Arc<Mutex<tree::Tree>>,
    mut raw: mpsc::Receiver<notify::Event>,
    out: mpsc::Sender<Change>,
    stats: Arc<Stats>,
    token: CancellationToken,
) {
    let mut debouncer = debounce::Debouncer::default();
    loop {
        let due = debouncer.next_due();
        tokio::select! {
            _ = token.cancelled() => return,
            event = raw.recv() => match event {
                Some(event) => collect(&shared, event, &mut debouncer, &stats),
                None => return,
            },
            _ = sleep_until(due.unwrap_or_else(Instant::now)), if due.is_some() => {
                for change in debouncer.take_due(Instant::now()) {
                    stats.update(|s| s.view.batches += 1);
                    if out.send(change).await.is_err() {
                        return;
                    }
                }
            }
        }
        let collecting = (raw.len() + debouncer.len()) as u64;
        let folders = shared.lock().watched.len();
        stats.update(|s| {
            s.collecting = collecting;
            s.view.folders = folders;
        });
    }
}

fn collect(
    shared: &Mutex<tree::Tree>,
    event: notify::Event,
    debouncer: &mut debounce::Debouncer,
    stats: &Stats,
) {
    if matches!(event.kind, EventKind::Access(_) | EventKind::Other) {
        return; // reads, opens and closes change nothing
    }
    let mut tree = shared.lock();
    let now = Instant::now();
    for path in &event.paths {
        if matches!(event.kind, EventKind::Create(_) | EventKind::Modify(_)) && path.is_dir() {
            tree.add(path);
        }
        let mut wanted: Vec<String> = Vec::new();
        let mut reason = None;
        for watched in &tree.targets {
            match watched.verdict(path) {
                Verdict::Watched => {
                    debouncer.add(watched.target.clone(), path.clone(), now);
                    wanted.push(watched.target.to_string());
                }
                Verdict::Ignored(why) => {
                    reason.get_or_insert(why);
                }
                Verdict::NotWatched | Verdict::Outside => {}
            }
        }
        let ignored = wanted.is_empty();
        let verdict = match (ignored, reason) {
            (false, _) => wanted.join(", "),
            (true, Some(why)) => format!("ignored by {why}"),
            (true, None) => "ignored: no app's `watch:` globs match it".into(),
        };
        stats.seen(path, verdict, ignored);
    }
}

/// The files behind daca's own stdout and stderr, when they are files: `daca up > daca.log`
/// in an app's folder must not reload the app on every line daca writes.
pub fn own_outputs() -> Vec<PathBuf> {
    [1, 2]
        .iter()
        .filter_map(|fd| std::fs::read_link(format!("/proc/self/fd/{fd}")).ok())
        .filter(|path| path.is_file())
        .map(|path| normalize(&path))
        .collect()
}

/// For `daca explain-watch`: what a change at `path` does, one line per app.
pub fn explain(manifest: &Manifest, path: &Path) -> Vec<String> {
    let path = normalize(path);
    let is_dir = path.is_dir();
    let mut lines = Vec::new();
    for watched in targets(manifest, &[]) {
        let name = watched.target.to_string();
        let line = match &watched.scope {
            Scope::Folder(filter) => match explain_verdict(filter, &path, is_dir) {
                Verdict::Watched if is_dir => {
                    format!("{name}: watched (changes under it reload {name})")
                }
                Verdict::Watched => format!("{name}: watched: a change reloads {name}"),
                Verdict::Ignored(why) => format!("{name}: ignored by {why}"),
                Verdict::NotWatched => format!("{name}: not matched by its `watch:` globs"),
                Verdict::Outside => continue,
            },
            _ if watched.verdict(&path) == Verdict::Watched => {
                format!("{name}: watched: a change reconciles the running project")
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

#[cfg(test)]
mod tests;

/// Kept for the watcher's own tests: a watcher on `targets` fed from `raw`.
#[cfg(test)]
fn run_detached(
    targets: Vec<Watched>,
    raw: mpsc::Receiver<notify::Event>,
    stats: Arc<Stats>,
) -> (mpsc::Receiver<Change>, CancellationToken) {
    let watcher = notify::recommended_watcher(|_: notify::Result<notify::Event>| {})
        .expect("UNWRAP: an inotify instance is available in tests");
    let shared = Arc::new(Mutex::new(tree::Tree::new(targets, watcher)));
    let (tx, rx) = mpsc::channel(BATCHES);
    let token = CancellationToken::new();
    tokio::spawn(run(shared, raw, tx, stats, token.clone()));
    (rx, token)
}

/// notify's watcher, for the tree module.
type Notifier = RecommendedWatcher;
