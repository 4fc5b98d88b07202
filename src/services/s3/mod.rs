//! The S3 stand-in: `stagelib service s3`. The S3 protocol (SigV4, presigned
//! URLs, multipart, XML) comes from the `s3s` crate; objects live on disk under
//! `--data-dir` ([`store`]). In front of it sit the two behaviours the Try
//! staging proposal asks for: a GET/HEAD of a missing key answers `307` to
//! `--fallback-url` + `/` + key (production keeps old releases, so they need not
//! be copied), and with `--public-read` unsigned GET/HEAD requests are served, as
//! the Firefox updater and final verify fetch MARs without credentials.
pub mod api;
pub mod seed;
pub mod store;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use s3s::auth::SimpleAuth;
use s3s::service::{S3Service, S3ServiceBuilder};
use tower::ServiceExt;

use super::common::{self, CommonArgs, ServeError};
use store::Store;

/// `stagelib service s3`
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Create this bucket at start (repeatable).
    #[arg(long = "bucket")]
    pub buckets: Vec<String>,
    /// Where missing keys redirect to (307), e.g. `https://archive.mozilla.org`.
    #[arg(long)]
    pub fallback_url: Option<String>,
    /// Serve unsigned GET/HEAD requests (downloads by the updater, final verify).
    #[arg(long)]
    pub public_read: bool,
    /// Largest object accepted, in bytes.
    #[arg(long, default_value_t = 2 * 1024 * 1024 * 1024)]
    pub max_object_size: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum S3StandInError {
    #[error(transparent)]
    Serve(#[from] ServeError),
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error("--secret is required: the S3 stand-in never runs without credentials")]
    NoSecret,
}

/// Anonymous requests are refused by the protocol layer (the front serves public reads).
struct SignedOnly;

#[async_trait::async_trait]
impl s3s::access::S3Access for SignedOnly {
    async fn check(&self, cx: &mut s3s::access::S3AccessContext<'_>) -> s3s::S3Result<()> {
        match cx.credentials() {
            Some(_) => Ok(()),
            None => Err(s3s::s3_error!(AccessDenied, "Signature required")),
        }
    }
}

#[derive(Clone)]
pub struct S3StandIn {
    pub store: Arc<Store>,
    pub s3: S3Service,
    pub fallback_url: Option<String>,
    pub public_read: bool,
    /// Guards stagelib's own seeding endpoint.
    pub secret: String,
}

impl S3StandIn {
    pub fn new(
        store: Arc<Store>,
        access_key: &str,
        secret: &str,
        fallback_url: Option<String>,
        public_read: bool,
    ) -> Self {
        let mut b = S3ServiceBuilder::new(api::S3Api { store: store.clone() });
        b.set_auth(SimpleAuth::from_single(access_key, secret));
        b.set_access(SignedOnly);
        Self {
            store,
            s3: b.build(),
            fallback_url: fallback_url.map(|u| u.trim_end_matches('/').to_string()),
            public_read,
            secret: secret.to_string(),
        }
    }
}

fn is_signed(req: &Request) -> bool {
    req.headers().contains_key(header::AUTHORIZATION)
        || req
            .uri()
            .query()
            .is_some_and(|q| q.contains("X-Amz-Signature") || q.contains("Signature="))
}

/// `/bucket/key…` → (bucket, decoded key, raw key).
fn split_path(path: &str) -> Option<(String, String, String)> {
    let rest = path.strip_prefix('/')?;
    let (bucket, raw_key) = rest.split_once('/')?;
    if raw_key.is_empty() {
        return None;
    }
    let key = percent_decode(raw_key)?;
    Some((bucket.to_string(), key, raw_key.to_string()))
}

fn percent_decode(s: &str) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Serve an object to an unsigned reader, honouring `Range: bytes=a-b`.
fn public_get(st: &S3StandIn, bucket: &str, key: &str, req: &Request) -> Response {
    let Ok(meta) = st.store.head(bucket, key) else {
        return (StatusCode::NOT_FOUND, "NoSuchKey").into_response();
    };
    let range = req
        .headers()
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_range(v, meta.size));
    let (status, r) = match range {
        Some(Ok(r)) => (StatusCode::PARTIAL_CONTENT, r),
        Some(Err(())) => {
            return (
                StatusCode::RANGE_NOT_SATISFIABLE,
                [(header::CONTENT_RANGE, format!("bytes */{}", meta.size))],
            )
                .into_response()
        }
        None => (StatusCode::OK, 0..meta.size),
    };
    let body = if req.method() == Method::HEAD {
        Body::empty()
    } else {
        match st.store.read(bucket, key, r.clone()) {
            Ok(b) => Body::from(b),
            Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        }
    };
    let mut resp = (status, body).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(r.end - r.start));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", meta.etag)) {
        h.insert(header::ETAG, v);
    }
    if let Some(ct) = meta.content_type.as_deref().and_then(|c| HeaderValue::from_str(c).ok()) {
        h.insert(header::CONTENT_TYPE, ct);
    }
    if status == StatusCode::PARTIAL_CONTENT {
        if let Ok(v) = HeaderValue::from_str(&format!("bytes {}-{}/{}", r.start, r.end - 1, meta.size)) {
            h.insert(header::CONTENT_RANGE, v);
        }
    }
    resp
}

