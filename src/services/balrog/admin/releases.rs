//! Release endpoints: the legacy API (blobs as JSON strings, per-build PUTs,
//! optimistic locking with three-way merges) and the v2 API.
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{double_encoded, int_field, json_body, versioned, AdminError, AdminState, Writer};
use crate::services::balrog::db::{put_release, ReleaseRow, State as DbState};
use crate::services::balrog::{merge, schema};

#[derive(Debug, Deserialize, Default)]
pub struct ListParams {
    product: Option<String>,
    name_prefix: Option<String>,
    names_only: Option<String>,
}

fn rules_mapping(s: &DbState, name: &str) -> Vec<i64> {
    s.rules
        .values()
        .filter(|r| r.mapping.as_deref() == Some(name) || r.fallback_mapping.as_deref() == Some(name))
        .map(|r| r.rule_id)
        .collect()
}

pub async fn list(State(st): State<AdminState>, Query(p): Query<ListParams>) -> Response {
    let s = st.db.read().await;
    let selected: Vec<&ReleaseRow> = s
        .releases
        .values()
        .filter(|r| p.product.as_deref().is_none_or(|x| x == r.product))
        .filter(|r| p.name_prefix.as_deref().is_none_or(|x| r.name.starts_with(x)))
        .collect();
    if p.names_only.is_some() {
        return Json(json!({"names": selected.iter().map(|r| &r.name).collect::<Vec<_>>()})).into_response();
    }
    let releases: Vec<Value> = selected
        .iter()
        .map(|r| {
            let ids = rules_mapping(&s, &r.name);
            let info: Map<String, Value> = ids
                .iter()
                .filter_map(|id| s.rules.get(id))
                .map(|rule| {
                    (
                        rule.rule_id.to_string(),
                        json!({"product": rule.product, "channel": rule.channel}),
                    )
                })
                .collect();
            json!({"name": r.name, "product": r.product, "data_version": r.data_version, "read_only": r.read_only,
                   "rule_ids": ids, "rule_info": info, "required_signoffs": {}})
        })
        .collect();
    Json(json!({"releases": releases})).into_response()
}

fn not_found(name: &str) -> AdminError {
    AdminError::NotFound(format!("Release: {name} not found"))
}

pub async fn get_one(State(st): State<AdminState>, Path(name): Path<String>) -> Result<Response, AdminError> {
    let s = st.db.read().await;
    let r = s.releases.get(&name).ok_or_else(|| not_found(&name))?;
    Ok(versioned((*r.blob).clone(), r.data_version))
}

/// `POST /releases`: create only.
pub async fn create(State(st): State<AdminState>, Writer(_): Writer, body: Bytes) -> Result<Response, AdminError> {
    let m = json_body(&body)?;
    let name = str_field(&m, "name")?;
    let product = str_field(&m, "product")?;
    let blob =
        double_encoded(&m, "blob")?.ok_or_else(|| AdminError::BadRequest("'blob' is a required property".into()))?;
    schema::validate(&blob, Some(&name)).map_err(|e| AdminError::InvalidBlob(e.to_string()))?;
    let mut s = st.db.write().await;
    if s.releases.contains_key(&name) {
        return Err(AdminError::BadRequest(format!("Release {name} already exists")));
    }
    let row = ReleaseRow {
        name: name.clone(),
        product,
        blob: blob.into(),
        data_version: 1,
        read_only: false,
    };
    st.db.persist(put_release(&row)).await?;
    s.releases.insert(name, row);
    Ok((StatusCode::CREATED, Json(json!({"new_data_version": 1}))).into_response())
}

pub fn str_field(m: &Map<String, Value>, key: &str) -> Result<String, AdminError> {
    match m.get(key) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.trim().to_string()),
        _ => Err(AdminError::BadRequest(format!("'{key}' is a required property"))),
    }
}

