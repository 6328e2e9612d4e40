//! Faults of what daca runs, under load, against a real `daca up`: its managed redis-server
//! SIGKILLed while state is saved and events published, then daca itself SIGKILLed; `.daca/`
//! on a full disk. The apps' faults are in `chaos_apps`.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::common::{free_port, have, http_request_waiting, repo, serial, wait_until};
use crate::up::Up;

/// One request the load made: when it was sent, how long it took, and its answer.
struct Sent {
    n: u32,
    at: Instant,
    took: Duration,
    answer: Option<(u16, String)>,
}

/// Sends `request(n)` for n = 0, 1, … until `stop`, recording each.
fn load(
    sidecar: u16,
    stop: Arc<AtomicBool>,
    request: impl Fn(u32) -> (String, String) + Send + 'static,
) -> std::thread::JoinHandle<Vec<Sent>> {
    std::thread::spawn(move || {
        let mut sent = Vec::new();
        let mut n = 0;
        while !stop.load(Ordering::Relaxed) {
            let (path, body) = request(n);
            let at = Instant::now();
            let patience = Duration::from_secs(30);
            let answer = http_request_waiting(sidecar, "POST", &path, &body, &[], patience);
            sent.push(Sent {
                n,
                at,
                took: at.elapsed(),
                answer,
            });
            n += 1;
        }
        sent
    })
}

fn acknowledged(sent: &[Sent]) -> BTreeSet<u32> {
    sent.iter()
        .filter(|s| s.answer.as_ref().is_some_and(|(status, _)| *status == 204))
        .map(|s| s.n)
        .collect()
}

fn redis_pid(up: &Up) -> Option<u32> {
    up.ps()["redis"]["status"]["pid"]
        .as_u64()
        .map(|pid| pid as u32)
}

