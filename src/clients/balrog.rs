//! A typed client for Balrog's admin API, as balrogscript uses it (reference
//! balrog.md §5): legacy release writes with the blob as a JSON string, per-build
//! submissions, rules, scheduled changes and signoffs. Optimistic-locking
//! conflicts are retried by the caller through [`RetryPolicy`].
use reqwest::Method;
use serde_json::{json, Value};

use super::http::{self, ClientError, RetryPolicy};

const SERVICE: &str = "balrog";

#[derive(Debug, Clone)]
pub struct BalrogClient {
    /// The admin API root, e.g. `http://127.0.0.1:40001/api`.
    api: String,
    token: String,
    http: reqwest::Client,
    retry: RetryPolicy,
}

impl BalrogClient {
    /// `base` is the service URL (`http://host:port`); requests go to `<base>/api/...`.
    pub fn new(base: &str, token: &str) -> Self {
        Self {
            api: format!("{}/api", base.trim_end_matches('/')),
            token: token.to_string(),
            http: http::http_client(),
            retry: RetryPolicy::default(),
        }
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    fn req(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{}", self.api, path))
            .bearer_auth(&self.token)
            .header("Accept", "application/json")
    }

    /// `X-Data-Version` of a resource, `None` when it does not exist.
    async fn data_version(&self, path: &str) -> Result<Option<i64>, ClientError> {
        match http::send(SERVICE, self.req(Method::HEAD, path)).await {
            Ok(resp) => Ok(resp
                .headers()
                .get("X-Data-Version")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok())),
            Err(e) if e.status() == Some(reqwest::StatusCode::NOT_FOUND) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A release blob and its data_version, `None` if absent.
    pub async fn get_release(&self, name: &str) -> Result<Option<(Value, i64)>, ClientError> {
        let path = format!("/releases/{}", enc(name));
        match http::send(SERVICE, self.req(Method::GET, &path)).await {
            Ok(resp) => {
                let dv = resp
                    .headers()
                    .get("X-Data-Version")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                Ok(Some((http::json(SERVICE, resp).await?, dv)))
            }
            Err(e) if e.status() == Some(reqwest::StatusCode::NOT_FOUND) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Create or fully replace a release (`PUT /releases/{name}`).
    pub async fn put_release(&self, name: &str, product: &str, blob: &Value) -> Result<(), ClientError> {
        let path = format!("/releases/{}", enc(name));
        self.retry
            .run(|| async {
                let mut body = json!({"name": name, "product": product, "blob": blob.to_string()});
                if let Some(dv) = self.data_version(&path).await? {
                    body["data_version"] = dv.into();
                }
                http::send(SERVICE, self.req(Method::PUT, &path).json(&body))
                    .await
                    .map(|_| ())
            })
            .await
    }

    /// Merge top-level keys into a release (`POST /releases/{name}`), creating it
    /// if needed — the toplevel submission.
    pub async fn submit_release(&self, name: &str, product: &str, data: &Value) -> Result<(), ClientError> {
        let path = format!("/releases/{}", enc(name));
        let schema = data.get("schema_version").cloned().unwrap_or(json!(9));
        let hash = data.get("hashFunction").cloned().unwrap_or(json!("sha512"));
        self.retry
            .run(|| async {
                let mut body = json!({"name": name, "product": product, "data": data.to_string(),
                    "schema_version": schema, "hashFunction": hash});
                if let Some(dv) = self.data_version(&path).await? {
                    body["data_version"] = dv.into();
                }
                http::send(SERVICE, self.req(Method::POST, &path).json(&body))
                    .await
                    .map(|_| ())
            })
            .await
    }

    /// Submit one platform/locale of a release (`PUT …/builds/{platform}/{locale}`).
    pub async fn put_build(
        &self,
        release: &str,
        product: &str,
        platform: &str,
        locale: &str,
        data: &Value,
        schema_version: i64,
    ) -> Result<(), ClientError> {
        let path = format!("/releases/{}/builds/{}/{}", enc(release), enc(platform), enc(locale));
        let release_path = format!("/releases/{}", enc(release));
        self.retry
            .run(|| async {
                let mut body = json!({"product": product, "data": data.to_string(),
                    "schema_version": schema_version, "hashFunction": "sha512"});
                if let Some(dv) = self.data_version(&release_path).await? {
                    body["data_version"] = dv.into();
                }
                http::send(SERVICE, self.req(Method::PUT, &path).json(&body))
                    .await
                    .map(|_| ())
            })
            .await
    }

    pub async fn list_rules(&self) -> Result<Vec<Value>, ClientError> {
        let resp = http::send(SERVICE, self.req(Method::GET, "/rules")).await?;
        let v: Value = http::json(SERVICE, resp).await?;
        Ok(v["rules"].as_array().cloned().unwrap_or_default())
    }

    pub async fn get_rule(&self, id_or_alias: &str) -> Result<Option<Value>, ClientError> {
        match http::send(SERVICE, self.req(Method::GET, &format!("/rules/{}", enc(id_or_alias)))).await {
            Ok(resp) => Ok(Some(http::json(SERVICE, resp).await?)),
            Err(e) if e.status() == Some(reqwest::StatusCode::NOT_FOUND) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Create a rule; returns its rule_id.
    pub async fn create_rule(&self, fields: &Value) -> Result<i64, ClientError> {
        let resp = http::send(SERVICE, self.req(Method::POST, "/rules").json(fields)).await?;
        let url = resp.url().to_string();
        let text = resp.text().await.unwrap_or_default();
        text.trim().parse().map_err(|_| ClientError::Decode {
            service: SERVICE,
            url,
            message: format!("expected a rule id, got `{text}`"),
        })
    }

    /// Change some fields of a rule (data_version fetched first, retried on conflicts).
    pub async fn update_rule(&self, id_or_alias: &str, fields: &Value) -> Result<(), ClientError> {
        let path = format!("/rules/{}", enc(id_or_alias));
        self.retry
            .run(|| async {
                let mut body = fields.clone();
                let dv = self.data_version(&path).await?.ok_or_else(|| ClientError::Invalid {
                    service: SERVICE,
                    message: format!("rule {id_or_alias} does not exist"),
                })?;
                body["data_version"] = dv.into();
                http::send(SERVICE, self.req(Method::POST, &path).json(&body))
                    .await
                    .map(|_| ())
            })
            .await
    }

    /// Schedule a change of a rule; returns the scheduled change's id.
    pub async fn schedule_rule_update(&self, rule_id: i64, fields: &Value, when_ms: i64) -> Result<i64, ClientError> {
        let current = self
            .get_rule(&rule_id.to_string())
            .await?
            .ok_or_else(|| ClientError::Invalid {
                service: SERVICE,
                message: format!("rule {rule_id} does not exist"),
            })?;
        let mut body = current.clone();
        if let (Some(b), Some(f)) = (body.as_object_mut(), fields.as_object()) {
            for (k, v) in f {
                b.insert(k.clone(), v.clone());
            }
            b.insert("change_type".into(), json!("update"));
            b.insert("when".into(), json!(when_ms));
            b.insert("rule_id".into(), json!(rule_id));
        }
        let resp = http::send(SERVICE, self.req(Method::POST, "/scheduled_changes/rules").json(&body)).await?;
        let v: Value = http::json(SERVICE, resp).await?;
        v["sc_id"].as_i64().ok_or_else(|| ClientError::Decode {
            service: SERVICE,
            url: "/scheduled_changes/rules".into(),
            message: format!("no sc_id in {v}"),
        })
    }

    pub async fn scheduled_rule_changes(&self) -> Result<Vec<Value>, ClientError> {
        let resp = http::send(SERVICE, self.req(Method::GET, "/scheduled_changes/rules")).await?;
        let v: Value = http::json(SERVICE, resp).await?;
        Ok(v["scheduled_changes"].as_array().cloned().unwrap_or_default())
    }

    pub async fn signoff_rule_change(&self, sc_id: i64, role: &str) -> Result<(), ClientError> {
        let path = format!("/scheduled_changes/rules/{sc_id}/signoffs");
        http::send(SERVICE, self.req(Method::POST, &path).json(&json!({"role": role})))
            .await
            .map(|_| ())
    }

    /// Sign off as `user` (a staging stand-in names the signer with
    /// `X-Stagelib-User`; production Balrog takes the user from the token).
    pub async fn signoff_rule_change_as(&self, sc_id: i64, user: &str, role: &str) -> Result<(), ClientError> {
        let path = format!("/scheduled_changes/rules/{sc_id}/signoffs");
        let req = self
            .req(Method::POST, &path)
            .header("X-Stagelib-User", user)
            .json(&json!({"role": role}));
        http::send(SERVICE, req).await.map(|_| ())
    }

    /// One scheduled rule change (the object inside `scheduled_change`).
    pub async fn scheduled_rule_change(&self, sc_id: i64) -> Result<Value, ClientError> {
        let path = format!("/scheduled_changes/rules/{sc_id}");
        let resp = http::send(SERVICE, self.req(Method::GET, &path)).await?;
        let v: Value = http::json(SERVICE, resp).await?;
        Ok(v.get("scheduled_change").cloned().unwrap_or(v))
    }

    /// Change a pending scheduled rule change (its signoffs are dropped).
    pub async fn update_scheduled_rule_change(
        &self,
        sc_id: i64,
        sc_data_version: i64,
        fields: &Value,
        when_ms: i64,
    ) -> Result<(), ClientError> {
        let mut body = fields.clone();
        body["sc_data_version"] = json!(sc_data_version);
        body["when"] = json!(when_ms);
        let path = format!("/scheduled_changes/rules/{sc_id}");
        http::send(SERVICE, self.req(Method::POST, &path).json(&body))
            .await
            .map(|_| ())
    }
}

/// Percent-encode one path segment.
pub fn enc(segment: &str) -> String {
    url::form_urlencoded::byte_serialize(segment.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}
