//! The supervised unit of a managed PostgreSQL: `daca __postgres` around the machine's
//! binaries, or the official image's interface in a container.

use std::time::Duration;

use super::PgPlan;
use crate::manifest::RestartPolicy;
use crate::runtime::{ContainerLaunch, LaunchSpec, ProcessLaunch};
use crate::supervisor::{Probe, Unit, UnitSpec};

/// Where the official image keeps its data (and so where its volume goes).
const IMAGE_DATA: &str = "/var/lib/postgresql/data";
/// A fast shutdown ends open sessions (each sidecar holds one) and checkpoints; it can take a
/// while on a busy server.
const GRACE: Duration = Duration::from_secs(10);
/// A first start runs `initdb`, which takes a few seconds.
const STARTUP: Duration = Duration::from_secs(60);

impl PgPlan {
    /// The unit for a server daca runs; `None` for the user's own.
    pub fn unit(&self, name: &str, inherited_env: Vec<(String, String)>) -> Option<UnitSpec> {
        let (launch, port) = match self {
            PgPlan::External { .. } => return None,
            PgPlan::Server {
                bin_dir,
                port,
                data_dir,
                persistence,
            } => {
                let exe = crate::pod::daca_exe().unwrap_or_else(|_| "daca".into());
                let mut args = vec![
                    "__postgres".to_string(),
                    "--bin-dir".into(),
                    bin_dir.display().to_string(),
                    "--data".into(),
                    data_dir.display().to_string(),
                    "--port".into(),
                    port.to_string(),
                ];
                if !persistence {
                    args.push("--fresh".into());
                }
                let launch = LaunchSpec::Process(ProcessLaunch {
                    program: exe.display().to_string(),
                    args,
                    dir: data_dir.parent().unwrap_or(data_dir).to_path_buf(),
                    env: inherited_env,
                    warm: false,
                    pod: None,
                });
                (launch, *port)
            }
            PgPlan::Container { .. } => (self.container_launch()?, self.loopback_port()?),
        };
        Some(UnitSpec {
            unit: Unit::Postgres,
            name: name.to_string(),
            launch,
            probe: Probe::Postgres(port),
            restart: RestartPolicy::OnFailure,
            grace: GRACE,
            startup_timeout: STARTUP,
        })
    }

    /// The official image's contract: its entrypoint runs `initdb` into an empty data folder
    /// (`POSTGRES_HOST_AUTH_METHOD=trust`: no password, as for daca's own server) and then the
    /// command, as its `postgres` user.
    fn container_launch(&self) -> Option<LaunchSpec> {
        let PgPlan::Container {
            image,
            port,
            persistence,
            owner,
            ..
        } = self
        else {
            return None;
        };
        let mut cmd: Vec<String> = ["postgres", "-p", &port.to_string()]
            .iter()
            .map(|s| s.to_string())
            .collect();
        // On the host's network, so loopback only, as the process provider does.
        cmd.extend(["-c", "listen_addresses=127.0.0.1"].map(String::from));
        let volumes = if *persistence {
            vec![(owner.volume(&Unit::Postgres), IMAGE_DATA.to_string())]
        } else {
            cmd.extend(super::run::UNSAFE_FAST.iter().map(|s| s.to_string()));
            Vec::new()
        };
        Some(LaunchSpec::Container(ContainerLaunch {
            name: owner.container_name(&Unit::Postgres),
            image: image.clone(),
            cmd: Some(cmd),
            env: vec![
                ("POSTGRES_HOST_AUTH_METHOD".into(), "trust".into()),
                ("POSTGRES_USER".into(), super::SUPERUSER.into()),
            ],
            binds: Vec::new(),
            volumes,
            labels: owner.labels(&Unit::Postgres),
            warm: false,
            network: None,
            stop_signal: Some("SIGINT"),
        }))
    }
}
