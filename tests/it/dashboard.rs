//! The dashboard: every endpoint the page uses, against a running `daca up`; then the page
//! itself in headless Chromium (driven over WebDriver by chromedriver) on examples/pubsub,
//! saving a screenshot of each view.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::{
    free_port, have, http_get, http_request, http_request_with, repo, serial, wait_until,
};
use crate::up::Up;

const CHANGE: [(&str, &str); 1] = [("X-Daca", "1")];

/// The control API's port of a running `daca up` in `dir`; the test helpers send its token
/// there from now on.
pub(crate) fn control_port(dir: &Path) -> u16 {
    let record: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join(".daca/run.json")).unwrap())
            .unwrap();
    let port = record["control"]
        .as_str()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    crate::common::remember_control(port, record["token"].as_str().unwrap());
    port
}

/// The dashboard's address with the run's token, as `daca up` prints it, then `rest` (a
/// fragment such as `#actors`).
pub(crate) fn dashboard_url(dir: &Path, rest: &str) -> String {
    let port = control_port(dir);
    let record: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join(".daca/run.json")).unwrap())
            .unwrap();
    let token = record["token"].as_str().unwrap();
    format!("http://127.0.0.1:{port}/?token={token}{rest}")
}

fn get_json(port: u16, path: &str) -> Value {
    let (status, body) = http_get(port, path).unwrap();
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap()
}

/// Reads a server-sent event stream until `done` holds for what arrived, or `limit` passes.
pub(crate) fn read_sse(
    port: u16,
    path: &str,
    limit: Duration,
    done: impl Fn(&str) -> bool,
) -> String {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: text/event-stream\r\n{}\r\n",
        crate::common::control_auth(port)
    )
    .unwrap();
    let deadline = Instant::now() + limit;
    let mut seen = Vec::new();
    let mut buffer = [0u8; 8192];
    while Instant::now() < deadline && !done(&String::from_utf8_lossy(&seen)) {
        if let Ok(n) = stream.read(&mut buffer) {
            seen.extend_from_slice(&buffer[..n]);
        }
    }
    String::from_utf8_lossy(&seen).into_owned()
}

/// A project with an http.server app, embedded Redis, and resources that exercise the views:
/// a secret in a component's metadata, and a declarative subscription the app cannot accept.
fn api_project(port: u16) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let resources = dir.path().join("resources");
    std::fs::create_dir(&resources).unwrap();
    std::fs::write(
        resources.join("components.yaml"),
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: statestore}\nspec:\n  type: state.in-memory\n  version: v1\n  metadata:\n  - name: password\n    secretKeyRef: {name: DASH_SECRET, key: DASH_SECRET}\nauth: {secretStore: env}\n---\napiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: pubsub}\nspec: {type: pubsub.in-memory, version: v1}\n---\napiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: env}\nspec: {type: secretstores.local.env, version: v1}\n",
    )
    .unwrap();
    // Dapr delivers once without a policy; this one retries the subscriber three times.
    std::fs::write(
        resources.join("resiliency.yaml"),
        "apiVersion: dapr.io/v1alpha1\nkind: Resiliency\nmetadata: {name: lab}\nspec:\n  policies:\n    retries:\n      quick: {policy: constant, duration: 100ms, maxRetries: 3}\n  targets:\n    components:\n      pubsub: {inbound: {retry: quick}}\n",
    )
    .unwrap();
    std::fs::write(
        resources.join("subscription.yaml"),
        "apiVersion: dapr.io/v2alpha1\nkind: Subscription\nmetadata: {name: orders}\nspec:\n  pubsubname: pubsub\n  topic: orders\n  routes: {default: /orders}\n  deadLetterTopic: orders-dead\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("daca.yaml"),
        format!("name: dash\nresources: ./resources\nredis: {{ provider: embedded }}\napps:\n  - id: web\n    command: [python3, -m, http.server, \"{port}\", --bind, 127.0.0.1]\n    port: {port}\n"),
    )
    .unwrap();
    dir
}

