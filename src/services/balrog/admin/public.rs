//! Emergency shutoffs, pins, and the stagelib import path.
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::releases::str_field;
use super::{int_field, json_body, versioned, AdminError, AdminState, Writer};
use crate::services::balrog::db::{
    key2, key3, put_release, put_rule, Op, Permission, Pin, ReleaseRow, RequiredSignoff, Shutoff, UserRole,
};
use crate::services::balrog::rule::Rule;
use crate::services::balrog::schema;

pub async fn list_shutoffs(State(st): State<AdminState>) -> Response {
    let s = st.db.read().await;
    let rows: Vec<&Shutoff> = s.shutoffs.values().collect();
    Json(json!({"count": rows.len(), "shutoffs": rows})).into_response()
}

pub async fn add_shutoff(State(st): State<AdminState>, Writer(_): Writer, body: Bytes) -> Result<Response, AdminError> {
    let m = json_body(&body)?;
    let (product, channel) = (str_field(&m, "product")?, str_field(&m, "channel")?);
    let comment = m.get("comment").and_then(Value::as_str).map(str::to_string);
    let mut s = st.db.write().await;
    let key = (product.clone(), channel.clone());
    if s.shutoffs.contains_key(&key) {
        return Err(AdminError::BadRequest(format!(
            "Emergency shutoff for {product}/{channel} already exists"
        )));
    }
    let row = Shutoff {
        product,
        channel,
        comment,
        data_version: 1,
    };
    st.db
        .persist(vec![Op::Put {
            kind: "shutoff",
            key: key2(&row.product, &row.channel),
            value: serde_json::to_value(&row).unwrap_or(Value::Null),
        }])
        .await?;
    let body = serde_json::to_value(&row).unwrap_or(Value::Null);
    s.shutoffs.insert(key, row);
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

pub async fn get_shutoff(
    State(st): State<AdminState>,
    Path((product, channel)): Path<(String, String)>,
) -> Result<Response, AdminError> {
    let s = st.db.read().await;
    let row = s
        .shutoffs
        .get(&(product.clone(), channel.clone()))
        .ok_or_else(|| AdminError::NotFound(format!("No emergency shutoff for {product}/{channel}")))?;
    Ok(versioned(
        serde_json::to_value(row).unwrap_or(Value::Null),
        row.data_version,
    ))
}

#[derive(Debug, Deserialize)]
pub struct VersionParam {
    data_version: Option<i64>,
}

pub async fn delete_shutoff(
    State(st): State<AdminState>,
    Writer(_): Writer,
    Path((product, channel)): Path<(String, String)>,
    Query(p): Query<VersionParam>,
) -> Result<Response, AdminError> {
    let mut s = st.db.write().await;
    let key = (product.clone(), channel.clone());
    let row = s
        .shutoffs
        .get(&key)
        .ok_or_else(|| AdminError::NotFound(format!("No emergency shutoff for {product}/{channel}")))?;
    if p.data_version.is_some_and(|dv| dv != row.data_version) {
        return Err(AdminError::Outdated("DELETE"));
    }
    let protected = s
        .required_signoffs
        .values()
        .any(|r| r.product == product && crate::services::balrog::update::matching_channel(&r.channel, &channel));
    if protected {
        return Err(AdminError::SignoffRequired(
            "deleting this shutoff needs signoff: POST /scheduled_changes/emergency_shutoff".into(),
        ));
    }
    st.db
        .persist(vec![Op::Delete {
            kind: "shutoff",
            key: key2(&product, &channel),
        }])
        .await?;
    s.shutoffs.remove(&key);
    Ok(StatusCode::OK.into_response())
}

pub async fn set_pin(
    State(st): State<AdminState>,
    Writer(_): Writer,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, AdminError> {
    let m = json_body(&body)?;
    let (product, channel, version) = (
        str_field(&m, "product")?,
        str_field(&m, "channel")?,
        str_field(&m, "version")?,
    );
    let valid = version.ends_with('.')
        && version.trim_end_matches('.').split('.').count() <= 2
        && version
            .trim_end_matches('.')
            .split('.')
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
    if !valid {
        return Err(AdminError::BadRequest(format!(
            "version: '{version}' is not a valid pin (X. or X.Y.)"
        )));
    }
    let mut s = st.db.write().await;
    if !s.releases.contains_key(&name) {
        return Err(AdminError::NotFound(format!("Release: {name} not found")));
    }
    let key = (product.clone(), channel.clone(), version.clone());
    let dv = s.pins.get(&key).map(|p| p.data_version + 1).unwrap_or(1);
    let pin = Pin {
        product,
        channel,
        version,
        mapping: name,
        data_version: dv,
    };
    st.db
        .persist(vec![Op::Put {
            kind: "pin",
            key: key3(&pin.product, &pin.channel, &pin.version),
            value: serde_json::to_value(&pin).unwrap_or(Value::Null),
        }])
        .await?;
    s.pins.insert(key, pin);
    Ok(Json(json!({".": dv})).into_response())
}

pub async fn get_pin(
    State(st): State<AdminState>,
    Path((product, channel, version)): Path<(String, String, String)>,
) -> Result<Response, AdminError> {
    let s = st.db.read().await;
    let pin = s
        .pins
        .get(&(product, channel, version))
        .ok_or_else(|| AdminError::NotFound("pin not found".into()))?;
    Ok(Json(serde_json::to_value(pin).unwrap_or(Value::Null)).into_response())
}

/// `POST /__stagelib__/import`: load a snapshot, keeping rule IDs and data
/// versions (Balrog's own API cannot). Body: `{"releases": [{name, product, blob,
/// data_version?, read_only?}], "rules": [rule with rule_id], "required_signoffs":
/// [...], "emergency_shutoffs": [...], "pins": [...], "permissions": [...],
/// "roles": [...]}`. Existing objects with the same key are replaced and
/// identical ones left alone, so applying a snapshot twice changes nothing.
pub async fn import(State(st): State<AdminState>, Writer(_): Writer, body: Bytes) -> Result<Response, AdminError> {
    let m = json_body(&body)?;
    let list = |k: &str| m.get(k).and_then(Value::as_array).cloned().unwrap_or_default();
    let mut s = st.db.write().await;
    let mut ops = Vec::new();
    let mut releases = Vec::new();
    for r in list("releases") {
        let o = r.as_object().cloned().unwrap_or_default();
        let name = str_field(&o, "name")?;
        let blob = o
            .get("blob")
            .cloned()
            .ok_or_else(|| AdminError::BadRequest(format!("release {name}: 'blob' is required")))?;
        schema::validate(&blob, Some(&name)).map_err(|e| AdminError::InvalidBlob(format!("release {name}: {e}")))?;
        let row = ReleaseRow {
            name,
            product: str_field(&o, "product")?,
            blob: blob.into(),
            data_version: int_field(&o, "data_version")?.unwrap_or(1),
            read_only: o.get("read_only").and_then(Value::as_bool).unwrap_or(false),
        };
        if s.releases.get(&row.name) == Some(&row) {
            continue;
        }
        ops.extend(put_release(&row));
        releases.push(row);
    }
    let mut rules = Vec::new();
    for r in list("rules") {
        let rule: Rule = serde_json::from_value(r.clone()).map_err(|e| AdminError::BadRequest(format!("rule: {e}")))?;
        if rule.rule_id <= 0 {
            return Err(AdminError::BadRequest(
                "every imported rule needs a positive rule_id".into(),
            ));
        }
        let mapped = rule
            .mapping
            .iter()
            .chain(rule.fallback_mapping.iter())
            .all(|m| s.releases.contains_key(m) || releases.iter().any(|r| &r.name == m));
        if !mapped {
            return Err(AdminError::BadRequest(format!(
                "rule {}: mapping names no release",
                rule.rule_id
            )));
        }
        if s.rules.get(&rule.rule_id) != Some(&rule) {
            ops.push(put_rule(&rule));
            rules.push(rule);
        }
    }
    let mut rs = Vec::new();
    for r in list("required_signoffs") {
        let row: RequiredSignoff =
            serde_json::from_value(r).map_err(|e| AdminError::BadRequest(format!("required_signoffs: {e}")))?;
        ops.push(Op::Put {
            kind: "rs",
            key: key3(&row.product, &row.channel, &row.role),
            value: serde_json::to_value(&row).unwrap_or(Value::Null),
        });
        rs.push(row);
    }
    let mut shutoffs = Vec::new();
    for r in list("emergency_shutoffs") {
        let row: Shutoff =
            serde_json::from_value(r).map_err(|e| AdminError::BadRequest(format!("emergency_shutoffs: {e}")))?;
        ops.push(Op::Put {
            kind: "shutoff",
            key: key2(&row.product, &row.channel),
            value: serde_json::to_value(&row).unwrap_or(Value::Null),
        });
        shutoffs.push(row);
    }
    let mut pins = Vec::new();
    for r in list("pins") {
        let row: Pin = serde_json::from_value(r).map_err(|e| AdminError::BadRequest(format!("pins: {e}")))?;
        ops.push(Op::Put {
            kind: "pin",
            key: key3(&row.product, &row.channel, &row.version),
            value: serde_json::to_value(&row).unwrap_or(Value::Null),
        });
        pins.push(row);
    }
    let mut perms = Vec::new();
    for r in list("permissions") {
        let row: Permission =
            serde_json::from_value(r).map_err(|e| AdminError::BadRequest(format!("permissions: {e}")))?;
        ops.push(Op::Put {
            kind: "perm",
            key: key2(&row.username, &row.permission),
            value: serde_json::to_value(&row).unwrap_or(Value::Null),
        });
        perms.push(row);
    }
    let mut roles = Vec::new();
    for r in list("roles") {
        let row: UserRole = serde_json::from_value(r).map_err(|e| AdminError::BadRequest(format!("roles: {e}")))?;
        ops.push(Op::Put {
            kind: "role",
            key: key2(&row.username, &row.role),
            value: serde_json::to_value(&row).unwrap_or(Value::Null),
        });
        roles.push(row);
    }
    let counts = json!({"releases": releases.len(), "rules": rules.len(), "required_signoffs": rs.len(),
        "emergency_shutoffs": shutoffs.len(), "pins": pins.len(), "permissions": perms.len(), "roles": roles.len()});
    st.db.persist(ops).await?;
    for r in releases {
        s.releases.insert(r.name.clone(), r);
    }
    for r in rules {
        s.rules.insert(r.rule_id, r);
    }
    for r in rs {
        s.required_signoffs
            .insert((r.product.clone(), r.channel.clone(), r.role.clone()), r);
    }
    for r in shutoffs {
        s.shutoffs.insert((r.product.clone(), r.channel.clone()), r);
    }
    for p in pins {
        s.pins
            .insert((p.product.clone(), p.channel.clone(), p.version.clone()), p);
    }
    for p in perms {
        s.permissions.insert((p.username.clone(), p.permission.clone()), p);
    }
    for r in roles {
        s.roles.insert((r.username.clone(), r.role.clone()), r);
    }
    Ok(Json(json!({"imported": counts})).into_response())
}
