//! A recording fake runtime for supervisor unit tests: no processes, no sleeping.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

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
        self.shared.lock().unwrap().calls.clone()
    }
    /// Makes process `pid` exit with `code`.
    pub fn exit(&self, pid: u32, code: i32) {
        if let Some(tx) = self.shared.lock().unwrap().running.remove(&pid) {
            let _ = tx.send(ExitInfo {
                code: Some(code),
                signal: None,
            });
        }
    }
    pub fn ignore_sigterm(&self, name: &str) {
        self.shared.lock().unwrap().stubborn.push(name.to_string());
    }
    pub fn make_missing(&self, name: &str) {
        self.shared.lock().unwrap().missing.push(name.to_string());
    }
}

struct FakeSignals {
    pid: u32,
    stubborn: bool,
    shared: Arc<Mutex<Shared>>,
}

impl FakeSignals {
    fn end(&self, signal: i32) {
        if let Some(tx) = self.shared.lock().unwrap().running.remove(&self.pid) {
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
            .unwrap()
            .calls
            .push(format!("terminate {}", self.pid));
        if !self.stubborn {
            self.end(15);
        }
    }
    fn kill(&self) {
        self.shared
            .lock()
            .unwrap()
            .calls
            .push(format!("kill {}", self.pid));
        self.end(9);
    }
    fn group_alive(&self) -> bool {
        self.shared.lock().unwrap().running.contains_key(&self.pid)
    }
}

impl Runtime for FakeRuntime {
    fn launch<'a>(&'a self, spec: &'a LaunchSpec, _logs: &'a Arc<LogBus>) -> LaunchFuture<'a> {
        Box::pin(std::future::ready(self.start(spec)))
    }
}

impl FakeRuntime {
    fn start(&self, spec: &LaunchSpec) -> Result<Launched, LaunchError> {
        let mut shared = self.shared.lock().unwrap();
        shared.calls.push(format!("launch {}", spec.name));
        if shared.missing.contains(&spec.name) {
            return Err(LaunchError::NotFound {
                program: spec.program.clone(),
                dir: "/".into(),
            });
        }
        shared.next_pid += 1;
        let pid = shared.next_pid;
        let (tx, exited) = oneshot::channel();
        shared.running.insert(pid, tx);
        let stubborn = shared.stubborn.contains(&spec.name);
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
        })
    }
}
