//! Rule endpoints (reference balrog.md §4, §5.3): every column validated the
//! way Balrog does, optimistic locking, and the signoff guard.
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{int_field, json_body, signoffs, versioned, AdminError, AdminState, Writer};
use crate::services::balrog::db::{put_rule, Op, State as DbState};
use crate::services::balrog::rule::Rule;
use crate::services::balrog::version;

#[derive(Debug, Deserialize, Default)]
pub struct ListParams {
    product: Option<String>,
}

pub async fn list(State(st): State<AdminState>, Query(p): Query<ListParams>) -> Response {
    let s = st.db.read().await;
    let mut rules: Vec<&Rule> = s
        .rules
        .values()
        .filter(|r| p.product.is_none() || r.product == p.product)
        .collect();
    rules.sort_by(|a, b| {
        a.priority
            .cmp(&b.priority)
            .then_with(|| a.version.cmp(&b.version))
            .then_with(|| a.mapping.cmp(&b.mapping))
    });
    Json(json!({"count": rules.len(), "rules": rules})).into_response()
}

fn not_found(id: &str) -> AdminError {
    AdminError::NotFound(format!("Requested rule wasn't found: {id}"))
}

pub async fn get_one(State(st): State<AdminState>, Path(id): Path<String>) -> Result<Response, AdminError> {
    let s = st.db.read().await;
    let r = s.rule(&id).ok_or_else(|| not_found(&id))?;
    Ok(versioned(
        serde_json::to_value(r).unwrap_or(Value::Null),
        r.data_version,
    ))
}

fn text(m: &Map<String, Value>, key: &str, max: usize) -> Result<Option<Option<String>>, AdminError> {
    match m.get(key) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(Value::String(s)) => {
            let t = s.trim();
            if t.len() > max {
                return Err(AdminError::BadRequest(format!("{key}: '{t}' is too long (max {max})")));
            }
            Ok(Some(if t.is_empty() { None } else { Some(t.to_string()) }))
        }
        Some(other) => Err(AdminError::BadRequest(format!(
            "{key}: {other} is not of type 'string'"
        ))),
    }
}

fn boolean(m: &Map<String, Value>, key: &str) -> Result<Option<Option<bool>>, AdminError> {
    match m.get(key) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(Value::Bool(b)) => Ok(Some(Some(*b))),
        Some(other) => Err(AdminError::BadRequest(format!(
            "{key}: {other} is not of type 'boolean'"
        ))),
    }
}

/// Apply the rule columns present in `m` to `rule`, validating each.
pub fn apply_fields(rule: &mut Rule, m: &Map<String, Value>, s: &DbState) -> Result<(), AdminError> {
    macro_rules! set_text {
        ($field:ident, $key:expr, $max:expr) => {
            if let Some(v) = text(m, $key, $max)? {
                rule.$field = v;
            }
        };
    }
    set_text!(alias, "alias", 50);
    set_text!(product, "product", 15);
    set_text!(version, "version", 75);
    set_text!(channel, "channel", 75);
    set_text!(build_target, "buildTarget", 75);
    set_text!(build_id, "buildID", 20);
    set_text!(os_version, "osVersion", 1000);
    set_text!(memory, "memory", 100);
    set_text!(instruction_set, "instructionSet", 1000);
    set_text!(dist_version, "distVersion", 100);
    set_text!(header_architecture, "headerArchitecture", 10);
    set_text!(comment, "comment", 500);
    set_text!(update_type, "update_type", 15);
    if let Some(v) = text(m, "locale", 200)? {
        rule.locale = v.map(|s| s.split_whitespace().collect());
    }
    if let Some(v) = text(m, "distribution", 2000)? {
        rule.distribution = v.map(|s| s.split_whitespace().collect());
    }
    if let Some(v) = boolean(m, "jaws")? {
        rule.jaws = v;
    }
    if let Some(v) = boolean(m, "mig64")? {
        rule.mig64 = v;
    }
    if m.contains_key("priority") {
        rule.priority = int_field(m, "priority")?;
    }
    if m.contains_key("backgroundRate") {
        rule.background_rate = int_field(m, "backgroundRate")?;
    }
    if m.contains_key("mapping") {
        rule.mapping = text(m, "mapping", 100)?.flatten();
        if rule.mapping.is_none() {
            return Err(AdminError::BadRequest(
                "mapping value cannot be set to null/empty".into(),
            ));
        }
    }
    if let Some(v) = text(m, "fallbackMapping", 100)? {
        rule.fallback_mapping = v;
    }
    // Validation of the resulting row.
    if let Some(t) = &rule.update_type {
        if t != "minor" && t != "major" {
            return Err(AdminError::BadRequest(format!(
                "update_type: '{t}' is not one of ['minor', 'major']"
            )));
        }
    }
    if rule.priority.is_some_and(|p| p < 0) {
        return Err(AdminError::BadRequest("priority: must be >= 0".into()));
    }
    if rule.background_rate.is_some_and(|r| !(0..=100).contains(&r)) {
        return Err(AdminError::BadRequest(
            "backgroundRate: must be between 0 and 100".into(),
        ));
    }
    if let Some(a) = &rule.alias {
        let ok = a.starts_with(|c: char| c.is_ascii_alphabetic())
            && a.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        if !ok {
            return Err(AdminError::BadRequest(format!(
                "alias: '{a}' does not match '^[a-zA-Z][a-zA-Z0-9-]*$'"
            )));
        }
        if s.rules
            .values()
            .any(|r| r.rule_id != rule.rule_id && r.alias.as_deref() == Some(a))
        {
            return Err(AdminError::BadRequest("Rule with alias exists.".into()));
        }
    }
    if let Some(v) = &rule.version {
        for term in v.split(',') {
            let t = term.trim().trim_start_matches(['<', '>', '=']);
            let t = t
                .strip_suffix(".*")
                .map(|p| format!("{p}.0"))
                .unwrap_or_else(|| t.to_string());
            if version::MozVersion::parse(&t).is_err() {
                return Err(AdminError::BadRequest(format!("version: '{v}' is not a valid version")));
            }
        }
    }
    if let Some(m) = &rule.mapping {
        if !s.releases.contains_key(m) {
            return Err(AdminError::BadRequest(
                "Invalid mapping value. No release name found in DB".into(),
            ));
        }
    }
    if let Some(f) = &rule.fallback_mapping {
        if !s.releases.contains_key(f) {
            return Err(AdminError::BadRequest(
                "Invalid fallbackMapping value. No release name found in DB".into(),
            ));
        }
    }
    Ok(())
}

