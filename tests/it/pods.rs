//! Pods (src/pod): an app's own network namespace with its own /etc/hosts, made rootless with
//! a user namespace and pasta, with daca's sockets inside it.

use std::time::Duration;

use crate::common::{have, repo};

/// daca's own listener inside a pod answers the pod's process at 127.0.0.1:3500 (the same
/// port daca may use on the host), the pod resolves names from its own /etc/hosts, reaches a
/// host port it was given, and is gone with its holder.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_has_its_own_localhost_hosts_file_and_way_out() {
    if !have("pasta") {
        return;
    }
    // SAFETY of the test: only this test sets it, before any pod is made.
    unsafe { std::env::set_var("DACA_EXE", repo().join("target/debug/daca")) };
    let dir = tempfile::tempdir().unwrap();
    let hosts = dir.path().join("hosts");
    std::fs::write(
        &hosts,
        "127.0.0.1 localhost\n127.0.1.7 other.default.svc.cluster.local\n",
    )
    .unwrap();
    let outside = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let outside_port = outside.local_addr().unwrap().port();
    let pod = daca::pod::Pod::create(&hosts, &[], &[outside_port])
        .await
        .unwrap();
    let inside = pod.listen("127.0.0.1:3500".parse().unwrap()).unwrap();
    // Where a peer's name leads: its port is the same as the app's own, which the app binds
    // on every address (`--host 0.0.0.0`), as the course's apps do.
    let peer = daca::pod::peer_net::peer_address(0, false);
    let at_peer = pod.listen((peer, 8000).into()).unwrap();
    let script = format!(
        "import socket, urllib.request\n\
         print(socket.gethostbyname('other.default.svc.cluster.local'))\n\
         s = socket.create_connection(('127.0.0.1', 3500)); print(s.recv(100).decode())\n\
         t = socket.create_connection(('127.0.0.1', {outside_port})); print(t.recv(100).decode())\n\
         own = socket.socket(); own.bind(('0.0.0.0', 8000)); own.listen()\n\
         u = socket.create_connection(('{peer}', 8000)); print(u.recv(100).decode())\n"
    );
    let (program, args) = pod.join().command("python3", &["-c".to_string(), script]);
    let run = tokio::process::Command::new(program).args(args).output();
    let serve = async {
        let (mut conn, _) = inside.accept().await.unwrap();
        tokio::io::AsyncWriteExt::write_all(&mut conn, b"daca in the pod")
            .await
            .unwrap();
        let (mut conn, _) = outside.accept().await.unwrap();
        tokio::io::AsyncWriteExt::write_all(&mut conn, b"the host")
            .await
            .unwrap();
        let (mut conn, _) = at_peer.accept().await.unwrap();
        tokio::io::AsyncWriteExt::write_all(&mut conn, b"a peer")
            .await
            .unwrap();
    };
    let (output, ()) = tokio::join!(run, serve);
    let output = output.unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        text.lines().collect::<Vec<_>>(),
        ["127.0.1.7", "daca in the pod", "the host", "a peer"],
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let pid = pod.pid();
    // pasta and its keeper name the holder last.
    let pasta = pids_of(&format!("-T {outside_port} {pid}"));
    assert_eq!(pasta.len(), 2, "pasta and its keeper: {pasta:?}");
    pod.close().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(pod_processes(&[pid]).is_empty(), "the holder is gone");
    assert!(pod_processes(&pasta).is_empty(), "pasta is gone");
    assert!(!hosts.exists(), "its /etc/hosts file is gone");
}

/// Whether any pod helper of this run is still alive (`__pod` holders, `pasta`).
fn pod_processes(pids: &[u32]) -> Vec<u32> {
    pids.iter()
        .copied()
        .filter(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists())
        .collect()
}

/// The pids of the processes whose command line contains `needle`.
fn pids_of(needle: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline)
            .replace('\0', " ")
            .contains(needle)
        {
            pids.push(pid);
        }
    }
    pids
}

