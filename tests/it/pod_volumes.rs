//! A process app's volumes (src/pod/mounts.rs): mounted in its pod's own mount namespace where
//! its container would have them, read-only where asked, and nothing changed on the machine.

use std::time::Duration;

use crate::common::{free_port, have, http_get, http_request};

/// Serves GET <path> as the file's text, and POST <path> as an attempt to write it.
const SERVER: &str = r#"
import http.server, sys

class Files(http.server.BaseHTTPRequestHandler):
    def answer(self, code, text):
        body = text.encode()
        self.send_response(code)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        try:
            with open(self.path) as f:
                self.answer(200, f.read())
        except OSError as e:
            self.answer(404, e.strerror)

    def do_POST(self):
        try:
            with open(self.path, "w") as f:
                f.write("changed")
            self.answer(200, "written")
        except OSError as e:
            self.answer(403, e.strerror)

http.server.HTTPServer(("0.0.0.0", 8000), Files).serve_forever()
"#;

/// A ConfigMap-like folder at `/etc/config` and a Secret-like file at `/etc/secrets/key`
/// (neither exists on the machine), read-only, and a writable folder at `/srv/data`: the
/// process reads and writes them there; the machine's `/etc` is still whole inside the pod.
#[test]
fn a_process_app_in_a_pod_has_its_volumes_where_its_container_would() {
    if !have("pasta") || !have("python3") {
        return;
    }
    assert!(
        !std::path::Path::new("/etc/config").exists(),
        "the test needs a machine without /etc/config"
    );
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("app")).unwrap();
    std::fs::write(root.join("app/serve.py"), SERVER).unwrap();
    std::fs::create_dir_all(root.join("config")).unwrap();
    std::fs::write(root.join("config/x.yml"), "greeting: hello\n").unwrap();
    std::fs::write(root.join("key"), "sk-not-a-real-key").unwrap();
    std::fs::create_dir_all(root.join("data")).unwrap();
    let port = free_port();
    std::fs::write(
        root.join("daca.yaml"),
        format!(
            "name: vols\nredis: {{ provider: embedded }}\napps:\n  - id: reader\n    dir: ./app\n    network: pod\n    command: [python3, serve.py]\n    port: 8000\n    ports: [\"{port}:8000\"]\n    volumes: [\"./config:/etc/config:ro\", \"./key:/etc/secrets/key:ro\", \"./data:/srv/data\"]\n"
        ),
    )
    .unwrap();
    let mut up = crate::up::Up::start(root, None);
    up.wait_output("all 1 app(s) ready", Duration::from_secs(60));
    let get = |path: &str| http_get(port, path).unwrap_or_default();
    assert_eq!(
        get("/etc/config/x.yml"),
        (200, "greeting: hello\n".into()),
        "{}",
        up.output()
    );
    assert_eq!(get("/etc/secrets/key"), (200, "sk-not-a-real-key".into()));
    // The rest of /etc is the machine's, the pod's own hosts file included.
    let (status, passwd) = get("/etc/passwd");
    assert!(status == 200 && passwd.contains("root:"), "{passwd}");
    assert!(get("/etc/hosts").1.contains("reader"));
    // Read-only where asked; writable elsewhere, written through to the machine.
    let post = |path: &str| http_request(port, "POST", path, "").unwrap_or_default();
    assert_eq!(
        post("/etc/config/x.yml"),
        (403, "Read-only file system".into())
    );
    assert_eq!(post("/srv/data/out.txt"), (200, "written".into()));
    assert_eq!(
        std::fs::read_to_string(root.join("data/out.txt")).unwrap(),
        "changed"
    );
    assert!(
        !std::path::Path::new("/etc/config").exists(),
        "nothing changed on the machine"
    );
    assert!(
        !up.output().contains("volumes are not mounted"),
        "{}",
        up.output()
    );
    up.stop_cleanly();
}
