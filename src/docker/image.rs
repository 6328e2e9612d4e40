//! Images: is it there, pull it (with progress), or build it from the app's Dockerfile with
//! the context tarred as `.dockerignore` says, streaming the build output into the app's log.

use std::collections::HashMap;
use std::path::Path;

use bollard::query_parameters::{BuildImageOptionsBuilder, CreateImageOptionsBuilder};
use futures_util::StreamExt;

use super::{DockerError, Engine, is_not_found};
use crate::logs::{LogBus, Stream};
use crate::manifest::BuildSpec;

/// The id of `image` on the engine, or `None` when it is not there.
pub async fn local_id(engine: &Engine, image: &str) -> Result<Option<String>, DockerError> {
    match engine.docker.inspect_image(image).await {
        Ok(inspect) => Ok(inspect.id),
        Err(err) if is_not_found(&err) => Ok(None),
        Err(err) => Err(err.into()),
    }
}

/// Makes sure `image` is on the engine, pulling it when missing. Progress goes to `logs` as
/// `source` lines (one per layer state change, so a log file stays readable).
pub async fn ensure(
    engine: &Engine,
    image: &str,
    logs: &LogBus,
    source: &str,
    hint: &str,
) -> Result<String, DockerError> {
    if let Some(id) = local_id(engine, image).await? {
        return Ok(id);
    }
    pull(engine, image, logs, source)
        .await
        .map_err(|cause| DockerError::ImageMissing {
            image: image.to_string(),
            cause,
            hint: hint.to_string(),
        })?;
    local_id(engine, image)
        .await?
        .ok_or_else(|| DockerError::ImageMissing {
            image: image.to_string(),
            cause: "the pull reported success but the engine does not have it".into(),
            hint: hint.to_string(),
        })
}

async fn pull(engine: &Engine, image: &str, logs: &LogBus, source: &str) -> Result<(), String> {
    let (name, tag) = split_reference(image);
    let options = CreateImageOptionsBuilder::default()
        .from_image(name)
        .tag(tag)
        .build();
    logs.push(source, Stream::Stdout, format!("pull | pulling {image}"));
    let mut stream = engine.docker.create_image(Some(options), None, None);
    // Progress as log lines (the log stream is shared, so no redrawn bars): a layer's line
    // when its state changes, and at each quarter of a download or extraction.
    let mut last: HashMap<String, (String, u64)> = HashMap::new();
    while let Some(item) = stream.next().await {
        let info = item.map_err(|e| e.to_string())?;
        if let Some(error) = info.error_detail.and_then(|d| d.message) {
            return Err(error);
        }
        let (id, Some(status)) = (info.id, info.status) else {
            continue;
        };
        let Some(id) = id else {
            // The digest and the closing "Status: Downloaded newer image for ...".
            logs.push(source, Stream::Stdout, format!("pull | {status}"));
            continue;
        };
        let percent = info
            .progress_detail
            .and_then(|p| Some(p.current? * 100 / p.total.filter(|t| *t > 0)?))
            .map(|p| p.clamp(0, 100) as u64);
        let step = (status.clone(), percent.map(|p| p / 25).unwrap_or(0));
        if last.get(&id) != Some(&step) {
            let shown = percent.map(|p| format!(" {p}%")).unwrap_or_default();
            logs.push(
                source,
                Stream::Stdout,
                format!("pull | {id}: {status}{shown}"),
            );
            last.insert(id, step);
        }
    }
    Ok(())
}

/// `redis:7-alpine` → (`redis`, `7-alpine`); `host:5000/x` → (`host:5000/x`, `latest`).
fn split_reference(image: &str) -> (&str, &str) {
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.rsplit_once(':') {
        Some((_, tag)) if !image.contains('@') => (&image[..image.len() - tag.len() - 1], tag),
        _ => (image, "latest"),
    }
}

