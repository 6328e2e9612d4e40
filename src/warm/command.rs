//! Which app commands daca knows to be Python servers, and how to start their interpreter.
//!
//! A command is taken apart into the interpreter the app's own command would run (under
//! `uv run` that is `uv run … python`, so uv picks the same environment) and what that
//! interpreter runs: a module (`python -m`), a file (`python main.py`) or a console script
//! (`uvicorn`, `fastapi`, `gunicorn`, `hypercorn`, resolved on the app's PATH by Python).

use std::path::Path;

use serde::Serialize;

/// What the interpreter runs, as the warm parent's TARGET argument (see parent.py).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Target {
    pub kind: &'static str,
    pub name: String,
    pub app_dir: String,
}

/// A recognised Python server command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PythonCommand {
    /// Starts the interpreter: `["uv", "run", "python"]`, `["python3", "-u"]`, `["/v/bin/python"]`.
    pub interpreter: Vec<String>,
    pub target: Target,
    /// The arguments after the module, file or script.
    pub args: Vec<String>,
}

const SERVERS: [&str; 4] = ["uvicorn", "fastapi", "gunicorn", "hypercorn"];

/// `uv run` options that take a value in the next argument.
const UV_VALUED: [&str; 16] = [
    "--with",
    "--with-requirements",
    "--with-editable",
    "--project",
    "--directory",
    "--python",
    "-p",
    "--env-file",
    "--extra",
    "--group",
    "--package",
    "--index",
    "--index-url",
    "--default-index",
    "--extra-index-url",
    "--find-links",
];

/// Takes `command` apart, or says why it is not a Python server daca can fork. `shebang`
/// reads the interpreter line of a console script found on the app's PATH.
pub fn recognise(
    command: &[String],
    app_dir: &Path,
    shebang: impl Fn(&str) -> Option<String>,
) -> Result<PythonCommand, String> {
    let (mut prefix, rest) = split_uv(command);
    let Some((word, args)) = rest.split_first() else {
        return Err("the command is empty".into());
    };
    let base = word.rsplit('/').next().unwrap_or(word);
    let app_dir = app_dir.display().to_string();
    if is_python(base) {
        prefix.push(word.clone());
        return python_args(prefix, args, app_dir);
    }
    if !SERVERS.contains(&base) {
        return Err(format!("`{base}` is not a Python server daca knows"));
    }
    if prefix.is_empty() {
        let interpreter =
            shebang(word).ok_or_else(|| format!("`{word}` is not a Python script"))?;
        prefix.push(interpreter);
    } else {
        prefix.push("python".into());
    }
    Ok(PythonCommand {
        interpreter: prefix,
        target: Target {
            kind: "script",
            name: word.clone(),
            app_dir,
        },
        args: without_reloader(base, args),
    })
}

/// The server's arguments without its own reloader: daca does the reloading, and a reloader
/// would start every worker in a fresh interpreter (so nothing would be warm). `fastapi dev`
/// runs with `--no-reload`; uvicorn's and hypercorn's `--reload` options are dropped.
fn without_reloader(server: &str, args: &[String]) -> Vec<String> {
    let mut kept = Vec::new();
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--reload" => {}
            "--reload-dir" | "--reload-include" | "--reload-exclude" | "--reload-delay" => {
                rest.next();
            }
            other if other.starts_with("--reload-") && other.contains('=') => {}
            _ => kept.push(arg.clone()),
        }
    }
    if server == "fastapi"
        && kept.first().is_some_and(|a| a == "dev")
        && !kept.iter().any(|a| a == "--no-reload")
    {
        kept.push("--no-reload".into());
    }
    kept
}

/// `uv run [options] [--]` and the rest; an empty prefix when the command is not `uv run`.
fn split_uv(command: &[String]) -> (Vec<String>, &[String]) {
    let is_uv = command
        .first()
        .is_some_and(|p| p.rsplit('/').next() == Some("uv"));
    if !is_uv || command.get(1).map(String::as_str) != Some("run") {
        return (Vec::new(), command);
    }
    let mut at = 2;
    while let Some(arg) = command.get(at) {
        if arg == "--" {
            at += 1;
            break;
        }
        if !arg.starts_with('-') {
            break;
        }
        at += if UV_VALUED.contains(&arg.as_str()) {
            2
        } else {
            1
        };
    }
    let at = at.min(command.len());
    let prefix = command[..at]
        .iter()
        .filter(|a| *a != "--")
        .cloned()
        .collect();
    (prefix, &command[at..])
}

