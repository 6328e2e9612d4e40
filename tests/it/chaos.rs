//! Faults under load, against a real `daca up`: more connections than a sidecar serves at once,
//! a client that trickles its headers, bodies one byte over the limit. The faults of what
//! daca runs are in `chaos_services` (Redis killed, daca killed, a full disk) and `chaos_apps`
//! (an app crash-looping, a port taken, a slow subscriber).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::common::{free_port, http_get, http_request, serial};
use crate::up::Up;

/// A project of one app that only idles, so what is tested is daca's own listener.
fn idle_project(sidecar: u16) -> tempfile::TempDir {
    let project = tempfile::tempdir().unwrap();
    std::fs::write(
        project.path().join("daca.yaml"),
        format!(
            "name: chaos\nredis: {{ provider: embedded }}\napps:\n  - id: idle\n    command: [sleep, \"3600\"]\n    dapr_http_port: {sidecar}\n    dapr_grpc_port: {}\n",
            free_port()
        ),
    )
    .unwrap();
    project
}

/// Raises this test process's own open-files limit; `None` when the machine's hard limit is
/// below `need`.
fn room_for(need: u64) -> Option<()> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
    if hard < need {
        eprintln!("skipped: the hard limit on open files is {hard}, below {need}");
        return None;
    }
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard).ok()
}

#[test]
fn five_thousand_connections_are_all_answered_and_daca_says_it_is_full() {
    const CONNECTIONS: usize = 5000;
    if room_for(2 * CONNECTIONS as u64 + 1000).is_none() {
        return;
    }
    let _serial = serial();
    let sidecar = free_port();
    let project = idle_project(sidecar);
    let up = Up::start(project.path(), None);
    up.wait_output("app(s) ready", Duration::from_secs(30));
    let started = Instant::now();
    let mut streams = Vec::with_capacity(CONNECTIONS);
    for n in 0..CONNECTIONS {
        let stream = TcpStream::connect(("127.0.0.1", sidecar))
            .unwrap_or_else(|err| panic!("connection {n}: {err}\n{}", up.output()));
        streams.push(stream);
    }
    eprintln!("connected in {:?}", started.elapsed());
    // Each asks once and closes, so the connections beyond the bound are served as the first
    // ones end.
    for stream in &mut streams {
        stream
            .write_all(b"GET /v1.0/healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
    }
    let mut answered = 0;
    for stream in &mut streams {
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        if answer.starts_with("HTTP/1.1 204") {
            answered += 1;
        }
    }
    let took = started.elapsed();
    drop(streams);
    assert_eq!(
        answered, CONNECTIONS,
        "answered of {CONNECTIONS} in {took:?}"
    );
    eprintln!("{CONNECTIONS} connections answered in {took:?}");
    up.wait_output(
        "4096 connections open, the most it serves at once",
        Duration::from_secs(5),
    );
    assert_eq!(
        http_get(sidecar, "/v1.0/healthz").map(|(status, _)| status),
        Some(204)
    );
    // Each connection's descriptor and task went with it.
    let settled = crate::common::wait_until(Duration::from_secs(10), || {
        let process = &up.ps()["process"];
        process["open_fds"].as_u64().is_some_and(|fds| fds < 200)
            && process["tasks"].as_u64().is_some_and(|tasks| tasks < 200)
    });
    assert!(settled, "{}", up.ps()["process"]);
}

#[test]
fn a_client_that_trickles_its_headers_is_cut_at_ten_seconds_and_others_are_served() {
    let _serial = serial();
    let sidecar = free_port();
    let project = idle_project(sidecar);
    let up = Up::start(project.path(), None);
    up.wait_output("app(s) ready", Duration::from_secs(30));
    let mut slow = TcpStream::connect(("127.0.0.1", sidecar)).unwrap();
    let opened = Instant::now();
    slow.write_all(b"GET /v1.0/healthz HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    // The slow client holds nothing others need.
    for _ in 0..20 {
        assert_eq!(
            http_get(sidecar, "/v1.0/healthz").map(|(status, _)| status),
            Some(204)
        );
    }
    slow.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut rest = Vec::new();
    let read = slow.read_to_end(&mut rest);
    let held = opened.elapsed();
    assert!(read.is_ok(), "the connection ends with EOF: {read:?}");
    assert!(
        held >= Duration::from_secs(9) && held < Duration::from_secs(15),
        "cut after {held:?}"
    );
    up.wait_output(
        "closed a connection whose request headers did not arrive within 10 s",
        Duration::from_secs(5),
    );
    assert!(up.pid() > 0);
    assert_eq!(
        http_get(sidecar, "/v1.0/healthz").map(|(status, _)| status),
        Some(204)
    );
}

#[test]
fn a_body_one_byte_over_the_limit_is_a_413_sent_or_declared() {
    let _serial = serial();
    let sidecar = free_port();
    let project = idle_project(sidecar);
    let up = Up::start(project.path(), None);
    up.wait_output("app(s) ready", Duration::from_secs(30));
    let limit = 4 << 20;
    // Declared: refused from the headers alone, before the body is sent.
    let mut declared = TcpStream::connect(("127.0.0.1", sidecar)).unwrap();
    declared
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        declared,
        "POST /v1.0/state/statestore HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        limit + 1
    )
    .unwrap();
    let mut head = [0u8; 12];
    declared.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 413");
    // Sent: a body of 4 MiB + 1 byte, chunked, so that only reading it finds its size.
    let value = "x".repeat(limit + 1 - r#"[{"key":"k","value":""}]"#.len());
    let body = format!(r#"[{{"key":"k","value":"{value}"}}]"#);
    assert_eq!(body.len(), limit + 1);
    let mut sent = TcpStream::connect(("127.0.0.1", sidecar)).unwrap();
    sent.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        sent,
        "POST /v1.0/state/statestore HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n",
        body.len()
    )
    .unwrap();
    // The sidecar may answer and close before it has read all of it.
    let _ = sent.write_all(body.as_bytes());
    let _ = sent.write_all(b"\r\n0\r\n\r\n");
    let mut answer = String::new();
    let _ = sent.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer:.300}");
    assert!(answer.contains("ERR_MALFORMED_REQUEST"), "{answer:.300}");
    // One byte less is stored.
    let fits = format!(r#"[{{"key":"k","value":"{}"}}]"#, &value[1..]);
    let (status, message) = http_request(sidecar, "POST", "/v1.0/state/statestore", &fits).unwrap();
    assert_eq!(status, 204, "{message}");
    assert!(up.pid() > 0);
}
