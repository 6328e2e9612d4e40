//! Which paths of an app's folder count as changes, and why the others do not.
//!
//! Ignored, in order of the reasons given: daca's defaults (`.git`, `.daca`, `.venv`,
//! `__pycache__`, `node_modules`, bytecode, editor swap and temp files), `.gitignore`,
//! `.dockerignore` and `.dacaignore` (in the app's folder and, when the app lives under it, the
//! project folder), the manifest and the resources folder (they have their own reload), and the
//! app's `ignore:` globs. Then the app's `watch:` globs, when given, narrow what counts.

use std::path::{Path, PathBuf};

use ignore::Match;
use ignore::gitignore::{Gitignore, GitignoreBuilder};

/// What daca ignores everywhere.
const DEFAULTS: &[&str] = &[
    ".git/",
    ".hg/",
    ".svn/",
    ".daca/",
    ".venv/",
    "venv/",
    "__pycache__/",
    "node_modules/",
    ".mypy_cache/",
    ".pytest_cache/",
    ".ruff_cache/",
    ".idea/",
    "*.pyc",
    "*.pyo",
    "*.swp",
    "*.swx",
    "*.swo",
    "*~",
    ".#*",
    "#*#",
    "4913",
    "*.tmp",
    "*___jb_tmp___",
    "*___jb_old___",
    ".DS_Store",
    // Log files change while apps run, by the app's own hand or daca's (`daca up > daca.log`).
    "*.log",
];

/// Files whose change means "the dependencies changed": the app's `setup:` runs first.
const DEPENDENCY_FILES: &[&str] = &[
    "pyproject.toml",
    "uv.lock",
    "poetry.lock",
    "Pipfile",
    "Pipfile.lock",
    "package.json",
    "package-lock.json",
    "yarn.lock",
    "pnpm-lock.yaml",
    "go.mod",
    "go.sum",
    "Cargo.toml",
    "Cargo.lock",
];

pub fn is_dependency_file(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    DEPENDENCY_FILES.contains(&name) || (name.starts_with("requirements") && name.ends_with(".txt"))
}

/// The verdict on one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A change here reloads the app.
    Watched,
    /// Ignored, with the rule that ignores it.
    Ignored(String),
    /// Not ignored, but not matched by the app's `watch:` globs.
    NotWatched,
    /// Not in the app's folder.
    Outside,
}

/// One app's filter.
pub struct Filter {
    pub root: PathBuf,
    /// Ignore rule sets, each with a name for explanations.
    rules: Vec<(String, Gitignore)>,
    /// Paths ignored outright (the manifest, the resources folder, daca's own output), each
    /// with why.
    excluded: Vec<(PathBuf, String)>,
    watch: Option<Gitignore>,
}

pub(super) fn ruleset(root: &Path, lines: &[String]) -> Gitignore {
    let mut builder = GitignoreBuilder::new(root);
    for line in lines {
        // Checked when the manifest was read; a bad line is skipped, not fatal, here.
        let _ = builder.add_line(None, line);
    }
    builder.build().unwrap_or_else(|_| Gitignore::empty())
}