fn save(n: u32) -> (String, String) {
    let body = format!(r#"[{{"key":"k{n}","value":{n}}}]"#);
    ("/v1.0/state/statestore".into(), body)
}

pub(crate) fn publish(n: u32) -> (String, String) {
    (
        "/v1.0/publish/pubsub/load".into(),
        format!(r#"{{"n":{n}}}"#),
    )
}

/// Every failed request of the load was answered, quickly, with Dapr's error body `code`.
fn failed_clearly(sent: &[Sent], code: &str) -> usize {
    let mut failed = 0;
    for s in sent {
        assert!(
            s.took < Duration::from_secs(7),
            "request {} took {:?}",
            s.n,
            s.took
        );
        match &s.answer {
            Some((204, _)) => {}
            Some((500, body)) if body.contains(code) => failed += 1,
            other => panic!("request {}: {other:?}", s.n),
        }
    }
    failed
}

fn unread(sidecar: u16, keys: &BTreeSet<u32>) -> Vec<u32> {
    let patience = Duration::from_secs(10);
    keys.iter()
        .copied()
        .filter(|n| {
            let path = format!("/v1.0/state/statestore/k{n}");
            let answer = http_request_waiting(sidecar, "GET", &path, "", &[], patience);
            answer != Some((200, n.to_string()))
        })
        .collect()
}

pub(crate) fn delivered(out: &std::path::Path) -> BTreeSet<u32> {
    std::fs::read_to_string(out)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.parse().ok())
        .collect()
}

#[test]
fn a_killed_redis_comes_back_requests_meanwhile_fail_fast_and_nothing_acknowledged_is_lost() {
    if !have("redis-server") || !have("python3") {
        return;
    }
    let _serial = serial();
    let project = tempfile::tempdir().unwrap();
    let outputs = tempfile::tempdir().unwrap();
    let out = outputs.path().join("delivered.txt");
    let (app_port, sidecar) = (free_port(), free_port());
    std::fs::write(
        project.path().join("daca.yaml"),
        format!(
            "name: chaosredis\nredis: {{ provider: redis-server, port: {}, persistence: always }}\napps:\n  - id: sink\n    command: [python3, \"{}\", \"{app_port}\", \"{}\"]\n    port: {app_port}\n    dapr_http_port: {sidecar}\n    dapr_grpc_port: {}\n",
            free_port(),
            repo().join("tests/fixtures/apps/subscriber.py").display(),
            out.display(),
            free_port()
        ),
    )
    .unwrap();
    let mut up = Up::start(project.path(), None);
    up.wait_output("app(s) ready", Duration::from_secs(30));
    let first = redis_pid(&up).expect("a managed redis-server");
    let redis_port = up.ps()["redis"]["url"]
        .as_str()
        .and_then(|url| url.rsplit(':').next()?.parse::<u16>().ok())
        .expect("the managed Redis's URL");
    let fsync = std::process::Command::new("redis-cli")
        .args([
            "-p",
            &redis_port.to_string(),
            "config",
            "get",
            "appendfsync",
        ])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    assert!(fsync.contains("always"), "appendfsync: {fsync}");

    let stop = Arc::new(AtomicBool::new(false));
    let saves = load(sidecar, stop.clone(), save);
    let publishes = load(sidecar, stop.clone(), publish);
    std::thread::sleep(Duration::from_millis(1500));
    let killed = Instant::now();
    kill(Pid::from_raw(first as i32), Signal::SIGKILL).unwrap();
    let back = wait_until(Duration::from_secs(30), || {
        redis_pid(&up).is_some_and(|pid| pid != first)
            && http_request_waiting(
                sidecar,
                "GET",
                "/v1.0/state/statestore/probe",
                "",
                &[],
                Duration::from_secs(5),
            )
            .is_some_and(|(status, _)| status == 204)
    });
    assert!(back, "Redis did not come back\n{}", up.output());
    let recovered = killed.elapsed();
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    let (saves, publishes) = (saves.join().unwrap(), publishes.join().unwrap());
    let failed_saves = failed_clearly(&saves, "ERR_STATE_SAVE");
    let failed_publishes = failed_clearly(&publishes, "ERR_PUBSUB_PUBLISH_MESSAGE");
    let (saved, published) = (acknowledged(&saves), acknowledged(&publishes));
    let after_kill = |sent: &[Sent]| {
        sent.iter()
            .filter(|s| s.at > killed && s.answer.as_ref().is_some_and(|a| a.0 == 204))
            .count()
    };
    assert!(after_kill(&saves) > 0 && after_kill(&publishes) > 0);
    eprintln!(
        "MEASURED: Redis SIGKILL → serving again in {recovered:?}; {failed_saves} of {} saves and {failed_publishes} of {} publishes failed meanwhile",
        saves.len(),
        publishes.len()
    );
    assert_eq!(unread(sidecar, &saved), Vec::<u32>::new(), "saves lost");
    let all_delivered = wait_until(Duration::from_secs(30), || {
        published.is_subset(&delivered(&out))
    });
    let arrived = delivered(&out);
    let missing: Vec<_> = published.difference(&arrived).collect();
    assert!(
        all_delivered,
        "acknowledged events not delivered: {missing:?}"
    );

    // daca itself SIGKILLed under load: what it acknowledged is there after the next `up`.
    let stop = Arc::new(AtomicBool::new(false));
    let saves = load(sidecar, stop.clone(), |n| save(100_000 + n));
    std::thread::sleep(Duration::from_millis(1000));
    up.signal(Signal::SIGKILL);
    up.wait_exit(Duration::from_secs(10));
    // Not dropped: its drop runs `daca down`, and the next `up` is to clear what was left.
    std::mem::forget(up);
    stop.store(true, Ordering::Relaxed);
    let saved = acknowledged(&saves.join().unwrap());
    assert!(!saved.is_empty());
    let up = Up::start(project.path(), None);
    up.wait_output("app(s) ready", Duration::from_secs(30));
    let saved: BTreeSet<u32> = saved.iter().map(|n| n + 100_000).collect();
    assert_eq!(
        unread(sidecar, &saved),
        Vec::<u32>::new(),
        "writes acknowledged before daca's SIGKILL lost"
    );
    drop(up);
}

/// The app named `id` in `daca ps --json`.
pub(crate) fn app(up: &Up, id: &str) -> serde_json::Value {
    let ps = up.ps();
    ps["apps"]
        .as_array()
        .and_then(|apps| apps.iter().find(|a| a["name"] == id).cloned())
        .unwrap_or_else(|| panic!("no app {id} in {ps}"))
}

/// A small tmpfs mounted on `dir`, unmounted on drop; `None` where mounting is not allowed.
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    fn mount(dir: &std::path::Path, size: &str) -> Option<SmallDisk> {
        std::fs::create_dir_all(dir).unwrap();
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .is_ok_and(|o| o.status.success());
        if !mounted {
            eprintln!("skipped: cannot mount a tmpfs here");
        }
        mounted.then(|| SmallDisk(dir.to_path_buf()))
    }

    /// Fills it; the filler is removed by [`SmallDisk::free`].
    fn fill(&self) {
        use std::io::Write;
        let mut filler = std::fs::File::create(self.0.join("filler")).unwrap();
        let block = vec![0u8; 64 * 1024];
        while filler.write_all(&block).is_ok() {}
        let _ = filler.write_all(&[0u8; 1]);
        let _ = filler.sync_all();
    }

    fn free(&self) {
        std::fs::remove_file(self.0.join("filler")).unwrap();
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .args(["-l"])
            .arg(&self.0)
            .output();
    }
}