#[test]
fn every_endpoint_the_page_uses_answers_from_the_running_project() {
    let project = api_project(free_port());
    let mut up = Up::start_env(project.path(), &[("DASH_SECRET", "hunter2-secret")]);
    up.wait_output("all 1 app(s) ready", Duration::from_secs(30));
    let port = control_port(project.path());
    assert!(
        up.output()
            .contains(&format!("dashboard: http://127.0.0.1:{port}/")),
        "{}",
        up.output()
    );

    // `daca dashboard` prints the address and opens it with $BROWSER.
    // (Outside the project: a file written there would reload the app.)
    let elsewhere = tempfile::tempdir().unwrap();
    let opened = elsewhere.path().join("opened");
    let browser = elsewhere.path().join("browser.sh");
    std::fs::write(
        &browser,
        format!("#!/bin/sh\necho \"$1\" > {}\n", opened.display()),
    )
    .unwrap();
    std::fs::set_permissions(
        &browser,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let url = dashboard_url(project.path(), "");
    let dir = project.path().to_str().unwrap();
    let shown = crate::cli::run(&["dashboard", "--no-open", "-d", dir]);
    assert!(crate::cli::text(&shown.stdout).contains(&format!("dashboard: {url}")));
    let open = crate::common::daca()
        .args(["dashboard", "-d", dir])
        .env("BROWSER", &browser)
        .output()
        .unwrap();
    assert!(open.status.success(), "{}", crate::cli::text(&open.stderr));
    assert!(wait_until(Duration::from_secs(5), || {
        std::fs::read_to_string(&opened).is_ok_and(|t| t.trim() == url)
    }));

    // The subscriber reads the subscriptions once the app is ready.
    assert!(wait_until(Duration::from_secs(10), || {
        get_json(port, "/v1/components")["subscriptions"]
            .as_array()
            .is_some_and(|s| !s.is_empty())
    }));

    // The page, rendered on the server: the overview works without JavaScript.
    let (status, page) = http_get(port, "/").unwrap();
    assert_eq!(status, 200);
    assert!(
        page.contains(
            r#"<tr data-app="web"><th scope="row">web</th><td class="state state-ready">ready</td>"#
        ),
        "{page}"
    );
    assert!(
        page.contains("<td>state.in-memory</td>") && page.contains("<td>orders</td>"),
        "{page}"
    );
    assert!(!page.contains("hunter2"), "no secret in the page");
    for asset in ["/assets/dashboard.js", "/assets/dashboard.css"] {
        assert_eq!(http_get(port, asset).map(|r| r.0), Some(200), "{asset}");
    }

    // Components: secrets masked; the declarative subscription with its app.
    let components = get_json(port, "/v1/components");
    let store = components["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "statestore")
        .unwrap();
    assert_eq!(store["metadata"]["password"], "••••••");
    assert!(!components.to_string().contains("hunter2"));
    let sub = &components["subscriptions"][0];
    assert_eq!(
        (
            sub["app"].as_str(),
            sub["topic"].as_str(),
            sub["kind"].as_str()
        ),
        (Some("web"), Some("orders"), Some("DECLARATIVE"))
    );
    assert_eq!(sub["dead_letter_topic"], "orders-dead");

    // State: keys of an app-id, one key's value, etag and TTL; delete.
    let sidecar = up.ps()["apps"][0]["sidecar"]["http"].as_u64().unwrap() as u16;
    let saved = http_request(
        sidecar,
        "POST",
        "/v1.0/state/statestore",
        r#"[{"key":"k","value":{"n":1},"metadata":{"ttlInSeconds":"300"}}]"#,
    );
    assert_eq!(saved.map(|r| r.0), Some(204));
    let keys = get_json(port, "/v1/state/statestore/keys?prefix=web%7C%7C");
    assert_eq!(keys["keys"], json!(["web||k"]));
    let item = get_json(port, "/v1/state/statestore/item?key=web%7C%7Ck");
    assert_eq!(item["value"], json!({"n": 1}));
    assert_eq!(item["etag"], "1");
    assert!(
        item["ttl_seconds"]
            .as_i64()
            .is_some_and(|t| t > 290 && t <= 300),
        "{item}"
    );
    let path = "/v1/state/statestore/item?key=web%7C%7Ck";
    assert_eq!(
        http_request(port, "DELETE", path, "").map(|r| r.0),
        Some(403),
        "needs the change header"
    );
    assert_eq!(
        http_request_with(port, "DELETE", path, "", &CHANGE).map(|r| r.0),
        Some(204)
    );
    assert_eq!(http_get(port, path).map(|r| r.0), Some(404));
    assert_eq!(
        http_get(port, "/v1/state/nope/keys").map(|r| r.0),
        Some(404)
    );

    // Pub/sub: a publish from the page; the subscriber (http.server answers 501) is retried
    // by the Resiliency policy, then dead-lettered; the counts and the envelope show it.
    let published = http_request_with(
        port,
        "POST",
        "/v1/pubsub/pubsub/orders",
        r#"{"orderId":7}"#,
        &CHANGE,
    );
    assert_eq!(published.map(|r| r.0), Some(204));
    assert!(
        wait_until(Duration::from_secs(15), || {
            let view = get_json(port, "/v1/pubsub");
            view["subscribers"].as_array().unwrap().iter().any(|s| {
                s["topic"] == "orders"
                    && s["dead_lettered"] == 1
                    && s["retried"] == 3
                    && s["pending"] == 0
            })
        }),
        "{}",
        get_json(port, "/v1/pubsub")
    );
    let view = get_json(port, "/v1/pubsub");
    assert_eq!(view["pubsubs"], json!(["pubsub"]));
    assert_eq!(view["topics"][0]["subscribers"], json!(["web"]));
    let recent = view["recent"].as_array().unwrap();
    let sent = recent.iter().find(|m| m["what"] == "published").unwrap();
    assert_eq!(sent["event"]["data"], json!({"orderId": 7}));
    assert_eq!(sent["event"]["source"], "daca-dashboard");
    assert!(recent.iter().any(|m| m["what"] == "dead-lettered"));
    let resiliency = get_json(port, "/v1/resiliency");
    assert_eq!(resiliency["policies"][0]["name"], "quick", "{resiliency}");
    assert_eq!(
        resiliency["policies"][0]["detail"], "constant 100ms, 3 retries",
        "{resiliency}"
    );
    assert_eq!(resiliency["targets"][0]["target"], "pubsub", "{resiliency}");
    assert_eq!(resiliency["targets"][0]["kind"], "component inbound");

    // Logs: the last lines, then live ones (http.server logs requests on stderr).
    let _ = http_get(
        up.ps()["apps"][0]["port"].as_u64().unwrap() as u16,
        "/live-line-check",
    );
    let logs = read_sse(
        port,
        "/v1/logs/stream?source=web&tail=50",
        Duration::from_secs(5),
        |s| s.contains("live-line-check"),
    );
    assert!(
        logs.contains("text/event-stream") && logs.contains("live-line-check"),
        "{logs}"
    );
    assert!(logs.contains(r#""stream":"stderr""#), "{logs}");

    // The page's single stream carries both, told apart by event type.
    let live = read_sse(port, "/v1/live?tail=5", Duration::from_secs(5), |s| {
        s.contains("event: log") && s.contains("event: event")
    });
    assert!(
        live.contains("event: log") && live.contains("event: event"),
        "{live}"
    );

    // Events: the timeline has the start; a broken resources edit shows up as an event and
    // as the components' error, with its file and line.
    let events = get_json(port, "/v1/events");
    assert!(
        events
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["app"] == "web" && e["message"].as_str().unwrap().starts_with("ready in")),
        "{events}"
    );
    std::fs::write(project.path().join("resources/broken.yaml"), "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: x}\nspec: {type: state.nope, version: v1}\n").unwrap();
    let stream = read_sse(port, "/v1/events/stream", Duration::from_secs(10), |s| {
        s.contains("not reloaded")
    });
    assert!(stream.contains("not reloaded"), "{stream}");
    let error = get_json(port, "/v1/components")["error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(error.contains("broken.yaml:4"), "{error}");

    // Only this loopback address is served (no DNS rebinding).
    let mut raw = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        raw,
        "GET /v1/ps HTTP/1.1\r\nHost: attacker.example\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    raw.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");

    // Only its owner drives it: without the run's token (another user of the machine) 401;
    // the printed URL's token becomes a same-site cookie; the record is the owner's only.
    let raw_get = |path: &str, extra: &str| {
        let mut raw = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let head = format!(
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{extra}Connection: close\r\n\r\n"
        );
        raw.write_all(head.as_bytes()).unwrap();
        let mut answer = String::new();
        raw.read_to_string(&mut answer).unwrap();
        answer
    };
    let anyone = raw_get("/v1/ps", "");
    assert!(anyone.starts_with("HTTP/1.1 401"), "{anyone}");
    assert!(
        anyone.contains("this daca answers only its owner"),
        "{anyone}"
    );
    assert!(raw_get("/", "Authorization: Bearer guess\r\n").starts_with("HTTP/1.1 401"));
    assert!(raw_get("/?token=guess", "").starts_with("HTTP/1.1 401"));
    let record = project.path().join(".daca/run.json");
    let token: String = serde_json::from_str::<Value>(&std::fs::read_to_string(&record).unwrap())
        .unwrap()["token"]
        .as_str()
        .unwrap()
        .into();
    let opened = raw_get(&format!("/?token={token}"), "").to_ascii_lowercase();
    assert!(opened.starts_with("http/1.1 303"), "{opened}");
    assert!(opened.contains("location: /\r\n"), "{opened}");
    let cookie = format!("set-cookie: daca-token={token}; path=/; httponly; samesite=strict");
    assert!(opened.contains(&cookie), "{opened}");
    let with_cookie = raw_get("/v1/ps", &format!("Cookie: daca-token={token}\r\n"));
    assert!(with_cookie.starts_with("HTTP/1.1 200"), "{with_cookie}");
    let mode = std::fs::metadata(&record).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    up.stop_cleanly();
}

/// A WebDriver session with headless Chromium (flags from the machine notes).
pub(crate) struct Browser {
    driver: std::process::Child,
    port: u16,
    session: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    pub(crate) fn start() -> Browser {
        let port = free_port();
        let driver = std::process::Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        assert!(wait_until(Duration::from_secs(10), || http_get(
            port, "/status"
        )
        .is_some_and(|r| r.0 == 200)));
        let profile = tempfile::tempdir().unwrap();
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1280,1000",
            &format!("--user-data-dir={}", profile.path().display()),
        ];
        let capabilities = json!({"capabilities": {"alwaysMatch": {"browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium(), "args": args}}}});
        let (_, body) = http_request(port, "POST", "/session", &capabilities.to_string()).unwrap();
        let answer: Value = serde_json::from_str(&body).unwrap();
        let session = answer["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("{body}"))
            .to_string();
        Browser {
            driver,
            port,
            session,
            _profile: profile,
        }
    }

    fn call(&self, method: &str, path: &str, body: Value) -> Value {
        let path = format!("/session/{}{path}", self.session);
        let (_, answer) = http_request(self.port, method, &path, &body.to_string()).unwrap();
        let answer: Value = serde_json::from_str(&answer).unwrap_or_default();
        answer["value"].clone()
    }

    pub(crate) fn open(&self, url: &str) {
        self.call("POST", "/url", json!({ "url": url }));
    }

    /// Runs `script` in the page; its return value.
    pub(crate) fn js(&self, script: &str) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            json!({ "script": script, "args": [] }),
        )
    }

    pub(crate) fn wait_js(&self, what: &str, script: &str, limit: Duration) {
        assert!(
            wait_until(limit, || self.js(script) == Value::Bool(true)),
            "{what}: {}",
            self.js("return document.body.innerText")
        );
    }

    /// Clicks the element `css` selects, as a user would (WebDriver's element click).
    pub(crate) fn click(&self, css: &str) {
        let found = self.call(
            "POST",
            "/element",
            json!({ "using": "css selector", "value": css }),
        );
        let id = found
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no {css}: {found}"));
        self.call("POST", &format!("/element/{id}/click"), json!({}));
    }

    pub(crate) fn screenshot(&self, section: &str, dir: &Path) {
        self.js(&format!(
            "document.getElementById('{section}').scrollIntoView(); return true"
        ));
        let png = self.call("GET", "/screenshot", json!({}));
        let bytes = base64_decode(png.as_str().unwrap());
        std::fs::write(dir.join(format!("dashboard-{section}.png")), bytes).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = http_request(
            self.port,
            "DELETE",
            &format!("/session/{}", self.session),
            "",
        );
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn chromium() -> String {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|name| which::which(name).ok())
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "chromium".into())
}

fn base64_decode(text: &str) -> Vec<u8> {
    daca::pubsub::envelope::base64_decode(text).unwrap()
}

/// Where screenshots go: target/dashboard-screenshots, and docs/screenshots with
/// DACA_UPDATE_SCREENSHOTS=1 (to commit the current ones).
pub(crate) fn screenshot_dir() -> PathBuf {
    let dir = if std::env::var_os("DACA_UPDATE_SCREENSHOTS").is_some() {
        repo().join("docs/screenshots")
    } else {
        repo().join("target/dashboard-screenshots")
    };
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn the_page_in_a_real_browser_follows_the_project_and_acts_on_it() {
    let _serial = serial();
    if !have("chromedriver") || !have("uv") {
        return;
    }
    let mut up = Up::start(&repo().join("examples/pubsub"), None);
    up.wait_output("all 4 app(s) ready", Duration::from_secs(120));
    let browser = Browser::start();
    let shots = screenshot_dir();
    browser.open(&dashboard_url(&repo().join("examples/pubsub"), ""));
    browser.wait_js(
        "the script ran",
        "return document.body.dataset.ready === 'true'",
        Duration::from_secs(10),
    );

    // Apps: the table shows every app ready.
    let ready = "return [...document.querySelectorAll('#apps-body tr')].filter(r => r.cells[1].textContent.startsWith('ready')).length === 4";
    browser.wait_js("four apps ready", ready, Duration::from_secs(10));
    browser.screenshot("apps", &shots);

    // Logs: a line the app prints now appears, live.
    let _ = http_get(8001, "/browser-test-line");
    browser.wait_js(
        "the log line",
        "return document.getElementById('log').textContent.includes('/browser-test-line')",
        Duration::from_secs(10),
    );
    browser.screenshot("logs", &shots);

    // Restart from the page: checkout gets a new pid and is ready again.
    let pid_js = "return document.querySelector('#apps-body tr[data-app=\"checkout\"] td.runtime').dataset.pid";
    let before = browser.js(pid_js);
    browser.click("#apps-body tr[data-app=\"checkout\"] button.restart");
    let changed = format!(
        "const r = document.querySelector('#apps-body tr[data-app=\"checkout\"]'); return r.cells[2].dataset.pid !== '{}' && r.cells[2].dataset.pid !== '' && r.cells[1].textContent.startsWith('ready')",
        before.as_str().unwrap()
    );
    browser.wait_js("a new checkout pid", &changed, Duration::from_secs(30));

    // Pub/sub: a message published from the page reaches order-processor, which saves it.
    browser.js("document.getElementById('pub-pubsub').value = 'pubsub'; document.getElementById('pub-topic').value = 'orders'; document.getElementById('pub-data').value = '{\"orderId\": 424242}'; return true");
    browser.click("#pub-send");
    up.wait_output("processed order 424242", Duration::from_secs(20));
    let delivered = "const r = document.querySelector('#pubsub-counts tr[data-app=\"order-processor\"][data-topic=\"orders\"]'); return !!r && Number(r.querySelector('.delivered').textContent) >= 1";
    browser.wait_js("delivered counted", delivered, Duration::from_secs(10));
    browser.screenshot("pubsub", &shots);

    // State: the value order-processor saved through its sidecar shows in the state view.
    browser.js("document.getElementById('state-store').value = 'statestore'; document.getElementById('state-app').value = 'order-processor'; return true");
    browser.click("#state-list");
    let key = "#state-keys button[data-key=\"order-processor||order-424242\"]";
    browser.wait_js(
        "the saved key listed",
        &format!(
            "return !!document.querySelector('{}')",
            key.replace('\'', "\\'")
        ),
        Duration::from_secs(10),
    );
    browser.click(key);
    browser.wait_js("its value", "return document.getElementById('state-value').textContent.includes('\"status\": \"processed\"')", Duration::from_secs(10));
    browser.screenshot("state", &shots);

    browser.screenshot("components", &shots);
    browser.wait_js(
        "the timeline",
        "return document.getElementById('timeline').textContent.includes('checkout: ready')",
        Duration::from_secs(10),
    );
    browser.screenshot("events", &shots);

    // Jobs: one scheduled through a sidecar is listed with its next fire, and deleted here.
    let scheduled = crate::common::http_request(
        3500,
        "POST",
        "/v1.0/jobs/nightly",
        r#"{"schedule":"@daily"}"#,
    );
    assert_eq!(scheduled.map(|r| r.0), Some(204));
    let row = "#job-list tr[data-job=\"nightly\"]";
    browser.wait_js(
        "the job listed",
        &format!("return !!document.querySelector('{row}')"),
        Duration::from_secs(10),
    );
    browser.screenshot("jobs", &shots);
    browser.click(&format!("{row} button"));
    browser.wait_js(
        "the job deleted",
        &format!("return !document.querySelector('{row}')"),
        Duration::from_secs(10),
    );
    drop(browser);
    up.stop_cleanly();
}
