//! `stagelib service <balrog|bouncer|s3|shipit>`: run one stand-in in the foreground.
use clap::Subcommand;

use crate::services;

#[derive(Subcommand, Debug)]
pub enum ServiceCommand {
    /// The Balrog update server and admin API.
    Balrog(services::balrog::Args),
    /// The Bouncer admin API and download redirector.
    Bouncer(services::bouncer::Args),
    /// An S3-compatible object store with production fallback.
    S3(services::s3::Args),
    /// The Ship-it v2 API.
    Shipit(services::shipit::Args),
    /// Exit 0 when URL answers 200 (the container health check of a `FROM
    /// scratch` image, which has no shell or curl).
    Healthcheck {
        #[arg(long, default_value = "http://127.0.0.1:8000/__heartbeat__")]
        url: String,
    },
}

pub async fn run(cmd: ServiceCommand) -> anyhow::Result<()> {
    match cmd {
        ServiceCommand::Balrog(a) => services::balrog::run(a).await?,
        ServiceCommand::Bouncer(a) => services::bouncer::run(a).await?,
        ServiceCommand::S3(a) => services::s3::run(a).await?,
        ServiceCommand::Shipit(a) => services::shipit::run(a).await?,
        ServiceCommand::Healthcheck { url } => healthcheck(&url).await?,
    }
    Ok(())
}

/// A plain HTTP/1.0 GET over TCP; succeeds on a 200.
async fn healthcheck(url: &str) -> anyhow::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let u = url::Url::parse(url)?;
    let host = u.host_str().ok_or_else(|| anyhow::anyhow!("--url has no host"))?;
    let port = u.port_or_known_default().unwrap_or(80);
    let fut = async {
        let mut s = tokio::net::TcpStream::connect((host, port)).await?;
        s.write_all(format!("GET {} HTTP/1.0\r\nHost: {host}\r\n\r\n", u.path()).as_bytes())
            .await?;
        let mut buf = vec![0u8; 64];
        let n = s.read(&mut buf).await?;
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&buf[..n]).to_string())
    };
    let head = tokio::time::timeout(std::time::Duration::from_secs(3), fut).await??;
    if head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200") {
        Ok(())
    } else {
        anyhow::bail!("unhealthy: {}", head.lines().next().unwrap_or(""))
    }
}
