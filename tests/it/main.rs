//! One integration-test binary (as ripgrep does): shared helpers in `common`, one module per area.

mod cli;
mod common;
mod components;
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
