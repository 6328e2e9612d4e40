//! daca: the whole Dapr development loop on one machine.
//!
//! Theory of operation: `daca up` loads the manifest (`manifest`), provides Redis (`redis`),
//! starts every app as a supervised actor (`supervisor`) through a runtime (`runtime`), merges
//! their output into one log stream (`logs`), and serves a local control API (`control`) that
//! `daca ps/logs/down` in another terminal talk to. What it started is written under `.daca/`
//! (`project`), so a later `daca up` or `daca down` can end what a killed daca left behind.

pub mod channel;
pub mod cli;
pub mod components;
pub mod control;
pub mod dashboard;
pub mod docker;
pub mod env;
pub mod error;
pub mod events;
pub mod export;
pub mod logs;
pub mod manifest;
pub mod ports;
pub mod project;
pub mod pubsub;
pub mod redis;
pub mod redis_link;
pub mod reload;
pub mod runtime;
pub mod sidecar;
pub mod state;
pub mod supervisor;
pub mod sync;
pub mod watch;

pub use error::{Error, ErrorKind, Result};
