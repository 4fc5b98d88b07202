//! Users' permissions and roles (read side, filled by the import), and the
//! rule-ID offsets of namespaces seeded onto a shared instance.
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

use super::{AdminError, AdminState, Writer};
use crate::services::balrog::db::Op;

/// Rule IDs of each further namespace start this far above the previous one.
pub const NAMESPACE_STRIDE: i64 = 100_000;

/// `GET /users`: `{"users": [names]}` (anyone with a permission or a role).
pub async fn list(State(st): State<AdminState>, Writer(_): Writer) -> Response {
    let s = st.db.read().await;
    let mut users: Vec<&str> = s
        .permissions
        .keys()
        .chain(s.roles.keys())
        .map(|(u, _)| u.as_str())
        .collect();
    users.sort();
    users.dedup();
    Json(json!({"users": users})).into_response()
}

/// `GET /users/{u}/permissions`: `{perm: {"options": {...}|null, "data_version": 1}}`.
pub async fn permissions(
    State(st): State<AdminState>,
    Writer(_): Writer,
    Path(user): Path<String>,
) -> Result<Response, AdminError> {
    let s = st.db.read().await;
    let mut out = Map::new();
    for p in s.permissions.values().filter(|p| p.username == user) {
        out.insert(p.permission.clone(), json!({"options": p.options, "data_version": 1}));
    }
    if out.is_empty() && !s.roles.keys().any(|(u, _)| u == &user) {
        return Err(AdminError::NotFound(format!("User {user} has no permissions")));
    }
    Ok(Json(Value::Object(out)).into_response())
}

/// `GET /users/{u}/roles`: `{"roles": [{"role", "data_version"}]}`.
pub async fn roles(State(st): State<AdminState>, Writer(_): Writer, Path(user): Path<String>) -> Response {
    let s = st.db.read().await;
    let roles: Vec<Value> = s
        .roles
        .values()
        .filter(|r| r.username == user)
        .map(|r| json!({"role": r.role, "data_version": 1}))
        .collect();
    Json(json!({"roles": roles})).into_response()
}

/// `GET /__stagelib__/namespaces`: `{namespace: rule_id_offset}`.
pub async fn namespaces(State(st): State<AdminState>) -> Response {
    let s = st.db.read().await;
    Json(json!(s.namespaces)).into_response()
}

/// `POST /__stagelib__/namespaces/{ns}`: the namespace's rule-ID offset,
/// allocated on first use: 0 for the first namespace (so a stack of one user
/// keeps production's rule IDs), then the next multiple of the stride.
pub async fn claim_namespace(
    State(st): State<AdminState>,
    Writer(_): Writer,
    Path(ns): Path<String>,
) -> Result<Response, AdminError> {
    crate::lease::Namespace::parse(&ns).map_err(|e| AdminError::BadRequest(format!("namespace: {e}")))?;
    let mut s = st.db.write().await;
    if let Some(offset) = s.namespaces.get(&ns) {
        return Ok(Json(json!({"namespace": ns, "rule_id_offset": offset})).into_response());
    }
    let offset = s.namespaces.values().max().map(|m| m + NAMESPACE_STRIDE).unwrap_or(0);
    st.db
        .persist(vec![Op::Put {
            kind: "ns",
            key: ns.clone(),
            value: json!([ns, offset]),
        }])
        .await?;
    s.namespaces.insert(ns.clone(), offset);
    Ok(Json(json!({"namespace": ns, "rule_id_offset": offset})).into_response())
}
