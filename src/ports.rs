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

/// The process listening on TCP `port` (any address), as `(pid, command line)`, read from
/// `/proc`: the listening socket's inode in `/proc/net/tcp{,6}`, then the process holding a
/// descriptor to it. `None` when it cannot be told (another user's process, or nothing).
pub fn holder(port: u16) -> Option<(u32, String)> {
    let inode = ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|table| std::fs::read_to_string(table).ok())
        .find_map(|table| listening_inode(&table, port))?;
    let socket = format!("socket:[{inode}]");
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        let holds = fds
            .flatten()
            .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|l| l.as_os_str() == &*socket));
        if holds {
            let command = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            let command = String::from_utf8_lossy(&command).replace('\0', " ");
            return Some((pid, command.trim().to_string()));
        }
    }
    None
}

/// The inode of the socket listening on `port` in one `/proc/net/tcp` table.
fn listening_inode(table: &str, port: u16) -> Option<u64> {
    const LISTEN: &str = "0A";
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let local_port = fields.get(1)?.rsplit(':').next()?;
        let listening =
            u16::from_str_radix(local_port, 16).ok()? == port && *fields.get(3)? == LISTEN;
        listening.then(|| fields.get(9)?.parse().ok())?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_holder_of_a_port_is_this_process_when_it_listens() {
        let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let (pid, _) = holder(port).expect("found in /proc");
        assert_eq!(pid, std::process::id());
        drop(listener);
        assert_eq!(holder(port), None);
    }
}
