//! `stagelib images build|list`: the stack image, built offline from this binary.
use clap::Subcommand;

use super::output;

#[derive(Subcommand, Debug)]
pub enum ImagesCommand {
    /// Build the `FROM scratch` stack image from this binary (reused when present).
    Build,
    /// List the stack images on the engine.
    List,
}

pub async fn run(cmd: ImagesCommand, json: bool) -> anyhow::Result<()> {
    let docker = super::context::docker_backend().await?;
    match cmd {
        ImagesCommand::Build => {
            let started = std::time::Instant::now();
            let (tag, built) = docker.ensure_image().await?;
            if json {
                return output::json(&serde_json::json!({"tag": tag, "built": built}));
            }
            println!("{tag}");
            eprintln!(
                "{} in {:.1?}",
                if built { "built" } else { "already present, reused" },
                started.elapsed()
            );
        }
        ImagesCommand::List => {
            let images = crate::backend::docker::image::list(docker.docker()).await?;
            if json {
                let v: Vec<_> = images
                    .iter()
                    .map(|(t, s, c)| serde_json::json!({"tag": t, "size": s, "created": c}))
                    .collect();
                return output::json(&v);
            }
            let rows: Vec<Vec<String>> = images
                .iter()
                .map(|(t, s, _)| vec![t.clone(), format!("{:.1} MiB", *s as f64 / 1048576.0)])
                .collect();
            output::table(&["image", "size"], &rows);
        }
    }
    Ok(())
}
