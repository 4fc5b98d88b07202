//! `POST /__stagelib__/import` (Hawk-signed like every write): load releases
//! from a snapshot as they are (names, phases, status), replacing releases of the
//! same name. Reading them back needs nothing new: `GET /releases?status=...`.
#![allow(clippy::result_large_err)] // the error is an axum Response, as in api.rs
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::api::{problem, write, Signed};
use super::Shipit;
use crate::seed::snapshot::ShipitData;

pub async fn import(State(s): State<Shipit>, signed: Signed) -> Response {
    let data: ShipitData = match serde_json::from_slice(&signed.body) {
        Ok(d) => d,
        Err(e) => return problem(StatusCode::BAD_REQUEST, format!("body: {e}")),
    };
    for r in &data.releases {
        if r.name.is_empty() || super::state::phases_of(&r.product).is_none() {
            return problem(
                StatusCode::BAD_REQUEST,
                format!("releases[{}].product: `{}` is not a ship-it product", r.name, r.product),
            );
        }
    }
    let changed = {
        let d = s.data.lock().unwrap_or_else(|p| p.into_inner());
        data.releases
            .iter()
            .filter(|r| d.releases.get(&r.name) != Some(r))
            .count()
    };
    if changed == 0 {
        return Json(json!({"changed": 0})).into_response();
    }
    write(&s, |d| {
        for r in data.releases {
            d.releases.insert(r.name.clone(), r);
        }
        Ok(Json(json!({"changed": changed})).into_response())
    })
}
