//! What every service client shares: one error type with a retry verdict, and
//! a request helper that retries transient failures with backoff.
use std::time::Duration;

use reqwest::{RequestBuilder, Response, StatusCode};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{service}: cannot reach {url}: {source}")]
    Transport {
        service: &'static str,
        url: String,
        source: reqwest::Error,
    },
    #[error("{service}: {method} {url} answered {status}: {body}")]
    Status {
        service: &'static str,
        method: String,
        url: String,
        status: StatusCode,
        body: String,
    },
    #[error("{service}: unexpected answer from {url}: {message}")]
    Decode {
        service: &'static str,
        url: String,
        message: String,
    },
    #[error("{service}: {message}")]
    Invalid { service: &'static str, message: String },
}

impl ClientError {
    /// Whether trying again may help: transport errors, 5xx, 429, and Balrog's
    /// optimistic-locking conflicts (400 with `OutdatedDataError` or a failed merge).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Transport { .. } => true,
            Self::Status { status, body, .. } => {
                status.is_server_error()
                    || *status == StatusCode::TOO_MANY_REQUESTS
                    || (*status == StatusCode::BAD_REQUEST
                        && (body.contains("OutdatedDataError")
                            || body.contains("old_data_version doesn't match")
                            || body.contains("Outdated Data Version")))
            }
            Self::Decode { .. } | Self::Invalid { .. } => false,
        }
    }

    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Self::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// How often and how patiently to retry.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub first_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 6,
            first_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    pub fn none() -> Self {
        Self {
            attempts: 1,
            ..Self::default()
        }
    }

    /// Delay before attempt `n` (1-based retry count), exponential with jitter.
    pub fn delay(&self, n: u32) -> Duration {
        let base = self.first_delay.saturating_mul(1u32 << n.min(16));
        let capped = base.min(self.max_delay);
        let jitter = rand::random::<f64>() * 0.3 + 0.85;
        capped.mul_f64(jitter)
    }

    /// Run `op` until it succeeds, fails for good, or attempts run out.
    pub async fn run<T, F, Fut>(&self, mut op: F) -> Result<T, ClientError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, ClientError>>,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match op().await {
                Ok(v) => return Ok(v),
                Err(e) if e.is_retryable() && attempt < self.attempts => {
                    tracing::debug!(error = %e, attempt, "retrying");
                    tokio::time::sleep(self.delay(attempt)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// Send a request; non-2xx becomes `ClientError::Status` with the body.
pub async fn send(service: &'static str, req: RequestBuilder) -> Result<Response, ClientError> {
    let (client, request) = req.build_split();
    let request = request.map_err(|source| ClientError::Transport {
        service,
        url: String::new(),
        source,
    })?;
    let url = request.url().to_string();
    let method = request.method().to_string();
    let resp = client.execute(request).await.map_err(|source| ClientError::Transport {
        service,
        url: url.clone(),
        source,
    })?;
    let status = resp.status();
    if status.is_success() || status.is_redirection() {
        return Ok(resp);
    }
    let body = resp.text().await.unwrap_or_default();
    Err(ClientError::Status {
        service,
        method,
        url,
        status,
        body: truncate(&body, 2000),
    })
}

/// Decode a JSON body.
pub async fn json<T: serde::de::DeserializeOwned>(service: &'static str, resp: Response) -> Result<T, ClientError> {
    let url = resp.url().to_string();
    let text = resp.text().await.map_err(|source| ClientError::Transport {
        service,
        url: url.clone(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|e| ClientError::Decode {
        service,
        url,
        message: format!("{e}: {}", truncate(&text, 300)),
    })
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// A client with sane timeouts and no redirects followed (callers see 3xx).
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .connect_timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16, body: &str) -> ClientError {
        ClientError::Status {
            service: "t",
            method: "POST".into(),
            url: "u".into(),
            status: StatusCode::from_u16(code).expect("code"),
            body: body.into(),
        }
    }

    #[test]
    fn retry_verdicts() {
        assert!(status(500, "").is_retryable());
        assert!(status(503, "").is_retryable());
        assert!(status(400, r#"{"detail":"OutdatedDataError"}"#).is_retryable());
        assert!(!status(400, r#"{"detail":"Unknown error"}"#).is_retryable());
        assert!(!status(404, "").is_retryable());
    }

    #[tokio::test]
    async fn retries_until_success_or_exhaustion() {
        let policy = RetryPolicy {
            attempts: 4,
            first_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
        };
        let mut n = 0;
        let r: Result<u32, _> = policy
            .run(|| {
                n += 1;
                let n = n;
                async move {
                    if n < 3 {
                        Err(status(500, ""))
                    } else {
                        Ok(n)
                    }
                }
            })
            .await;
        assert_eq!(r.expect("third time lucky"), 3);
        let mut m = 0;
        let r: Result<u32, _> = policy
            .run(|| {
                m += 1;
                async { Err(status(502, "")) }
            })
            .await;
        assert!(r.is_err());
        assert_eq!(m, 4);
        let mut k = 0;
        let r: Result<u32, _> = policy
            .run(|| {
                k += 1;
                async { Err(status(404, "")) }
            })
            .await;
        assert!(r.is_err());
        assert_eq!(k, 1, "a 404 is not retried");
    }
}