#[test]
fn a_full_disk_under_dot_daca_is_a_clear_error_and_corrupts_nothing() {
    if !have("redis-server") {
        return;
    }
    let _serial = serial();
    let project = tempfile::tempdir().unwrap();
    let Some(disk) = SmallDisk::mount(&project.path().join(".daca"), "8m") else {
        return;
    };
    let sidecar = free_port();
    std::fs::write(
        project.path().join("daca.yaml"),
        format!(
            "name: chaosdisk\nredis: {{ provider: redis-server, port: {} }}\napps:\n  - id: idle\n    command: [sleep, \"3600\"]\n    restart: always\n    dapr_http_port: {sidecar}\n    dapr_grpc_port: {}\n",
            free_port(),
            free_port()
        ),
    )
    .unwrap();
    let save = |key: &str| {
        let body = format!(r#"[{{"key":"{key}","value":"{}"}}]"#, "v".repeat(1000));
        let patience = Duration::from_secs(10);
        let path = "/v1.0/state/statestore";
        http_request_waiting(sidecar, "POST", path, &body, &[], patience)
    };
    let mut up = Up::start(project.path(), None);
    up.wait_output("app(s) ready", Duration::from_secs(30));
    assert_eq!(save("before").map(|(s, _)| s), Some(204));
    disk.fill();
    // Redis cannot append: the save fails with its reason, and nothing hangs.
    let refused = wait_until(Duration::from_secs(10), || {
        save("during")
            .is_some_and(|(status, body)| status == 500 && body.contains("ERR_STATE_SAVE"))
    });
    let (status, body) = save("during").unwrap();
    assert!(refused, "{status} {body}\n{}", up.output());
    assert!(
        body.contains("No space left on device") || body.contains("MISCONF"),
        "{body}"
    );
    // daca's own record cannot be rewritten either: said once, the old one kept whole.
    let record = project.path().join(".daca/run.json");
    let kept = std::fs::read_to_string(&record).unwrap();
    let pid = app(&up, "idle")["pid"].as_u64().unwrap() as i32;
    kill(Pid::from_raw(pid), Signal::SIGKILL).unwrap();
    up.wait_output("cannot write", Duration::from_secs(10));
    up.wait_output("hint: free space there", Duration::from_secs(1));
    assert!(
        up.output().contains("No space left on device"),
        "{}",
        up.output()
    );
    assert!(wait_until(
        Duration::from_secs(10),
        || app(&up, "idle")["state"] == "ready"
    ));
    let pid = app(&up, "idle")["pid"].as_u64().unwrap() as i32;
    kill(Pid::from_raw(pid), Signal::SIGKILL).unwrap();
    assert!(wait_until(
        Duration::from_secs(10),
        || app(&up, "idle")["restarts"] == 2
    ));
    assert_eq!(up.output().matches("cannot write").count(), 1, "said once");
    let now: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&record).unwrap())
        .unwrap_or_else(|err| panic!("run.json corrupted: {err}"));
    assert_eq!(
        now,
        serde_json::from_str::<serde_json::Value>(&kept).unwrap()
    );
    disk.free();
    assert!(
        wait_until(Duration::from_secs(10), || save("after")
            .is_some_and(|(s, _)| s == 204)),
        "{}",
        up.output()
    );
    // The next change of state writes it again.
    let pid = app(&up, "idle")["pid"].as_u64().unwrap() as i32;
    kill(Pid::from_raw(pid), Signal::SIGKILL).unwrap();
    up.wait_output("run.json is written again", Duration::from_secs(10));
    up.stop_cleanly();
    let up = Up::start(project.path(), None);
    up.wait_output("app(s) ready", Duration::from_secs(30));
    for key in ["before", "after"] {
        let path = format!("/v1.0/state/statestore/{key}");
        let (status, _) = crate::common::http_get(sidecar, &path).unwrap();
        assert_eq!(status, 200, "{key} lost");
    }
    drop(up);
}
