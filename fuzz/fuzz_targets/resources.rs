//! A resources folder's YAML (Components, Subscriptions, Resiliency, Configuration): loaded
//! or a located error, never a panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|text: &str| {
    let dir = tempfile::tempdir().expect("a temp folder");
    std::fs::write(dir.path().join("resources.yaml"), text).expect("written");
    let _ = daca::components::load_resources(Some(dir.path()), dir.path());
});
