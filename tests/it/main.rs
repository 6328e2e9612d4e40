//! One integration-test binary (as ripgrep does): shared helpers in `common`, one module per area.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly where its setup does; helpers outside #[test] fns unwrap too"
)]
#![allow(
    clippy::too_many_lines,
    reason = "an end-to-end test reads as one scenario; src/ holds to 80 lines"
)]
#![allow(
    clippy::disallowed_types,
    reason = "std locks in test helpers: a poisoned one means a test has already failed"
)]

mod cli;
mod common;
mod components;
mod conventions;
mod dashboard;
mod docker;
mod export;
mod grpc;
mod manifest;
mod process;
mod project;
mod pubsub;
mod redis;
mod reliability;
mod reload;
mod sidecar;
mod state_props;
mod up;
