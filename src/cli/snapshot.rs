//! `stagelib snapshot …`: production data for stacks (docs/seed-data.md).
use std::path::PathBuf;

use super::context::Context;
use super::output;
use crate::lease::LeaseId;
use crate::seed::namespace::Namespacer;
use crate::seed::pull::{PullOptions, Source};
use crate::seed::snapshot::WriteOptions;
use crate::seed::{Snapshot, SnapshotLibrary};
use crate::stack::Credentials;

/// Snapshots of production data that stacks are seeded from (examples in
/// `stagelib snapshot --help`).
#[derive(clap::Subcommand, Debug)]
pub enum SnapshotCommand {
    /// Write the default snapshot (a generated, realistic Firefox history).
    Generate(GenerateArgs),
    /// Copy a production instance's public data into a snapshot.
    Pull(PullArgs),
    /// Snapshot a live stack (your namespace's part of it).
    Take(TakeArgs),
    /// Seed a snapshot into a lease's stack again (idempotent).
    Seed(SeedArgs),
    /// List the snapshots and where they are.
    List,
    /// Show what a snapshot holds.
    Show(ShowArgs),
    /// Write the generated MAR of an S3 key (as a seeded stack serves it).
    Mar(MarArgs),
}

#[derive(clap::Args, Debug)]
pub struct MarArgs {
    /// e.g. pub/firefox/releases/157.0/update/win64/de/firefox-156.0-157.0.partial.mar
    pub key: String,
    /// File to write (default: stdout).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct GenerateArgs {
    /// Directory to write (created); default `seed-data/default` in the repository.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Write plain JSON instead of gzip-compressed service files.
    #[arg(long)]
    pub no_gzip: bool,
}

