//! The actor API as Dapr's docs drive it with curl, its errors with Dapr's codes, two apps
//! hosting one type, deactivation before a stop, and the gRPC methods.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::actors::Project;
use crate::common::{free_port, http_request};

fn call(port: u16, method: &str, path: &str, body: &str) -> (u16, Value) {
    let (status, text) = http_request(port, method, path, body).unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// The error body Dapr sends: its code and message.
fn error(answer: &(u16, Value)) -> (u16, String, String) {
    let (status, body) = answer;
    let text = |key: &str| body[key].as_str().unwrap_or_default().to_string();
    (*status, text("errorCode"), text("message"))
}

#[test]
fn the_http_api_works_as_daprs_docs_show() {
    let Some(project) = Project::new("1.15.0") else {
        return;
    };
    let mut up = project.up();
    let s = project.sidecar;
    // curl -X POST localhost:3500/v1.0/actors/Counter/doc/method/Increment -d 4
    let (status, body) = call(s, "POST", "/v1.0/actors/Counter/doc/method/Increment", "4");
    assert_eq!((status, body), (200, json!(4)));
    let (status, body) = call(s, "GET", "/v1.0/actors/Counter/doc/method/Get", "");
    assert_eq!(status, 200);
    assert_eq!(body["count"], 4);
    // The state transaction of an active actor, then a read.
    let ops = r#"[{"operation":"upsert","request":{"key":"note","value":{"a":1}}},{"operation":"delete","request":{"key":"gone"}}]"#;
    assert_eq!(call(s, "PUT", "/v1.0/actors/Counter/doc/state", ops).0, 204);
    let (status, text) = http_request(s, "GET", "/v1.0/actors/Counter/doc/state/note", "").unwrap();
    assert_eq!((status, text.as_str()), (200, r#"{"a":1}"#));
    assert_eq!(
        call(s, "GET", "/v1.0/actors/Counter/doc/state/missing", "").0,
        204
    );
    // Reminders: create, read back as the Scheduler keeps it, delete.
    let reminder =
        r#"{"data":"reminderdata","dueTime":"1h","period":"1s","ttl":"2552-01-01T00:00:00Z"}"#;
    assert_eq!(
        call(
            s,
            "POST",
            "/v1.0/actors/Counter/doc/reminders/later",
            reminder
        )
        .0,
        204
    );
    let (status, body) = call(s, "GET", "/v1.0/actors/Counter/doc/reminders/later", "");
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"actorID":"doc","actorType":"Counter","data":"reminderdata","dueTime":"1h","period":"@every 1s","ttl":"2552-01-01T00:00:00Z"})
    );
    let once = r#"{"dueTime":"48h","overwrite":false}"#;
    let refused = call(s, "POST", "/v1.0/actors/Counter/doc/reminders/later", once);
    assert_eq!(
        error(&refused),
        (
            409,
            "ERR_ACTOR_REMINDER_ALREADY_EXISTS".into(),
            "actor reminder already exists: later".into()
        )
    );
    assert_eq!(
        call(s, "DELETE", "/v1.0/actors/Counter/doc/reminders/later", "").0,
        204
    );
    let missing = call(s, "GET", "/v1.0/actors/Counter/doc/reminders/later", "");
    assert_eq!(error(&missing).0, 404);
    assert_eq!(error(&missing).1, "ERR_ACTOR_REMINDER_NOT_FOUND");
    // Timers: create and delete (an unknown one too).
    let timer = r#"{"dueTime":"1h","period":"P1D","callback":"on_tick"}"#;
    assert_eq!(
        call(s, "POST", "/v1.0/actors/Counter/doc/timers/daily", timer).0,
        204
    );
    assert_eq!(
        call(s, "DELETE", "/v1.0/actors/Counter/doc/timers/daily", "").0,
        204
    );
    assert_eq!(
        call(s, "DELETE", "/v1.0/actors/Counter/doc/timers/never", "").0,
        204
    );
    up.stop_cleanly();
}

