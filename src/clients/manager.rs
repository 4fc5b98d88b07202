//! [`LeaseService`] over the manager's HTTP API, so the CLI with `--server` behaves
//! exactly like the CLI on the database.
use async_trait::async_trait;
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::lease::{Actor, Lease, LeaseId, Scope};
use crate::manager::{
    ErrorKind, LeaseDetail, LeaseEndpoints, LeasePatch, LeaseService, ListQuery, ManagerError, NewToken, PoolStatus,
    QueueTicket, ReapReport, Reservation, ReserveRequest,
};

pub struct RemoteManager {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl RemoteManager {
    pub fn new(base: &str, token: Option<String>) -> Result<Self, ManagerError> {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(60))
            .build()
            .map_err(|e| ManagerError::Internal(format!("cannot build HTTP client: {e}")))?;
        Ok(Self {
            base: base.trim_end_matches('/').to_string(),
            token,
            http,
        })
    }

    async fn call<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, ManagerError> {
        let (_, v) = self.call_status(method, path, body).await?;
        Ok(v)
    }

    /// Like `call`, with the success status (201 and 202 mean different things).
    async fn call_status<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<(StatusCode, T), ManagerError> {
        let url = format!("{}{}", self.base, path);
        let mut req = self.http.request(method, &url);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.map_err(|e| {
            ManagerError::Unavailable(format!(
                "cannot reach the stagelib server at {}: {e}\n  hint: is `stagelib serve` running there? check --server / STAGELIB_SERVER",
                self.base
            ))
        })?;
        let status = resp.status();
        if status.is_success() {
            return resp
                .json::<T>()
                .await
                .map(|v| (status, v))
                .map_err(|e| ManagerError::Internal(format!("unexpected answer from {url}: {e}")));
        }
        let text = resp.text().await.unwrap_or_default();
        let message = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
            .unwrap_or_else(|| format!("{status}: {text}"));
        let kind = match status {
            StatusCode::BAD_REQUEST | StatusCode::PAYLOAD_TOO_LARGE => ErrorKind::Invalid,
            StatusCode::UNAUTHORIZED => ErrorKind::Unauthenticated,
            StatusCode::FORBIDDEN => ErrorKind::Forbidden,
            StatusCode::NOT_FOUND => ErrorKind::NotFound,
            StatusCode::CONFLICT => ErrorKind::Conflict,
            StatusCode::SERVICE_UNAVAILABLE | StatusCode::BAD_GATEWAY => ErrorKind::Unavailable,
            _ => ErrorKind::Internal,
        };
        Err(ManagerError::Remote { kind, message })
    }
}

#[async_trait]
impl LeaseService for RemoteManager {
    async fn reserve_or_wait(&self, _actor: &Actor, req: ReserveRequest) -> Result<Reservation, ManagerError> {
        let (status, v) = self
            .call_status::<_, serde_json::Value>(Method::POST, "/v1/leases", Some(&req))
            .await?;
        let bad = |e: serde_json::Error| ManagerError::Internal(format!("unexpected answer to a reservation: {e}"));
        if status == StatusCode::ACCEPTED {
            Ok(Reservation::Queued(serde_json::from_value(v).map_err(bad)?))
        } else {
            Ok(Reservation::Leased(Box::new(serde_json::from_value(v).map_err(bad)?)))
        }
    }

    async fn queue_ticket(&self, _actor: &Actor, id: &str) -> Result<QueueTicket, ManagerError> {
        self.call::<(), _>(Method::GET, &format!("/v1/queue/{id}"), None).await
    }

    async fn queue_cancel(&self, _actor: &Actor, id: &str) -> Result<QueueTicket, ManagerError> {
        self.call::<(), _>(Method::DELETE, &format!("/v1/queue/{id}"), None)
            .await
    }

    async fn queue_list(&self, _actor: &Actor) -> Result<Vec<QueueTicket>, ManagerError> {
        self.call::<(), _>(Method::GET, "/v1/queue", None).await
    }

    async fn pool_status(&self, _actor: &Actor) -> Result<PoolStatus, ManagerError> {
        self.call::<(), _>(Method::GET, "/v1/pool", None).await
    }

    async fn list(&self, _actor: &Actor, query: ListQuery) -> Result<Vec<Lease>, ManagerError> {
        let states: Vec<&str> = query.states.iter().map(|s| s.as_str()).collect();
        let path = format!("/v1/leases?all={}&state={}", query.all, states.join(","));
        self.call::<(), _>(Method::GET, &path, None).await
    }

    async fn show(&self, _actor: &Actor, id: LeaseId) -> Result<LeaseDetail, ManagerError> {
        self.call::<(), _>(Method::GET, &format!("/v1/leases/{id}"), None).await
    }

    async fn patch(&self, _actor: &Actor, id: LeaseId, patch: LeasePatch) -> Result<Lease, ManagerError> {
        self.call(Method::PATCH, &format!("/v1/leases/{id}"), Some(&patch))
            .await
    }

    async fn heartbeat(&self, _actor: &Actor, id: LeaseId) -> Result<Lease, ManagerError> {
        self.call::<(), _>(Method::POST, &format!("/v1/leases/{id}/heartbeat"), None)
            .await
    }

    async fn release(&self, _actor: &Actor, id: LeaseId) -> Result<Lease, ManagerError> {
        self.call::<(), _>(Method::DELETE, &format!("/v1/leases/{id}"), None)
            .await
    }

    async fn endpoints(&self, _actor: &Actor, id: LeaseId) -> Result<LeaseEndpoints, ManagerError> {
        self.call::<(), _>(Method::GET, &format!("/v1/leases/{id}/endpoints"), None)
            .await
    }

    async fn reap(&self, _actor: &Actor, dry_run: bool) -> Result<ReapReport, ManagerError> {
        self.call::<(), _>(Method::POST, &format!("/v1/reap?dry_run={dry_run}"), None)
            .await
    }

    async fn create_token(&self, _actor: &Actor, user: &str, scope: Scope) -> Result<NewToken, ManagerError> {
        let body = serde_json::json!({"user": user, "scope": scope});
        self.call(Method::POST, "/v1/tokens", Some(&body)).await
    }
}
