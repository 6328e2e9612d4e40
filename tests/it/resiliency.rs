//! Resiliency as the course's lab uses it, with real FastAPI apps: a callee that fails twice
//! is one success for a caller whose sidecar has a constant 5 s × 3 retry; without the policy
//! the 500 comes back at once; a 50 ms timeout cuts a slow call; a circuit breaker opens after
//! three failures, refuses without reaching the app, and lets a probe through after its
//! timeout; a pub/sub inbound retry redelivers an event 1 s apart (reference §4.5).

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{free_port, http_get, http_request, wait_until};
use crate::up::Up;

const RESILIENCY: &str = "apiVersion: dapr.io/v1alpha1
kind: Resiliency
metadata:
  name: lab
scopes: [caller]
spec:
  policies:
    timeouts:
      fast: 50ms
    retries:
      threeTimes: { policy: constant, duration: 5s, maxRetries: 3 }
      inbound: { policy: constant, duration: 1s, maxRetries: 2 }
    circuitBreakers:
      cb: { maxRequests: 1, timeout: 5s, trip: consecutiveFailures >= 3 }
  targets:
    apps:
      callee: { retry: threeTimes }
      slow: { timeout: fast }
      flaky: { circuitBreaker: cb }
    components:
      pubsub: { inbound: { retry: inbound } }
";

struct Apps {
    /// (app port, sidecar port) of caller, callee, slow, flaky.
    ports: Vec<(u16, u16)>,
}

fn project(dir: &Path, python: &Path) -> Apps {
    std::fs::copy(
        crate::common::repo().join("tests/fixtures/resiliency/main.py"),
        dir.join("main.py"),
    )
    .unwrap();
    let resources = dir.join("resources");
    std::fs::create_dir(&resources).unwrap();
    std::fs::write(resources.join("resiliency.yaml"), RESILIENCY).unwrap();
    std::fs::write(
        resources.join("pubsub.yaml"),
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: { name: pubsub }\nspec: { type: pubsub.in-memory, version: v1 }\n",
    )
    .unwrap();
    let mut manifest = "name: resiliency\nnetwork: host\nresources: ./resources\nredis: { provider: embedded }\napps:\n".to_string();
    let mut ports = Vec::new();
    for id in ["caller", "callee", "slow", "flaky"] {
        let (port, sidecar) = (free_port(), free_port());
        let subscribe = if id == "caller" { "1" } else { "0" };
        manifest.push_str(&format!(
            "  - id: {id}\n    command: [\"{}\", -m, uvicorn, \"main:app\", --port, \"{port}\"]\n    port: {port}\n    dapr_http_port: {sidecar}\n    dapr_grpc_port: {}\n    env: {{ SUBSCRIBE: \"{subscribe}\", PYTHONDONTWRITEBYTECODE: \"1\" }}\n",
            python.display(),
            free_port()
        ));
        ports.push((port, sidecar));
    }
    std::fs::write(dir.join("daca.yaml"), manifest).unwrap();
    Apps { ports }
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::String(text.to_string()))
}

fn hits(app: u16) -> Value {
    json(&http_get(app, "/hits").unwrap().1)
}

#[test]
fn retries_timeouts_and_circuit_breakers_apply_in_the_callers_sidecar() {
    let Some(python) = crate::actors::sdk("latest") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let apps = project(dir.path(), &python);
    let [
        (caller_app, caller),
        (callee_app, callee),
        _,
        (flaky_app, _),
    ] = apps.ports[..]
    else {
        unreachable!()
    };
    let mut up = Up::start(dir.path(), None);
    up.wait_output("all 4 app(s) ready", Duration::from_secs(90));

    // Vector 1 (the lab): 500, 500, 200 ⇒ one 200 for the caller after two 5 s waits. It runs
    // beside the checks below.
    let lab = std::thread::spawn(move || {
        let started = Instant::now();
        // Two 5 s waits: more patience than the usual 15 s for a loaded machine.
        let path = "/v1.0/invoke/callee/method/work/lab";
        let patience = Duration::from_secs(40);
        let answer = crate::common::http_request_waiting(caller, "POST", path, "", &[], patience);
        (answer, started.elapsed())
    });

    // Vector 3: the callee's own sidecar does not load the resource (scopes): the 500 comes
    // back after one call.
    let (status, body) =
        http_request(callee, "POST", "/v1.0/invoke/callee/method/work/plain", "").unwrap();
    assert_eq!(
        (status, json(&body)["attempt"].clone()),
        (500, 1.into()),
        "{body}"
    );

    // Vector 5: a 50 ms timeout cuts a call the app answers after a second.
    let started = Instant::now();
    let (status, body) = http_get(caller, "/v1.0/invoke/slow/method/slow").unwrap();
    let took = started.elapsed();
    assert_eq!(status, 500, "{body}");
    assert_eq!(json(&body)["errorCode"], "ERR_DIRECT_INVOKE", "{body}");
    assert!(body.contains("context deadline exceeded"), "{body}");
    assert!(took < Duration::from_millis(800), "{took:?}");

    breaker_opens_and_half_opens(&up, dir.path(), caller, flaky_app);
    inbound_retries_redeliver(caller, caller_app);

    let (answer, took) = lab.join().unwrap();
    let (status, body) =
        answer.unwrap_or_else(|| panic!("no answer after {took:?}\n{}", up.output()));
    assert_eq!(
        (status, json(&body)),
        (200, serde_json::json!({"attempt": 3})),
        "{body}"
    );
    assert!(took >= Duration::from_secs(10), "{took:?}");
    assert_eq!(hits(callee_app)["hits"]["lab"], 3);
    up.stop_cleanly();
}

