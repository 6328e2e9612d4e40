//! Tilt's functions, as daca defines them for the interpreter: most record their call (see
//! `call.rs`) and return `None`, as Tilt's do; those whose result the Tiltfile uses return it
//! (`local` runs its command, `read_file` reads, `sync`/`run`/… return the step as a struct,
//! `config.parse` the settings). The names and parameter lists are Tilt's
//! (https://docs.tilt.dev/api.html). Extensions loaded with `load('ext://…')` are the common
//! ones, served from here. Native functions return `anyhow::Result`: the interpreter's API.

use starlark::collections::SmallMap;
use starlark::environment::{Globals, GlobalsBuilder, LibraryExtension};
use starlark::eval::Evaluator;
use starlark::starlark_module;
use starlark::values::Value;
use starlark::values::list::UnpackList;
use starlark::values::none::NoneType;
use starlark::values::structs::AllocStruct;
use starlark::values::tuple::UnpackTuple;

use super::call::{record, recorded};

pub(super) type Args<'v> = UnpackTuple<Value<'v>>;
pub(super) type Kwargs<'v> = SmallMap<String, Value<'v>>;

/// Records the call and returns `None`.
pub(super) fn noted<'v>(
    eval: &mut Evaluator<'v, '_, '_>,
    function: &str,
    params: &[&str],
    args: Args<'v>,
    kwargs: Kwargs<'v>,
) -> anyhow::Result<NoneType> {
    record(eval, function, params, &args.items, kwargs)?;
    Ok(NoneType)
}

const BUILD: &[&str] = &[
    "ref",
    "context",
    "build_args",
    "dockerfile",
    "dockerfile_contents",
    "live_update",
    "match_in_env_vars",
    "ignore",
    "only",
    "entrypoint",
    "target",
    "ssh",
    "network",
    "secret",
    "extra_tag",
    "container_args",
    "cache_from",
    "pull",
    "platform",
    "extra_hosts",
];

