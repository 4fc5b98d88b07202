//! What every stand-in shares: listening, the ready file, graceful shutdown,
//! and the Dockerflow endpoints (`/__heartbeat__`, `/__lbheartbeat__`, `/__version__`).
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use axum::routing::get;
use axum::{Json, Router};
use tokio::net::TcpListener;

/// Flags shared by every `stagelib service <name>`.
#[derive(clap::Args, Debug, Clone)]
pub struct CommonArgs {
    /// Address to listen on. Port 0 picks a free port; the bound address is then
    /// written to --ready-file.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Directory holding the service's persistent state (created if missing).
    #[arg(long)]
    pub data_dir: PathBuf,
    /// Once listening, write the bound address (e.g. `127.0.0.1:40123`) to this file.
    #[arg(long)]
    pub ready_file: Option<PathBuf>,
    /// The stack's secret for this service (bearer token, password, S3 secret key or
    /// Hawk key, depending on the service).
    #[arg(long, env = "STAGELIB_SERVICE_SECRET", hide_env_values = true)]
    pub secret: Option<String>,
    /// The identity paired with --secret (OAuth client id, basic-auth user, S3 access
    /// key or Hawk id).
    #[arg(long, env = "STAGELIB_SERVICE_USER", default_value = "stagelib")]
    pub user: String,
    /// The URL clients use to reach this service (for absolute URLs in responses).
    #[arg(long)]
    pub public_url: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}: {source} (is another process using the port?)")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("cannot create data directory {path}: {source}")]
    DataDir { path: PathBuf, source: std::io::Error },
    #[error("cannot write ready file {path}: {source}")]
    ReadyFile { path: PathBuf, source: std::io::Error },
    #[error("server error: {0}")]
    Serve(std::io::Error),
}

/// Create the data directory if needed.
pub fn ensure_data_dir(dir: &Path) -> Result<(), ServeError> {
    std::fs::create_dir_all(dir).map_err(|source| ServeError::DataDir {
        path: dir.to_path_buf(),
        source,
    })
}

/// Write `value` as JSON to `path` durably: temp file, fsync, rename, fsync of
/// the directory. A reader sees the old file or the new one, never half of one.
pub fn write_json_atomic<T: serde::Serialize>(path: &Path, value: &T) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let bytes = serde_json::to_vec(value).map_err(std::io::Error::other)?;
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(&bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// Bind the listener; the caller serves on it.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, ServeError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })
}

/// Write the bound address to `path` atomically (write to a temp file, then rename),
/// so a reader never sees a partial address.
pub fn write_ready_file(path: &Path, addr: SocketAddr) -> Result<(), ServeError> {
    let tmp = path.with_extension("tmp");
    let err = |source| ServeError::ReadyFile {
        path: path.to_path_buf(),
        source,
    };
    std::fs::write(&tmp, addr.to_string()).map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}

/// The Dockerflow endpoints every service answers. `/__heartbeat__` here only says
/// the process is up; a service with a database mounts [`version_routes`] and its own
/// heartbeat instead.
pub fn dockerflow_routes(service: &'static str) -> Router {
    version_routes(service).route("/__heartbeat__", get(|| async { "OK" }))
}

/// `/__lbheartbeat__` and `/__version__`.
pub fn version_routes(service: &'static str) -> Router {
    Router::new().route("/__lbheartbeat__", get(|| async { "OK" })).route(
        "/__version__",
        get(move || async move {
            Json(serde_json::json!({
                "source": "https://github.com/mozilla-releng/stagelib",
                "version": env!("CARGO_PKG_VERSION"),
                "commit": option_env!("STAGELIB_GIT_HASH").unwrap_or("unknown"),
                "build": service,
            }))
        }),
    )
}

/// Resolves once `dir` no longer exists: the stack was removed underneath the
/// service (its manager is gone, or a test's temporary directory was dropped),
/// so nothing of it can be kept and the service must not linger.
pub async fn data_dir_gone(dir: PathBuf) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(2));
    loop {
        tick.tick().await;
        if !tokio::fs::try_exists(&dir).await.unwrap_or(true) {
            tracing::warn!(dir = %dir.display(), "data directory removed; stopping");
            return;
        }
    }
}

/// Bind `args.listen`, write the ready file, and serve `router` until SIGTERM,
/// Ctrl-C, or the removal of its data directory.
pub async fn serve(router: Router, args: &CommonArgs, service: &'static str) -> Result<(), ServeError> {
    let listener = bind(args.listen).await?;
    let addr = listener.local_addr().map_err(ServeError::Serve)?;
    if let Some(path) = &args.ready_file {
        write_ready_file(path, addr)?;
    }
    tracing::info!(%addr, service, "listening");
    axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown({
            let gone = data_dir_gone(args.data_dir.clone());
            async move {
                tokio::select! {
                    _ = shutdown_signal() => {},
                    _ = gone => {},
                }
            }
        })
        .await
        .map_err(ServeError::Serve)
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn noticing_a_removed_data_dir() {
        let dir = tempfile::tempdir().expect("tempdir");
        let watched = dir.path().join("svc");
        std::fs::create_dir(&watched).expect("mkdir");
        let gone = tokio::spawn(data_dir_gone(watched.clone()));
        tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
        assert!(!gone.is_finished(), "still there: keeps serving");
        std::fs::remove_dir(&watched).expect("rm");
        tokio::time::timeout(std::time::Duration::from_secs(5), gone)
            .await
            .expect("noticed within a tick")
            .expect("join");
    }

    #[test]
    fn ready_file_is_written_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ready");
        let addr: SocketAddr = "127.0.0.1:4321".parse().expect("addr");
        write_ready_file(&path, addr).expect("write");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "127.0.0.1:4321");
    }
}
