//! Containers on the real Docker engine: examples/containers built from its Dockerfile, Redis
//! in a container, reload without rebuild, rebuild on a Dockerfile edit, clean-up after Ctrl-C,
//! `daca down` and a SIGKILL, bystanders untouched, clear errors. The images come from
//! scripts/test-images (no registry here); `.ci/run` builds them, and under it these tests must
//! run.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::cli::{run, text};
use crate::common::{free_port, http_get, http_request, serial, wait_until};
use crate::up::Up;

const PYTHON_IMAGE: &str = "daca-test/python:3.11";
const REDIS_IMAGE: &str = "daca-test/redis:7";
const BASE_IMAGE: &str = "daca-test/base:bookworm";
/// The official postgres image's interface on Debian's PostgreSQL (scripts/test-images).
pub(crate) const POSTGRES_IMAGE: &str = "daca-test/postgres:15";
/// The example's Dockerfile CMD listens here.
const APP_PORT: u16 = 8000;
/// A first build installs packages; later ones are cached.
const FIRST_BUILD: Duration = Duration::from_secs(300);

/// Whether the engine and the test images are there: skip on a developer's machine without
/// them, fail under `.ci/run`.
pub(crate) fn engine_ready() -> bool {
    let images = [PYTHON_IMAGE, REDIS_IMAGE, BASE_IMAGE];
    let ready = images.iter().all(|image| {
        Command::new("docker")
            .args(["image", "inspect", image])
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if ready {
        return true;
    }
    if std::env::var_os("DACA_TEST_REQUIRE_ALL").is_some() {
        panic!("the Docker engine or the test images are missing; scripts/test-images builds them");
    }
    eprintln!("skipped: no Docker engine or test images (run scripts/test-images)");
    false
}

/// Whether a further test image is there (as [`engine_ready`]: skip, or fail under `.ci/run`).
pub(crate) fn image_ready(image: &str) -> bool {
    let ready = Command::new("docker")
        .args(["image", "inspect", image])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ready && std::env::var_os("DACA_TEST_REQUIRE_ALL").is_some() {
        panic!("the test image {image} is missing; scripts/test-images builds it");
    }
    ready
}

pub(crate) fn docker(args: &[&str]) -> String {
    let output = Command::new("docker").args(args).output().unwrap();
    text(&output.stdout).trim().to_string()
}

/// Names of the containers labelled for `project` (any folder).
pub(crate) fn containers_of(project: &str) -> Vec<String> {
    let filter = format!("label=dev.daca.project={project}");
    let names = docker(&["ps", "-a", "--filter", &filter, "--format", "{{.Names}}"]);
    let mut names: Vec<String> = names.lines().map(String::from).collect();
    names.sort();
    names
}

fn image_id(image: &str) -> String {
    docker(&["image", "inspect", "-f", "{{.Id}}", image])
}

/// examples/containers and the app it builds (examples/hello/hello-api) copied to a temp
/// folder, as project `name`, using the local test images; GREETING comes from the app's `.env`.
pub(crate) struct Example {
    _tmp: tempfile::TempDir,
    /// The project folder (daca.yaml).
    pub(crate) project: PathBuf,
    /// The app's folder.
    pub(crate) app: PathBuf,
}

pub(crate) fn example(name: &str, redis_port: u16) -> Example {
    let tmp = tempfile::tempdir().unwrap();
    let project = tmp.path().join("containers");
    let app = tmp.path().join("hello/hello-api");
    let repo = crate::common::repo();
    copy_tree(&repo.join("examples/containers"), &project);
    copy_tree(&repo.join("examples/hello/hello-api"), &app);
    let manifest = std::fs::read_to_string(project.join("daca.yaml")).unwrap();
    let manifest = manifest
        .replace("name: containers", &format!("name: {name}"))
        .replace(
            "  provider: docker ",
            &format!("  image: {REDIS_IMAGE}\n  port: {redis_port}\n  provider: docker "),
        )
        .replace(
            "      dockerfile: Dockerfile ",
            &format!("      args: {{ BASE: \"{PYTHON_IMAGE}\" }}\n      dockerfile: Dockerfile "),
        )
        .replace("    env:\n      GREETING: hello\n", "");
    assert!(
        manifest.contains(PYTHON_IMAGE) && manifest.contains(REDIS_IMAGE),
        "{manifest}"
    );
    std::fs::write(project.join("daca.yaml"), manifest).unwrap();
    std::fs::write(app.join(".env"), "GREETING=howdy\n").unwrap();
    Example {
        _tmp: tmp,
        project,
        app,
    }
}

/// `daca up` in `project`, which must fail as the user's error: its stderr.
fn up_fails(project: &Path) -> String {
    let out = run(&["up", "-d", project.to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let name = entry.file_name();
        if name == ".venv" || name == "__pycache__" || name == ".daca" {
            continue;
        }
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &to.join(&name));
        } else {
            std::fs::copy(entry.path(), to.join(&name)).unwrap();
        }
    }
}

fn greeting(name: &str) -> Option<String> {
    http_get(APP_PORT, &format!("/greetings/{name}"))
        .filter(|(status, _)| *status == 200)
        .map(|(_, body)| body)
}

#[test]
fn an_app_and_redis_run_as_containers_reload_without_rebuild_and_are_removed() {
    let _serial = serial();
    if !engine_ready() {
        return;
    }
    let redis_port = free_port();
    // What a failed earlier run of this test may have left.
    docker(&["volume", "rm", "-f", "daca-dacatest-main-redis-data"]);
    let example = example("dacatest-main", redis_port);
    let dir = example.project.as_path();
    let mut up = Up::start(dir, None);
    up.wait_output("all 1 app(s) ready", FIRST_BUILD);
    let apps: Vec<String> = containers_of("dacatest-main")
        .into_iter()
        .filter(|n| !n.ends_with("-warm")) // the app's warm parent (tested below)
        .collect();
    // The app in its pod (tests/it/pods.rs), Redis on the machine's network.
    assert_eq!(
        apps,
        [
            "daca-dacatest-main-hello-api",
            "daca-dacatest-main-hello-api-pod",
            "daca-dacatest-main-redis"
        ]
    );
    let ps = up.ps();
    assert_eq!(ps["redis"]["mode"], "container");
    let app = &ps["apps"][0];
    assert!(
        app["container"].as_str().is_some_and(|c| c.len() == 12),
        "{ps}"
    );

    // The image's CMD runs; env comes from .env; the app reaches its sidecar on localhost and
    // the sidecar stores in the Redis container exactly as Dapr does.
    let (_, hello) = http_get(APP_PORT, "/").unwrap();
    assert!(hello.contains("howdy from hello-api"), "{hello}");
    let saved = http_request(APP_PORT, "PUT", "/greetings/ada", r#"{"text":"hi"}"#);
    assert_eq!(saved.map(|s| s.0), Some(200), "{}", up.output());
    assert_eq!(greeting("ada").as_deref(), Some(r#"{"text":"hi"}"#));
    let stored = docker(&[
        "exec",
        "daca-dacatest-main-redis",
        "redis-cli",
        "-p",
        &redis_port.to_string(),
        "hget",
        "hello-api||ada",
        "data",
    ]);
    // The bytes the app sent (Python's json.dumps), as Dapr stores them.
    assert_eq!(stored, r#"{"text": "hi"}"#);
    let output = up.output();
    assert!(
        output.contains("Uvicorn running"),
        "container output is streamed"
    );
    // depends_on as for processes: the app's container starts once Redis's is ready.
    let redis = &ps["redis"]["status"];
    let redis_ready =
        redis["started_at_ms"].as_u64().unwrap() + redis["ready_after_ms"].as_u64().unwrap();
    assert!(
        ps["apps"][0]["started_at_ms"].as_u64().unwrap() >= redis_ready,
        "{ps}"
    );

    // A source edit is live through the mount, without a new image.
    let tag = "daca-dacatest-main-hello-api:dev";
    let before = image_id(tag);
    let main_py = example.app.join("main.py");
    let code = std::fs::read_to_string(&main_py).unwrap();
    std::fs::write(&main_py, code.replace("} from {", "} via {")).unwrap();
    assert!(
        wait_until(Duration::from_secs(30), || http_get(APP_PORT, "/")
            .is_some_and(|(_, b)| b.contains("howdy via hello-api"))),
        "{}",
        up.output()
    );
    up.wait_output("hello-api reloaded in", Duration::from_secs(10));
    assert_eq!(image_id(tag), before, "a source edit must not rebuild");
    assert!(
        !up.output().contains("building the image"),
        "{}",
        up.output()
    );

    // A Dockerfile edit builds a new image and the app runs it.
    let dockerfile = example.app.join("Dockerfile");
    let recipe = std::fs::read_to_string(&dockerfile).unwrap();
    std::fs::write(
        &dockerfile,
        recipe.replace("COPY . .", "ENV EDITED=1\nCOPY . ."),
    )
    .unwrap();
    assert!(
        wait_until(Duration::from_secs(120), || image_id(tag) != before),
        "{}",
        up.output()
    );
    let after = image_id(tag);
    assert!(
        wait_until(Duration::from_secs(60), || docker(&[
            "inspect",
            "-f",
            "{{.Image}}",
            "daca-dacatest-main-hello-api"
        ]) == after),
        "{}",
        up.output()
    );
    up.wait_output("hello-api: built", Duration::from_secs(5));
    assert!(wait_until(Duration::from_secs(30), || greeting("ada").is_some()));

    // So does a dependency file: the image installs the dependencies.
    let pyproject = example.app.join("pyproject.toml");
    let deps = std::fs::read_to_string(&pyproject).unwrap();
    std::fs::write(&pyproject, deps + "# edited\n").unwrap();
    assert!(
        wait_until(Duration::from_secs(120), || image_id(tag) != after),
        "{}",
        up.output()
    );
    let rebuilt = image_id(tag);
    assert!(wait_until(Duration::from_secs(60), || docker(&[
        "inspect",
        "-f",
        "{{.Image}}",
        "daca-dacatest-main-hello-api"
    ]) == rebuilt
        && greeting("ada").is_some()));

    // Ctrl-C: no container left; the data stays in the named volume for the next run.
    up.stop_cleanly();
    assert!(containers_of("dacatest-main").is_empty());
    let mut again = Up::start(dir, None);
    again.wait_output("all 1 app(s) ready", Duration::from_secs(120));
    assert_eq!(
        greeting("ada").as_deref(),
        Some(r#"{"text":"hi"}"#),
        "{}",
        again.output()
    );

    // `daca down` stops it; `--volumes` removes the data.
    let down = run(&["down", "-d", dir.to_str().unwrap()]);
    assert!(down.status.success(), "{}", text(&down.stderr));
    again.wait_exit(Duration::from_secs(30));
    assert!(containers_of("dacatest-main").is_empty());
    let volume = "daca-dacatest-main-redis-data";
    assert_eq!(
        docker(&["volume", "ls", "-q", "--filter", &format!("name={volume}")]),
        volume
    );
    let down = run(&["down", "--volumes", "-d", dir.to_str().unwrap()]);
    assert!(
        text(&down.stdout).contains("removed volumes: daca-dacatest-main-redis-data"),
        "{}",
        text(&down.stdout)
    );
    assert_eq!(
        docker(&["volume", "ls", "-q", "--filter", &format!("name={volume}")]),
        ""
    );
}

/// Bystanders: an unlabelled container, one of another project, and one of the same project
/// name in another folder.
struct Bystanders(Vec<String>);

impl Bystanders {
    fn create(project: &str) -> Bystanders {
        let names = [
            format!("{project}-unlabelled"),
            format!("{project}-other-project"),
            format!("{project}-other-folder"),
        ];
        let labels: [&[&str]; 3] = [
            &[],
            &[
                "--label",
                "dev.daca.project=someone-else",
                "--label",
                "dev.daca.root=/x",
            ],
            &[
                "--label",
                &format!("dev.daca.project={project}"),
                "--label",
                "dev.daca.root=/elsewhere",
            ],
        ];
        for (name, labels) in names.iter().zip(labels) {
            let mut args = vec!["create", "--name", name.as_str()];
            args.extend(labels);
            args.extend([BASE_IMAGE, "sleep", "600"]);
            docker(&["rm", "-f", name]);
            assert!(!docker(&args).is_empty(), "docker create {name}");
        }
        Bystanders(names.to_vec())
    }

    fn all_there(&self) -> bool {
        self.0
            .iter()
            .all(|name| docker(&["inspect", "-f", "{{.Name}}", name]).ends_with(name.as_str()))
    }
}

impl Drop for Bystanders {
    fn drop(&mut self) {
        for name in &self.0 {
            docker(&["rm", "-f", name]);
        }
    }
}

#[test]
fn a_killed_daca_leaves_no_containers_and_never_touches_others() {
    let _serial = serial();
    if !engine_ready() {
        return;
    }
    docker(&["volume", "rm", "-f", "daca-dacatest-kill-redis-data"]);
    let example = example("dacatest-kill", free_port());
    let dir = example.project.as_path();
    let bystanders = Bystanders::create("dacatest-kill");

    // SIGKILL: the reaper removes the run's containers.
    let mut up = Up::start(dir, None);
    up.wait_output("all 1 app(s) ready", FIRST_BUILD);
    let ours = ["daca-dacatest-kill-hello-api", "daca-dacatest-kill-redis"];
    let labelled = |names: Vec<String>| {
        names
            .into_iter()
            .filter(|n| ours.contains(&n.as_str()))
            .count()
    };
    assert_eq!(labelled(containers_of("dacatest-kill")), 2);
    up.signal(Signal::SIGKILL);
    up.wait_exit(Duration::from_secs(5));
    assert!(
        wait_until(Duration::from_secs(20), || labelled(containers_of(
            "dacatest-kill"
        )) == 0),
        "{:?}",
        containers_of("dacatest-kill")
    );
    assert!(bystanders.all_there());

    // With the reaper killed too, `daca down` removes what is left, and only that.
    let mut up = Up::start(dir, None);
    up.wait_output("all 1 app(s) ready", Duration::from_secs(120));
    let reaper = pgrep("__reap.*dacatest-kill");
    assert!(!reaper.is_empty(), "a reaper runs beside daca");
    for pid in &reaper {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(*pid), Signal::SIGKILL);
    }
    up.signal(Signal::SIGKILL);
    up.wait_exit(Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        labelled(containers_of("dacatest-kill")),
        2,
        "left behind on purpose"
    );
    let down = run(&["down", "-d", dir.to_str().unwrap()]);
    assert!(down.status.success(), "{}", text(&down.stderr));
    assert!(
        text(&down.stdout)
            .contains("removed containers: daca-dacatest-kill-hello-api, daca-dacatest-kill-hello-api-pod, daca-dacatest-kill-redis"),
        "{}",
        text(&down.stdout)
    );
    assert_eq!(labelled(containers_of("dacatest-kill")), 0);
    assert!(bystanders.all_there());

    // Leftovers are also cleared by the next `daca up`.
    let mut up = Up::start(dir, None);
    up.wait_output("all 1 app(s) ready", Duration::from_secs(120));
    for pid in pgrep("__reap.*dacatest-kill") {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
    }
    up.signal(Signal::SIGKILL);
    up.wait_exit(Duration::from_secs(5));
    let mut next = Up::start(dir, None);
    next.wait_output("all 1 app(s) ready", Duration::from_secs(120));
    assert!(
        next.output()
            .contains("removed containers an earlier daca left"),
        "{}",
        next.output()
    );
    next.stop_cleanly();
    assert_eq!(labelled(containers_of("dacatest-kill")), 0);
    assert!(bystanders.all_there());
    run(&["down", "--volumes", "-d", dir.to_str().unwrap()]);
}

/// Pids of processes whose command line contains `needle`.
pub(crate) fn pgrep(needle: &str) -> Vec<i32> {
    let output = Command::new("pgrep").args(["-f", needle]).output().unwrap();
    text(&output.stdout)
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

#[test]
fn a_crashing_container_is_restarted_with_its_output_and_exit_code() {
    let _serial = serial();
    if !engine_ready() {
        return;
    }
    let project = tempfile::tempdir().unwrap();
    let manifest = format!(
        "name: dacatest-crash\nredis: {{ provider: embedded }}\napps:\n  - id: crasher\n    image: {BASE_IMAGE}\n    command: [sh, -c, \"echo booting $APP_ID; echo oops >&2; exit 3\"]\n"
    );
    std::fs::write(project.path().join("daca.yaml"), manifest).unwrap();
    let mut up = Up::start(project.path(), None);
    up.wait_output("crasher: exited (exit code 3)", Duration::from_secs(60));
    up.wait_output("restarting in", Duration::from_secs(5));
    assert!(wait_until(Duration::from_secs(30), || {
        up.ps()["apps"][0]["restarts"]
            .as_u64()
            .is_some_and(|r| r >= 1)
    }));
    let output = up.output();
    assert!(output.contains("booting crasher"), "{output}");
    assert!(output.contains("oops"), "{output}");
    up.stop_cleanly();
    assert!(containers_of("dacatest-crash").is_empty());
}

#[test]
fn a_missing_image_is_a_clear_error() {
    let _serial = serial();
    if !engine_ready() {
        return;
    }
    let project = tempfile::tempdir().unwrap();
    let manifest = "name: dacatest-missing\nredis: { provider: embedded }\napps:\n  - id: web\n    image: daca-test/no-such-image:1\n";
    std::fs::write(project.path().join("daca.yaml"), manifest).unwrap();
    let stderr = up_fails(project.path());
    assert!(
        stderr.contains("image `daca-test/no-such-image:1` is not available"),
        "{stderr}"
    );
    assert!(stderr.contains("hint: pre-load it"), "{stderr}");

    // The same for a containerized Redis that was asked for.
    let manifest = "name: dacatest-missing\nredis: { provider: docker, image: \"daca-test/no-such-redis:1\" }\napps:\n  - id: web\n    command: [python3, -c, \"1\"]\n";
    std::fs::write(project.path().join("daca.yaml"), manifest).unwrap();
    let stderr = up_fails(project.path());
    assert!(
        stderr.contains("image `daca-test/no-such-redis:1` is not available"),
        "{stderr}"
    );
    assert!(stderr.contains("set `redis.image`"), "{stderr}");
    assert!(containers_of("dacatest-missing").is_empty());
}

#[test]
fn without_an_engine_docker_apps_fail_clearly_and_auto_apps_run_as_processes() {
    let project = tempfile::tempdir().unwrap();
    std::fs::write(project.path().join("Dockerfile"), "FROM scratch\n").unwrap();
    let port = free_port();
    let manifest = format!(
        "name: dacatest-noengine\nruntime: docker\nredis: {{ provider: embedded }}\napps:\n  - id: web\n    build: {{}}\n    command: [python3, -m, http.server, \"{port}\", --bind, 127.0.0.1]\n    port: {port}\n"
    );
    std::fs::write(project.path().join("daca.yaml"), &manifest).unwrap();
    let no_engine = [("DOCKER_HOST", "unix:///nonexistent/docker.sock")];
    let out = crate::common::daca()
        .args(["up", "-d", project.path().to_str().unwrap()])
        .envs(no_engine)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("web must run in a container, but no Docker engine answers at unix:///nonexistent/docker.sock (DOCKER_HOST)"), "{stderr}");
    assert!(stderr.contains("hint: start Docker"), "{stderr}");

    let manifest = manifest.replace("runtime: docker\n", "");
    std::fs::write(project.path().join("daca.yaml"), manifest).unwrap();
    let mut up = Up::start_env(project.path(), &no_engine);
    up.wait_output("all 1 app(s) ready", Duration::from_secs(20));
    assert!(
        up.output().contains("running web as host processes"),
        "{}",
        up.output()
    );
    assert!(up.ps()["apps"][0]["container"].is_null());
    up.stop_cleanly();
}

/// Debian's `docker-registry` on a loopback port: a real registry to pull from, since the
/// machines reach none (the engine trusts 127.0.0.0/8 registries over plain HTTP).
struct LocalRegistry {
    child: std::process::Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl LocalRegistry {
    fn start() -> LocalRegistry {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let config = dir.path().join("config.yml");
        let storage = dir.path().join("data");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog: {{ level: error }}\nstorage: {{ filesystem: {{ rootdirectory: {} }} }}\nhttp: {{ addr: \"127.0.0.1:{port}\" }}\n",
                storage.display()
            ),
        )
        .unwrap();
        let child = Command::new("docker-registry")
            .args(["serve", config.to_str().unwrap()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        assert!(wait_until(Duration::from_secs(10), || http_get(
            port, "/v2/"
        )
        .is_some_and(|(status, _)| status == 200)));
        LocalRegistry {
            child,
            port,
            _dir: dir,
        }
    }
}

impl Drop for LocalRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_missing_redis_image_is_pulled_with_progress() {
    let _serial = serial();
    if !engine_ready() || !crate::common::have("docker-registry") {
        return;
    }
    let registry = LocalRegistry::start();
    let image = format!("127.0.0.1:{}/daca-test/redis-pulled:7", registry.port);
    // A layer of its own, so the pull downloads something rather than finding every layer.
    let unique = format!(
        "FROM {REDIS_IMAGE}\nRUN echo {} > /pulled\n",
        crate::common::free_port()
    );
    let mut build = Command::new("docker")
        .args(["build", "-q", "-t", &image, "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    use std::io::Write;
    build
        .stdin
        .take()
        .unwrap()
        .write_all(unique.as_bytes())
        .unwrap();
    assert!(build.wait().unwrap().success());
    let pushed = Command::new("docker")
        .args(["push", &image])
        .output()
        .unwrap();
    assert!(pushed.status.success(), "{}", text(&pushed.stderr));
    docker(&["rmi", &image]);
    assert!(docker(&["image", "ls", "-q", &image]).is_empty());

    docker(&["volume", "rm", "-f", "daca-dacatest-pull-redis-data"]);
    let project = tempfile::tempdir().unwrap();
    let manifest = format!(
        "name: dacatest-pull\nredis: {{ provider: docker, image: \"{image}\", port: {} }}\napps:\n  - id: idle\n    image: {BASE_IMAGE}\n    command: [sleep, \"600\"]\n",
        free_port()
    );
    std::fs::write(project.path().join("daca.yaml"), manifest).unwrap();
    let mut up = Up::start(project.path(), None);
    up.wait_output("all 1 app(s) ready", Duration::from_secs(120));
    let output = up.output();
    assert!(
        output.contains(&format!("pull | pulling {image}")),
        "{output}"
    );
    assert!(output.contains("Pull complete"), "{output}");
    assert_eq!(up.ps()["redis"]["mode"], "container");
    up.stop_cleanly();
    run(&["down", "--volumes", "-d", project.path().to_str().unwrap()]);
    docker(&["rmi", &image]);
}

#[test]
fn a_container_app_reloads_warm_by_forking_in_its_parent_container() {
    let _serial = serial();
    if !engine_ready() {
        return;
    }
    docker(&["volume", "rm", "-f", "daca-dacatest-warm-redis-data"]);
    let example = example("dacatest-warm", free_port());
    let dir = example.project.as_path();
    let up = Up::start(dir, None);
    up.wait_output("all 1 app(s) ready", FIRST_BUILD);
    up.wait_output("hello-api: warm parent ready", Duration::from_secs(120));
    let parent = "daca-dacatest-warm-hello-api-warm";
    let parent_id = docker(&["inspect", "-f", "{{.Id}}", parent]);

    for marker in ["warm one", "warm two"] {
        let main_py = example.app.join("main.py");
        let code = std::fs::read_to_string(&main_py).unwrap();
        let start = code.find("\"message\": ").unwrap();
        let end = code[start..].find(",\n").unwrap() + start;
        let edited = format!(
            "{}\"message\": \"{marker}\"{}",
            &code[..start],
            &code[end..]
        );
        std::fs::write(&main_py, edited).unwrap();
        assert!(
            wait_until(Duration::from_secs(30), || http_get(APP_PORT, "/")
                .is_some_and(|(_, b)| b.contains(marker))),
            "{}",
            up.output()
        );
    }
    up.wait_output(" ms (warm)", Duration::from_secs(10));
    let ps = up.ps();
    let app = &ps["apps"][0];
    assert_eq!(app["start"], "warm", "{ps}");
    assert_eq!(
        Some(app["container"].as_str().unwrap()),
        parent_id.get(..12),
        "the app runs in its parent's container"
    );
    assert_eq!(
        docker(&["inspect", "-f", "{{.Id}}", parent]),
        parent_id,
        "no container was restarted"
    );
    // The forked app is signalled from the host by its host pid.
    let pid = app["pid"].as_u64().unwrap() as i32;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).unwrap();

    // SIGKILL: the reaper removes the parent's container with the others.
    up.signal(Signal::SIGKILL);
    assert!(
        wait_until(Duration::from_secs(30), || containers_of("dacatest-warm")
            .is_empty()),
        "{:?}",
        containers_of("dacatest-warm")
    );
    let down = run(&["down", "--volumes", "-d", dir.to_str().unwrap()]);
    assert!(down.status.success(), "{}", text(&down.stderr));
}
