//! `stagelib env ID`: a stack's endpoints and credentials, in the format a tool needs.
use std::fmt::Write;

use super::context::Context;
use crate::lease::LeaseId;
use crate::manager::LeaseEndpoints;
use crate::stack::ServiceKind;

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `export NAME=value` lines for a shell (`eval "$(stagelib env ID)"`).
    Env,
    Json,
    Yaml,
    /// A try_task_config.json snippet that references the lease ID (no secrets).
    Try,
}

/// Print how to reach a lease's stack: URLs and credentials.
///
/// Examples:
///   eval "$(stagelib env $LEASE)"
///   stagelib env $LEASE --format try > try_task_config.json
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The lease ID.
    pub id: LeaseId,
    #[arg(long, value_enum, default_value = "env")]
    pub format: Format,
}

/// (variable, value) pairs describing the stack.
pub fn variables(eps: &LeaseEndpoints) -> Vec<(String, String)> {
    let mut vars = vec![
        ("STAGELIB_LEASE_ID".to_string(), eps.lease_id.to_string()),
        ("STAGELIB_NAMESPACE".to_string(), eps.namespace.clone()),
    ];
    for (svc, ep) in &eps.endpoints.services {
        let (url, user, secret) = match svc {
            ServiceKind::Balrog => ("BALROG_URL", "BALROG_CLIENT_ID", "BALROG_TOKEN"),
            ServiceKind::Bouncer => ("BOUNCER_URL", "BOUNCER_USERNAME", "BOUNCER_PASSWORD"),
            ServiceKind::S3 => ("S3_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"),
            ServiceKind::Shipit => ("SHIPIT_URL", "SHIPIT_HAWK_ID", "SHIPIT_HAWK_KEY"),
        };
        vars.push((url.into(), ep.url.clone()));
        if let Some(internal) = &ep.internal_url {
            vars.push((url.replace("_URL", "_INTERNAL_URL"), internal.clone()));
        }
        vars.push((user.into(), ep.credentials.username.clone()));
        vars.push((secret.into(), ep.credentials.secret.clone()));
    }
    vars
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

pub fn render(eps: &LeaseEndpoints, format: Format, server: Option<&str>) -> anyhow::Result<String> {
    let mut out = String::new();
    match format {
        Format::Env => {
            for (k, v) in variables(eps) {
                writeln!(out, "export {k}={}", shell_quote(&v))?;
            }
        }
        Format::Json => {
            out = serde_json::to_string_pretty(eps)?;
            out.push('\n');
        }
        Format::Yaml => {
            writeln!(out, "lease_id: {}", eps.lease_id)?;
            writeln!(out, "namespace: {}", serde_json::to_string(&eps.namespace)?)?;
            writeln!(out, "services:")?;
            for (svc, ep) in &eps.endpoints.services {
                writeln!(out, "  {svc}:")?;
                writeln!(out, "    url: {}", serde_json::to_string(&ep.url)?)?;
                if let Some(i) = &ep.internal_url {
                    writeln!(out, "    internal_url: {}", serde_json::to_string(i)?)?;
                }
                writeln!(
                    out,
                    "    username: {}",
                    serde_json::to_string(&ep.credentials.username)?
                )?;
                writeln!(out, "    secret: {}", serde_json::to_string(&ep.credentials.secret)?)?;
            }
        }
        Format::Try => {
            let mut env = serde_json::Map::new();
            env.insert("STAGELIB_LEASE_ID".into(), eps.lease_id.to_string().into());
            if let Some(s) = server {
                env.insert("STAGELIB_SERVER".into(), s.into());
            }
            let doc = serde_json::json!({
                "version": 2,
                "parameters": {
                    "try_task_config": {
                        "env": env,
                    }
                }
            });
            out = serde_json::to_string_pretty(&doc)?;
            out.push('\n');
        }
    }
    Ok(out)
}

pub async fn run(ctx: &Context, args: Args) -> anyhow::Result<()> {
    let eps = ctx.service.endpoints(&ctx.actor, args.id).await?;
    let format = if ctx.json { Format::Json } else { args.format };
    print!("{}", render(&eps, format, ctx.settings.server.as_deref())?);
    Ok(())
}
