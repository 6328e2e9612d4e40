//! daca: the whole Dapr development loop on one machine.
//!
//! Theory of operation: `daca up` loads the manifest (`manifest`) and starts a
//! [`project::Project`]: it provides Redis (`redis`, `docker`), opens every app (its unit in the
//! `supervisor`, run by a `runtime`; its in-process Dapr sidecar, `sidecar`, on the shared
//! components, `components`, `state`, `pubsub`; the `channel` back into the app; actors and workflows, `actors`, `workflow`; its reload
//! driver, `reload`), merges their output into one log stream (`logs`), serves the control API
//! and the dashboard (`control`, `dashboard`), and watches files (`watch`). One task, the
//! project's owner, alone changes the set of apps; everything else reads the snapshot it
//! publishes. What it started is written under `.daca/`, so a later `daca up` or `daca down`
//! can end what a killed daca left behind. `export` turns the manifest into Kubernetes objects.
//! `cli` is a thin layer over all of it; errors reach it as [`Error`] (`error`), locks are
//! `sync`'s. CONTRIBUTING.md has the picture and the rules.

pub mod actors;
pub mod bindings;
pub mod channel;
pub mod cli;
pub mod components;
pub mod control;
pub mod cron;
pub mod dashboard;
pub mod docker;
pub mod env;
pub mod error;
pub mod events;
pub mod export;
pub mod folder;
pub mod jobs;
pub mod listen;
pub mod logs;
pub mod manifest;
pub mod panics;
pub mod pgserver;
pub mod pod;
pub mod ports;
pub mod postgres;
pub mod project;
pub mod pubsub;
pub mod redis;
pub mod redis_link;
pub mod reload;
pub mod resiliency;
pub mod runtime;
pub mod scheduler;
pub mod sidecar;
pub mod state;
pub mod supervisor;
pub mod sync;
pub mod tilt;
pub mod timespec;
pub mod tools;
pub mod warm;
pub mod watch;
pub mod workflow;

pub use error::{Error, ErrorKind, Result};
