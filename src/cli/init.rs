//! `daca init [DIR]`: scaffolds the hello project. The files are those of `examples/hello`
//! (compiled in), so the end-to-end test of that example also covers what `init` writes.

use std::path::PathBuf;

use crate::error::Problem;

use clap::Args;

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Where to create the project (default: the current folder).
    pub dir: Option<PathBuf>,
    /// Overwrite files that already exist.
    #[arg(long)]
    pub force: bool,
    /// Write the daca.yaml of this folder of Kubernetes manifests and Dapr resources instead.
    #[arg(long, value_name = "K8S_DIR", conflicts_with = "from_tilt")]
    pub from_k8s: Option<PathBuf>,
    /// Write the daca.yaml of the Tiltfile in this folder, beside it.
    #[arg(long, value_name = "TILT_DIR")]
    pub from_tilt: Option<PathBuf>,
}

const FILES: [(&str, &str); 4] = [
    ("daca.yaml", include_str!("../../examples/hello/daca.yaml")),
    (
        "hello-api/main.py",
        include_str!("../../examples/hello/hello-api/main.py"),
    ),
    (
        "hello-api/pyproject.toml",
        include_str!("../../examples/hello/hello-api/pyproject.toml"),
    ),
    (
        "hello-api/.gitignore",
        include_str!("../../examples/hello/hello-api/.gitignore"),
    ),
];

pub fn run(args: &InitArgs) -> crate::Result<()> {
    let root = args.dir.clone().unwrap_or_else(|| PathBuf::from("."));
    if let Some(source) = &args.from_tilt {
        return from_tilt(source, args.dir.as_deref(), args.force);
    }
    if let Some(source) = &args.from_k8s {
        return from_k8s(source, &root, args.force);
    }
    let existing: Vec<String> = FILES
        .iter()
        .filter(|(path, _)| root.join(path).exists())
        .map(|(path, _)| path.to_string())
        .collect();
    if !existing.is_empty() && !args.force {
        let problem = Problem::new(format!(
            "{} already has {}",
            root.display(),
            existing.join(", ")
        ))
        .hint("use another folder, or `daca init --force` to overwrite");
        return Err(problem.into());
    }
    for (path, content) in FILES {
        let target = root.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&target, content)?;
        println!("created {}", target.display());
    }
    let cd = if args.dir.is_some() {
        format!("cd {} && ", root.display())
    } else {
        String::new()
    };
    println!("\nnext: {cd}daca up    (needs Python ≥ 3.11 and uv: `pip install uv`)");
    Ok(())
}

/// `daca init --from-tilt DIR`: the daca.yaml beside the Tiltfile (its builds' folders are
/// relative to it, as the Tiltfile's are).
fn from_tilt(
    source: &std::path::Path,
    target: Option<&std::path::Path>,
    force: bool,
) -> crate::Result<()> {
    let same =
        |t: &std::path::Path| std::path::absolute(t).ok() == std::path::absolute(source).ok();
    if let Some(target) = target.filter(|t| !same(t)) {
        return Err(Problem::new(format!(
            "daca init --from-tilt writes daca.yaml beside the Tiltfile, not in {}",
            target.display()
        ))
        .hint(format!("run `daca init --from-tilt {}`", source.display()))
        .into());
    }
    let read = crate::tilt::project::read(source)?;
    // The project is named after the folder (`.` has no name of its own).
    let folder = std::path::absolute(source)?;
    let command = format!("daca init --from-tilt {}", source.display());
    let imported = crate::export::import::import_documents(
        &folder,
        read.documents.clone(),
        &read.parts,
        &command,
    )?;
    let provided = read.provided_line();
    for note in read.notes.iter().chain(&provided).chain(&imported.notes) {
        println!("{note}");
    }
    write_imported(&imported, source, force)?;
    println!(
        "\n{} app(s) from {}: {}\nnext: daca up -d {}",
        imported.apps.len(),
        source.join("Tiltfile").display(),
        imported.apps.join(", "),
        source.display()
    );
    Ok(())
}

/// Writes an imported project into `root` (daca.yaml refused if there, unless `force`).
fn write_imported(
    imported: &crate::export::import::Imported,
    root: &std::path::Path,
    force: bool,
) -> crate::Result<()> {
    let manifest = root.join("daca.yaml");
    if manifest.exists() && !force {
        let problem = Problem::new(format!("{} already exists", manifest.display()))
            .hint("use another folder, or `--force` to overwrite");
        return Err(problem.into());
    }
    for (path, content) in &imported.files {
        let target = root.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&target, content)?;
        println!("created {}", target.display());
    }
    Ok(())
}

/// `daca init --from-k8s DIR`.
fn from_k8s(source: &std::path::Path, root: &std::path::Path, force: bool) -> crate::Result<()> {
    let imported = crate::export::import::import(source)?;
    for note in &imported.notes {
        println!("{note}");
    }
    if root.join("daca.yaml").exists() && !force {
        return write_imported(&imported, root, force);
    }
    for app in &imported.apps {
        std::fs::create_dir_all(root.join(app))?;
    }
    write_imported(&imported, root, force)?;
    println!(
        "\n{} app(s) from {}: {}\nnext: daca up{}",
        imported.apps.len(),
        source.display(),
        imported.apps.join(", "),
        if root == std::path::Path::new(".") {
            String::new()
        } else {
            format!(" -d {}", root.display())
        }
    );
    Ok(())
}
