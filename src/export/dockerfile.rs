//! What a Dockerfile says about how its app runs, for an app that runs as a process where no
//! engine answers: the command (`ENTRYPOINT` + `CMD`, exec or shell form). Its `WORKDIR` is
//! `crate::docker::image::dockerfile_workdir`'s.

/// The command of a Dockerfile's final stage.
pub fn command(text: &str) -> Vec<String> {
    let (mut entrypoint, mut cmd) = (Vec::new(), Vec::new());
    for line in logical_lines(text) {
        let (word, rest) = line.split_once(char::is_whitespace).unwrap_or((&line, ""));
        let rest = rest.trim();
        match word.to_ascii_uppercase().as_str() {
            // A new stage forgets the previous one's command.
            "FROM" => (entrypoint, cmd) = (Vec::new(), Vec::new()),
            // A new ENTRYPOINT resets CMD, as Docker does.
            "ENTRYPOINT" => (entrypoint, cmd) = (words(rest), Vec::new()),
            "CMD" => cmd = words(rest),
            _ => {}
        }
    }
    entrypoint.into_iter().chain(cmd).collect()
}

/// `command` as daca runs it: without uvicorn's (and similar servers') own reloader, since daca
/// reloads the app itself and two reloaders would each restart it; and on the loopback
/// address where it said every address (`--host 0.0.0.0`, `--bind 0.0.0.0:8000`). In a pod,
/// daca reaches the app at 127.0.0.1 and the other apps' names are other loopback addresses
/// on the same port, which a wildcard bind would take; on the host network, 0.0.0.0 would
/// open the app to the whole network. A shell form (`sh -c "…"`) is rewritten word by word.
pub fn for_daca(command: Vec<String>) -> Vec<String> {
    match command.as_slice() {
        [shell, c, line] if c == "-c" && shell.ends_with("sh") => {
            let words = line.split_whitespace().map(String::from).collect();
            vec![shell.clone(), c.clone(), rewrite(words).join(" ")]
        }
        _ => rewrite(command),
    }
}

fn rewrite(command: Vec<String>) -> Vec<String> {
    let mut out = Vec::new();
    let mut skip_value = false;
    for word in command {
        if std::mem::take(&mut skip_value) {
            continue;
        }
        match word.as_str() {
            "--reload" => {}
            "--reload-dir" | "--reload-include" | "--reload-exclude" | "--reload-delay" => {
                skip_value = true
            }
            w if w.starts_with("--reload-") && w.contains('=') => {}
            _ => out.push(loopback(&word)),
        }
    }
    out
}

/// `0.0.0.0` (alone, with a port, or after `--host=`/`--bind=`) as `127.0.0.1`.
fn loopback(word: &str) -> String {
    let (flag, value) = match word.split_once('=') {
        Some((flag, value)) if flag.starts_with('-') => (format!("{flag}="), value),
        _ => (String::new(), word),
    };
    match value.strip_prefix("0.0.0.0") {
        Some(rest) if rest.is_empty() || rest.starts_with(':') => format!("{flag}127.0.0.1{rest}"),
        _ => word.to_string(),
    }
}

/// The instruction lines: continuations joined, comments and blank lines dropped.
fn logical_lines(text: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut current = String::new();
    for raw in text.lines() {
        let trimmed = raw.trim();
        if current.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(part) => {
                current.push_str(part);
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                lines.push(std::mem::take(&mut current));
            }
        }
    }
    if !current.trim().is_empty() {
        lines.push(current);
    }
    lines
}

/// An exec form (`["a", "b"]`) or a shell form, which runs under `/bin/sh -c` as Docker runs it.
fn words(rest: &str) -> Vec<String> {
    if rest.starts_with('[')
        && let Ok(list) = serde_json::from_str::<Vec<String>>(rest)
    {
        return list;
    }
    match rest.is_empty() {
        true => Vec::new(),
        false => vec!["/bin/sh".into(), "-c".into(), rest.to_string()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_and_shell_forms_and_stages() {
        let text = "FROM python:3.13 AS build\nCMD [\"no\"]\n\n# the app\nfrom base\nWORKDIR /code\nworkdir app\nCOPY . .\nCMD [\"uv\", \"run\", \"uvicorn\", \"main:app\", \\\n  \"--host\", \"0.0.0.0\", \"--reload\"]\n";
        // The mount's default, read where containers read it.
        assert_eq!(
            crate::docker::image::dockerfile_workdir(text, None).as_deref(),
            Some("/code/app")
        );
        assert_eq!(
            for_daca(command(text)),
            ["uv", "run", "uvicorn", "main:app", "--host", "127.0.0.1"]
        );
        let shell = command("FROM x\nENTRYPOINT [\"tini\", \"--\"]\nCMD python main.py\n");
        assert_eq!(shell, ["tini", "--", "/bin/sh", "-c", "python main.py"]);
        let reset = command("FROM x\nCMD [\"a\"]\nENTRYPOINT [\"b\"]\n");
        assert_eq!(reset, ["b"]);
        let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            for_daca(words(&[
                "u",
                "--reload-dir",
                "src",
                "--reload-include=*.py",
                "x"
            ])),
            ["u", "x"]
        );
        assert_eq!(
            for_daca(words(&[
                "gunicorn",
                "-b",
                "0.0.0.0:8000",
                "--bind=0.0.0.0:9",
                "0.0.0.01"
            ])),
            [
                "gunicorn",
                "-b",
                "127.0.0.1:8000",
                "--bind=127.0.0.1:9",
                "0.0.0.01"
            ]
        );
        assert_eq!(
            for_daca(words(&[
                "/bin/sh",
                "-c",
                "uvicorn m:app --host 0.0.0.0  --reload"
            ])),
            ["/bin/sh", "-c", "uvicorn m:app --host 127.0.0.1"]
        );
    }
}