#[test]
fn errors_have_daprs_codes() {
    let Some(project) = Project::new("1.15.0") else {
        return;
    };
    let mut up = project.up();
    let s = project.sidecar;
    let ops = r#"[{"operation":"upsert","request":{"key":"k","value":1}}]"#;
    let inactive = call(s, "POST", "/v1.0/actors/Counter/never-called/state", ops);
    assert_eq!(
        error(&inactive),
        (
            400,
            "ERR_ACTOR_INSTANCE_MISSING".into(),
            "actor instance is missing".into()
        )
    );
    let non_hosted = call(
        s,
        "POST",
        "/v1.0/actors/Nope/1/reminders/r",
        r#"{"dueTime":"1s"}"#,
    );
    assert_eq!(error(&non_hosted).0, 403);
    assert_eq!(error(&non_hosted).1, "ERR_ACTOR_REMINDER_NON_HOSTED");
    let days = call(
        s,
        "POST",
        "/v1.0/actors/Counter/1/reminders/r",
        r#"{"period":"P1D"}"#,
    );
    assert_eq!(
        error(&days),
        (
            500,
            "ERR_ACTOR_REMINDER_CREATE".into(),
            "error creating actor reminder: unsupported period format: P1D".into()
        )
    );
    let bad_timer = call(
        s,
        "POST",
        "/v1.0/actors/Counter/1/timers/t",
        r#"{"dueTime":"soon"}"#,
    );
    assert_eq!(error(&bad_timer).0, 500);
    assert_eq!(error(&bad_timer).1, "ERR_ACTOR_TIMER_CREATE");
    for name in ["bad%23name", "bad%3Fname", "bad%5Cname", "..", "bad%0Aname"] {
        let answer = call(
            s,
            "POST",
            &format!("/v1.0/actors/Counter/1/reminders/{name}"),
            r#"{"dueTime":"1s"}"#,
        );
        assert_eq!(error(&answer).0, 400, "{name}: {answer:?}");
        assert_eq!(error(&answer).1, "ERR_BAD_REQUEST");
    }
    let reserved = call(
        s,
        "GET",
        "/v1.0/actors/dapr.internal.default.actors.workflow/1/state/x",
        "",
    );
    assert_eq!(error(&reserved).0, 403);
    assert_eq!(error(&reserved).1, "ERR_ACTOR_TYPE_RESERVED");
    let malformed = call(s, "POST", "/v1.0/actors/Counter/1/state", "not json");
    assert_eq!(error(&malformed).1, "ERR_MALFORMED_REQUEST");
    // A method that fails in the app: Dapr's wrapping of its status and body, called once.
    let failed = call(
        s,
        "POST",
        "/v1.0/actors/Counter/1/method/Increment",
        r#""not a number""#,
    );
    let (status, code, message) = error(&failed);
    assert_eq!((status, code.as_str()), (500, "ERR_ACTOR_INVOKE_METHOD"));
    assert!(
        message.starts_with("error invoke actor method: error from actor service: (500) "),
        "{message}"
    );
    let unknown = call(s, "POST", "/v1.0/actors/Counter/1/method/NoSuchMethod", "");
    assert_eq!(error(&unknown).1, "ERR_ACTOR_INVOKE_METHOD");
    // No app hosts the type: Dapr's five one-second lookups, then its error.
    let started = Instant::now();
    let nobody = call(s, "POST", "/v1.0/actors/Nobody/1/method/foo", "");
    let (status, code, message) = error(&nobody);
    assert_eq!((status, code.as_str()), (500, "ERR_ACTOR_INVOKE_METHOD"));
    assert!(
        message.contains("did not find address for actor 'Nobody/1'"),
        "{message}"
    );
    assert!(
        started.elapsed() >= Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    up.stop_cleanly();
}

#[test]
fn two_apps_hosting_one_type_split_ids_and_each_id_stays_put() {
    let Some(project) = Project::new("1.15.0") else {
        return;
    };
    std::fs::create_dir_all(project.dir.path().join("second")).unwrap();
    crate::actors::copy_app(&project.dir.path().join("second"));
    let (port, sidecar) = (free_port(), free_port());
    let second = project.app("second", "./second", port, sidecar, "");
    project.write("", "");
    let manifest = std::fs::read_to_string(project.dir.path().join("daca.yaml")).unwrap() + &second;
    std::fs::write(project.dir.path().join("daca.yaml"), manifest).unwrap();
    let mut up = project.up();
    up.wait_output("second: hosts actors", Duration::from_secs(30));
    let host_of = |id: usize| {
        let path = format!("/v1.0/actors/Counter/id-{id}/method/Whoami");
        call(project.sidecar, "POST", &path, "")
            .1
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let hosts: Vec<String> = (0..40).map(host_of).collect();
    let on_second = hosts.iter().filter(|h| *h == "second").count();
    assert!(
        (1..40).contains(&on_second),
        "both apps host some ids: {hosts:?}"
    );
    for (id, host) in hosts.iter().enumerate() {
        assert_eq!(&host_of(id), host, "id-{id} stays on its host");
        // Through the other app's sidecar too.
        let path = format!("/v1.0/actors/Counter/id-{id}/method/Whoami");
        assert_eq!(call(sidecar, "POST", &path, "").1, json!(host));
    }
    up.stop_cleanly();
}

#[test]
fn every_active_actor_is_deactivated_before_its_app_stops() {
    let Some(project) = Project::new("1.15.0") else {
        return;
    };
    let file = project.dir.path().join("deactivated.txt");
    project.write(&format!(", DEACTIVATIONS_FILE: \"{}\"", file.display()), "");
    let mut up = project.up();
    for id in ["x", "y", "z"] {
        assert_eq!(
            project
                .post(project.port, &format!("/counter/{id}/increment"), "")
                .0,
            200
        );
    }
    up.stop_cleanly();
    let lines = std::fs::read_to_string(&file).unwrap_or_default();
    for id in ["x", "y", "z"] {
        assert!(
            lines.contains(&format!("Counter/{id}")),
            "{lines}\n{}",
            up.output()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_grpc_api_invokes_actors_and_keeps_their_reminders() {
    use dapr::dapr::proto::runtime::v1 as rt;
    use dapr::dapr::proto::runtime::v1::dapr_client::DaprClient;
    let Some(project) = Project::new("1.15.0") else {
        return;
    };
    // The harness gives the sidecar a free gRPC port of its own: that one.
    let manifest = std::fs::read_to_string(project.dir.path().join("daca.yaml")).unwrap();
    let grpc: u16 = manifest
        .split("dapr_grpc_port: ")
        .nth(1)
        .and_then(|rest| rest.lines().next()?.trim().parse().ok())
        .expect("the harness sets dapr_grpc_port");
    let mut up = tokio::task::block_in_place(|| project.up());
    let mut client = DaprClient::connect(format!("http://127.0.0.1:{grpc}"))
        .await
        .unwrap();
    let answer = client
        .invoke_actor(rt::InvokeActorRequest {
            actor_type: "Counter".into(),
            actor_id: "g1".into(),
            method: "Increment".into(),
            data: b"6".to_vec(),
            metadata: Default::default(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.data, b"6");
    let state = client
        .get_actor_state(rt::GetActorStateRequest {
            actor_type: "Counter".into(),
            actor_id: "g1".into(),
            key: "count".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(state.data, b"6");
    client
        .register_actor_reminder(rt::RegisterActorReminderRequest {
            actor_type: "Counter".into(),
            actor_id: "g1".into(),
            name: "hourly".into(),
            due_time: "1h".into(),
            period: "1h".into(),
            data: b"foo".to_vec(),
            ..Default::default()
        })
        .await
        .unwrap();
    let reminder = client
        .get_actor_reminder(rt::GetActorReminderRequest {
            actor_type: "Counter".into(),
            actor_id: "g1".into(),
            name: "hourly".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reminder.period.as_deref(), Some("@every 1h0m0s"));
    let data: Vec<u8> = prost::Message::decode(reminder.data.unwrap().value.as_slice()).unwrap();
    assert_eq!(
        data, br#""Zm9v""#,
        "bytes as a JSON string of their base64, as daprd keeps them"
    );
    let missing = client
        .get_actor_reminder(rt::GetActorReminderRequest {
            actor_type: "Counter".into(),
            actor_id: "g1".into(),
            name: "none".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);
    tokio::task::block_in_place(|| up.stop_cleanly());
}

#[test]
fn the_dashboard_shows_actors_and_calls_and_deactivates_them() {
    if !crate::common::have("chromedriver") {
        return;
    }
    let Some(project) = Project::new("1.15.0") else {
        return;
    };
    let mut up = project.up();
    assert_eq!(
        project
            .post(project.port, "/counter/shown/remind?seconds=3600", "")
            .0,
        200
    );
    let browser = crate::dashboard::Browser::start();
    browser.open(&crate::dashboard::dashboard_url(
        project.dir.path(),
        "#actors",
    ));
    browser.wait_js(
        "the script ran",
        "return document.body.dataset.ready === 'true'",
        Duration::from_secs(10),
    );
    let types = "return document.getElementById('actor-types').textContent.includes('Counter')";
    browser.wait_js("the hosted types", types, Duration::from_secs(10));
    browser.js("document.getElementById('actor-type').value = 'Counter'; document.getElementById('actor-id').value = 'shown'; document.getElementById('actor-method').value = 'Increment'; document.getElementById('actor-body').value = '5'; return true");
    browser.click("#actor-call");
    browser.wait_js(
        "the answer",
        "return document.getElementById('actor-result').textContent === '200: 5'",
        Duration::from_secs(10),
    );
    let row = "#actor-active tr[data-actor=\"Counter/shown\"]";
    browser.wait_js(
        "the active actor",
        &format!(
            "return !!document.querySelector('{}')",
            row.replace('\'', "\\'")
        ),
        Duration::from_secs(10),
    );
    browser.click(&format!("{row} button.actor-show"));
    browser.wait_js(
        "its state",
        "return document.getElementById('actor-state').textContent.includes('\"count\": 5')",
        Duration::from_secs(10),
    );
    let reminder =
        "return document.getElementById('actor-reminders').textContent.includes('again')";
    browser.wait_js("its reminder", reminder, Duration::from_secs(10));
    browser.screenshot("actors", &crate::dashboard::screenshot_dir());
    browser.click(&format!("{row} button.actor-deactivate"));
    browser.wait_js(
        "deactivated",
        &format!(
            "return !document.querySelector('{}')",
            row.replace('\'', "\\'")
        ),
        Duration::from_secs(10),
    );
    assert!(
        project.log()["deactivated"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["id"] == "shown")
    );
    drop(browser);
    up.stop_cleanly();
}
