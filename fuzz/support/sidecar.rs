//! What the sidecar targets share: one runtime, one in-memory sidecar (the default components
//! on the embedded store, no app behind it).

use std::sync::{Arc, LazyLock};

pub static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
});

pub static SIDECAR: LazyLock<Arc<daca::sidecar::SidecarState>> = LazyLock::new(|| {
    let plan = daca::redis::RedisPlan::Embedded {
        reason: "fuzzing".into(),
    };
    let root = std::env::temp_dir();
    let (components, _) =
        daca::sidecar::Components::load(None, &root, &plan).expect("the default components");
    let shared = Arc::new(daca::sidecar::Shared::new(components, None));
    let mut state = daca::sidecar::SidecarState::new("fuzz", shared, 1 << 20);
    // No app is behind this sidecar: an invocation must not wait 30 s for one to come back.
    state.invoke_wait = std::time::Duration::ZERO;
    Arc::new(state)
});
