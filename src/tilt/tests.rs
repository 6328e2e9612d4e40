use std::path::Path;

use super::*;

fn eval(text: &str) -> Result<Tiltfile, TiltError> {
    evaluate_text(Path::new("/tmp/project/Tiltfile"), text)
}

#[test]
fn records_the_courses_calls_with_tilts_parameter_names() {
    let tilt = eval(
        r#"
load('ext://helm_remote', 'helm_remote')
helm_remote('dapr', repo_url='https://dapr.github.io/helm-charts/', namespace='dapr-system')
nerdctl_build('daca/agent', './agent', live_update=[sync('./agent', '/code'), run('uv sync', trigger=['pyproject.toml'])])
k8s_yaml(['kubernetes/deployment.yaml', 'components/statestore.yaml'])
k8s_resource('agent', port_forwards='8000:8000', resource_deps=['redis'], labels=['app'])
update_settings(max_parallel_updates=2)
print('ready')
"#,
    )
    .unwrap();
    let functions: Vec<&str> = tilt.calls.iter().map(|c| c.function.as_str()).collect();
    assert_eq!(
        functions,
        [
            "helm_remote",
            "nerdctl_build",
            "k8s_yaml",
            "k8s_resource",
            "update_settings"
        ]
    );
    let build = tilt.calls_of("nerdctl_build").next().unwrap();
    assert_eq!(build.str("ref"), Some("daca/agent"));
    assert_eq!(build.str("context"), Some("./agent"));
    assert_eq!(
        build.args["live_update"],
        serde_json::json!([
            {"step": "sync", "local_path": "./agent", "remote_path": "/code"},
            {"step": "run", "cmd": "uv sync", "trigger": ["pyproject.toml"]}
        ])
    );
    assert_eq!(build.at, At { line: 4, column: 1 });
    let resource = tilt.calls_of("k8s_resource").next().unwrap();
    assert_eq!(resource.strings("port_forwards"), ["8000:8000"]);
    assert_eq!(resource.strings("resource_deps"), ["redis"]);
    assert_eq!(tilt.printed, ["ready"]);
}

#[test]
fn an_unknown_function_is_an_error_at_its_place() {
    let err = eval("docker_build('a', '.')\nsurprise('x')\n").unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with("/tmp/project/Tiltfile:2:1: "), "{text}");
    assert!(text.contains("surprise"), "{text}");
    assert!(text.contains("hint:"), "{text}");
}

#[test]
fn a_parameter_tilt_does_not_have_is_an_error_at_the_call() {
    let err = eval("\n\nk8s_resource('agent', portforwards='8000')\n").unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with("/tmp/project/Tiltfile:3:1: "), "{text}");
    assert!(
        text.contains("`k8s_resource` has no parameter `portforwards`"),
        "{text}"
    );
}

#[test]
fn an_unknown_extension_and_bad_syntax_are_located() {
    let err = eval("load('ext://kafka', 'kafka')\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("Tiltfile:1:"), "{err}");
    assert!(err.contains("`kafka`"), "{err}");
    let err = eval("k8s_yaml(\n").unwrap_err().to_string();
    assert!(err.contains("Tiltfile:2:"), "{err}");
}

#[test]
fn local_runs_its_command_and_helm_charts_daca_provides_render_to_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let tilt = evaluate_text(
        &dir.path().join("Tiltfile"),
        "k8s_yaml(local('printf \"kind: Secret\\\\n\"'))\nk8s_yaml(helm('./charts/redis'))\n",
    )
    .unwrap();
    let yaml: Vec<&str> = tilt
        .calls_of("k8s_yaml")
        .map(|c| c.str("yaml").unwrap())
        .collect();
    assert_eq!(yaml, ["kind: Secret\n", ""]);
    let err = evaluate_text(&dir.path().join("Tiltfile"), "local('exit 3')\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("Tiltfile:1:1: "), "{err}");
    assert!(err.contains("failed"), "{err}");
}

#[test]
fn config_settings_take_their_defaults() {
    let tilt =
        eval("config.define_string('env')\ncfg = config.parse()\nprint(cfg.get('env', 'dev'))\n")
            .unwrap();
    assert_eq!(tilt.printed, ["dev"]);
}