/// examples/pods: four FastAPI apps on 0.0.0.0:8000, each in its own pod, each finding its own
/// sidecar at localhost:3500 (hard-coded, and the SDK's defaults), calling another by its
/// cluster name and its sidecar by `<app>-dapr`, reaching a service on the machine, and
/// publishing to each other; the host reaches them at 8000-8003. A SIGKILLed daca and
/// `daca down` leave no process, pod or port behind.
#[test]
fn four_apps_on_port_8000_each_in_its_own_pod() {
    if !have("pasta") || !have("python3") {
        return;
    }
    let Some(python) = crate::actors::sdk("1.15.0") else {
        return;
    };
    let _serial = crate::common::serial();
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::copy(
        repo().join("examples/pods/app/main.py"),
        app.join("main.py"),
    )
    .unwrap();
    let apps: String = ["a", "b", "c", "d"]
        .iter()
        .map(|id| {
            format!(
                "  - {{ id: {id}, dir: ./app, command: [\"{}\", -m, uvicorn, \"main:app\", --host, 0.0.0.0, --port, \"8000\"], port: 8000, health: /healthz }}\n",
                python.display()
            )
        })
        .collect();
    let manifest =
        format!("name: pods\nnetwork: pod\nredis: {{ provider: embedded }}\napps:\n{apps}");
    std::fs::write(dir.path().join("daca.yaml"), manifest).unwrap();
    let mut up = crate::up::Up::start(dir.path(), None);
    up.wait_output("all 4 app(s) ready", Duration::from_secs(60));
    let get = |port: u16, path: &str| -> serde_json::Value {
        let (status, body) = crate::common::http_get(port, path).unwrap_or_default();
        assert_eq!(status, 200, "{port}{path}: {body}\n{}", up.output());
        serde_json::from_str(&body).unwrap()
    };
    for (port, id) in [(8000, "a"), (8001, "b"), (8002, "c"), (8003, "d")] {
        let me = get(port, "/whoami");
        assert_eq!(
            me,
            serde_json::json!({"http": id, "sdk": id, "state": id, "port": "3500"}),
            "{}",
            up.output()
        );
    }
    assert_eq!(
        get(8001, "/call/a"),
        serde_json::json!({"service": "a", "sidecar": "a"})
    );
    assert_eq!(get(8003, "/call/c")["service"], "c");
    let machine = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let machine_port = machine.local_addr().unwrap().port();
    let serve = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut conn, _) = machine.accept().unwrap();
        let mut request = [0u8; 1024];
        let _ = conn.read(&mut request);
        let _ = conn.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 12\r\n\r\nthe internet");
    });
    assert_eq!(
        get(8002, &format!("/fetch?port={machine_port}"))["body"],
        "the internet"
    );
    serve.join().unwrap();
    let (status, _) = crate::common::http_request(8003, "POST", "/publish/hello", "").unwrap();
    assert_eq!(status, 200);
    let heard = || {
        (8000..=8002).all(|port| {
            get(port, "/received")
                .to_string()
                .contains("\"from\":\"d\"")
        })
    };
    assert!(
        crate::common::wait_until(Duration::from_secs(10), heard),
        "{}",
        up.output()
    );
    // An app added to daca.yaml is known by its names in the running pods.
    let manifest = std::fs::read_to_string(dir.path().join("daca.yaml")).unwrap();
    let e = manifest.lines().last().unwrap().replace("id: d", "id: e");
    std::fs::write(dir.path().join("daca.yaml"), format!("{manifest}{e}\n")).unwrap();
    up.wait_output("e ready", Duration::from_secs(60));
    assert_eq!(
        get(8000, "/call/e"),
        serde_json::json!({"service": "e", "sidecar": "e"})
    );
    let ps = up.ps();
    assert_eq!(ps["apps"][1]["pod"]["host_port"], 8001, "{ps}");
    // This daca's holders: `daca __pod /tmp/daca-pods-<daca's pid>/<app>.hosts`.
    let holders = pids_of(&format!("__pod /tmp/daca-pods-{}/", up.pid()));
    assert_eq!(holders.len(), 5, "one holder per pod: {holders:?}");
    // pasta and its keeper name the holder last.
    let pastas: Vec<u32> = holders
        .iter()
        .flat_map(|holder| {
            pids_of(&format!(
                "--config-net --quiet -t none -u none -U none -T none {holder}"
            ))
        })
        .collect();
    assert_eq!(
        pastas.len(),
        10,
        "a pasta and its keeper per pod: {pastas:?}"
    );
    // SIGKILLed, daca leaves the apps (as without pods); `daca down` ends them, and the pods go.
    up.signal(nix::sys::signal::Signal::SIGKILL);
    up.wait_exit(Duration::from_secs(5));
    let down = crate::cli::run(&["down", "-d", dir.path().to_str().unwrap()]);
    assert!(down.status.success(), "{}", crate::cli::text(&down.stderr));
    let gone = || pod_processes(&holders).is_empty() && pod_processes(&pastas).is_empty();
    let started = std::time::Instant::now();
    assert!(
        crate::common::wait_until(Duration::from_secs(20), gone),
        "{:?} {:?}",
        pod_processes(&holders),
        pod_processes(&pastas)
    );
    eprintln!("pods gone {:?} after down", started.elapsed());
    for port in 8000..=8004 {
        assert!(crate::common::port_is_free(port), "{port} is still bound");
    }
}

