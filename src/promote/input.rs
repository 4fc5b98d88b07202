//! The `release-promotion` action's input (reference promotion.md §2.1),
//! validated as a whole before anything runs: every problem is reported, each
//! naming its field.
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::flavor::{self, Flavor, KINDS};
use crate::version::GeckoVersion;

/// One previous release to build a partial update from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartialUpdate {
    #[serde(rename = "buildNumber")]
    pub build_number: u32,
    pub locales: Vec<String>,
}

/// The action input exactly as a caller (Ship-it, the CLI) sends it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromotionInput {
    pub release_promotion_flavor: String,
    pub build_number: u32,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub next_version: String,
    #[serde(default)]
    pub partial_updates: BTreeMap<String, PartialUpdate>,
    #[serde(default)]
    pub previous_graph_ids: Vec<String>,
    #[serde(default)]
    pub revision: Option<String>,
    /// `None`: the flavor's list (promotion.md §2.3: not the schema default).
    #[serde(default)]
    pub rebuild_kinds: Option<Vec<String>>,
    #[serde(default)]
    pub do_not_optimize: Option<Vec<String>>,
    #[serde(default)]
    pub release_eta: String,
    #[serde(default)]
    pub release_enable_partner_repack: bool,
    #[serde(default)]
    pub release_enable_partner_attribution: bool,
    #[serde(default)]
    pub release_enable_emefree: bool,
}

/// An input that passed validation, with what it implies.
#[derive(Debug, Clone)]
pub struct ValidInput {
    pub input: PromotionInput,
    pub flavor: &'static Flavor,
    pub version: GeckoVersion,
    /// Partials' versions, newest first.
    pub partials: Vec<(GeckoVersion, u32)>,
    pub rebuild_kinds: Vec<String>,
    pub do_not_optimize: Vec<String>,
    pub release_eta: Option<chrono::DateTime<chrono::Utc>>,
}

/// Every problem found, each naming its field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid promotion input:\n  - {}", .0.join("\n  - "))]
pub struct InputError(pub Vec<String>);

