//! One load generator for both protocols: nghttp2's `h2load` (C, Debian's `nghttp2-client`)
//! sends HTTP/1.1 requests (`--h1`) or gRPC calls (HTTP/2, a framed protobuf body), so the
//! client's own cost, which shares this machine's cores with daca, is alike on both sides; the
//! tonic client of the other rows costs far more per call than the raw HTTP/1.1 one.

use std::process::Command;
use std::time::Duration;

/// One h2load run: how to connect and what to send.
#[derive(Clone)]
pub struct Load<'a> {
    pub url: String,
    pub connections: usize,
    /// Calls in flight per connection (HTTP/2 streams; 1 for HTTP/1.1).
    pub streams: usize,
    pub http1: bool,
    /// A file whose bytes are each request's body (a POST), with these headers.
    pub body: Option<&'a std::path::Path>,
    pub headers: &'a [&'a str],
}

/// What a run did: completed requests per second, and each answer's average size.
pub struct Outcome {
    pub per_second: f64,
    pub succeeded: u64,
    pub data_bytes_per_answer: f64,
}

pub fn available() -> bool {
    Command::new("h2load")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

pub fn run(load: &Load, duration: Duration) -> Outcome {
    let mut command = Command::new("h2load");
    command
        .args(["-c", &load.connections.to_string()])
        .args(["-m", &load.streams.to_string()])
        .args(["-t", "1", "-D", &duration.as_secs().to_string()]);
    if load.http1 {
        command.arg("--h1");
    }
    if let Some(body) = load.body {
        command.arg("-d").arg(body);
    }
    for header in load.headers {
        command.args(["-H", header]);
    }
    let output = command.arg(&load.url).output().expect("h2load runs");
    let text = String::from_utf8_lossy(&output.stdout);
    parse(&text).unwrap_or_else(|| panic!("h2load said:\n{text}"))
}

/// Reads `finished in 2.00s, 12345.6 req/s, ...`, `requests: ... N succeeded, F failed` and
/// `traffic: ... (data) ...` from h2load's summary.
fn parse(text: &str) -> Option<Outcome> {
    let number = |line: &str, before: &str| -> Option<f64> {
        let head = &line[..line.find(before)?];
        head.rsplit([' ', '(']).next()?.parse().ok()
    };
    let finished = text.lines().find(|l| l.starts_with("finished in"))?;
    let per_second = number(finished, " req/s")?;
    let requests = text.lines().find(|l| l.starts_with("requests:"))?;
    let succeeded = number(requests, " succeeded")? as u64;
    let failed = number(requests, " failed")? as u64;
    let errored = number(requests, " errored")? as u64;
    assert_eq!(
        (failed, errored),
        (0, 0),
        "every request answered 2xx:\n{text}"
    );
    let traffic = text.lines().find(|l| l.starts_with("traffic:"))?;
    // `... 1.03MB (1081344) data` : the exact count is in parentheses before " data".
    let data = number(traffic, ") data")?;
    Some(Outcome {
        per_second,
        succeeded,
        data_bytes_per_answer: data / succeeded.max(1) as f64,
    })
}

/// A gRPC request as sent on the wire: no compression flag, the length, the message.
pub fn grpc_frame(message: &impl prost::Message) -> Vec<u8> {
    let mut frame = vec![0];
    frame.extend_from_slice(&(message.encoded_len() as u32).to_be_bytes());
    frame.extend_from_slice(&message.encode_to_vec());
    frame
}

pub const GRPC_HEADERS: &[&str] = &["content-type: application/grpc", "te: trailers"];