/// Where the kernel refuses user namespaces, apps run on the machine's network, and daca says
/// so in one line with the fix; an app that asks for a pod is refused clearly. Simulated with a
/// limit of 0 inside a user namespace of the test's (the machine's own setting is untouched).
#[test]
fn without_user_namespaces_apps_fall_back_to_the_host_network_and_say_why() {
    if !have("pasta") || !have("unshare") || !have("python3") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("web")).unwrap();
    let port = crate::common::free_port();
    std::fs::write(
        dir.path().join("web/main.py"),
        format!(
            "import http.server, os\nclass H(http.server.BaseHTTPRequestHandler):\n    def do_GET(self):\n        self.send_response(200); self.end_headers(); self.wfile.write(os.environ['DAPR_HTTP_PORT'].encode())\nhttp.server.HTTPServer(('127.0.0.1', {port}), H).serve_forever()\n"
        ),
    )
    .unwrap();
    let sidecar = crate::common::free_port();
    let manifest = |network: &str| {
        format!(
            "name: nopods\nredis: {{ provider: embedded }}\n{network}apps:\n  - {{ id: web, dir: ./web, command: [python3, main.py], port: {port}, dapr_http_port: {sidecar}, dapr_grpc_port: {} }}\n",
            crate::common::free_port()
        )
    };
    std::fs::write(dir.path().join("daca.yaml"), manifest("")).unwrap();
    let limited = [
        "unshare",
        "--user",
        "--map-root-user",
        "sh",
        "-c",
        "echo 0 > /proc/sys/user/max_user_namespaces && exec \"$@\"",
        "sh",
    ];
    let mut up = crate::up::Up::start_wrapped(dir.path(), &limited);
    up.wait_output("app(s) ready", Duration::from_secs(30));
    let output = up.output();
    assert!(
        output.contains("network: host for the apps (the kernel refused a user namespace")
            && output.contains("sysctl user.max_user_namespaces"),
        "{output}"
    );
    // On the machine's network, the app's sidecar is its own host port.
    let answer = crate::common::http_get(port, "/").map(|(_, body)| body);
    assert_eq!(answer, Some(sidecar.to_string()));
    up.stop_cleanly();
    std::fs::write(dir.path().join("daca.yaml"), manifest("network: pod\n")).unwrap();
    let mut up = crate::up::Up::start_wrapped(dir.path(), &limited);
    assert_eq!(
        up.wait_exit(Duration::from_secs(30)),
        Some(1),
        "{}",
        up.output()
    );
    let output = up.output();
    assert!(
        output.contains("web: cannot make its pod: the kernel refused the pod's namespaces")
            && output.contains("hint: install `passt` (for pasta), or set `network: host`"),
        "{output}"
    );
}

/// Container apps in the engine's pods (named `docker::` so the quick tier, which has no
/// engine, skips it).
mod docker {
    use std::time::Duration;

    use crate::common::repo;