#[starlark_module]
fn tilt(builder: &mut GlobalsBuilder) {
    fn k8s_yaml<'v>(
        #[starlark(args)] args: Args<'v>,
        #[starlark(kwargs)] kwargs: Kwargs<'v>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        noted(
            eval,
            "k8s_yaml",
            &["yaml", "allow_duplicates"],
            args,
            kwargs,
        )
    }

    fn helm_remote<'v>(
        #[starlark(args)] args: Args<'v>,
        #[starlark(kwargs)] kwargs: Kwargs<'v>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        let params = &[
            "chart",
            "repo_url",
            "repo_name",
            "release_name",
            "values",
            "set",
            "namespace",
            "version",
            "username",
            "password",
            "allow_duplicates",
            "create_namespace",
        ];
        noted(eval, "helm_remote", params, args, kwargs)
    }

    fn helm<'v>(
        #[starlark(args)] args: Args<'v>,
        #[starlark(kwargs)] kwargs: Kwargs<'v>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<String> {
        let params = &[
            "paths",
            "name",
            "namespace",
            "values",
            "set",
            "kube_version",
            "skip_crds",
        ];
        let call = record(eval, "helm", params, &args.items, kwargs)?;
        // Charts daca provides itself (Dapr, its dashboard, Redis) render to nothing here;
        // the project says so. Any other is rendered as Tilt does.
        let chart = call.strings("paths").first().cloned().unwrap_or_default();
        let name = std::path::Path::new(&chart)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if super::PROVIDED_CHARTS.contains(&name.as_str()) {
            return Ok(String::new());
        }
        let dir = recorded(eval)?.dir.clone();
        super::local::helm_template(&call, &dir)
    }

    fn docker_build<'v>(
        #[starlark(args)] args: Args<'v>,
        #[starlark(kwargs)] kwargs: Kwargs<'v>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        noted(eval, "docker_build", BUILD, args, kwargs)
    }

    fn nerdctl_build<'v>(
        #[starlark(args)] args: Args<'v>,
        #[starlark(kwargs)] kwargs: Kwargs<'v>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        noted(eval, "nerdctl_build", BUILD, args, kwargs)
    }

    fn docker_build_with_restart<'v>(
        #[starlark(args)] args: Args<'v>,
        #[starlark(kwargs)] kwargs: Kwargs<'v>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        let mut params = BUILD.to_vec();
        params.extend(["restart_file", "trigger", "exit_policy"]);
        noted(eval, "docker_build", &params, args, kwargs)
    }

    fn custom_build<'v>(
        #[starlark(args)] args: Args<'v>,
        #[starlark(kwargs)] kwargs: Kwargs<'v>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        let params = &[
            "ref",
            "command",
            "deps",
            "tag",
            "disable_push",
            "skips_local_docker",
            "live_update",
            "match_in_env_vars",
            "ignore",
            "entrypoint",
            "command_bat",
            "outputs_image_ref_to",
            "container_args",
            "image_deps",
            "env",
            "dir",
        ];
        noted(eval, "custom_build", params, args, kwargs)
    }

    fn k8s_resource<'v>(
        #[starlark(args)] args: Args<'v>,
        #[starlark(kwargs)] kwargs: Kwargs<'v>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        let params = &[
            "workload",
            "new_name",
            "port_forwards",
            "extra_pod_selectors",
            "trigger_mode",
            "resource_deps",
            "objects",
            "auto_init",
            "pod_readiness",
            "links",
            "labels",
            "discovery_strategy",
        ];
        noted(eval, "k8s_resource", params, args, kwargs)
    }

    fn local_resource<'v>(
        #[starlark(args)] args: Args<'v>,
        #[starlark(kwargs)] kwargs: Kwargs<'v>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        let params = &[
            "name",
            "cmd",
            "deps",
            "trigger_mode",
            "resource_deps",
            "ignore",
            "auto_init",
            "serve_cmd",
            "cmd_bat",
            "serve_cmd_bat",
            "allow_parallel",
            "links",
            "tags",
            "env",
            "serve_env",
            "readiness_probe",
            "dir",
            "serve_dir",
            "labels",
        ];
        noted(eval, "local_resource", params, args, kwargs)
    }

    fn update_settings<'v>(
        #[starlark(args)] args: Args<'v>,
        #[starlark(kwargs)] kwargs: Kwargs<'v>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        let params = &[
            "max_parallel_updates",
            "k8s_upsert_timeout_secs",
            "suppress_unused_image_warnings",
        ];
        noted(eval, "update_settings", params, args, kwargs)
    }

    fn watch_file<'v>(
        #[starlark(args)] args: Args<'v>,
        #[starlark(kwargs)] kwargs: Kwargs<'v>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        noted(eval, "watch_file", &["path"], args, kwargs)
    }

    fn allow_k8s_contexts<'v>(
        #[starlark(args)] args: Args<'v>,
        #[starlark(kwargs)] kwargs: Kwargs<'v>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        noted(eval, "allow_k8s_contexts", &["contexts"], args, kwargs)
    }

    fn local<'v>(
        #[starlark(args)] args: Args<'v>,
        #[starlark(kwargs)] kwargs: Kwargs<'v>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<String> {
        let params = &[
            "command",
            "quiet",
            "command_bat",
            "echo_off",
            "env",
            "dir",
            "stdin",
        ];
        let call = record(eval, "local", params, &args.items, kwargs)?;
        let dir = recorded(eval)?.dir.clone();
        super::local::run(&call, &dir)
    }

    fn read_file<'v>(
        #[starlark(args)] args: Args<'v>,
        #[starlark(kwargs)] kwargs: Kwargs<'v>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<String> {
        let call = record(
            eval,
            "read_file",
            &["file_path", "default"],
            &args.items,
            kwargs,
        )?;
        let path = recorded(eval)?
            .dir
            .join(call.str("file_path").unwrap_or_default());
        match (std::fs::read_to_string(&path), call.str("default")) {
            (Ok(text), _) => Ok(text),
            (Err(_), Some(default)) => Ok(default.to_string()),
            (Err(err), None) => anyhow::bail!("read_file: {}: {err}", path.display()),
        }
    }

    fn blob(#[starlark(require = pos)] contents: &str) -> anyhow::Result<String> {
        Ok(contents.to_string())
    }

    fn sync<'v>(
        #[starlark(require = pos)] local_path: &str,
        #[starlark(require = pos)] remote_path: &str,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Value<'v>> {
        Ok(eval.heap().alloc(AllocStruct([
            ("step", "sync"),
            ("local_path", local_path),
            ("remote_path", remote_path),
        ])))
    }

    fn run<'v>(
        #[starlark(require = pos)] cmd: &str,
        #[starlark(require = named, default = UnpackList::default())] trigger: UnpackList<String>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Value<'v>> {
        let trigger = eval.heap().alloc(trigger.items);
        let step = eval.heap().alloc("run");
        let cmd = eval.heap().alloc(cmd);
        Ok(eval.heap().alloc(AllocStruct([
            ("step", step),
            ("cmd", cmd),
            ("trigger", trigger),
        ])))
    }

    fn fall_back_on<'v>(
        #[starlark(require = pos)] files: Value<'v>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Value<'v>> {
        let step = eval.heap().alloc("fall_back_on");
        Ok(eval
            .heap()
            .alloc(AllocStruct([("step", step), ("files", files)])))
    }

    fn restart_container<'v>(eval: &mut Evaluator<'v, '_, '_>) -> anyhow::Result<Value<'v>> {
        Ok(eval
            .heap()
            .alloc(AllocStruct([("step", "restart_container")])))
    }

    fn initial_sync<'v>(eval: &mut Evaluator<'v, '_, '_>) -> anyhow::Result<Value<'v>> {
        Ok(eval.heap().alloc(AllocStruct([("step", "initial_sync")])))
    }
}

/// The interpreter's globals: Starlark's own (with `struct`, `print`, `json`) and Tilt's.
pub fn globals() -> Globals {
    GlobalsBuilder::extended_by(&[
        LibraryExtension::StructType,
        LibraryExtension::Print,
        LibraryExtension::Json,
        LibraryExtension::Map,
        LibraryExtension::Filter,
    ])
    .with(tilt)
    .with(super::probes::probes)
    .with_namespace("config", super::config::config)
    .build()
}
