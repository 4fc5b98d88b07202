//! Scheduled changes of rules, releases and emergency shutoffs (reference
//! balrog.md §5.4) and enacting them; [`enact_due`] is the agent's pass.
use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{double_encoded, int_field, json_body, rules, signoffs, AdminError, AdminState, Writer};
use crate::services::balrog::db::{
    key2, put_release, put_rule, put_sc, BalrogDb, Op, ReleaseRow, ScheduledChange, State as DbState,
};
use crate::services::balrog::rule::Rule;
use crate::services::balrog::schema;

const OBJECTS: [&str; 3] = ["rules", "releases", "emergency_shutoff"];

fn check_object(object: &str) -> Result<(), AdminError> {
    if OBJECTS.contains(&object) {
        Ok(())
    } else {
        Err(AdminError::NotFound(format!("no scheduled changes for `{object}`")))
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The flattened JSON form of a scheduled change.
fn render(s: &DbState, sc: &ScheduledChange) -> Value {
    let mut o: Map<String, Value> = sc.fields.clone();
    o.insert("sc_id".into(), sc.sc_id.into());
    o.insert("scheduled_by".into(), sc.scheduled_by.clone().into());
    o.insert("complete".into(), sc.complete.into());
    o.insert("change_type".into(), sc.change_type.clone().into());
    o.insert("when".into(), sc.when.into());
    o.insert("sc_data_version".into(), sc.sc_data_version.into());
    for k in ["telemetry_product", "telemetry_channel", "telemetry_uptake"] {
        o.insert(k.into(), Value::Null);
    }
    o.insert("signoffs".into(), json!(sc.signoffs));
    let required: BTreeMap<String, i64> = if sc.complete {
        BTreeMap::new()
    } else {
        signoffs::required_for_sc(s, sc)
    };
    o.insert("required_signoffs".into(), json!(required));
    Value::Object(o)
}

#[derive(Debug, Deserialize, Default)]
pub struct ListParams {
    all: Option<String>,
    rule_id: Option<i64>,
}

pub async fn list(
    State(st): State<AdminState>,
    Path(object): Path<String>,
    Query(p): Query<ListParams>,
) -> Result<Response, AdminError> {
    check_object(&object)?;
    let s = st.db.read().await;
    let all = p.all.as_deref().is_some_and(|v| v != "0" && v != "false");
    let items: Vec<Value> = s
        .scheduled
        .values()
        .filter(|sc| sc.object == object && (all || !sc.complete))
        .filter(|sc| p.rule_id.is_none() || sc.fields.get("rule_id").and_then(Value::as_i64) == p.rule_id)
        .map(|sc| render(&s, sc))
        .collect();
    Ok(Json(json!({"count": items.len(), "scheduled_changes": items})).into_response())
}

fn pending_for(s: &DbState, object: &str, key: &str, value: &Value) -> bool {
    s.scheduled
        .values()
        .any(|sc| !sc.complete && sc.object == object && sc.fields.get(key) == Some(value))
}

/// Build the stored fields of a new scheduled change from its request.
fn fields_for(
    s: &DbState,
    object: &str,
    change_type: &str,
    m: &Map<String, Value>,
) -> Result<Map<String, Value>, AdminError> {
    let mut fields = m.clone();
    for k in ["change_type", "when", "csrf_token", "data_verison", "sc_data_version"] {
        fields.remove(k);
    }
    match object {
        "rules" => {
            if change_type == "insert" {
                rules::check_required_on_create(m)?;
                let mut probe = Rule::default();
                rules::apply_fields(&mut probe, m, s)?;
                fields.insert("rule_id".into(), Value::Null);
                return Ok(fields);
            }
            let id = int_field(m, "rule_id")?.ok_or_else(|| AdminError::BadRequest("'rule_id' is required".into()))?;
            let current = s
                .rules
                .get(&id)
                .ok_or_else(|| AdminError::NotFound(format!("Requested rule wasn't found: {id}")))?;
            let dv = int_field(m, "data_version")?
                .ok_or_else(|| AdminError::BadRequest("'data_version' is required".into()))?;
            if dv != current.data_version {
                return Err(AdminError::Outdated("POST"));
            }
            if pending_for(s, "rules", "rule_id", &json!(id)) {
                return Err(AdminError::ChangeScheduled(format!(
                    "Rule {id} already has a pending scheduled change"
                )));
            }
            let mut rule = current.clone();
            if change_type == "update" {
                rules::apply_fields(&mut rule, m, s)?;
            }
            let mut full = serde_json::to_value(&rule)
                .ok()
                .and_then(|v| v.as_object().cloned())
                .unwrap_or_default();
            full.insert("data_version".into(), dv.into());
            Ok(full)
        }
        "releases" => {
            let name = super::releases::str_field(m, "name")?;
            if pending_for(s, "releases", "name", &json!(name)) {
                return Err(AdminError::ChangeScheduled(format!(
                    "Release {name} already has a pending scheduled change"
                )));
            }
            if change_type != "delete" {
                super::releases::str_field(m, "product")?;
                let data =
                    double_encoded(m, "data")?.ok_or_else(|| AdminError::BadRequest("'data' is required".into()))?;
                schema::validate(&data, Some(&name)).map_err(|e| AdminError::InvalidBlob(e.to_string()))?;
            }
            Ok(fields)
        }
        _ => {
            if change_type != "delete" {
                return Err(AdminError::BadRequest(
                    "emergency shutoffs can only be scheduled for deletion".into(),
                ));
            }
            let key = (
                super::releases::str_field(m, "product")?,
                super::releases::str_field(m, "channel")?,
            );
            if !s.shutoffs.contains_key(&key) {
                return Err(AdminError::NotFound("no such emergency shutoff".into()));
            }
            Ok(fields)
        }
    }
}

pub async fn create(
    State(st): State<AdminState>,
    Writer(user): Writer,
    Path(object): Path<String>,
    body: Bytes,
) -> Result<Response, AdminError> {
    check_object(&object)?;
    let m = json_body(&body)?;
    let change_type = super::releases::str_field(&m, "change_type")?;
    if !["insert", "update", "delete"].contains(&change_type.as_str()) {
        return Err(AdminError::BadRequest(format!(
            "change_type: '{change_type}' is not one of insert, update, delete"
        )));
    }
    let when = int_field(&m, "when")?.ok_or_else(|| AdminError::BadRequest("'when' is a required property".into()))?;
    if when < now_ms() {
        return Err(AdminError::BadRequest(
            "Changes may not be scheduled in the past".into(),
        ));
    }
    let mut s = st.db.write().await;
    let fields = fields_for(&s, &object, &change_type, &m)?;
    let sc = ScheduledChange {
        sc_id: s.next_sc_id(),
        object: object.clone(),
        change_type,
        when,
        scheduled_by: user,
        complete: false,
        sc_data_version: 1,
        fields,
        signoffs: BTreeMap::new(),
    };
    st.db.persist(vec![put_sc(&sc)]).await?;
    let id = sc.sc_id;
    s.scheduled.insert(id, sc);
    Ok(Json(json!({"sc_id": id, "signoffs": {}})).into_response())
}

fn find<'a>(s: &'a DbState, object: &str, sc_id: i64) -> Result<&'a ScheduledChange, AdminError> {
    s.scheduled
        .get(&sc_id)
        .filter(|sc| sc.object == object)
        .ok_or_else(|| AdminError::NotFound(format!("Scheduled change {sc_id} not found")))
}