pub fn check_required_on_create(m: &Map<String, Value>) -> Result<(), AdminError> {
    for key in ["update_type", "backgroundRate", "priority", "mapping"] {
        if m.get(key).is_none_or(Value::is_null) {
            return Err(AdminError::BadRequest(format!("'{key}' is a required property")));
        }
    }
    Ok(())
}

pub async fn create(State(st): State<AdminState>, Writer(_): Writer, body: Bytes) -> Result<Response, AdminError> {
    let m = json_body(&body)?;
    check_required_on_create(&m)?;
    let mut s = st.db.write().await;
    let mut rule = Rule {
        rule_id: s.next_rule_id(),
        data_version: 1,
        ..Default::default()
    };
    apply_fields(&mut rule, &m, &s)?;
    if let Some(why) = signoffs::rule_needs_signoff(&s, None, Some(&rule)) {
        return Err(AdminError::SignoffRequired(why));
    }
    st.db.persist(vec![put_rule(&rule)]).await?;
    let id = rule.rule_id;
    s.rules.insert(id, rule);
    Ok((StatusCode::OK, id.to_string()).into_response())
}

pub async fn update(
    State(st): State<AdminState>,
    Writer(_): Writer,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, AdminError> {
    let m = json_body(&body)?;
    let mut s = st.db.write().await;
    let current = s.rule(&id).cloned().ok_or_else(|| not_found(&id))?;
    let dv = int_field(&m, "data_version")?
        .ok_or_else(|| AdminError::BadRequest("'data_version' is a required property".into()))?;
    if dv != current.data_version {
        return Err(AdminError::Outdated("POST"));
    }
    if s.scheduled.values().any(|sc| {
        !sc.complete
            && sc.object == "rules"
            && sc.fields.get("rule_id").and_then(Value::as_i64) == Some(current.rule_id)
    }) {
        return Err(AdminError::ChangeScheduled(format!(
            "Rule {} has a pending scheduled change",
            current.rule_id
        )));
    }
    let mut rule = current.clone();
    apply_fields(&mut rule, &m, &s)?;
    if let Some(why) = signoffs::rule_needs_signoff(&s, Some(&current), Some(&rule)) {
        return Err(AdminError::SignoffRequired(why));
    }
    rule.data_version += 1;
    st.db.persist(vec![put_rule(&rule)]).await?;
    let n = rule.data_version;
    s.rules.insert(rule.rule_id, rule);
    Ok(Json(json!({"new_data_version": n})).into_response())
}

#[derive(Debug, Deserialize)]
pub struct VersionParam {
    data_version: Option<String>,
}

pub async fn delete(
    State(st): State<AdminState>,
    Writer(_): Writer,
    Path(id): Path<String>,
    Query(p): Query<VersionParam>,
) -> Result<Response, AdminError> {
    let mut s = st.db.write().await;
    let current = s.rule(&id).cloned().ok_or_else(|| not_found(&id))?;
    let dv: i64 = p
        .data_version
        .as_deref()
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| AdminError::BadRequest("data_version is required".into()))?;
    if dv != current.data_version {
        return Err(AdminError::Outdated("DELETE"));
    }
    if let Some(why) = signoffs::rule_needs_signoff(&s, Some(&current), None) {
        return Err(AdminError::SignoffRequired(why));
    }
    st.db
        .persist(vec![Op::Delete {
            kind: "rule",
            key: current.rule_id.to_string(),
        }])
        .await?;
    s.rules.remove(&current.rule_id);
    Ok(StatusCode::OK.into_response())
}