#[derive(clap::Args, Debug)]
pub struct PullArgs {
    /// Name of the new snapshot.
    #[arg(long)]
    pub name: String,
    /// Balrog's public URL (its `/api/v1` read API, `/required_signoffs`).
    #[arg(long)]
    pub balrog: String,
    /// A Balrog admin token: also pull users' permissions and roles.
    #[arg(long, env = "STAGELIB_BALROG_TOKEN", hide_env_values = true)]
    pub balrog_token: Option<String>,
    /// Bouncer's admin URL (products and locations of the pulled versions).
    #[arg(long)]
    pub bouncer: Option<String>,
    /// Bouncer credentials USER:PASSWORD.
    #[arg(long, env = "STAGELIB_BOUNCER_AUTH", hide_env_values = true)]
    pub bouncer_auth: Option<String>,
    /// Ship-it's API URL (releases of the pulled versions).
    #[arg(long)]
    pub shipit: Option<String>,
    /// Keep rules of these products (repeatable; default all).
    #[arg(long = "product")]
    pub products: Vec<String>,
    /// Keep rules of these channels and their -cdntest/-localtest variants (repeatable; default all).
    #[arg(long = "channel")]
    pub channels: Vec<String>,
    /// Per rule, its release and the releases its partials come from, up to N.
    #[arg(long)]
    pub last: Option<usize>,
    /// Directory to write; default `<state_dir>/snapshots/NAME`.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct TakeArgs {
    /// The lease whose stack to snapshot.
    pub lease: LeaseId,
    /// Name of the new snapshot (default `lease-<id prefix>`).
    #[arg(long)]
    pub name: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct SeedArgs {
    /// The lease whose stack to seed.
    pub lease: LeaseId,
    /// The snapshot.
    #[arg(long, default_value = "default")]
    pub name: String,
}

#[derive(clap::Args, Debug)]
pub struct ShowArgs {
    pub name: String,
}

fn library(ctx_state_dir: &std::path::Path) -> SnapshotLibrary {
    SnapshotLibrary::for_state_dir(ctx_state_dir)
}

fn report_written(json: bool, snap: &Snapshot, dir: &std::path::Path) -> anyhow::Result<()> {
    let size = Snapshot::size_on_disk(dir);
    if json {
        let mut v = snap.summary();
        v["path"] = serde_json::json!(dir);
        v["bytes_on_disk"] = serde_json::json!(size);
        return output::json(&v);
    }
    println!(
        "wrote snapshot `{}` to {} ({:.2} MB)",
        snap.meta.name,
        dir.display(),
        size as f64 / 1e6
    );
    println!("{}", serde_json::to_string_pretty(&snap.summary())?);
    Ok(())
}

pub async fn generate(args: GenerateArgs, json: bool) -> anyhow::Result<()> {
    let dir = args
        .out
        .unwrap_or_else(|| crate::seed::library::repository_seed_data().join("default"));
    eprintln!("generating the default snapshot…");
    let snap = tokio::task::spawn_blocking(crate::seed::generate::default_snapshot).await?;
    snap.write(&dir, WriteOptions { gzip: !args.no_gzip }, &Default::default())?;
    report_written(json, &snap, &dir)
}

fn split_auth(s: &str) -> anyhow::Result<Credentials> {
    let (u, p) = s
        .split_once(':')
        .ok_or_else(|| super::usage("--bouncer-auth: expected USER:PASSWORD"))?;
    Ok(Credentials {
        username: u.into(),
        secret: p.into(),
    })
}

pub async fn pull(ctx_state_dir: &std::path::Path, args: PullArgs, json: bool) -> anyhow::Result<()> {
    crate::seed::library::check_name(&args.name).map_err(|e| super::usage(format!("--name: {e}")))?;
    for (flag, u) in [
        ("--balrog", Some(&args.balrog)),
        ("--bouncer", args.bouncer.as_ref()),
        ("--shipit", args.shipit.as_ref()),
    ] {
        if let Some(u) = u {
            url::Url::parse(u).map_err(|e| super::usage(format!("{flag}: `{u}` is not a URL: {e}")))?;
        }
    }
    let opts = PullOptions {
        name: args.name.clone(),
        balrog: Source {
            url: args.balrog.clone(),
            credentials: args.balrog_token.map(|t| Credentials {
                username: String::new(),
                secret: t,
            }),
        },
        bouncer: match &args.bouncer {
            Some(u) => Some(Source {
                url: u.clone(),
                credentials: args.bouncer_auth.as_deref().map(split_auth).transpose()?,
            }),
            None => None,
        },
        shipit: args.shipit.map(|u| Source {
            url: u,
            credentials: None,
        }),
        s3: None,
        products: args.products,
        channels: args.channels,
        last: args.last,
    };
    eprintln!("pulling from {}…", args.balrog);
    let snap = crate::seed::pull::pull(&opts).await?;
    let dir = match args.out {
        Some(d) => d,
        None => library(ctx_state_dir).target(&args.name)?,
    };
    snap.write(&dir, WriteOptions { gzip: true }, &Default::default())?;
    report_written(json, &snap, &dir)
}

/// Commands that touch a lease build the full context; the others need only
/// the settings (no database).
pub async fn run(settings: super::config::Settings, json: bool, cmd: SnapshotCommand) -> anyhow::Result<()> {
    let lib = library(&settings.state_dir);
    match cmd {
        SnapshotCommand::Generate(a) => generate(a, json).await,
        SnapshotCommand::Pull(a) => pull(&settings.state_dir, a, json).await,
        SnapshotCommand::List => list(&lib, json),
        SnapshotCommand::Show(a) => show(&lib, a, json),
        SnapshotCommand::Mar(a) => {
            let bytes = crate::seed::mar::content_for_key(&a.key).ok_or_else(|| {
                super::usage(format!(
                    "`{}` is not an update MAR key (pub/<product>/…/update/<platform>/<locale>/firefox-<V>.complete.mar or firefox-<PV>-<V>.partial.mar)",
                    a.key
                ))
            })?;
            match a.out {
                Some(p) => std::fs::write(&p, &bytes).map_err(|e| anyhow::anyhow!("{}: {e}", p.display())),
                None => {
                    use std::io::Write;
                    std::io::stdout().write_all(&bytes).map_err(Into::into)
                }
            }
        }
        cmd => {
            let ctx = Context::build(settings, json).await?;
            with_lease(&ctx, &lib, cmd).await
        }
    }
}

async fn with_lease(ctx: &Context, lib: &SnapshotLibrary, cmd: SnapshotCommand) -> anyhow::Result<()> {
    match cmd {
        SnapshotCommand::Take(a) => {
            let lease = ctx.service.show(&ctx.actor, a.lease).await?.lease;
            let endpoints = lease
                .endpoints
                .clone()
                .ok_or_else(|| super::usage(format!("lease {} has no stack yet (state {})", lease.id, lease.state)))?;
            let name = a
                .name
                .unwrap_or_else(|| format!("lease-{}", &lease.id.to_string()[..8]));
            let dir = lib.target(&name).map_err(|e| super::usage(format!("--name: {e}")))?;
            let ns = Namespacer::new(lease.namespace.clone());
            eprintln!("taking namespace `{}` of lease {}…", lease.namespace.as_str(), lease.id);
            let (snap, stored) =
                crate::seed::pull::take(&name, &format!("lease {}", lease.id), &endpoints, &ns).await?;
            snap.write(&dir, WriteOptions { gzip: true }, &stored)?;
            report_written(ctx.json, &snap, &dir)
        }
        SnapshotCommand::Seed(a) => {
            let lease = ctx.service.show(&ctx.actor, a.lease).await?.lease;
            let endpoints = lease
                .endpoints
                .clone()
                .ok_or_else(|| super::usage(format!("lease {} has no stack yet (state {})", lease.id, lease.state)))?;
            let (snap, dir) = lib.load(&a.name).map_err(|e| match e {
                crate::seed::SeedError::NotFound { .. } | crate::seed::SeedError::Invalid(_) => {
                    super::usage(e.to_string())
                }
                other => other.into(),
            })?;
            let ns = Namespacer::new(lease.namespace.clone());
            let report = crate::seed::seed_stack(&snap, dir.as_deref(), &endpoints, &ns).await?;
            if ctx.json {
                return output::json(&report);
            }
            println!(
                "seeded `{}` into lease {} (namespace {}) in {:.2}s",
                report.snapshot,
                lease.id,
                lease.namespace.as_str(),
                report.seconds
            );
            for s in &report.services {
                println!("  {:<8} {:>6.2}s  {}", s.service.to_string(), s.seconds, s.result);
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn list(lib: &SnapshotLibrary, json: bool) -> anyhow::Result<()> {
    let names = lib.names();
    if json {
        let rows: Vec<_> = names
            .iter()
            .map(|n| serde_json::json!({"name": n, "path": lib.locate(n)}))
            .collect();
        return output::json(&rows);
    }
    let rows: Vec<Vec<String>> = names
        .iter()
        .map(|n| {
            vec![
                n.clone(),
                lib.locate(n)
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|| "(generated)".into()),
            ]
        })
        .collect();
    output::table(&["NAME", "PATH"], &rows);
    Ok(())
}

fn show(lib: &SnapshotLibrary, a: ShowArgs, json: bool) -> anyhow::Result<()> {
    let (snap, dir) = lib.load(&a.name).map_err(|e| super::usage(e.to_string()))?;
    let mut v = snap.summary();
    v["path"] = serde_json::json!(dir);
    v["description"] = serde_json::json!(snap.meta.description);
    if json {
        return output::json(&v);
    }
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(())
}