pub async fn get_one(
    State(st): State<AdminState>,
    Path((object, sc_id)): Path<(String, i64)>,
) -> Result<Response, AdminError> {
    let s = st.db.read().await;
    let sc = find(&s, &object, sc_id)?;
    Ok(Json(json!({"scheduled_change": render(&s, sc)})).into_response())
}

pub async fn update(
    State(st): State<AdminState>,
    Writer(_): Writer,
    Path((object, sc_id)): Path<(String, i64)>,
    body: Bytes,
) -> Result<Response, AdminError> {
    let m = json_body(&body)?;
    let mut s = st.db.write().await;
    let mut sc = find(&s, &object, sc_id)?.clone();
    if sc.complete {
        return Err(AdminError::BadRequest(
            "Cannot update a completed scheduled change".into(),
        ));
    }
    let dv = int_field(&m, "sc_data_version")?
        .ok_or_else(|| AdminError::BadRequest("'sc_data_version' is required".into()))?;
    if dv != sc.sc_data_version {
        return Err(AdminError::Outdated("POST"));
    }
    if let Some(w) = int_field(&m, "when")? {
        if w < now_ms() {
            return Err(AdminError::BadRequest(
                "Changes may not be scheduled in the past".into(),
            ));
        }
        sc.when = w;
    }
    for (k, v) in m
        .iter()
        .filter(|(k, _)| !["when", "sc_data_version", "csrf_token"].contains(&k.as_str()))
    {
        sc.fields.insert(k.clone(), v.clone());
    }
    sc.sc_data_version += 1;
    sc.signoffs.clear();
    st.db.persist(vec![put_sc(&sc)]).await?;
    let n = sc.sc_data_version;
    s.scheduled.insert(sc_id, sc);
    Ok(Json(json!({"new_data_version": n, "signoffs": {}})).into_response())
}

#[derive(Debug, Deserialize)]
pub struct VersionParam {
    data_version: Option<i64>,
}

pub async fn delete(
    State(st): State<AdminState>,
    Writer(_): Writer,
    Path((object, sc_id)): Path<(String, i64)>,
    Query(p): Query<VersionParam>,
) -> Result<Response, AdminError> {
    let mut s = st.db.write().await;
    let sc = find(&s, &object, sc_id)?.clone();
    if sc.complete {
        return Err(AdminError::BadRequest(
            "Cannot delete a completed scheduled change".into(),
        ));
    }
    if p.data_version.is_some_and(|dv| dv != sc.sc_data_version) {
        return Err(AdminError::Outdated("DELETE"));
    }
    st.db
        .persist(vec![Op::Delete {
            kind: "sc",
            key: sc_id.to_string(),
        }])
        .await?;
    s.scheduled.remove(&sc_id);
    Ok(Json(json!({})).into_response())
}

