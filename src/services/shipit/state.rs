//! Ship-it's data: releases with phases, disabled products, product channel
//! versions, nightly releases. Written atomically to `<data-dir>/shipit.json`
//! before a change is acknowledged.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Phase {
    pub name: String,
    pub submitted: bool,
    #[serde(rename = "actionTaskId")]
    pub action_task_id: String,
    pub created: String,
    pub scheduled_at: String,
    pub skipped: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Release {
    pub name: String,
    pub product: String,
    pub branch: String,
    pub project: String,
    pub version: String,
    pub revision: String,
    pub build_number: i64,
    pub release_eta: String,
    pub status: String,
    pub created: String,
    pub completed: String,
    pub phases: Vec<Phase>,
    pub allow_phase_skipping: bool,
    #[serde(default)]
    pub partial_updates: serde_json::Value,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Nightly {
    pub product: String,
    pub channel: String,
    pub version: String,
    pub buildid: String,
    pub locales: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct State {
    pub releases: BTreeMap<String, Release>,
    /// product → branches ("" = every branch).
    pub disabled: BTreeMap<String, Vec<String>>,
    /// (product, channel) → version.
    pub versions: BTreeMap<String, String>,
    pub nightlies: Vec<Nightly>,
    /// Product-details rebuilds requested (counted, for tests and the report).
    pub product_details_rebuilds: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("corrupt ship-it state {path}: {source}")]
    Corrupt { path: PathBuf, source: serde_json::Error },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
}

impl State {
    pub fn load(dir: &Path) -> Result<Self, StateError> {
        let path = dir.join("shipit.json");
        match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b).map_err(|source| StateError::Corrupt { path, source }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(source) => Err(StateError::Read { path, source }),
        }
    }

    pub fn save(&self, dir: &Path) -> Result<(), StateError> {
        let path = dir.join("shipit.json");
        crate::services::common::write_json_atomic(&path, self).map_err(|source| StateError::Write { path, source })
    }
}

/// Ordered phases of each product (upstream products.yml).
pub fn phases_of(product: &str) -> Option<&'static [&'static str]> {
    Some(match product {
        "firefox" => &["promote_firefox", "push_firefox", "ship_firefox"],
        "devedition" => &["promote_devedition", "push_devedition", "ship_devedition"],
        "thunderbird" => &["promote_thunderbird", "push_thunderbird", "ship_thunderbird"],
        "firefox-android" => &["promote_android", "push_android", "ship_android"],
        "firefox-ios" => &["promote", "push", "ship"],
        "app-services" => &["promote", "ship"],
        _ => return None,
    })
}

/// Python's `str.capitalize()`: first letter upper, the rest lower.
pub fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c.flat_map(char::to_lowercase)).collect(),
        None => String::new(),
    }
}
