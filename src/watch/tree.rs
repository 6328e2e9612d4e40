//! Which folders have an inotify watch: every folder under a target's root that some target
//! does not ignore, added as they appear.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use notify::{RecursiveMode, Watcher as _};

use super::{Notifier, Watched};

pub(super) struct Tree {
    pub(super) targets: Vec<Watched>,
    watcher: Notifier,
    pub(super) watched: HashSet<PathBuf>,
    limit_warned: bool,
}

impl Tree {
    pub(super) fn new(targets: Vec<Watched>, watcher: Notifier) -> Tree {
        Tree {
            targets,
            watcher,
            watched: HashSet::new(),
            limit_warned: false,
        }
    }

    pub(super) fn add_roots(&mut self) {
        let roots: Vec<PathBuf> = self.targets.iter().map(Watched::root).collect();
        for root in roots {
            self.add(&root);
        }
    }

    /// Watches `dir` and, recursively, every folder under it that some target does not ignore.
    pub(super) fn add(&mut self, dir: &Path) {
        if self.watched.contains(dir) || !self.targets.iter().any(|t| t.watches_dir(dir)) {
            return;
        }
        match self.watcher.watch(dir, RecursiveMode::NonRecursive) {
            Ok(()) => {
                self.watched.insert(dir.to_path_buf());
            }
            Err(err) if matches!(err.kind, notify::ErrorKind::MaxFilesWatch) => {
                self.warn_limit(dir);
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
            self.add(&child);
        }
    }

    fn warn_limit(&mut self, dir: &Path) {
        if std::mem::replace(&mut self.limit_warned, true) {
            return;
        }
        let limit = std::fs::read_to_string("/proc/sys/fs/inotify/max_user_watches")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "?".into());
        tracing::warn!(
            "the system's inotify watch limit is reached (fs.inotify.max_user_watches = {limit}): {} and some other folders are not watched\n  hint: raise it with `sudo sysctl fs.inotify.max_user_watches=524288`, or ignore big folders (`.dacaignore`, `ignore:`)",
            dir.display()
        );
    }
}