/// Builds `spec` as `tag` through the engine's (classic, cached) builder; returns the image id.
pub async fn build(
    engine: &Engine,
    app: &str,
    spec: &BuildSpec,
    tag: &str,
    labels: &HashMap<String, String>,
    logs: &LogBus,
) -> Result<String, DockerError> {
    let dockerfile = spec.dockerfile_path().display().to_string();
    let failed = |cause: String| DockerError::Build {
        app: app.to_string(),
        dockerfile: dockerfile.clone(),
        cause,
    };
    let context = {
        let spec = spec.clone();
        tokio::task::spawn_blocking(move || context_tar(&spec.context, &spec.dockerfile))
            .await
            .map_err(|e| failed(e.to_string()))??
    };
    let mut options = BuildImageOptionsBuilder::default()
        .dockerfile(&spec.dockerfile)
        .t(tag)
        .rm(true)
        .forcerm(true)
        .buildargs(
            &spec
                .args
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<HashMap<_, _>>(),
        )
        .labels(labels);
    if let Some(target) = &spec.target {
        options = options.target(target);
    }
    let mut stream = engine.docker.build_image(
        options.build(),
        None,
        Some(bollard::body_full(context.into())),
    );
    let mut id = None;
    while let Some(item) = stream.next().await {
        let info = match item {
            Ok(info) => info,
            Err(bollard::errors::Error::DockerStreamError { error }) => return Err(failed(error)),
            Err(err) => return Err(failed(err.to_string())),
        };
        if let Some(message) = info.error_detail.and_then(|d| d.message) {
            return Err(failed(message));
        }
        if let Some(text) = info.stream {
            let text = strip_ansi(&text);
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                logs.push(app, Stream::Stdout, format!("build | {line}"));
            }
        }
        if let Some(aux) = info.aux.and_then(|a| a.id) {
            id = Some(aux);
        }
    }
    match id {
        Some(id) => Ok(id),
        None => local_id(engine, tag)
            .await?
            .ok_or_else(|| failed("the engine built no image".into())),
    }
}

/// Tags image `id` as `target` (`registry/name:tag`).
pub async fn tag(engine: &Engine, id: &str, target: &str) -> Result<(), DockerError> {
    let (repo, tag) = split_reference(target);
    let options = bollard::query_parameters::TagImageOptionsBuilder::default()
        .repo(repo)
        .tag(tag)
        .build();
    engine.docker.tag_image(id, Some(options)).await?;
    Ok(())
}

/// The classic builder wraps a step's stderr in colour codes; the log stream has its own.
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ parameters final-byte (a letter).
            for next in chars.by_ref() {
                if next.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The build context as a tar archive, without what `.dockerignore` excludes (the Dockerfile
/// and `.dockerignore` are always sent, as the Docker CLI does).
pub fn context_tar(context: &Path, dockerfile: &str) -> Result<Vec<u8>, DockerError> {
    let ignore = docker_ignore(context);
    let mut archive = tar::Builder::new(Vec::new());
    archive.follow_symlinks(false);
    let mut pending = vec![context.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&dir)?.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let path = entry.path();
            let relative = path.strip_prefix(context).unwrap_or(&path);
            let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
            let always =
                relative == Path::new(dockerfile) || relative == Path::new(".dockerignore");
            // daca's own state (its Redis's files, logs, what it imported) is no part of the
            // app, and it changes on every run: sent, it would defeat the build cache.
            if is_dir && entry.file_name() == ".daca" {
                continue;
            }
            if !always
                && ignore
                    .matched_path_or_any_parents(relative, is_dir)
                    .is_ignore()
            {
                continue;
            }
            if is_dir {
                archive.append_dir(relative, &path)?;
                pending.push(path);
            } else {
                archive.append_path_with_name(&path, relative)?;
            }
        }
    }
    Ok(archive.into_inner()?)
}

/// `.dockerignore` patterns are relative to the context root (unlike `.gitignore`, where a
/// bare name matches at any depth), so each is anchored before it goes to the matcher.
fn docker_ignore(context: &Path) -> ignore::gitignore::Gitignore {
    let mut builder = ignore::gitignore::GitignoreBuilder::new(context);
    if let Ok(text) = std::fs::read_to_string(context.join(".dockerignore")) {
        for line in text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            let (negate, pattern) = match line.strip_prefix('!') {
                Some(rest) => ("!", rest.trim()),
                None => ("", line),
            };
            let pattern = pattern.trim_start_matches("./").trim_start_matches('/');
            let anchored = if pattern.starts_with("**") {
                pattern.to_string()
            } else {
                format!("/{pattern}")
            };
            let _ = builder.add_line(None, &format!("{negate}{anchored}"));
        }
    }
    builder
        .build()
        .unwrap_or_else(|_| ignore::gitignore::Gitignore::empty())
}