fn is_python(base: &str) -> bool {
    let Some(version) = base.strip_prefix("python") else {
        return false;
    };
    version.is_empty() || version.chars().all(|c| c.is_ascii_digit() || c == '.')
}

/// `python [-u|-B|-O|-OO] (-m module | file.py) args…`.
fn python_args(
    mut interpreter: Vec<String>,
    args: &[String],
    app_dir: String,
) -> Result<PythonCommand, String> {
    let mut at = 0;
    while let Some(flag) = args
        .get(at)
        .filter(|a| ["-u", "-B", "-O", "-OO"].contains(&a.as_str()))
    {
        interpreter.push(flag.clone());
        at += 1;
    }
    let (kind, name, rest) = match args.get(at).map(String::as_str) {
        Some("-m") => match args.get(at + 1) {
            Some(module) => ("module", module.clone(), &args[at + 2..]),
            None => return Err("`python -m` has no module".into()),
        },
        Some(file) if !file.starts_with('-') => ("path", file.to_string(), &args[at + 1..]),
        Some(other) => return Err(format!("python's `{other}` option is not one daca forks")),
        None => return Err("python runs no program".into()),
    };
    let args = match kind {
        "module" if SERVERS.contains(&name.as_str()) => without_reloader(&name, rest),
        _ => rest.to_vec(),
    };
    Ok(PythonCommand {
        interpreter,
        target: Target {
            kind,
            name,
            app_dir,
        },
        args,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    fn parse(s: &str) -> Result<PythonCommand, String> {
        recognise(&words(s), Path::new("/p"), |_| Some("/v/bin/python".into()))
    }

    #[test]
    fn uv_run_uvicorn_runs_the_script_under_uv_run_python() {
        let cmd = parse("uv run uvicorn main:app --port 8000").expect("recognised");
        assert_eq!(cmd.interpreter, words("uv run python"));
        assert_eq!(
            (cmd.target.kind, cmd.target.name.as_str()),
            ("script", "uvicorn")
        );
        assert_eq!(cmd.args, words("main:app --port 8000"));
    }

    #[test]
    fn uv_options_are_kept_and_their_values_skipped() {
        let cmd =
            parse("uv run --frozen --with httpx -- python -u -m uvicorn main:app").expect("ok");
        assert_eq!(
            cmd.interpreter,
            words("uv run --frozen --with httpx python -u")
        );
        assert_eq!(
            (cmd.target.kind, cmd.target.name.as_str()),
            ("module", "uvicorn")
        );
        assert_eq!(cmd.args, words("main:app"));
    }

    #[test]
    fn python_files_modules_and_bare_scripts() {
        let file = parse("python3.13 app/main.py --x").expect("ok");
        assert_eq!(
            (file.target.kind, file.args.clone()),
            ("path", words("--x"))
        );
        let bare = parse("gunicorn -k uvicorn.workers.UvicornWorker main:app").expect("ok");
        assert_eq!(bare.interpreter, vec!["/v/bin/python".to_string()]);
        let fastapi = parse("fastapi run main.py").expect("ok");
        assert_eq!(fastapi.args, words("run main.py"));
    }

    #[test]
    fn daca_does_the_reloading_so_the_servers_reloader_is_turned_off() {
        let dev = parse("uv run fastapi dev main.py --port 1").expect("ok");
        assert_eq!(dev.args, words("dev main.py --port 1 --no-reload"));
        let uvicorn = parse("python -m uvicorn main:app --reload --reload-dir src --port 1");
        assert_eq!(uvicorn.expect("ok").args, words("main:app --port 1"));
        let script = parse("uvicorn main:app --reload-include=*.py --reload");
        assert_eq!(script.expect("ok").args, words("main:app"));
    }

    #[test]
    fn what_is_not_forked_says_why() {
        for (command, why) in [
            ("node server.js", "`node` is not a Python server daca knows"),
            (
                "python -c print(1)",
                "python's `-c` option is not one daca forks",
            ),
            (
                "pythonista x",
                "`pythonista` is not a Python server daca knows",
            ),
        ] {
            assert_eq!(parse(command).expect_err(command), why, "{command}");
        }
        let no_shebang = recognise(&words("uvicorn main:app"), Path::new("/p"), |_| None);
        assert_eq!(
            no_shebang.expect_err("binary"),
            "`uvicorn` is not a Python script"
        );
    }
}