/// `PUT /releases/{name}`: create or fully replace.
pub async fn replace(
    State(st): State<AdminState>,
    Writer(_): Writer,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, AdminError> {
    let m = json_body(&body)?;
    let product = str_field(&m, "product")?;
    let blob =
        double_encoded(&m, "blob")?.ok_or_else(|| AdminError::BadRequest("'blob' is a required property".into()))?;
    schema::validate(&blob, Some(&name)).map_err(|e| AdminError::InvalidBlob(e.to_string()))?;
    let mut s = st.db.write().await;
    let Some(current) = s.releases.get(&name).cloned() else {
        let row = ReleaseRow {
            name: name.clone(),
            product,
            blob: blob.into(),
            data_version: 1,
            read_only: false,
        };
        st.db.persist(put_release(&row)).await?;
        s.releases.insert(name, row);
        return Ok(StatusCode::CREATED.into_response());
    };
    if current.read_only {
        return Err(AdminError::ReadOnly(format!(
            "Cannot overwrite read only release {name}"
        )));
    }
    let dv =
        int_field(&m, "data_version")?.ok_or_else(|| AdminError::BadRequest("data_version field is missing".into()))?;
    let new_blob = if dv == current.data_version {
        blob
    } else {
        let base = st.db.release_at(&name, dv).await?.ok_or(AdminError::Outdated("PUT"))?;
        merge::merge3(&base, &current.blob, &blob).map_err(|_| AdminError::MergeConflict)?
    };
    let row = ReleaseRow {
        blob: new_blob.into(),
        data_version: current.data_version + 1,
        product,
        ..current
    };
    st.db.persist(put_release(&row)).await?;
    let n = row.data_version;
    s.releases.insert(name, row);
    Ok(Json(json!({"new_data_version": n})).into_response())
}

/// Where a change lands: the whole blob (top-level keys) or one build.
enum Target<'a> {
    TopLevel,
    Build {
        platform: &'a str,
        locale: &'a str,
        alias: Vec<String>,
    },
}

fn apply(blob: &Value, data: &Value, target: &Target, schema_version: Option<&Value>, hash: Option<&Value>) -> Value {
    let mut out = blob.clone();
    let Some(o) = out.as_object_mut() else { return out };
    if let Some(v) = schema_version {
        o.insert("schema_version".into(), v.clone());
    }
    if let Some(v) = hash {
        o.insert("hashFunction".into(), v.clone());
    }
    match target {
        Target::TopLevel => {
            for (k, v) in data.as_object().into_iter().flatten() {
                o.insert(k.clone(), v.clone());
            }
        }
        Target::Build {
            platform,
            locale,
            alias,
        } => {
            let platforms = o.entry("platforms").or_insert_with(|| json!({}));
            let real = platforms
                .get(*platform)
                .and_then(|p| p.get("alias"))
                .and_then(Value::as_str)
                .unwrap_or(platform)
                .to_string();
            if let Some(ps) = platforms.as_object_mut() {
                let entry = ps.entry(real.clone()).or_insert_with(|| json!({}));
                if let Some(e) = entry.as_object_mut() {
                    let locales = e.entry("locales").or_insert_with(|| json!({}));
                    if let Some(l) = locales.as_object_mut() {
                        l.insert(locale.to_string(), data.clone());
                    }
                }
                for a in alias {
                    if !ps.contains_key(a) {
                        ps.insert(a.clone(), json!({"alias": real}));
                    }
                }
            }
        }
    }
    out
}

/// The shared body of `POST /releases/{name}` and the builds `PUT`.
async fn change_release(
    st: &AdminState,
    name: &str,
    m: &Map<String, Value>,
    target: Target<'_>,
) -> Result<Response, AdminError> {
    let product = str_field(m, "product")?;
    let data =
        double_encoded(m, "data")?.ok_or_else(|| AdminError::BadRequest("'data' is a required property".into()))?;
    if !data.is_object() {
        return Err(AdminError::BadRequest("'data' must be a JSON object".into()));
    }
    let schema_version = m.get("schema_version").cloned().or_else(|| {
        matches!(target, Target::TopLevel)
            .then(|| data.get("schema_version").cloned())
            .flatten()
    });
    let hash = m.get("hashFunction").cloned().or_else(|| {
        matches!(target, Target::TopLevel)
            .then(|| data.get("hashFunction").cloned())
            .flatten()
    });
    let mut s = st.db.write().await;
    let current = s.releases.get(name).cloned();
    let mut ops = Vec::new();
    let (base_row, created) = match current {
        Some(r) => {
            if r.product != product {
                return Err(AdminError::BadRequest(format!(
                    "Product name '{product}' doesn't match the one on the release object ('{}') for release '{name}'",
                    r.product
                )));
            }
            if r.read_only {
                return Err(AdminError::ReadOnly(format!(
                    "Cannot overwrite read only release {name}"
                )));
            }
            if let (Some(h), Some(cur)) = (&hash, r.blob.get("hashFunction")) {
                if h != cur {
                    return Err(AdminError::BadRequest(format!(
                        "hashFunction '{h}' doesn't match the release's ({cur})"
                    )));
                }
            }
            (r, false)
        }
        None => {
            let sv = schema_version
                .clone()
                .ok_or_else(|| AdminError::BadRequest("schema_version is required".into()))?;
            let mut blob = json!({"name": name, "schema_version": sv});
            if let Some(h) = &hash {
                blob["hashFunction"] = h.clone();
            }
            let row = ReleaseRow {
                name: name.to_string(),
                product: product.clone(),
                blob: blob.into(),
                data_version: 1,
                read_only: false,
            };
            ops.extend(put_release(&row));
            (row, true)
        }
    };
    let locale_existed = match &target {
        Target::Build { platform, locale, .. } => {
            crate::services::balrog::update::locale_of(&base_row.blob, platform, locale).is_some()
        }
        Target::TopLevel => true,
    };
    let given = int_field(m, "data_version")?;
    let new_blob = if created {
        apply(&base_row.blob, &data, &target, schema_version.as_ref(), hash.as_ref())
    } else {
        let dv = given.ok_or_else(|| AdminError::BadRequest("Release exists, data_version must be provided".into()))?;
        if dv == base_row.data_version {
            apply(&base_row.blob, &data, &target, schema_version.as_ref(), hash.as_ref())
        } else {
            let ancestor = st.db.release_at(name, dv).await?.ok_or(AdminError::Outdated("POST"))?;
            let ours = apply(&ancestor, &data, &target, schema_version.as_ref(), hash.as_ref());
            merge::merge3(&ancestor, &base_row.blob, &ours).map_err(|_| AdminError::MergeConflict)?
        }
    };
    schema::validate(&new_blob, Some(name)).map_err(|e| AdminError::InvalidBlob(e.to_string()))?;
    let row = ReleaseRow {
        blob: new_blob.into(),
        data_version: base_row.data_version + 1,
        ..base_row
    };
    ops.extend(put_release(&row));
    st.db.persist(ops).await?;
    let n = row.data_version;
    s.releases.insert(name.to_string(), row);
    drop(s);
    if let Some(copy_to) = double_encoded(m, "copyTo")? {
        for other in copy_to.as_array().into_iter().flatten().filter_map(Value::as_str) {
            let mut m2 = m.clone();
            m2.remove("copyTo");
            let dv = st.db.read().await.releases.get(other).map(|r| r.data_version);
            match dv {
                Some(dv) => m2.insert("data_version".into(), dv.into()),
                None => m2.remove("data_version"),
            };
            let t = match &target {
                Target::TopLevel => Target::TopLevel,
                Target::Build {
                    platform,
                    locale,
                    alias,
                } => Target::Build {
                    platform,
                    locale,
                    alias: alias.clone(),
                },
            };
            Box::pin(change_release(st, other, &m2, t)).await?;
        }
    }
    let status = if created || !locale_existed {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(json!({"new_data_version": n}))).into_response())
}

