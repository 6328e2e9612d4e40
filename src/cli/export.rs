//! `daca export k8s` and `daca build`: the project as Kubernetes manifests, and its images
//! built and tagged through the Docker engine for them.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::ProjectArgs;
use crate::docker::{ContainerPlan, Engine, Owner, image, run_id};
use crate::export::{self, Options, RedisChoice};
use crate::logs::{LogBus, LogFormat, Printer};
use crate::manifest::{ImageSource, Manifest};

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(subcommand)]
    pub target: ExportTarget,
}

#[derive(Debug, Subcommand)]
pub enum ExportTarget {
    /// Kubernetes manifests (kustomize) for a cluster with Dapr installed.
    K8s(K8sArgs),
}

#[derive(Debug, Args)]
pub struct K8sArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    /// Where to write (replaces an earlier export there).
    #[arg(short, long, default_value = "deploy")]
    pub output: PathBuf,
    #[command(flatten)]
    pub images: ImageArgs,
    /// The namespace of every object.
    #[arg(long, default_value = "default")]
    pub namespace: String,
    /// `managed`: a Redis StatefulSet and Service in the export; `external`: none (a
    /// Helm-installed or managed Redis at --redis-host).
    #[arg(long, value_enum, default_value = "managed")]
    pub redis: RedisChoice,
    /// The Redis address components use (default redis-master.NAMESPACE.svc.cluster.local:6379).
    #[arg(long)]
    pub redis_host: Option<String>,
    /// Build and tag the apps' images first (`daca build`).
    #[arg(long)]
    pub build: bool,
}

/// How exported and built images are named.
#[derive(Debug, Clone, Args)]
pub struct ImageArgs {
    /// Registry prefix of the apps' images, e.g. `ghcr.io/me` (apps with `image:` keep theirs).
    #[arg(long)]
    pub registry: Option<String>,
    /// Tag of the apps' images.
    #[arg(long, default_value = "latest")]
    pub tag: String,
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    #[command(flatten)]
    pub images: ImageArgs,
}

pub async fn run(args: &ExportArgs) -> crate::Result<()> {
    let ExportTarget::K8s(k8s) = &args.target;
    let (file, _) = k8s.project.locate();
    let manifest = crate::folder::load(&file)?.manifest;
    if k8s.build {
        build_images(&manifest, &k8s.images).await?;
    }
    let options = Options {
        namespace: k8s.namespace.clone(),
        registry: k8s.images.registry.clone(),
        tag: k8s.images.tag.clone(),
        redis: k8s.redis,
        redis_host: k8s.redis_host.clone(),
    };
    let plan = export::plan(&manifest, &options)?;
    let files = export::write::render(&plan)?;
    export::write::write(&k8s.output, &files)?;
    for (name, _) in &files {
        println!("wrote {}", k8s.output.join(name).display());
    }
    for note in &plan.notes {
        println!("note: {note}");
    }
    println!(
        "\nnext: kubectl apply -k {}    (on a cluster with Dapr installed)",
        k8s.output.display()
    );
    Ok(())
}

pub async fn build(args: &BuildArgs) -> crate::Result<()> {
    let (file, _) = args.project.locate();
    let manifest = crate::folder::load(&file)?.manifest;
    build_images(&manifest, &args.images).await
}

/// Builds every app with `build:` and tags it as the export names it.
async fn build_images(manifest: &Manifest, images: &ImageArgs) -> crate::Result<()> {
    let apps: Vec<_> = manifest
        .apps
        .iter()
        .filter(|a| matches!(a.process.image, Some(ImageSource::Build(_))))
        .collect();
    if apps.is_empty() {
        println!("no app has `build:`; nothing to build");
        return Ok(());
    }
    let engine = Engine::connect().await?;
    let logs = LogBus::new(1000);
    let sources = apps.iter().map(|a| a.id.to_string()).collect();
    let stop = tokio_util::sync::CancellationToken::new();
    let printer =
        tokio::spawn(Printer::new(LogFormat::Text, sources).run(logs.clone(), stop.clone()));
    let plan = ContainerPlan {
        engine,
        owner: Owner::new(&manifest.name, &manifest.root, &run_id()),
        logs: logs.clone(),
    };
    let options = Options {
        namespace: String::new(),
        registry: images.registry.clone(),
        tag: images.tag.clone(),
        redis: RedisChoice::External,
        redis_host: None,
    };
    for app in apps {
        let id = plan.prepare(app).await?;
        let target = options.image_for(app);
        image::tag(&plan.engine, &id, &target).await?;
        println!("{}: built {target}", app.id);
    }
    stop.cancel();
    let _ = printer.await;
    Ok(())
}
