//! The Tilt extensions a Tiltfile may `load('ext://…')`, served by daca's own functions.

use starlark::collections::SmallMap;
use starlark::environment::{FrozenModule, Globals, Module};

/// `load('ext://NAME', …)` of the Tilt extensions the course uses, served by daca's own
/// functions; any other is an error naming it.
pub struct Extensions {
    modules: SmallMap<&'static str, FrozenModule>,
}

/// What each extension exports, and daca's function for it.
const EXTENSIONS: &[(&str, &[(&str, &str)])] = &[
    ("helm_remote", &[("helm_remote", "helm_remote")]),
    (
        "restart_process",
        &[("docker_build_with_restart", "docker_build_with_restart")],
    ),
    ("nerdctl", &[("nerdctl_build", "nerdctl_build")]),
];

impl Extensions {
    pub fn new(globals: &Globals) -> Extensions {
        let mut modules = SmallMap::new();
        for (name, exports) in EXTENSIONS {
            let module = Module::new();
            for (exported, ours) in *exports {
                if let Some((_, value)) = globals.iter().find(|(name, _)| name == ours) {
                    module.set(exported, value.to_value());
                }
            }
            if let Ok(frozen) = module.freeze() {
                modules.insert(*name, frozen);
            }
        }
        Extensions { modules }
    }
}

impl starlark::eval::FileLoader for Extensions {
    fn load(&self, path: &str) -> starlark::Result<FrozenModule> {
        let known = || {
            EXTENSIONS
                .iter()
                .map(|(n, _)| format!("ext://{n}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let Some(name) = path.strip_prefix("ext://") else {
            return Err(starlark::Error::new_other(anyhow::anyhow!(
                "load('{path}'): daca loads only Tilt's extensions ({})",
                known()
            )));
        };
        self.modules.get(name).cloned().ok_or_else(|| {
            starlark::Error::new_other(anyhow::anyhow!(
                "load('{path}'): daca does not know the Tilt extension `{name}` (it knows {})",
                known()
            ))
        })
    }
}
