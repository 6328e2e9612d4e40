//! Port choices: Dapr's defaults when free, the next free ones otherwise.

use std::collections::HashSet;
use std::net::TcpListener;

/// Whether nothing listens on 127.0.0.1:`port` (we try to bind it, then let go).
pub fn is_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// Hands out ports, never the same one twice in a run.
#[derive(Debug, Default, Clone)]
pub struct PortPicker {
    taken: HashSet<u16>,
}

impl PortPicker {
    /// Marks ports that something else of this project will use (app ports, fixed ports).
    pub fn reserve(&mut self, port: u16) {
        self.taken.insert(port);
    }

    /// `preferred` if free, else the next free port above it.
    pub fn pick(&mut self, preferred: u16) -> u16 {
        let port = (preferred..=u16::MAX)
            .find(|p| !self.taken.contains(p) && is_free(*p))
            .unwrap_or_else(|| ephemeral().unwrap_or(preferred));
        self.taken.insert(port);
        port
    }
}

fn ephemeral() -> Option<u16> {
    TcpListener::bind(("127.0.0.1", 0))
        .ok()?
        .local_addr()
        .ok()
        .map(|a| a.port())
}
