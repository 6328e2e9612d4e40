//! The container fields of an app (`runtime`, `build`, `image`, `mount`), checked together
//! because they only make sense in combination.

use std::path::Path;

use super::model::{BuildSpec, ImageSource, MountChoice, RuntimeChoice, Volume};
use super::validate::Checker;
use super::wire::{AppWire, At, BuildWire};

/// The checked container fields of one app.
pub(super) struct ContainerFields {
    pub runtime: RuntimeChoice,
    pub image: Option<ImageSource>,
    pub mount: MountChoice,
}

pub(super) fn runtime_choice(c: &mut Checker, raw: Option<&At<String>>) -> Option<RuntimeChoice> {
    let raw = raw?;
    match raw.value.as_str() {
        "auto" => Some(RuntimeChoice::Auto),
        "docker" => Some(RuntimeChoice::Docker),
        "process" => Some(RuntimeChoice::Process),
        other => {
            let hint = Some("use `auto`, `docker` or `process`".into());
            c.error(raw, format!("unknown runtime `{other}`"), hint);
            None
        }
    }
}

pub(super) fn container_fields(
    c: &mut Checker,
    at: &At<AppWire>,
    dir: &Path,
    project_runtime: RuntimeChoice,
) -> ContainerFields {
    let app = &at.value;
    let runtime = runtime_choice(c, app.runtime.as_ref()).unwrap_or(project_runtime);
    if let (Some(build), Some(image)) = (&app.build, &app.image) {
        let hint = Some(format!(
            "keep `build:` (daca tags the result itself) or `image:` (line {})",
            build.referenced.line()
        ));
        c.error(image, "`build` and `image` cannot both be set", hint);
    }
    let image = match (&app.build, &app.image) {
        (Some(build), _) => build_spec(c, build, dir).map(ImageSource::Build),
        (None, Some(image)) if image.value.trim().is_empty() => {
            c.error(
                image,
                "`image` is empty",
                Some("for example `image: my-api:dev`".into()),
            );
            None
        }
        (None, Some(image)) => Some(ImageSource::Image(image.value.trim().to_string())),
        (None, None) => None,
    };
    let has_image = app.build.is_some() || app.image.is_some();
    let has_command = app.command.is_some();
    if let Some(raw) = app
        .runtime
        .as_ref()
        .filter(|_| runtime == RuntimeChoice::Docker)
        && !has_image
    {
        let hint = Some("add `build: {}` (the app's Dockerfile) or `image: NAME`".into());
        c.error(raw, "`runtime: docker` needs `build:` or `image:`", hint);
    }
    if !has_command && !has_image {
        let hint = Some(
            "add `command: [\"uv\", \"run\", \"uvicorn\", \"main:app\"]`, or `build:`/`image:` to run it in a container"
                .into(),
        );
        c.error(at, format!("app `{}` has no `command`", app.id.value), hint);
    } else if !has_command && runtime == RuntimeChoice::Process {
        let hint = Some("add `command:` to run it as a host process".into());
        c.error(
            at,
            format!(
                "app `{}` runs as a process (`runtime: process`) but has no `command`",
                app.id.value
            ),
            hint,
        );
    }
    let mount = match app.mount.as_ref().map(|m| (m, m.value.trim())) {
        None => MountChoice::Workdir,
        Some((_, "none")) => MountChoice::None,
        Some((_, path)) if path.starts_with('/') => MountChoice::At(path.to_string()),
        Some((raw, path)) => {
            let hint = Some(format!("write `/{path}`, or `none` to mount nothing"));
            c.error(raw, format!("mount path `{path}` must be absolute"), hint);
            MountChoice::None
        }
    };
    ContainerFields {
        runtime,
        image,
        mount,
    }
}

fn build_spec(c: &mut Checker, raw: &At<BuildWire>, dir: &Path) -> Option<BuildSpec> {
    let build = &raw.value;
    let context = match &build.context {
        Some(context) => {
            let path = dir.join(&context.value);
            if !path.is_dir() {
                let hint = Some(format!(
                    "the context is relative to the app's folder, {}",
                    dir.display()
                ));
                c.error(
                    context,
                    format!("build context `{}` does not exist", context.value),
                    hint,
                );
                return None;
            }
            path
        }
        None => dir.to_path_buf(),
    };
    let dockerfile = build
        .dockerfile
        .as_ref()
        .map(|d| d.value.clone())
        .unwrap_or_else(|| "Dockerfile".into());
    if !context.join(&dockerfile).is_file() {
        let message = format!("no Dockerfile at {}", context.join(&dockerfile).display());
        let hint =
            Some("create it, or point `build.dockerfile` at it (relative to the context)".into());
        match &build.dockerfile {
            Some(at) => c.error(at, message, hint),
            None => c.error(raw, message, hint),
        }
        return None;
    }
    Some(BuildSpec {
        context,
        dockerfile,
        args: build
            .args
            .iter()
            .map(|(k, v)| (k.clone(), v.to_env_string()))
            .collect(),
        target: build.target.as_ref().map(|t| t.value.clone()),
    })
}

/// `volumes:`: `HOST:CONTAINER[:ro|rw]`, the host path relative to the manifest and present,
/// the container path absolute.
pub(super) fn volumes(c: &mut Checker, raw: &[At<String>]) -> Vec<Volume> {
    let mut out = Vec::new();
    for entry in raw {
        let parts: Vec<&str> = entry.value.split(':').collect();
        let (host, target, read_only) = match parts.as_slice() {
            [host, target] => (*host, *target, false),
            [host, target, "ro"] => (*host, *target, true),
            [host, target, "rw"] => (*host, *target, false),
            _ => {
                let hint = Some("for example `./config:/etc/config:ro`".to_string());
                c.error(
                    entry,
                    format!("volume `{}` is not HOST:CONTAINER[:ro]", entry.value),
                    hint,
                );
                continue;
            }
        };
        let host = c.root.join(host);
        if !host.exists() {
            let hint = Some(format!(
                "paths are relative to the manifest's folder, {}",
                c.root.display()
            ));
            c.error(
                entry,
                format!("volume source `{}` does not exist", host.display()),
                hint,
            );
            continue;
        }
        if !target.starts_with('/') {
            let hint = Some(format!("write `/{target}`"));
            c.error(
                entry,
                format!("volume target `{target}` must be an absolute path"),
                hint,
            );
            continue;
        }
        out.push(Volume {
            host,
            target: target.to_string(),
            read_only,
        });
    }
    out
}