/// A Taskcluster slugid: 22 characters of URL-safe base64.
pub fn is_slugid(s: &str) -> bool {
    s.len() == 22 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

impl PromotionInput {
    pub fn validate(self) -> Result<ValidInput, InputError> {
        let mut errs = Vec::new();
        let flavor = match flavor::flavor(&self.release_promotion_flavor) {
            Ok(f) => Some(f),
            Err(e) => {
                errs.push(format!("release_promotion_flavor: {e}"));
                None
            }
        };
        if self.build_number < 1 {
            errs.push("build_number: must be an integer >= 1".into());
        }
        let version = match self.version.parse::<GeckoVersion>() {
            Ok(v) => Some(v),
            Err(e) => {
                errs.push(format!("version: {e}"));
                None
            }
        };
        if let Some(f) = flavor {
            if f.version_bump && (self.next_version.is_empty() || self.next_version == "None") {
                errs.push(format!(
                    "next_version: required by flavor {} (it bumps the version)",
                    f.name
                ));
            }
            if !f.version_bump && !self.next_version.is_empty() {
                if let Err(e) = self.next_version.parse::<GeckoVersion>() {
                    errs.push(format!("next_version: {e}"));
                }
            }
            if !f.partial_updates && !self.partial_updates.is_empty() {
                errs.push(format!("partial_updates: flavor {} builds no partials", f.name));
            }
        }
        let mut partials = Vec::new();
        for (v, p) in &self.partial_updates {
            match v.parse::<GeckoVersion>() {
                Ok(pv) => {
                    if version.as_ref().is_some_and(|cur| &pv >= cur) {
                        errs.push(format!(
                            "partial_updates.{v}: must be older than version {}",
                            self.version
                        ));
                    }
                    if p.build_number < 1 {
                        errs.push(format!("partial_updates.{v}.buildNumber: must be >= 1"));
                    }
                    if p.locales.is_empty() {
                        errs.push(format!("partial_updates.{v}.locales: must list at least one locale"));
                    }
                    partials.push((pv, p.build_number));
                }
                Err(e) => errs.push(format!("partial_updates.{v}: {e}")),
            }
        }
        partials.sort_by(|a, b| b.0.cmp(&a.0));
        for (i, id) in self.previous_graph_ids.iter().enumerate() {
            if !is_slugid(id) {
                errs.push(format!(
                    "previous_graph_ids[{i}]: `{id}` is not a task group ID (22 URL-safe base64 characters)"
                ));
            }
        }
        let rebuild_kinds = match (&self.rebuild_kinds, flavor) {
            (Some(k), _) => k.clone(),
            (None, Some(f)) => f.rebuild_kinds.iter().map(|s| s.to_string()).collect(),
            (None, None) => Vec::new(),
        };
        const BUILD_KINDS: [&str; 4] = ["docker-image", "fetch", "packages", "toolchain"];
        for k in &rebuild_kinds {
            let known = KINDS.iter().any(|x| x.name == k) || BUILD_KINDS.contains(&k.as_str());
            if !known && !k.starts_with("release-partner") {
                errs.push(format!("rebuild_kinds: unknown kind `{k}`"));
            }
        }
        let release_eta = if self.release_eta.is_empty() {
            None
        } else {
            match chrono::DateTime::parse_from_rfc3339(&self.release_eta) {
                Ok(t) => Some(t.with_timezone(&chrono::Utc)),
                Err(e) => {
                    errs.push(format!("release_eta: `{}` is not ISO-8601 ({e})", self.release_eta));
                    None
                }
            }
        };
        if let Some(r) = &self.revision {
            if r.len() < 12 || r.len() > 40 || !r.chars().all(|c| c.is_ascii_hexdigit()) {
                errs.push(format!("revision: `{r}` is not a 12-40 digit hex revision"));
            }
        }
        match (flavor, version, errs.is_empty()) {
            (Some(flavor), Some(version), true) => Ok(ValidInput {
                do_not_optimize: self.do_not_optimize.clone().unwrap_or_default(),
                input: self,
                flavor,
                version,
                partials,
                rebuild_kinds,
                release_eta,
            }),
            _ => Err(InputError(errs)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> PromotionInput {
        PromotionInput {
            release_promotion_flavor: "promote_firefox".into(),
            build_number: 1,
            version: "158.0b5".into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_good_input_passes_and_partials_are_newest_first() {
        let mut i = base();
        for v in ["158.0b2", "158.0b4", "158.0b3"] {
            i.partial_updates.insert(
                v.into(),
                PartialUpdate {
                    build_number: 1,
                    locales: vec!["de".into()],
                },
            );
        }
        let v = i.validate().expect("valid");
        let order: Vec<String> = v.partials.iter().map(|(p, _)| p.to_string()).collect();
        assert_eq!(order, ["158.0b4", "158.0b3", "158.0b2"]);
        assert!(v.rebuild_kinds.is_empty(), "the flavor's list, not the schema default");
    }

    #[test]
    fn every_problem_is_reported_with_its_field() {
        let mut i = base();
        i.release_promotion_flavor = "ship_firefox".into();
        i.build_number = 0;
        i.partial_updates.insert(
            "159.0b1".into(),
            PartialUpdate {
                build_number: 1,
                locales: vec![],
            },
        );
        i.previous_graph_ids = vec!["nope".into()];
        i.release_eta = "tomorrow".into();
        i.rebuild_kinds = Some(vec!["laundry".into()]);
        let e = i.validate().expect_err("invalid");
        let text = e.to_string();
        for field in [
            "build_number",
            "next_version",
            "partial_updates.159.0b1:",
            "partial_updates.159.0b1.locales",
            "previous_graph_ids[0]",
            "release_eta",
            "rebuild_kinds",
        ] {
            assert!(text.contains(field), "{field} missing from:\n{text}");
        }
        let unknown: Result<PromotionInput, _> =
            serde_json::from_str(r#"{"release_promotion_flavor": "promote_firefox", "build_number": 1, "colour": 1}"#);
        assert!(unknown.expect_err("unknown field").to_string().contains("colour"));
    }
}