/// `bytes=a-b`, `bytes=a-`, `bytes=-n` → half-open range; `Err` if unsatisfiable.
pub fn parse_range(v: &str, size: u64) -> Option<Result<std::ops::Range<u64>, ()>> {
    let spec = v.strip_prefix("bytes=")?;
    let (a, b) = spec.split_once('-')?;
    let r = match (a.trim(), b.trim()) {
        ("", n) => {
            let n: u64 = n.parse().ok()?;
            if n == 0 {
                return Some(Err(()));
            }
            size.saturating_sub(n)..size
        }
        (a, "") => a.parse().ok()?..size,
        (a, b) => {
            let (a, b): (u64, u64) = (a.parse().ok()?, b.parse().ok()?);
            if b < a {
                return None;
            }
            a..(b + 1).min(size)
        }
    };
    if r.start >= size {
        return Some(Err(()));
    }
    Some(Ok(r))
}

/// A plain object read: no sub-resource (`?uploadId=`, `?acl`, …) in the query,
/// only signing and response-override parameters.
fn plain_object_read(req: &Request) -> bool {
    let q = req.uri().query().unwrap_or("");
    url::form_urlencoded::parse(q.as_bytes()).all(|(k, _)| {
        k.starts_with("X-Amz-")
            || k.starts_with("response-")
            || k == "x-id"
            || k == "AWSAccessKeyId"
            || k == "Signature"
            || k == "Expires"
    })
}

async fn front(State(st): State<S3StandIn>, req: Request) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD) && plain_object_read(&req) {
        if let Some((bucket, key, raw_key)) = split_path(req.uri().path()) {
            if st.store.bucket_exists(&bucket) && store::check_key(&key).is_ok() {
                let missing = st.store.head(&bucket, &key).is_err();
                if missing {
                    if let Some(fb) = &st.fallback_url {
                        let location = format!("{fb}/{raw_key}");
                        return (StatusCode::TEMPORARY_REDIRECT, [(header::LOCATION, location)]).into_response();
                    }
                } else if st.public_read && !is_signed(&req) {
                    return public_get(&st, &bucket, &key, &req);
                }
            }
        }
    }
    match st.s3.clone().oneshot(req).await {
        Ok(resp) => resp.map(Body::new),
        Err(e) => {
            tracing::error!(error = ?e, "s3 protocol failure");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// The whole service.
pub fn router(st: S3StandIn) -> Router {
    Router::new()
        .route(
            "/__stagelib__/import/{bucket}",
            axum::routing::post(seed::import).layer(axum::extract::DefaultBodyLimit::max(64 << 20)),
        )
        .route("/__stagelib__/export/{bucket}", axum::routing::get(seed::export))
        .fallback(front)
        .with_state(st)
        .merge(common::dockerflow_routes("s3"))
}

pub async fn run(args: Args) -> Result<(), S3StandInError> {
    common::ensure_data_dir(&args.common.data_dir)?;
    let secret = args.common.secret.clone().ok_or(S3StandInError::NoSecret)?;
    let store = Arc::new(Store::open(&args.common.data_dir, args.max_object_size)?);
    for b in &args.buckets {
        store.create_bucket(b)?;
    }
    let st = S3StandIn::new(
        store,
        &args.common.user,
        &secret,
        args.fallback_url.clone(),
        args.public_read,
    );
    common::serve(router(st), &args.common, "s3").await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), Some(Ok(0..10)));
        assert_eq!(parse_range("bytes=90-", 100), Some(Ok(90..100)));
        assert_eq!(parse_range("bytes=-10", 100), Some(Ok(90..100)));
        assert_eq!(parse_range("bytes=95-200", 100), Some(Ok(95..100)));
        assert_eq!(parse_range("bytes=100-", 100), Some(Err(())));
        assert_eq!(parse_range("items=1-2", 100), None);
    }

    #[test]
    fn paths() {
        assert_eq!(
            split_path("/b/pub/a%20b.mar"),
            Some(("b".into(), "pub/a b.mar".into(), "pub/a%20b.mar".into()))
        );
        assert_eq!(split_path("/b/"), None);
        assert_eq!(split_path("/b"), None);
    }
}