/// Vector 6: three failures reach the app; the fourth call is refused without reaching it;
/// after the breaker's 5 s timeout one probe goes through, and its success closes it.
fn breaker_opens_and_half_opens(up: &Up, dir: &Path, caller: u16, flaky_app: u16) {
    let control = crate::dashboard::control_port(dir);
    // The page is open before the breaker trips: a browser can take longer to start than
    // the breaker stays open.
    let browser = crate::common::have("chromedriver").then(|| {
        let browser = crate::dashboard::Browser::start();
        browser.open(&crate::dashboard::dashboard_url(dir, "#resiliency"));
        browser.wait_js(
            "the page ready",
            "return document.body.dataset.ready === 'true'",
            Duration::from_secs(20),
        );
        browser
    });
    let call = || http_request(caller, "POST", "/v1.0/invoke/flaky/method/flaky", "").unwrap();
    for attempt in 1..=3 {
        let (status, body) = call();
        assert_eq!(
            (status, json(&body)["attempt"].clone()),
            (503, attempt.into()),
            "{body}"
        );
    }
    let (status, body) = call();
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("circuit breaker is open"), "{body}");
    assert_eq!(
        hits(flaky_app)["hits"]["flaky"],
        3,
        "refused without reaching the app"
    );
    let state = || {
        let view = json(&http_get(control, "/v1/resiliency").unwrap().1);
        view["breakers"][0]["state"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(state(), "open");
    // The dashboard page shows it too.
    if let Some(browser) = browser {
        browser.wait_js(
            "the open breaker listed",
            "return !!document.querySelector('#resiliency-breakers tr[data-breaker=\"flaky:flaky\"][data-state=\"open\"]')",
            Duration::from_secs(3),
        );
        browser.screenshot("resiliency", &crate::dashboard::screenshot_dir());
    }
    http_request(flaky_app, "POST", "/mode", r#"{"fail": false}"#).unwrap();
    assert!(
        wait_until(Duration::from_secs(8), || state() == "half-open"),
        "{}",
        state()
    );
    let (status, body) = call();
    assert_eq!(
        (status, json(&body)["attempt"].clone()),
        (200, 4.into()),
        "{body}"
    );
    assert_eq!(state(), "closed");
    assert!(
        up.output().contains("changed state from open to half-open"),
        "{}",
        up.output()
    );
}

/// Vector 8: the subscriber answers 500 twice; the inbound retry (1 s × 2) delivers a third
/// time, about a second after each failure.
fn inbound_retries_redeliver(caller: u16, caller_app: u16) {
    let (status, body) = http_request(
        caller,
        "POST",
        "/v1.0/publish/pubsub/orders",
        r#"{"id": "order-1"}"#,
    )
    .unwrap();
    assert_eq!(status, 204, "{body}");
    let delivered = || {
        hits(caller_app)["deliveries"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    assert!(
        wait_until(Duration::from_secs(8), || delivered().len() >= 3),
        "{:?}",
        delivered()
    );
    std::thread::sleep(Duration::from_millis(1500));
    let all = delivered();
    assert_eq!(all.len(), 3, "no fourth delivery: {all:?}");
    let at: Vec<f64> = all.iter().map(|d| d["at"].as_f64().unwrap()).collect();
    for gap in [at[1] - at[0], at[2] - at[1]] {
        assert!((0.9..2.0).contains(&gap), "{all:?}");
    }
}

/// Components outbound: while Redis holds its writers (`CLIENT PAUSE … WRITE`), a store whose
/// target has a 100 ms timeout alone fails fast with Dapr's error; one with the timeout and a
/// retry every 200 ms comes through once the pause ends, and the value is stored once.
#[test]
fn a_state_stores_outbound_timeout_and_retry_apply_to_its_writes() {
    let Some(redis) = crate::common::RedisServer::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let resources = dir.path().join("resources");
    std::fs::create_dir(&resources).unwrap();
    let store = |name: &str| {
        format!(
            "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {{ name: {name} }}\nspec:\n  type: state.redis\n  version: v1\n  metadata:\n  - name: redisHost\n    value: 127.0.0.1:{}\n---\n",
            redis.port
        )
    };
    let policies = "apiVersion: dapr.io/v1alpha1\nkind: Resiliency\nmetadata: { name: stores }\nspec:\n  policies:\n    timeouts: { quick: 100ms }\n    retries: { again: { policy: constant, duration: 200ms, maxRetries: 20 } }\n  targets:\n    components:\n      steady: { outbound: { timeout: quick, retry: again } }\n      fragile: { outbound: { timeout: quick } }\n";
    std::fs::write(
        resources.join("stores.yaml"),
        format!("{}{}{policies}", store("steady"), store("fragile")),
    )
    .unwrap();
    let sidecar = free_port();
    std::fs::write(
        dir.path().join("daca.yaml"),
        format!(
            "name: stores\nresources: ./resources\nredis: {{ url: {} }}\napps:\n  - id: lab\n    command: [sleep, \"3600\"]\n    dapr_http_port: {sidecar}\n    dapr_grpc_port: {}\n",
            redis.url(),
            free_port()
        ),
    )
    .unwrap();
    let mut up = Up::start(dir.path(), None);
    up.wait_output("all 1 app(s) ready", Duration::from_secs(30));
    let save = |store: &str, n: u32| {
        let started = Instant::now();
        let body = format!(r#"[{{"key":"k","value":{{"n":{n}}}}}]"#);
        let answer = http_request(sidecar, "POST", &format!("/v1.0/state/{store}"), &body);
        (answer.unwrap(), started.elapsed())
    };
    assert_eq!(save("steady", 0).0.0, 204, "{}", up.output());
    let mut connection = redis.connection().unwrap();
    let pause = |connection: &mut redis::Connection| {
        let _: () = redis::cmd("CLIENT")
            .arg(&["PAUSE", "1000", "WRITE"])
            .query(connection)
            .unwrap();
    };
    pause(&mut connection);
    let ((status, body), took) = save("fragile", 1);
    assert_eq!(status, 500, "{body}");
    assert_eq!(json(&body)["errorCode"], "ERR_STATE_SAVE", "{body}");
    assert!(body.contains("context deadline exceeded"), "{body}");
    assert!(took < Duration::from_millis(700), "{took:?}");
    let _: () = redis::cmd("CLIENT")
        .arg("UNPAUSE")
        .query(&mut connection)
        .unwrap();

    pause(&mut connection);
    let ((status, body), took) = save("steady", 2);
    assert_eq!(status, 204, "{body}");
    assert!(took >= Duration::from_millis(700), "{took:?}");
    let (_, stored) = http_get(sidecar, "/v1.0/state/steady/k").unwrap();
    assert_eq!(json(&stored), serde_json::json!({"n": 2}));
    assert!(
        up.output()
            .contains("state store steady: write: failed; retrying"),
        "{}",
        up.output()
    );
    up.stop_cleanly();
}

/// Actors: a 100 ms timeout on the `Counter` target cuts a method the app holds for a second
/// (Dapr's ERR_ACTOR_INVOKE_METHOD with `context deadline exceeded`); other calls go on.
#[test]
fn an_actor_targets_timeout_cuts_a_slow_method() {
    let Some(project) = crate::actors::Project::new("latest") else {
        return;
    };
    let resources = project.dir.path().join("resources");
    std::fs::create_dir(&resources).unwrap();
    std::fs::write(
        resources.join("components.yaml"),
        format!(
            "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {{ name: statestore }}\nspec:\n  type: state.redis\n  version: v1\n  metadata:\n  - name: redisHost\n    value: 127.0.0.1:{}\n  - name: actorStateStore\n    value: \"true\"\n---\napiVersion: dapr.io/v1alpha1\nkind: Resiliency\nmetadata: {{ name: actors }}\nspec:\n  policies:\n    timeouts: {{ brief: 300ms }}\n  targets:\n    actors:\n      Counter: {{ timeout: brief }}\n",
            project.redis.port
        ),
    )
    .unwrap();
    project.write("", "resources: ./resources\n");
    let mut up = project.up();
    let started = Instant::now();
    let (status, body) = project.post(
        project.sidecar,
        "/v1.0/actors/Counter/slow/method/Hold",
        "1000",
    );
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["errorCode"], "ERR_ACTOR_INVOKE_METHOD", "{body}");
    assert!(
        body.to_string().contains("context deadline exceeded"),
        "{body}"
    );
    // Cut at 300 ms, well before the method's 1 s (a first activation needs some slack).
    assert!(started.elapsed() < Duration::from_millis(900));
    let (status, body) = project.post(
        project.sidecar,
        "/v1.0/actors/Counter/fast/method/Increment",
        "2",
    );
    assert_eq!((status, body), (200, Value::from(2)));
    up.stop_cleanly();
}
