//! One app's objects: a Deployment whose pod template carries the Dapr annotations (on the
//! template, not the Deployment, or the injector adds no sidecar), a Service, a ConfigMap for
//! the manifest's `env`, and a Secret for its `.env` (referenced, never inlined).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapEnvSource, Container, ContainerPort, EnvFromSource, HTTPGetAction, PodSpec,
    PodTemplateSpec, Probe, ResourceRequirements, SecretEnvSource, Service, ServicePort,
    ServiceSpec, TCPSocketAction,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{AppObjects, NAME, Options, PART_OF, object_meta};
use crate::manifest::{AppProtocol, AppSpec, Manifest};

/// Dapr's default `maxBodySize`; a different one becomes `dapr.io/http-max-request-size`.
const DEFAULT_BODY: usize = 4 << 20;

pub fn objects(
    manifest: &Manifest,
    app: &AppSpec,
    options: &Options,
    config: Option<&str>,
    notes: &mut Vec<String>,
) -> AppObjects {
    let id = app.id.as_str();
    let ns = Some(options.namespace.as_str());
    if app.process.image.is_none() {
        notes.push(format!(
            "{id} has no `build:` or `image:`: its image `{}` must be built and pushed elsewhere",
            options.image_for(app)
        ));
    }
    let config_map = (!app.process.env.is_empty()).then(|| ConfigMap {
        metadata: object_meta(&format!("{id}-env"), ns, manifest, Some(id)),
        data: Some(app.process.env.clone()),
        ..Default::default()
    });
    let dot_env = crate::env::read_dot_env(&app.dir);
    let secret_env = (!dot_env.is_empty()).then(|| {
        dot_env
            .iter()
            .map(|(k, v)| format!("{k}={v}\n"))
            .collect::<String>()
    });
    let container = container(app, options, config_map.is_some(), secret_env.is_some());
    let selector = BTreeMap::from([
        (NAME.to_string(), id.to_string()),
        (PART_OF.to_string(), manifest.name.clone()),
    ]);
    let mut template_meta = object_meta(id, None, manifest, Some(id));
    template_meta.name = None;
    template_meta.annotations = Some(dapr_annotations(app, config));
    let deployment = Deployment {
        metadata: object_meta(id, ns, manifest, Some(id)),
        spec: Some(DeploymentSpec {
            replicas: Some(i32::from(app.replicas)),
            selector: LabelSelector {
                match_labels: Some(selector.clone()),
                ..Default::default()
            },
            template: PodTemplateSpec {
                metadata: Some(template_meta),
                spec: Some(PodSpec {
                    containers: vec![container],
                    termination_grace_period_seconds: Some(
                        app.supervision.grace_period.as_secs().max(1) as i64,
                    ),
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        ..Default::default()
    };
    let service = app.process.port.map(|port| Service {
        metadata: object_meta(id, ns, manifest, Some(id)),
        spec: Some(ServiceSpec {
            selector: Some(selector),
            ports: Some(vec![ServicePort {
                name: Some(port_name(app).into()),
                port: port.into(),
                target_port: Some(IntOrString::Int(port.into())),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    });
    AppObjects {
        id: id.to_string(),
        config: config_map,
        secret_env,
        deployment,
        service,
    }
}

/// The `dapr.io/*` annotations the manifest implies; values are strings, as Kubernetes needs.
fn dapr_annotations(app: &AppSpec, config: Option<&str>) -> BTreeMap<String, String> {
    let mut annotations = BTreeMap::from([
        ("dapr.io/enabled".to_string(), "true".to_string()),
        ("dapr.io/app-id".to_string(), app.id.to_string()),
    ]);
    let mut add = |key: &str, value: String| {
        annotations.insert(format!("dapr.io/{key}"), value);
    };
    if let Some(port) = app.process.port {
        add("app-port", port.to_string());
    }
    if app.process.protocol == AppProtocol::Grpc {
        add("app-protocol", "grpc".into());
    }
    if let Some(path) = &app.supervision.health {
        add("enable-app-health-check", "true".into());
        add("app-health-check-path", path.clone());
    }
    if let Some(config) = config {
        add("config", config.to_string());
    }
    if app.sidecar.max_body_size != DEFAULT_BODY {
        // In megabytes, rounded up (Dapr's annotation unit).
        add(
            "http-max-request-size",
            app.sidecar.max_body_size.div_ceil(1 << 20).to_string(),
        );
    }
    annotations
}

fn port_name(app: &AppSpec) -> &'static str {
    match app.process.protocol {
        AppProtocol::Http => "http",
        AppProtocol::Grpc => "grpc",
    }
}

fn container(app: &AppSpec, options: &Options, config: bool, secret: bool) -> Container {
    let id = app.id.as_str();
    let mut env_from = Vec::new();
    if config {
        env_from.push(EnvFromSource {
            config_map_ref: Some(ConfigMapEnvSource {
                name: format!("{id}-env"),
                ..Default::default()
            }),
            ..Default::default()
        });
    }
    if secret {
        env_from.push(EnvFromSource {
            secret_ref: Some(SecretEnvSource {
                name: format!("{id}-secrets"),
                ..Default::default()
            }),
            ..Default::default()
        });
    }
    // In a container, `command:` replaces the image's CMD (Kubernetes' `args`); a host command
    // (an app without an image) means nothing inside an image, so the image's CMD runs.
    let args = (app.process.image.is_some() && !app.process.command.is_empty())
        .then(|| app.process.command.clone());
    let probe = |initial: i32| probe(app, initial);
    Container {
        name: id.to_string(),
        image: Some(options.image_for(app)),
        // A freshly built image may be only on the node (kind, minikube) until pushed.
        image_pull_policy: Some("IfNotPresent".into()),
        args,
        ports: app.process.port.map(|port| {
            vec![ContainerPort {
                name: Some(port_name(app).into()),
                container_port: port.into(),
                ..Default::default()
            }]
        }),
        env_from: (!env_from.is_empty()).then_some(env_from),
        readiness_probe: probe(0),
        liveness_probe: probe(10),
        resources: Some(ResourceRequirements {
            requests: Some(BTreeMap::from([
                ("cpu".to_string(), Quantity("100m".into())),
                ("memory".to_string(), Quantity("128Mi".into())),
            ])),
            limits: Some(BTreeMap::from([(
                "memory".to_string(),
                Quantity("512Mi".into()),
            )])),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Readiness (and, delayed, liveness) from the app's health settings.
fn probe(app: &AppSpec, initial_delay: i32) -> Option<Probe> {
    let port = IntOrString::Int(app.process.port?.into());
    let mut probe = Probe {
        period_seconds: Some(10),
        initial_delay_seconds: (initial_delay > 0).then_some(initial_delay),
        ..Default::default()
    };
    match (&app.supervision.health, app.process.protocol) {
        (Some(path), AppProtocol::Http) => {
            probe.http_get = Some(HTTPGetAction {
                path: Some(path.clone()),
                port,
                ..Default::default()
            })
        }
        _ => {
            probe.tcp_socket = Some(TCPSocketAction {
                port,
                ..Default::default()
            })
        }
    }
    Some(probe)
}
