//! stagelib's own endpoints: `POST /__stagelib__/import` loads products (with
//! languages and locations) and aliases from a snapshot, replacing products of
//! the same name and leaving identical ones alone; `GET /__stagelib__/export`
//! returns the same shape (upstream has no way to list aliases). Both need the
//! admin credentials.
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::state::{Location, Product};
use super::Bouncer;
use crate::seed::snapshot::{BouncerData, BouncerProduct};

fn bad(msg: String) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"error": msg}))).into_response()
}

pub async fn import(State(b): State<Bouncer>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(denied) = super::admin::check_auth(&b, &headers) {
        return denied;
    }
    let data: BouncerData = match serde_json::from_slice(&body) {
        Ok(d) => d,
        Err(e) => return bad(format!("body: {e}")),
    };
    let mut guard = b.data.lock().unwrap_or_else(|p| p.into_inner());
    let mut next = guard.clone();
    for p in &data.products {
        if p.name.is_empty() || p.name.len() > 255 {
            return bad(format!("products[].name: `{}` must be 1-255 characters", p.name));
        }
        for (os, path) in &p.locations {
            if next.os_by_name(os).is_none() {
                return bad(format!("products[{}].locations.{os}: no such OS", p.name));
            }
            if !path.starts_with('/') || path.len() > 255 {
                return bad(format!(
                    "products[{}].locations.{os}: a path starts with `/` and has at most 255 characters",
                    p.name
                ));
            }
        }
    }
    let mut changed = 0;
    for p in data.products {
        if export_product(&next, &p.name).as_ref() == Some(&p) {
            continue;
        }
        changed += 1;
        let id = match next.product_by_name(&p.name) {
            Some(existing) => existing.id,
            None => {
                let id = next.next_product_id;
                next.next_product_id += 1;
                id
            }
        };
        next.products.insert(
            id,
            Product {
                id,
                name: p.name.clone(),
                ssl_only: p.ssl_only,
                languages: p.languages.iter().cloned().collect(),
            },
        );
        next.locations.retain(|_, l| l.product_id != id);
        for (os, path) in p.locations {
            let os_id = next.os_by_name(&os).map(|o| o.id).unwrap_or_default();
            let lid = next.next_location_id;
            next.next_location_id += 1;
            next.locations.insert(
                lid,
                Location {
                    id: lid,
                    product_id: id,
                    os_id,
                    path,
                },
            );
        }
    }
    for (alias, product) in data.aliases {
        if next.aliases.get(&alias) != Some(&product) {
            changed += 1;
            next.aliases.insert(alias, product);
        }
    }
    if changed > 0 {
        if let Some(dir) = &b.data_dir {
            if let Err(e) = next.save(dir) {
                tracing::error!(error = %e, "cannot persist bouncer state");
                return (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"error": e.to_string()}))).into_response();
            }
        }
        *guard = next;
    }
    Json(json!({"changed": changed})).into_response()
}

fn export_product(d: &super::state::State, name: &str) -> Option<BouncerProduct> {
    let p = d.product_by_name(name)?;
    Some(BouncerProduct {
        name: p.name.clone(),
        ssl_only: p.ssl_only,
        languages: p.languages.iter().cloned().collect(),
        locations: d
            .locations_of(p.id)
            .into_iter()
            .map(|l| (d.os_name(l.os_id).to_string(), l.path.clone()))
            .collect(),
    })
}

pub async fn export(State(b): State<Bouncer>, headers: HeaderMap) -> Response {
    if let Some(denied) = super::admin::check_auth(&b, &headers) {
        return denied;
    }
    let d = b.data.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let mut products: Vec<BouncerProduct> = d
        .products
        .values()
        .filter_map(|p| export_product(&d, &p.name))
        .collect();
    products.sort_by(|a, b| a.name.cmp(&b.name));
    Json(BouncerData {
        products,
        aliases: d.aliases.clone(),
    })
    .into_response()
}
