//! A folder of Kubernetes manifests as `daca up` reads it in place (the course's `k8s/`
//! folders): any YAML, its documents turned into a project (Deployments, Services, ConfigMaps,
//! Secrets, Dapr resources), then checked as a daca.yaml is. An error is an answer; a panic
//! is a finding.
#![no_main]

use std::path::PathBuf;
use std::sync::LazyLock;

static DIR: LazyLock<tempfile::TempDir> =
    LazyLock::new(|| tempfile::tempdir().expect("a temporary folder"));

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(docs) = daca::export::node::parse_documents(text, "app.yaml") else {
        return;
    };
    let file = PathBuf::from("app.yaml");
    let docs = docs.into_iter().map(|doc| (file.clone(), doc)).collect();
    let parts = daca::export::import::TiltParts::default();
    if let Ok(imported) =
        daca::export::import::import_documents(DIR.path(), docs, &parts, "daca up")
    {
        // The daca.yaml it writes is checked as any other.
        for (name, text) in &imported.files {
            if name == "daca.yaml" {
                let _ = daca::manifest::parse(&DIR.path().join(name), text);
            }
        }
    }
});
