//! The sidecar's HTTP API as an app calls it: any method, path (with its query's metadata)
//! and body against in-memory state stores and brokers. Every request is answered; a
//! request that made a handler panic (answered 500 by daca's catch) is a finding.
#![no_main]

#[path = "../support/sidecar.rs"]
mod support;

use std::sync::LazyLock;

use axum::body::Body;
use support::RUNTIME;
use tower::ServiceExt;

static ROUTER: LazyLock<axum::Router> =
    LazyLock::new(|| daca::sidecar::router(support::SIDECAR.clone()));

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "DELETE", "PATCH"];

// An input is a method byte, the path and query up to the first newline, then the body (so
// the seeds in fuzz/seeds/sidecar_http are readable).
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&method, rest)) = data.split_first() else {
        return;
    };
    let (path, body) = match rest.iter().position(|b| *b == b'\n') {
        Some(at) => (&rest[..at], &rest[at + 1..]),
        None => (rest, &[][..]),
    };
    let Ok(path) = std::str::from_utf8(path) else {
        return;
    };
    let method = METHODS[usize::from(method) % METHODS.len()];
    let Ok(request) = axum::http::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .body(Body::from(body.to_vec()))
    else {
        return; // not a request line an HTTP server would accept
    };
    RUNTIME.block_on(async {
        let answer = ROUTER.clone().oneshot(request).await.expect("answered");
        let status = answer.status();
        let bytes = axum::body::to_bytes(answer.into_body(), 8 << 20)
            .await
            .expect("a body");
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !(status == 500 && text.contains("daca failed serving this request")),
            "{method} {path}: a handler panicked: {text}"
        );
    });
});
