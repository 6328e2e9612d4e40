//! One integration-test binary (as ripgrep does): shared helpers in `common`, one module per area.

#![allow(
    clippy::unwrap_used,
    clippy::too_many_lines,
    clippy::disallowed_types,
    reason = "tests unwrap and run as scenarios; their helpers use std locks (a poisoned one means a test already failed)"
)]

mod actors;
mod actors_api;
mod bindings;
mod chaos;
mod chaos_apps;
mod chaos_services;
mod cli;
mod common;
mod components;
mod conventions;
mod dashboard;
mod docker;
mod export;
mod first_run;
mod grpc;
mod jobs;
mod k8s_folder;
mod manifest;
mod on_change;
mod pod_volumes;
mod pods;
mod postgres;
mod postgres_managed;
mod process;
mod project;
mod pubsub;
mod redis;
mod reliability;
mod reload;
mod replicas;
mod resiliency;
mod secrets_hidden;
mod sidecar;
mod state_props;
mod tilt;
mod up;
mod warm;
mod workflows;