/// Apply `sc` to the state; returns what to persist.
fn apply(s: &mut DbState, sc: &ScheduledChange) -> Result<Vec<Op>, AdminError> {
    let f = &sc.fields;
    match (sc.object.as_str(), sc.change_type.as_str()) {
        ("rules", "insert") => {
            let mut rule = Rule {
                rule_id: s.next_rule_id(),
                data_version: 1,
                ..Default::default()
            };
            let mut fields = f.clone();
            fields.remove("rule_id");
            fields.remove("data_version");
            rules::apply_fields(&mut rule, &fields, s)?;
            let op = put_rule(&rule);
            s.rules.insert(rule.rule_id, rule);
            Ok(vec![op])
        }
        ("rules", kind) => {
            let id = f.get("rule_id").and_then(Value::as_i64).unwrap_or(-1);
            let current = s
                .rules
                .get(&id)
                .cloned()
                .ok_or_else(|| AdminError::NotFound(format!("rule {id} is gone")))?;
            if f.get("data_version").and_then(Value::as_i64) != Some(current.data_version) {
                return Err(AdminError::Outdated("POST"));
            }
            if kind == "delete" {
                s.rules.remove(&id);
                return Ok(vec![Op::Delete {
                    kind: "rule",
                    key: id.to_string(),
                }]);
            }
            let mut rule = current.clone();
            let mut fields = f.clone();
            fields.remove("rule_id");
            fields.remove("data_version");
            rules::apply_fields(&mut rule, &fields, s)?;
            rule.data_version = current.data_version + 1;
            let op = put_rule(&rule);
            s.rules.insert(id, rule);
            Ok(vec![op])
        }
        ("releases", kind) => {
            let name = f.get("name").and_then(Value::as_str).unwrap_or("").to_string();
            if kind == "delete" {
                s.releases.remove(&name);
                return Ok(vec![Op::Delete {
                    kind: "release",
                    key: name,
                }]);
            }
            let data = double_encoded(f, "data")?.unwrap_or(Value::Null);
            let product = f.get("product").and_then(Value::as_str).unwrap_or("").to_string();
            let dv = s.releases.get(&name).map(|r| r.data_version + 1).unwrap_or(1);
            let row = ReleaseRow {
                name: name.clone(),
                product,
                blob: data.into(),
                data_version: dv,
                read_only: f.get("read_only").and_then(Value::as_bool).unwrap_or(false),
            };
            let ops = put_release(&row);
            s.releases.insert(name, row);
            Ok(ops)
        }
        _ => {
            let p = f.get("product").and_then(Value::as_str).unwrap_or("").to_string();
            let c = f.get("channel").and_then(Value::as_str).unwrap_or("").to_string();
            s.shutoffs.remove(&(p.clone(), c.clone()));
            Ok(vec![Op::Delete {
                kind: "shutoff",
                key: key2(&p, &c),
            }])
        }
    }
}

/// Enact one scheduled change if its signoffs suffice.
async fn enact_one(db: &BalrogDb, object: &str, sc_id: i64) -> Result<(), AdminError> {
    let mut s = db.write().await;
    let sc = find(&s, object, sc_id)?.clone();
    if sc.complete {
        return Err(AdminError::BadRequest(
            "This scheduled change is already complete".into(),
        ));
    }
    signoffs::satisfied(&s, &sc).map_err(AdminError::SignoffRequired)?;
    // `apply` validates before it changes anything.
    let mut ops = apply(&mut s, &sc)?;
    let done = ScheduledChange { complete: true, ..sc };
    ops.push(put_sc(&done));
    if let Err(e) = db.persist(ops).await {
        // Memory already changed but the disk did not: a restart reloads the truth.
        tracing::error!(error = %e, "persisting an enacted change failed");
        return Err(e.into());
    }
    s.scheduled.insert(sc_id, done);
    Ok(())
}

pub async fn enact(
    State(st): State<AdminState>,
    Writer(_): Writer,
    Path((object, sc_id)): Path<(String, i64)>,
) -> Result<Response, AdminError> {
    enact_one(&st.db, &object, sc_id).await?;
    Ok(Json(json!({})).into_response())
}

/// The agent's pass: enact every pending change whose time has come and whose
/// signoffs suffice. Returns how many were enacted.
pub async fn enact_due(db: &BalrogDb, now_ms: i64) -> usize {
    let due: Vec<(String, i64)> = {
        let s = db.read().await;
        let mut v: Vec<&ScheduledChange> = s
            .scheduled
            .values()
            .filter(|sc| !sc.complete && sc.when <= now_ms && signoffs::satisfied(&s, sc).is_ok())
            .collect();
        v.sort_by_key(|sc| (sc.when, sc.sc_id));
        v.iter().map(|sc| (sc.object.clone(), sc.sc_id)).collect()
    };
    let mut n = 0;
    for (object, id) in due {
        match enact_one(db, &object, id).await {
            Ok(()) => n += 1,
            Err(e) => tracing::warn!(sc_id = id, error = %e, "agent could not enact a scheduled change"),
        }
    }
    n
}
