//! Required signoffs (reference balrog.md §5.5) and signing scheduled changes.
//! In a staging stack there is no role registry: any authenticated user may
//! sign with any role, once per scheduled change; `X-Stagelib-User` names the
//! signer, so several people (or one script acting as several) can sign off.
use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{int_field, json_body, AdminError, AdminState, Writer};
use crate::services::balrog::db::{key3, put_sc, Op, RequiredSignoff, ScheduledChange, State as DbState};
use crate::services::balrog::rule::Rule;
use crate::services::balrog::update::matching_channel;

/// Roles (with counts) a change of `rule` from `old` to `new` needs.
pub fn required_for_rules(s: &DbState, old: Option<&Rule>, new: Option<&Rule>) -> BTreeMap<String, i64> {
    let mut out: BTreeMap<String, i64> = BTreeMap::new();
    for rule in [old, new].into_iter().flatten() {
        for rs in s.required_signoffs.values() {
            let product_ok = rule.product.as_deref().is_none_or(|p| p == rs.product);
            let channel_ok = rule
                .channel
                .as_deref()
                .is_none_or(|c| matching_channel(c, &rs.channel) || c == rs.channel);
            if product_ok && channel_ok {
                let e = out.entry(rs.role.clone()).or_insert(0);
                *e = (*e).max(rs.signoffs_required);
            }
        }
    }
    out
}

/// `Some(reason)` when a direct change of the rule is not allowed.
pub fn rule_needs_signoff(s: &DbState, old: Option<&Rule>, new: Option<&Rule>) -> Option<String> {
    let req = required_for_rules(s, old, new);
    if req.is_empty() {
        None
    } else {
        Some(format!(
            "This change requires signoff ({}); schedule it instead",
            req.iter()
                .map(|(r, n)| format!("{n} from {r}"))
                .collect::<Vec<_>>()
                .join(", ")
        ))
    }
}

/// Roles a scheduled change needs.
pub fn required_for_sc(s: &DbState, sc: &ScheduledChange) -> BTreeMap<String, i64> {
    match sc.object.as_str() {
        "rules" => {
            let old = sc
                .fields
                .get("rule_id")
                .and_then(Value::as_i64)
                .and_then(|id| s.rules.get(&id));
            let new: Option<Rule> = serde_json::from_value(Value::Object(sc.fields.clone())).ok();
            let new = if sc.change_type == "delete" { None } else { new };
            required_for_rules(s, old, new.as_ref())
        }
        "releases" => {
            let name = sc.fields.get("name").and_then(Value::as_str).unwrap_or("");
            let mapped: Vec<&Rule> = s
                .rules
                .values()
                .filter(|r| r.mapping.as_deref() == Some(name) || r.fallback_mapping.as_deref() == Some(name))
                .collect();
            let mut out = BTreeMap::new();
            for r in mapped {
                for (role, n) in required_for_rules(s, Some(r), None) {
                    let e = out.entry(role).or_insert(0);
                    *e = std::cmp::max(*e, n);
                }
            }
            out
        }
        _ => BTreeMap::new(),
    }
}

/// Whether the signoffs of `sc` satisfy what it needs.
pub fn satisfied(s: &DbState, sc: &ScheduledChange) -> Result<(), String> {
    for (role, n) in required_for_sc(s, sc) {
        let have = sc.signoffs.values().filter(|r| **r == role).count() as i64;
        if have < n {
            return Err(if sc.signoffs.is_empty() {
                "No Signoffs given".to_string()
            } else {
                format!("Not enough signoffs for role '{role}'")
            });
        }
    }
    Ok(())
}

#[derive(Debug, Deserialize, Default)]
pub struct RsParams {
    product: Option<String>,
    channel: Option<String>,
}

pub async fn list_required(State(st): State<AdminState>, Query(p): Query<RsParams>) -> Response {
    let s = st.db.read().await;
    let rows: Vec<&RequiredSignoff> = s
        .required_signoffs
        .values()
        .filter(|r| p.product.as_deref().is_none_or(|x| x == r.product))
        .filter(|r| p.channel.as_deref().is_none_or(|x| x == r.channel))
        .collect();
    Json(json!({"count": rows.len(), "required_signoffs": rows})).into_response()
}

