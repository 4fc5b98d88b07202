//! HTTPS for Balrog: balrogclient always fetches its Auth0 token from
//! `https://<domain>/oauth/token`, so the stand-in can serve its whole router over
//! TLS too, with a self-signed certificate generated at start. The certificate is
//! written to `<data-dir>/ca.pem` (point `REQUESTS_CA_BUNDLE` at it) and the
//! bound address to `<data-dir>/tls-addr`.
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot create the self-signed certificate: {0}")]
    Cert(String),
    #[error("TLS setup: {0}")]
    Config(String),
    #[error("cannot listen for HTTPS on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("cannot write {0}: {1}")]
    Write(String, std::io::Error),
}

/// Bind `addr`, write the certificate and address files, and serve `app` over
/// TLS in the background. Returns the bound address.
pub async fn serve(app: Router, addr: SocketAddr, data_dir: &Path) -> Result<SocketAddr, TlsError> {
    let names = vec!["localhost".to_string(), "127.0.0.1".to_string(), addr.ip().to_string()];
    let ck = rcgen::generate_simple_self_signed(names).map_err(|e| TlsError::Cert(e.to_string()))?;
    let cert_pem = ck.cert.pem();
    let ca_path = data_dir.join("ca.pem");
    std::fs::write(&ca_path, &cert_pem).map_err(|e| TlsError::Write(ca_path.display().to_string(), e))?;
    let cert = CertificateDer::from(ck.cert.der().to_vec());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.key_pair.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| TlsError::Bind { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| TlsError::Bind { addr, source })?;
    let addr_path = data_dir.join("tls-addr");
    std::fs::write(&addr_path, bound.to_string()).map_err(|e| TlsError::Write(addr_path.display().to_string(), e))?;
    tracing::info!(%bound, ca = %ca_path.display(), "balrog also serves HTTPS");
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let (acceptor, app) = (acceptor.clone(), app.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else { return };
                let service = TowerToHyperService::new(app);
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    Ok(bound)
}