pub async fn change(
    State(st): State<AdminState>,
    Writer(_): Writer,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, AdminError> {
    let m = json_body(&body)?;
    change_release(&st, &name, &m, Target::TopLevel).await
}

pub async fn put_build(
    State(st): State<AdminState>,
    Writer(_): Writer,
    Path((name, platform, locale)): Path<(String, String, String)>,
    body: Bytes,
) -> Result<Response, AdminError> {
    let m = json_body(&body)?;
    let alias: Vec<String> = double_encoded(&m, "alias")?
        .and_then(|a| a.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    let target = Target::Build {
        platform: &platform,
        locale: &locale,
        alias,
    };
    change_release(&st, &name, &m, target).await
}

pub async fn get_build(
    State(st): State<AdminState>,
    Path((name, platform, locale)): Path<(String, String, String)>,
) -> Result<Response, AdminError> {
    let s = st.db.read().await;
    let r = s.releases.get(&name).ok_or_else(|| not_found(&name))?;
    let l = crate::services::balrog::update::locale_of(&r.blob, &platform, &locale)
        .ok_or_else(|| AdminError::NotFound(format!("Cannot find locale {locale} in platform {platform}")))?;
    Ok(versioned(l, r.data_version))
}

#[derive(Debug, Deserialize)]
pub struct VersionParam {
    data_version: Option<String>,
}

pub async fn delete(
    State(st): State<AdminState>,
    Writer(_): Writer,
    Path(name): Path<String>,
    Query(p): Query<VersionParam>,
) -> Result<Response, AdminError> {
    let mut s = st.db.write().await;
    let r = s.releases.get(&name).ok_or_else(|| not_found(&name))?;
    if r.read_only {
        return Err(AdminError::ReadOnly(format!("Cannot delete read only release {name}")));
    }
    if !rules_mapping(&s, &name).is_empty() {
        return Err(AdminError::BadRequest(format!(
            "{name} has rules pointing to it. Hence it cannot be deleted."
        )));
    }
    let dv: Option<i64> = p.data_version.as_deref().and_then(|v| v.parse().ok());
    if dv.is_some_and(|dv| dv != r.data_version) {
        return Err(AdminError::Outdated("DELETE"));
    }
    st.db
        .persist(vec![crate::services::balrog::db::Op::Delete {
            kind: "release",
            key: name.clone(),
        }])
        .await?;
    s.releases.remove(&name);
    Ok(StatusCode::OK.into_response())
}

pub async fn get_read_only(State(st): State<AdminState>, Path(name): Path<String>) -> Result<Response, AdminError> {
    let s = st.db.read().await;
    let r = s.releases.get(&name).ok_or_else(|| not_found(&name))?;
    Ok(Json(json!({"read_only": r.read_only})).into_response())
}

pub async fn set_read_only(
    State(st): State<AdminState>,
    Writer(_): Writer,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, AdminError> {
    let m = json_body(&body)?;
    let ro = m
        .get("read_only")
        .and_then(Value::as_bool)
        .ok_or_else(|| AdminError::BadRequest("'read_only' is a required boolean".into()))?;
    let mut s = st.db.write().await;
    let r = s.releases.get(&name).cloned().ok_or_else(|| not_found(&name))?;
    let dv =
        int_field(&m, "data_version")?.ok_or_else(|| AdminError::BadRequest("data_version field is missing".into()))?;
    if dv != r.data_version {
        return Err(AdminError::Outdated("PUT"));
    }
    if r.read_only == ro {
        return Ok((StatusCode::CREATED, Json(json!({"new_data_version": r.data_version}))).into_response());
    }
    let row = ReleaseRow {
        read_only: ro,
        data_version: r.data_version + 1,
        ..r
    };
    st.db.persist(put_release(&row)).await?;
    let n = row.data_version;
    s.releases.insert(name, row);
    Ok((StatusCode::CREATED, Json(json!({"new_data_version": n}))).into_response())
}

/// `{".": N, "platforms": {p: {"locales": {l: N}}}}` for a release.
fn data_versions(r: &ReleaseRow) -> Value {
    let mut platforms = Map::new();
    for (p, entry) in r.blob.get("platforms").and_then(Value::as_object).into_iter().flatten() {
        if let Some(locales) = entry.get("locales").and_then(Value::as_object) {
            let l: Map<String, Value> = locales.keys().map(|k| (k.clone(), json!(r.data_version))).collect();
            platforms.insert(p.clone(), json!({"locales": l}));
        }
    }
    json!({".": r.data_version, "platforms": platforms})
}

pub async fn v2_get(State(st): State<AdminState>, Path(name): Path<String>) -> Result<Response, AdminError> {
    let s = st.db.read().await;
    let r = s.releases.get(&name).ok_or_else(|| not_found(&name))?;
    Ok(
        Json(json!({"blob": r.blob, "data_versions": data_versions(r), "sc_blob": null, "sc_data_versions": null}))
            .into_response(),
    )
}

fn deep_merge(into: &mut Value, from: &Value) {
    match (into, from) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                deep_merge(a.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (slot, v) => *slot = v.clone(),
    }
}

async fn v2_write(st: &AdminState, name: &str, m: &Map<String, Value>, replace: bool) -> Result<Response, AdminError> {
    let blob = m
        .get("blob")
        .cloned()
        .ok_or_else(|| AdminError::BadRequest("'blob' is a required property".into()))?;
    let mut s = st.db.write().await;
    let current = s.releases.get(name).cloned();
    let old = m
        .get("old_data_versions")
        .and_then(|v| v.get("."))
        .and_then(Value::as_i64);
    let row = match current {
        None => {
            if !replace {
                return Err(AdminError::NotFound(format!("Release: {name} not found")));
            }
            let product = str_field(m, "product")?;
            ReleaseRow {
                name: name.to_string(),
                product,
                blob: blob.into(),
                data_version: 1,
                read_only: false,
            }
        }
        Some(r) => {
            if r.read_only {
                return Err(AdminError::BadRequest(format!(
                    "Cannot update read only release {name}"
                )));
            }
            if old.is_some_and(|o| o != r.data_version) || (!replace && old.is_none()) {
                return Err(AdminError::Outdated(if replace { "PUT" } else { "POST" }));
            }
            let new_blob = if replace {
                blob
            } else {
                let mut b = (*r.blob).clone();
                deep_merge(&mut b, &blob);
                b
            };
            ReleaseRow {
                blob: new_blob.into(),
                data_version: r.data_version + 1,
                ..r
            }
        }
    };
    schema::validate(&row.blob, Some(name)).map_err(|e| AdminError::InvalidBlob(e.to_string()))?;
    st.db.persist(put_release(&row)).await?;
    let dvs = data_versions(&row);
    s.releases.insert(name.to_string(), row);
    Ok(Json(dvs).into_response())
}

pub async fn v2_put(
    State(st): State<AdminState>,
    Writer(_): Writer,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, AdminError> {
    v2_write(&st, &name, &json_body(&body)?, true).await
}

pub async fn v2_post(
    State(st): State<AdminState>,
    Writer(_): Writer,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, AdminError> {
    v2_write(&st, &name, &json_body(&body)?, false).await
}

pub async fn v2_delete(
    State(st): State<AdminState>,
    w: Writer,
    Path(name): Path<String>,
) -> Result<Response, AdminError> {
    delete(State(st), w, Path(name), Query(VersionParam { data_version: None })).await
}