pub async fn add_required(
    State(st): State<AdminState>,
    Writer(_): Writer,
    body: Bytes,
) -> Result<Response, AdminError> {
    let m = json_body(&body)?;
    let field = |k: &str| super::releases::str_field(&m, k);
    let (product, channel, role) = (field("product")?, field("channel")?, field("role")?);
    let n = int_field(&m, "signoffs_required")?
        .ok_or_else(|| AdminError::BadRequest("'signoffs_required' is a required property".into()))?;
    if n < 1 {
        return Err(AdminError::BadRequest("signoffs_required: must be at least 1".into()));
    }
    let mut s = st.db.write().await;
    let key = (product.clone(), channel.clone(), role.clone());
    let first = !s
        .required_signoffs
        .values()
        .any(|r| r.product == product && r.channel == channel);
    if s.required_signoffs.contains_key(&key) || !first {
        return Err(AdminError::SignoffRequired(format!(
            "{product}/{channel} already has required signoffs; changing them needs a scheduled change"
        )));
    }
    let row = RequiredSignoff {
        product,
        channel,
        role,
        signoffs_required: n,
        data_version: 1,
    };
    st.db
        .persist(vec![Op::Put {
            kind: "rs",
            key: key3(&row.product, &row.channel, &row.role),
            value: serde_json::to_value(&row).unwrap_or(Value::Null),
        }])
        .await?;
    s.required_signoffs.insert(key, row);
    Ok((StatusCode::CREATED, Json(json!({"new_data_version": 1}))).into_response())
}

pub async fn sign(
    State(st): State<AdminState>,
    Writer(user): Writer,
    Path((object, sc_id)): Path<(String, i64)>,
    body: Bytes,
) -> Result<Response, AdminError> {
    let m = json_body(&body)?;
    let role = super::releases::str_field(&m, "role")?;
    if matches!(
        user.as_str(),
        "balrogagent" | "balrog-ffxbld" | "balrog-tbirdbld" | "seabld" | "balrog-xpibld"
    ) {
        return Err(AdminError::BadRequest(format!(
            "{user} is a system account and cannot sign off"
        )));
    }
    let mut s = st.db.write().await;
    let mut sc = s
        .scheduled
        .get(&sc_id)
        .filter(|sc| sc.object == object)
        .cloned()
        .ok_or_else(|| AdminError::NotFound(format!("Scheduled change {sc_id} not found")))?;
    if sc.complete {
        return Err(AdminError::BadRequest(
            "Cannot sign off on a completed scheduled change".into(),
        ));
    }
    if let Some(existing) = sc.signoffs.get(&user) {
        if *existing != role {
            return Err(AdminError::BadRequest(format!(
                "{user} already signed off as {existing}"
            )));
        }
        return Ok(Json(json!({})).into_response());
    }
    sc.signoffs.insert(user, role);
    st.db.persist(vec![put_sc(&sc)]).await?;
    s.scheduled.insert(sc_id, sc);
    Ok(Json(json!({})).into_response())
}

#[derive(Debug, Deserialize, Default)]
pub struct RevokeParams {
    username: Option<String>,
}

pub async fn revoke(
    State(st): State<AdminState>,
    Writer(user): Writer,
    Path((object, sc_id)): Path<(String, i64)>,
    Query(p): Query<RevokeParams>,
) -> Result<Response, AdminError> {
    let who = p.username.unwrap_or(user);
    let mut s = st.db.write().await;
    let mut sc = s
        .scheduled
        .get(&sc_id)
        .filter(|sc| sc.object == object)
        .cloned()
        .ok_or_else(|| AdminError::NotFound(format!("Scheduled change {sc_id} not found")))?;
    if sc.signoffs.remove(&who).is_none() {
        return Ok(Json(json!({"error": format!("{who} has no signoff to revoke")})).into_response());
    }
    st.db.persist(vec![put_sc(&sc)]).await?;
    s.scheduled.insert(sc_id, sc);
    Ok(Json(json!({})).into_response())
}
