//! A Redis for the cluster when the user has none: a StatefulSet with a volume claim and a
//! Service, both named `redis-master` as the Bitnami chart names them, so the components'
//! address is the same whether this Redis or a Helm-installed one serves them.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, PersistentVolumeClaim, PersistentVolumeClaimSpec, PodSpec,
    PodTemplateSpec, Probe, Service, ServicePort, ServiceSpec, TCPSocketAction, VolumeMount,
    VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{NAME, Options, PART_OF, object_meta};
use crate::manifest::{DEFAULT_REDIS_IMAGE, Manifest, RedisConfig};

pub const NAME_REDIS: &str = "redis-master";

pub fn objects(manifest: &Manifest, options: &Options) -> (Service, StatefulSet) {
    let ns = Some(options.namespace.as_str());
    let image = match &manifest.redis {
        RedisConfig::Managed { image, .. } => image.clone(),
        RedisConfig::External { .. } => DEFAULT_REDIS_IMAGE.to_string(),
    };
    let selector = BTreeMap::from([
        (NAME.to_string(), NAME_REDIS.to_string()),
        (PART_OF.to_string(), manifest.name.clone()),
    ]);
    let service = Service {
        metadata: object_meta(NAME_REDIS, ns, manifest, Some(NAME_REDIS)),
        spec: Some(ServiceSpec {
            selector: Some(selector.clone()),
            ports: Some(vec![ServicePort {
                name: Some("redis".into()),
                port: 6379,
                target_port: Some(IntOrString::Int(6379)),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    };
    (service, statefulset(manifest, ns, image, selector))
}

fn statefulset(
    manifest: &Manifest,
    ns: Option<&str>,
    image: String,
    selector: BTreeMap<String, String>,
) -> StatefulSet {
    let mut template_meta = object_meta(NAME_REDIS, None, manifest, Some(NAME_REDIS));
    template_meta.name = None;
    let container = Container {
        name: "redis".into(),
        image: Some(image),
        args: Some(
            ["redis-server", "--appendonly", "yes", "--dir", "/data"]
                .map(String::from)
                .to_vec(),
        ),
        ports: Some(vec![ContainerPort {
            name: Some("redis".into()),
            container_port: 6379,
            ..Default::default()
        }]),
        readiness_probe: Some(Probe {
            tcp_socket: Some(TCPSocketAction {
                port: IntOrString::Int(6379),
                ..Default::default()
            }),
            period_seconds: Some(5),
            ..Default::default()
        }),
        volume_mounts: Some(vec![VolumeMount {
            name: "data".into(),
            mount_path: "/data".into(),
            ..Default::default()
        }]),
        ..Default::default()
    };
    StatefulSet {
        metadata: object_meta(NAME_REDIS, ns, manifest, Some(NAME_REDIS)),
        spec: Some(StatefulSetSpec {
            service_name: Some(NAME_REDIS.into()),
            replicas: Some(1),
            selector: LabelSelector {
                match_labels: Some(selector),
                ..Default::default()
            },
            template: PodTemplateSpec {
                metadata: Some(template_meta),
                spec: Some(PodSpec {
                    containers: vec![container],
                    ..Default::default()
                }),
            },
            volume_claim_templates: Some(vec![claim(manifest)]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Redis's data volume: 1 GiB, one writer.
fn claim(manifest: &Manifest) -> PersistentVolumeClaim {
    let mut claim_meta = object_meta("data", None, manifest, Some(NAME_REDIS));
    claim_meta.labels = None;
    PersistentVolumeClaim {
        metadata: claim_meta,
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".into()]),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([(
                    "storage".to_string(),
                    Quantity("1Gi".into()),
                )])),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}