/// `path` made absolute, without `.` components (`/p/./app` → `/p/app`): notify reports paths
/// under the watched folder as given, and the matchers compare paths as text.
pub fn normalize(path: &Path) -> PathBuf {
    std::path::absolute(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .components()
        .collect()
}

impl Filter {
    /// The filter of an app in `root`, in a project whose folder is `project`.
    pub fn new(
        root: &Path,
        project: &Path,
        excluded: Vec<(PathBuf, String)>,
        ignore: &[String],
        watch: &[String],
    ) -> Filter {
        let (root, project) = (&normalize(root), &normalize(project));
        let excluded = excluded
            .into_iter()
            .map(|(path, why)| (normalize(&path), why))
            .collect();
        let defaults: Vec<String> = DEFAULTS.iter().map(|s| s.to_string()).collect();
        let mut rules = vec![("daca's defaults".to_string(), ruleset(root, &defaults))];
        let mut folders = vec![root.to_path_buf()];
        if root != project && root.starts_with(project) {
            folders.insert(0, project.to_path_buf());
        }
        for folder in &folders {
            for name in [".gitignore", ".dockerignore", ".dacaignore"] {
                let file = folder.join(name);
                if file.is_file() {
                    let (set, _) = Gitignore::new(&file);
                    rules.push((file.display().to_string(), set));
                }
            }
        }
        if !ignore.is_empty() {
            rules.push(("`ignore:`".to_string(), ruleset(root, ignore)));
        }
        Filter {
            root: root.to_path_buf(),
            rules,
            excluded,
            watch: (!watch.is_empty()).then(|| ruleset(root, watch)),
        }
    }

    /// Why `path` is (not) watched. Parents count: a file under an ignored folder is ignored.
    pub fn verdict(&self, path: &Path, is_dir: bool) -> Verdict {
        let path = &normalize(path);
        if !path.starts_with(&self.root) {
            return Verdict::Outside;
        }
        if let Some((excluded, why)) = self.excluded.iter().find(|(e, _)| path.starts_with(e)) {
            return Verdict::Ignored(format!("{}: {why}", excluded.display()));
        }
        // daca reads the app's `.env` into its environment, so it counts even where
        // `.gitignore` (rightly) keeps it out of the repository.
        if !is_dir && path.parent() == Some(self.root.as_path()) && path.ends_with(".env") {
            return Verdict::Watched;
        }
        for (name, set) in &self.rules {
            // Each set only speaks for paths under its own folder (the matcher panics otherwise).
            if !path.starts_with(set.path()) {
                continue;
            }
            if let Match::Ignore(glob) = set.matched_path_or_any_parents(path, is_dir) {
                return Verdict::Ignored(format!("`{}` in {name}", glob.original()));
            }
        }
        if is_dir {
            return Verdict::Watched; // a folder is watched for what may appear in it
        }
        match &self.watch {
            Some(set) if !set.matched_path_or_any_parents(path, false).is_ignore() => {
                Verdict::NotWatched
            }
            _ => Verdict::Watched,
        }
    }

    /// Whether a folder needs an inotify watch at all.
    pub fn watches_dir(&self, dir: &Path) -> bool {
        self.verdict(dir, true) == Verdict::Watched
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_gitignore_and_watch_globs_decide_with_a_reason() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join(".gitignore"), "*.txt\nbuild/\n").unwrap();
        let filter = Filter::new(
            root,
            root,
            vec![(root.join("daca.yaml"), "the manifest".into())],
            &["secret.py".into()],
            &[],
        );
        assert_eq!(
            filter.verdict(&root.join("main.py"), false),
            Verdict::Watched
        );
        let venv = filter.verdict(&root.join(".venv/lib/x.py"), false);
        assert_eq!(venv, Verdict::Ignored("`.venv/` in daca's defaults".into()));
        let log = filter.verdict(&root.join("app.log"), false);
        assert_eq!(log, Verdict::Ignored("`*.log` in daca's defaults".into()));
        let text = filter.verdict(&root.join("notes.txt"), false);
        assert!(
            matches!(&text, Verdict::Ignored(r) if r.starts_with("`*.txt` in ") && r.ends_with(".gitignore")),
            "{text:?}"
        );
        assert!(matches!(
            filter.verdict(&root.join("build/out.py"), false),
            Verdict::Ignored(_)
        ));
        assert!(
            matches!(filter.verdict(&root.join("secret.py"), false), Verdict::Ignored(r) if r.contains("ignore:"))
        );
        assert!(matches!(
            filter.verdict(&root.join("daca.yaml"), false),
            Verdict::Ignored(r) if r.ends_with("daca.yaml: the manifest")
        ));
        assert!(!filter.watches_dir(&root.join("node_modules")));
        assert_eq!(
            filter.verdict(Path::new("/elsewhere/x"), false),
            Verdict::Outside
        );

        std::fs::write(root.join(".gitignore"), "*.txt\nbuild/\n.env\n").unwrap();
        let git = Filter::new(root, root, vec![], &[], &[]);
        assert_eq!(
            git.verdict(&root.join(".env"), false),
            Verdict::Watched,
            "daca reads .env, so a change counts even when git ignores it"
        );
        std::fs::write(root.join(".dockerignore"), "dist/\n").unwrap();
        std::fs::write(root.join(".dacaignore"), "fixtures/\n").unwrap();
        let more = Filter::new(root, root, vec![], &[], &[]);
        let docker = more.verdict(&root.join("dist/a.js"), false);
        assert!(
            matches!(&docker, Verdict::Ignored(r) if r.contains(".dockerignore")),
            "{docker:?}"
        );
        let own = more.verdict(&root.join("fixtures/x.json"), false);
        assert!(
            matches!(&own, Verdict::Ignored(r) if r.contains(".dacaignore")),
            "{own:?}"
        );

        let narrow = Filter::new(root, root, vec![], &[], &["*.py".into()]);
        assert_eq!(
            narrow.verdict(&root.join("api/main.py"), false),
            Verdict::Watched
        );
        assert_eq!(
            narrow.verdict(&root.join("README.md"), false),
            Verdict::NotWatched
        );
        assert!(narrow.watches_dir(&root.join("api")));
    }

    #[test]
    fn dependency_files() {
        assert!(is_dependency_file(Path::new("/a/uv.lock")));
        assert!(is_dependency_file(Path::new("requirements-dev.txt")));
        assert!(!is_dependency_file(Path::new("main.py")));
    }
}
