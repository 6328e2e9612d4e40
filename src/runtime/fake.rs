//! A recording fake runtime for supervisor unit tests: no processes, no sleeping.

use std::collections::HashMap;
use std::sync::Arc;

use crate::sync::Mutex;

use tokio::sync::oneshot;

use super::{ExitInfo, LaunchError, LaunchFuture, LaunchSpec, Launched, Runtime, Signaller};
use crate::logs::LogBus;

#[derive(Default)]
struct Shared {
    calls: Vec<String>,
    next_pid: u32,
    running: HashMap<u32, oneshot::Sender<ExitInfo>>,
    /// Names whose processes ignore SIGTERM.
    stubborn: Vec<String>,
    /// Names that fail to launch.
    missing: Vec<String>,
}

/// Records `launch name`, `terminate pid` and `kill pid`; tests end processes with [`FakeRuntime::exit`].
#[derive(Clone, Default)]
pub struct FakeRuntime {
    shared: Arc<Mutex<Shared>>,
}

impl FakeRuntime {
    pub fn calls(&self) -> Vec<String> {
        self.shared.lock().calls.clone()
    }
    /// Makes process `pid` exit with `code`.
    pub fn exit(&self, pid: u32, code: i32) {
        if let Some(tx) = self.shared.lock().running.remove(&pid) {
            let _ = tx.send(ExitInfo {
                code: Some(code),
                signal: None,
            });
        }
    }
    pub fn ignore_sigterm(&self, name: &str) {
        self.shared.lock().stubborn.push(name.to_string());
    }
    pub fn make_missing(&self, name: &str) {
        self.shared.lock().missing.push(name.to_string());
    }
}

struct FakeSignals {
    pid: u32,
    stubborn: bool,
    shared: Arc<Mutex<Shared>>,
}

impl FakeSignals {
    fn end(&self, signal: i32) {
        if let Some(tx) = self.shared.lock().running.remove(&self.pid) {
            let _ = tx.send(ExitInfo {
                code: None,
                signal: Some(signal),
            });
        }
    }
}

impl Signaller for FakeSignals {
    fn terminate(&self) {
        self.shared
            .lock()
            .calls
            .push(format!("terminate {}", self.pid));
        if !self.stubborn {
            self.end(15);
        }
    }
    fn kill(&self) {
        self.shared.lock().calls.push(format!("kill {}", self.pid));
        self.end(9);
    }
    fn group_alive(&self) -> bool {
        self.shared.lock().running.contains_key(&self.pid)
    }
}

impl Runtime for FakeRuntime {
    fn launch<'a>(
        &'a self,
        name: &'a str,
        _spec: &'a LaunchSpec,
        _logs: &'a Arc<LogBus>,
    ) -> LaunchFuture<'a> {
        Box::pin(std::future::ready(self.start(name)))
    }
}

impl FakeRuntime {
    fn start(&self, name: &str) -> Result<Launched, LaunchError> {
        let mut shared = self.shared.lock();
        shared.calls.push(format!("launch {name}"));
        if shared.missing.iter().any(|m| m == name) {
            return Err(LaunchError::NotFound {
                program: "x".into(),
                dir: "/".into(),
            });
        }
        shared.next_pid += 1;
        let pid = shared.next_pid;
        let (tx, exited) = oneshot::channel();
        shared.running.insert(pid, tx);
        let stubborn = shared.stubborn.iter().any(|s| s == name);
        let signals = Arc::new(FakeSignals {
            pid,
            stubborn,
            shared: self.shared.clone(),
        });
        Ok(Launched {
            pid,
            container: None,
            exited,
            signals,
            start: None,
        })
    }
}
