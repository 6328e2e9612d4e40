//! The scheduler's file: one JSON object a line (`put`, `tick`, `delete`), appended as jobs
//! change and read back in order at start. It is rewritten whole (to a temporary file, then
//! renamed over) when it has grown well past what it describes, so it stays small however long
//! daca runs. A line cut short by a SIGKILL mid-write is the last one and is skipped.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::Job;
use crate::sync::Mutex;

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Record {
    Put(Job),
    Tick {
        key: String,
        fired: u64,
        next_ns: u64,
    },
    Delete {
        key: String,
    },
}

/// A job, how often it has fired, and when it fires next (ns since the epoch).
pub(super) type Stored = (Job, u64, u64);

type Live = BTreeMap<String, Stored>;

struct State {
    file: File,
    live: Live,
    lines: usize,
}

pub(super) struct Log {
    path: PathBuf,
    state: Mutex<State>,
}

fn apply(live: &mut Live, record: Record) {
    match record {
        Record::Put(job) => {
            let due = job.due_ns;
            live.insert(job.key.clone(), (job, 0, due));
        }
        Record::Tick {
            key,
            fired,
            next_ns,
        } => {
            if let Some(entry) = live.get_mut(&key) {
                (entry.1, entry.2) = (fired, next_ns);
            }
        }
        Record::Delete { key } => {
            live.remove(&key);
        }
    }
}

fn line(record: &Record) -> std::io::Result<Vec<u8>> {
    let mut text = serde_json::to_vec(record)?;
    text.push(b'\n');
    Ok(text)
}

impl Log {
    /// Reads `path` (when there is one) and rewrites it compactly.
    pub fn open(path: &Path) -> std::io::Result<(Log, Vec<Stored>)> {
        let mut live = Live::new();
        if let Ok(file) = File::open(path) {
            for text in BufReader::new(file).lines() {
                match serde_json::from_str::<Record>(&text?) {
                    Ok(record) => apply(&mut live, record),
                    Err(err) => tracing::warn!(
                        "{}: skipped a line that does not read ({err}); a daca killed while writing leaves one",
                        path.display()
                    ),
                }
            }
        }
        let file = rewrite(path, &live)?;
        let jobs = live.values().cloned().collect();
        let lines = live.len();
        let state = Mutex::new(State { file, live, lines });
        let log = Log {
            path: path.to_path_buf(),
            state,
        };
        Ok((log, jobs))
    }

    pub fn put(&self, job: &Job) -> std::io::Result<()> {
        self.append(Record::Put(job.clone()))
    }

    pub fn tick(&self, key: &str, fired: u64, next_ns: u64) -> std::io::Result<()> {
        let key = key.to_string();
        self.append(Record::Tick {
            key,
            fired,
            next_ns,
        })
    }

    pub fn delete(&self, key: &str) -> std::io::Result<()> {
        self.append(Record::Delete {
            key: key.to_string(),
        })
    }

    /// One line, written before this returns (a write survives a SIGKILL of daca; only the
    /// machine going down could lose it).
    fn append(&self, record: Record) -> std::io::Result<()> {
        let text = line(&record)?;
        let mut state = self.state.lock();
        state.file.write_all(&text)?;
        apply(&mut state.live, record);
        state.lines += 1;
        if state.lines > 2 * state.live.len() + 1000 {
            state.file = rewrite(&self.path, &state.live)?;
            state.lines = state.live.len();
        }
        Ok(())
    }
}

/// Writes what `live` describes to `path` (through a temporary file), and opens it for
/// appending.
fn rewrite(path: &Path, live: &Live) -> std::io::Result<File> {
    if let Some(folder) = path.parent() {
        std::fs::create_dir_all(folder)?;
    }
    let temporary = path.with_extension("jsonl.tmp");
    let mut out = std::io::BufWriter::new(File::create(&temporary)?);
    for (job, fired, next_ns) in live.values() {
        out.write_all(&line(&Record::Put(job.clone()))?)?;
        let key = job.key.clone();
        let tick = Record::Tick {
            key,
            fired: *fired,
            next_ns: *next_ns,
        };
        out.write_all(&line(&tick)?)?;
    }
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    std::fs::rename(&temporary, path)?;
    std::fs::OpenOptions::new().append(true).open(path)
}
