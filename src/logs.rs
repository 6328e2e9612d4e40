//! One log stream for the whole project: every line of every app (and of Redis) goes through a
//! [`LogBus`], which keeps a bounded replay buffer (for `daca logs`) and broadcasts live lines
//! (to the terminal printer and to followers over the control API).

use std::collections::VecDeque;
use std::io::{IsTerminal, Write};
use std::sync::Arc;

use crate::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::broadcast;

/// Which pipe a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Stdout,
    Stderr,
}

/// One line of output.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogLine {
    /// Milliseconds since the Unix epoch when daca read the line.
    pub ts_ms: u64,
    /// The app-id, or `redis`.
    pub source: String,
    pub stream: Stream,
    pub line: String,
}

/// Now, in milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Fan-out of log lines plus a bounded replay buffer.
pub struct LogBus {
    live: broadcast::Sender<Arc<LogLine>>,
    // A std mutex: it is held only to push or copy, never across an `.await`.
    recent: Mutex<VecDeque<Arc<LogLine>>>,
    capacity: usize,
}

impl LogBus {
    /// A bus that remembers the last `capacity` lines.
    pub fn new(capacity: usize) -> Arc<LogBus> {
        let (live, _) = broadcast::channel(1024);
        Arc::new(LogBus {
            live,
            recent: Mutex::new(VecDeque::with_capacity(capacity)),
            capacity,
        })
    }

    /// Records and broadcasts a line.
    pub fn push(&self, source: &str, stream: Stream, line: String) {
        let line = Arc::new(LogLine {
            ts_ms: now_ms(),
            source: source.to_string(),
            stream,
            line,
        });
        {
            let mut recent = self.recent.lock();
            if recent.len() == self.capacity {
                recent.pop_front();
            }
            recent.push_back(line.clone());
        }
        // No receivers is fine: nobody is following right now.
        let _ = self.live.send(line);
    }

    /// Live lines from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<LogLine>> {
        self.live.subscribe()
    }

    /// Remembered lines, oldest first, that pass `keep`.
    pub fn recent(&self, keep: impl Fn(&LogLine) -> bool) -> Vec<Arc<LogLine>> {
        let recent = self.recent.lock();
        recent.iter().filter(|line| keep(line)).cloned().collect()
    }

    /// The remembered lines `keep` selects, then the live ones it selects. It subscribes before
    /// copying the backlog, so no line falls between the two.
    pub fn follow<K: Fn(&LogLine) -> bool + Send + 'static>(
        &self,
        keep: K,
    ) -> (
        Vec<Arc<LogLine>>,
        impl futures_util::Stream<Item = Arc<LogLine>> + Send + use<K>,
    ) {
        let live = follow(self.subscribe());
        let backlog = self.recent(&keep);
        let live =
            futures_util::StreamExt::filter(live, move |line| std::future::ready(keep(line)));
        (backlog, live)
    }
}

/// What `live` carries from now on, as a stream: a reader that falls behind skips what it
/// missed, and the stream ends when the sender is gone.
pub fn follow<T: Clone + Send + 'static>(
    live: broadcast::Receiver<T>,
) -> impl futures_util::Stream<Item = T> + Send + 'static {
    futures_util::stream::unfold(live, |mut live| async move {
        loop {
            match live.recv().await {
                Ok(item) => return Some((item, live)),
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    })
}

/// Reads `reader` line by line into the bus until it closes. Invalid UTF-8 is replaced, not fatal.
pub fn pipe_lines<R>(
    bus: Arc<LogBus>,
    source: String,
    stream: Stream,
    reader: R,
) -> tokio::task::JoinHandle<()>
where
    R: AsyncRead + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let mut reader = BufReader::new(reader);
        let mut buffer = Vec::new();
        loop {
            buffer.clear();
            match reader.read_until(b'\n', &mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let text = String::from_utf8_lossy(&buffer);
                    bus.push(
                        &source,
                        stream,
                        text.trim_end_matches(['\n', '\r']).to_string(),
                    );
                }
            }
        }
    })
}

/// How lines are written to the terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// `app | line`, aligned, coloured on a terminal.
    Text,
    /// One JSON object per line, for tools.
    Json,
}

/// Prefixes lines with aligned, coloured source names, like `docker compose up`.
pub struct Printer {
    format: LogFormat,
    width: usize,
    color: bool,
    sources: Vec<String>,
}

const PALETTE: [u8; 6] = [36, 33, 32, 35, 34, 31];

impl Printer {
    /// A printer for these sources (their order picks their colours).
    pub fn new(format: LogFormat, sources: Vec<String>) -> Printer {
        let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        let width = sources.iter().map(String::len).max().unwrap_or(0);
        Printer {
            format,
            width,
            color,
            sources,
        }
    }

    /// Formats one line (without the trailing newline).
    pub fn format(&self, line: &LogLine) -> String {
        if self.format == LogFormat::Json {
            return serde_json::to_string(line).unwrap_or_default();
        }
        let name = format!("{:width$}", line.source, width = self.width);
        if !self.color {
            return format!("{name} | {}", line.line);
        }
        let index = self
            .sources
            .iter()
            .position(|s| *s == line.source)
            .unwrap_or(0);
        let colour = PALETTE[index % PALETTE.len()];
        format!("\x1b[{colour}m{name} |\x1b[0m {}", line.line)
    }

    /// Prints lines from the bus until `stop` is cancelled, then what is still queued.
    pub async fn run(self, bus: Arc<LogBus>, stop: tokio_util::sync::CancellationToken) {
        let mut live = bus.subscribe();
        drop(bus);
        loop {
            let next = tokio::select! {
                line = live.recv() => line,
                _ = stop.cancelled() => break,
            };
            match next {
                Ok(line) => self.print(&line),
                Err(broadcast::error::RecvError::Lagged(skipped)) => {
                    tracing::warn!(
                        "the terminal fell behind; {skipped} log lines were skipped (see `daca logs`)"
                    );
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
        while let Ok(line) = live.try_recv() {
            self.print(&line);
        }
    }

    fn print(&self, line: &LogLine) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{}", self.format(line));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(source: &str, text: &str) -> LogLine {
        LogLine {
            ts_ms: 1,
            source: source.into(),
            stream: Stream::Stdout,
            line: text.into(),
        }
    }

    #[test]
    fn names_are_aligned_and_coloured_per_source() {
        let sources = vec!["redis".to_string(), "hello-api".to_string()];
        let plain = Printer {
            format: LogFormat::Text,
            width: 9,
            color: false,
            sources: sources.clone(),
        };
        assert_eq!(plain.format(&line("redis", "up")), "redis     | up");
        let coloured = Printer {
            format: LogFormat::Text,
            width: 9,
            color: true,
            sources,
        };
        assert_eq!(
            coloured.format(&line("redis", "up")),
            "\x1b[36mredis     |\x1b[0m up"
        );
        assert_eq!(
            coloured.format(&line("hello-api", "hi")),
            "\x1b[33mhello-api |\x1b[0m hi"
        );
    }

    #[test]
    fn the_replay_buffer_is_bounded_and_keeps_the_newest() {
        let bus = LogBus::new(3);
        for n in 0..5 {
            bus.push("app", Stream::Stdout, n.to_string());
        }
        let kept: Vec<String> = bus
            .recent(|_| true)
            .iter()
            .map(|l| l.line.clone())
            .collect();
        assert_eq!(kept, ["2", "3", "4"]);
    }
}
