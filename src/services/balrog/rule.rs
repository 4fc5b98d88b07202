//! A Balrog rule: the 23 columns of the `rules` table (reference §4).
//! Shared by the admin API (CRUD, storage) and the update engine (matching).
use serde::{Deserialize, Serialize};

/// One rule exactly as Balrog's JSON shows it (all 23 keys, NULLs as `null`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Rule {
    pub rule_id: i64,
    pub alias: Option<String>,
    pub priority: Option<i64>,
    pub mapping: Option<String>,
    #[serde(rename = "fallbackMapping")]
    pub fallback_mapping: Option<String>,
    #[serde(rename = "backgroundRate")]
    pub background_rate: Option<i64>,
    pub update_type: Option<String>,
    pub product: Option<String>,
    pub version: Option<String>,
    pub channel: Option<String>,
    #[serde(rename = "buildTarget")]
    pub build_target: Option<String>,
    #[serde(rename = "buildID")]
    pub build_id: Option<String>,
    pub locale: Option<String>,
    #[serde(rename = "osVersion")]
    pub os_version: Option<String>,
    pub memory: Option<String>,
    #[serde(rename = "instructionSet")]
    pub instruction_set: Option<String>,
    pub jaws: Option<bool>,
    pub mig64: Option<bool>,
    pub distribution: Option<String>,
    #[serde(rename = "distVersion")]
    pub dist_version: Option<String>,
    #[serde(rename = "headerArchitecture")]
    pub header_architecture: Option<String>,
    pub comment: Option<String>,
    pub data_version: i64,
}