/// The last `WORKDIR` of the stage that is built (the last stage, or `target`): where the
/// image expects the app's files, so where the source is mounted.
pub fn dockerfile_workdir(dockerfile: &str, target: Option<&str>) -> Option<String> {
    let mut workdir: Option<String> = None;
    let mut in_target = target.is_none();
    let mut found = None;
    for line in dockerfile.lines().map(str::trim) {
        let mut words = line.split_whitespace();
        let instruction = words.next().unwrap_or_default().to_ascii_uppercase();
        match instruction.as_str() {
            "FROM" => {
                if in_target && target.is_some() {
                    found = workdir.clone();
                    break;
                }
                let rest: Vec<&str> = words.collect();
                let stage = rest
                    .iter()
                    .position(|w| w.eq_ignore_ascii_case("as"))
                    .and_then(|i| rest.get(i + 1));
                in_target = target.is_none() || stage.copied() == target;
                workdir = None;
            }
            "WORKDIR" => {
                let dir = words.collect::<Vec<_>>().join(" ");
                workdir = Some(match &workdir {
                    Some(base) if !dir.starts_with('/') => {
                        format!("{}/{dir}", base.trim_end_matches('/'))
                    }
                    _ => dir,
                });
            }
            _ => {}
        }
    }
    found.or(if in_target { workdir } else { None })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workdir_of_the_built_stage() {
        let single = "FROM python:3.11\nWORKDIR /app\nWORKDIR src\nCOPY . .\n";
        assert_eq!(
            dockerfile_workdir(single, None).as_deref(),
            Some("/app/src")
        );
        let multi =
            "FROM node AS ui\nWORKDIR /ui\nFROM python AS api\nWORKDIR /code\nFROM api AS final\n";
        assert_eq!(dockerfile_workdir(multi, None), None);
        assert_eq!(
            dockerfile_workdir(multi, Some("api")).as_deref(),
            Some("/code")
        );
        assert_eq!(
            dockerfile_workdir(multi, Some("ui")).as_deref(),
            Some("/ui")
        );
        assert_eq!(dockerfile_workdir("FROM x\nCMD y\n", None), None);
    }

    #[test]
    fn colour_codes_are_dropped() {
        assert_eq!(strip_ansi("\u{1b}[91mwarning\n\u{1b}[0m"), "warning\n");
    }

    #[test]
    fn references() {
        assert_eq!(split_reference("redis:7-alpine"), ("redis", "7-alpine"));
        assert_eq!(split_reference("redis"), ("redis", "latest"));
        assert_eq!(
            split_reference("reg:5000/team/api"),
            ("reg:5000/team/api", "latest")
        );
        assert_eq!(split_reference("reg:5000/api:1.2"), ("reg:5000/api", "1.2"));
    }

    #[test]
    fn context_honours_dockerignore() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for file in [
            "Dockerfile",
            "main.py",
            "notes.md",
            "sub/notes.md",
            ".venv/bin/python",
            "keep/x.log",
            "a.log",
            ".daca/redis/appendonly.aof",
        ] {
            std::fs::create_dir_all(root.join(file).parent().unwrap()).unwrap();
            std::fs::write(root.join(file), "x").unwrap();
        }
        std::fs::write(
            root.join(".dockerignore"),
            "# comment\n.venv\nnotes.md\n**/*.log\n!keep/x.log\nDockerfile\n",
        )
        .unwrap();
        let bytes = context_tar(root, "Dockerfile").unwrap();
        let mut archive = tar::Archive::new(&bytes[..]);
        let mut names: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .filter(|n| !n.ends_with('/'))
            .collect();
        names.sort();
        // Root-anchored: `notes.md` leaves sub/notes.md in; the Dockerfile is always sent;
        // daca's state is never.
        assert_eq!(
            names,
            [
                ".dockerignore",
                "Dockerfile",
                "keep",
                "keep/x.log",
                "main.py",
                "sub",
                "sub/notes.md"
            ]
        );
    }
}