    /// Container apps get their pods from the engine: two containers of examples/pods' app, both
    /// on port 8000, each finding its own sidecar at localhost:3500 (hard-coded and the SDK's
    /// defaults) through the relay in its pod container, calling the other by its cluster name and
    /// its sidecar by `<app>-dapr`, publishing to each other; the host reaches them at 8000 and
    /// 8001; a save reloads them in their pods. A SIGKILLed daca leaves no container (the pod
    /// containers included) and no pod files.
    #[test]
    fn two_containers_on_port_8000_each_in_its_own_pod() {
        if !crate::docker::engine_ready() || !crate::docker::image_ready(SDK_IMAGE) {
            return;
        }
        let _serial = crate::common::serial();
        let dir = tempfile::tempdir().unwrap();
        let app = dir.path().join("app");
        std::fs::create_dir_all(&app).unwrap();
        std::fs::copy(
            repo().join("examples/pods/app/main.py"),
            app.join("main.py"),
        )
        .unwrap();
        let apps: String = ["a", "b"]
            .iter()
            .map(|id| {
                format!(
                    "  - {{ id: {id}, dir: ./app, image: \"{SDK_IMAGE}\", mount: /app, command: [python3, -m, uvicorn, \"main:app\", --app-dir, /app, --host, 0.0.0.0, --port, \"8000\"], port: 8000, health: /healthz }}\n"
                )
            })
            .collect();
        let manifest =
            format!("name: dacatest-cpods\nredis: {{ provider: embedded }}\napps:\n{apps}");
        std::fs::write(dir.path().join("daca.yaml"), manifest).unwrap();
        let mut up = crate::up::Up::start(dir.path(), None);
        up.wait_output("all 2 app(s) ready", Duration::from_secs(90));
        let get = |port: u16, path: &str| -> serde_json::Value {
            let (status, body) = crate::common::http_get(port, path).unwrap_or_default();
            assert_eq!(status, 200, "{port}{path}: {body}\n{}", up.output());
            serde_json::from_str(&body).unwrap()
        };
        for (port, id) in [(8000, "a"), (8001, "b")] {
            assert_eq!(
                get(port, "/whoami"),
                serde_json::json!({"http": id, "sdk": id, "state": id, "port": "3500"}),
                "{}",
                up.output()
            );
        }
        assert_eq!(
            get(8001, "/call/a"),
            serde_json::json!({"service": "a", "sidecar": "a"})
        );
        let (status, _) = crate::common::http_request(8001, "POST", "/publish/hello", "").unwrap();
        assert_eq!(status, 200);
        let heard = || {
            get(8000, "/received")
                .to_string()
                .contains("\"from\":\"b\"")
        };
        assert!(
            crate::common::wait_until(Duration::from_secs(10), heard),
            "{}",
            up.output()
        );
        let names = crate::docker::docker(&[
            "ps",
            "--filter",
            "label=dev.daca.project=dacatest-cpods",
            "--format",
            "{{.Names}}",
        ]);
        assert!(names.contains("daca-dacatest-cpods-a-pod"), "{names}");
        let mode = crate::docker::docker(&[
            "inspect",
            "-f",
            "{{.HostConfig.NetworkMode}}",
            "daca-dacatest-cpods-a",
        ]);
        let pod = crate::docker::docker(&["inspect", "-f", "{{.Id}}", "daca-dacatest-cpods-a-pod"]);
        assert_eq!(mode, format!("container:{pod}"));
        // The machine is `host.docker.internal` in a container's pod, as on the engine's network.
        let hosts = crate::docker::docker(&["exec", "daca-dacatest-cpods-a", "cat", "/etc/hosts"]);
        assert!(hosts.contains(" host.docker.internal"), "{hosts}");
        assert_eq!(up.ps()["apps"][1]["pod"]["host_port"], 8001);
        // A save reloads the app in its pod: the new code answers at the same host port.
        let source = std::fs::read_to_string(app.join("main.py")).unwrap();
        std::fs::write(
            app.join("main.py"),
            source.replace("return {\"ok\": True}", "return {\"ok\": \"edited\"}"),
        )
        .unwrap();
        let edited = || {
            (8000..=8001).all(|port| {
                crate::common::http_get(port, "/healthz")
                    .is_some_and(|(_, body)| body.contains("edited"))
            })
        };
        assert!(
            crate::common::wait_until(Duration::from_secs(30), edited),
            "{}",
            up.output()
        );
        assert_eq!(get(8001, "/whoami")["http"], "b");
        // An app added to daca.yaml is known by its names in the running pods.
        let manifest = std::fs::read_to_string(dir.path().join("daca.yaml")).unwrap();
        let c = manifest.lines().last().unwrap().replace("id: b", "id: c");
        std::fs::write(dir.path().join("daca.yaml"), format!("{manifest}{c}\n")).unwrap();
        up.wait_output("c ready", Duration::from_secs(60));
        assert_eq!(
            get(8000, "/call/c"),
            serde_json::json!({"service": "c", "sidecar": "c"})
        );
        // Only `ports:` changed: the pod container is new, and so must the app's container be
        // (it joined the old one's namespace).
        let host_port = crate::common::free_port();
        let manifest = std::fs::read_to_string(dir.path().join("daca.yaml")).unwrap();
        let moved = manifest.replacen(
            "port: 8000,",
            &format!("port: 8000, ports: [\"{host_port}:8000\"],"),
            1,
        );
        std::fs::write(dir.path().join("daca.yaml"), moved).unwrap();
        let answers = || {
            crate::common::http_get(host_port, "/whoami").is_some_and(|(_, b)| b.contains("\"a\""))
        };
        assert!(
            crate::common::wait_until(Duration::from_secs(60), answers),
            "{}",
            up.output()
        );
        assert_eq!(get(host_port, "/call/c")["service"], "c");
        let pods = std::path::PathBuf::from(format!("/tmp/daca-pods-{}", up.pid()));
        up.signal(nix::sys::signal::Signal::SIGKILL);
        up.wait_exit(Duration::from_secs(5));
        let left = || crate::docker::containers_of("dacatest-cpods").is_empty();
        assert!(
            crate::common::wait_until(Duration::from_secs(30), left),
            "{:?}",
            crate::docker::containers_of("dacatest-cpods")
        );
        // The next daca clears what a killed one left in /tmp.
        let down = crate::cli::run(&["down", "-d", dir.path().to_str().unwrap()]);
        assert!(down.status.success(), "{}", crate::cli::text(&down.stderr));
        assert!(!pods.exists(), "{} is left", pods.display());
    }

    /// The image with the Dapr Python SDK (scripts/test-images).
    const SDK_IMAGE: &str = "daca-test/python-dapr:3.11";
}
