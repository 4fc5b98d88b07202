//! Evaluating one update request: emergency shutoff, rule selection,
//! throttling, the blob's "should serve" verdict and pinning, then rendering
//! (reference balrog.md §2.3-2.9).
use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

use super::blob::{self, text};
use super::query::{Force, UpdateQuery};
use super::{matching, render};
use crate::services::balrog::source::{SourceError, UpdateSource};
use crate::services::balrog::version::{self, MozVersion};

/// Host allowlist and force hosts (upstream app config).
#[derive(Debug, Clone, Default)]
pub struct UpdateConfig {
    /// URLs starting with one of these get `force=…` appended when forced.
    pub special_force_hosts: Vec<String>,
    /// host → products allowed to point there; `None` allows every host.
    pub allowlist: Option<BTreeMap<String, Vec<String>>>,
}

/// Rolls the throttling dice: a uniform integer in 0..100.
pub type Dice = Arc<dyn Fn() -> u32 + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// HTTP 400, text/plain.
    #[error("{0}")]
    BadData(String),
    /// HTTP 500.
    #[error("{0}")]
    Internal(String),
}

impl From<SourceError> for EvalError {
    fn from(e: SourceError) -> Self {
        Self::Internal(e.to_string())
    }
}

/// The parts of a document with an update: the wrapper line, the inner lines,
/// and the closing line.
#[derive(Debug, Clone, Default)]
pub struct Parts {
    pub header: String,
    pub body: Vec<String>,
    pub footer: String,
}

impl Parts {
    pub fn empty() -> Self {
        Self::default()
    }
}

/// The answer to one request.
#[derive(Debug, Clone)]
pub struct Evaluation {
    /// rule_id and data_version of the selected rule.
    pub rule: Option<(i64, i64)>,
    /// `None`: no update.
    pub parts: Option<Parts>,
    /// Bug 1517743: two broken nightlies need the document without whitespace.
    pub squash: bool,
}

impl Evaluation {
    /// The XML document.
    pub fn document(&self) -> String {
        let doc = match &self.parts {
            None => "<?xml version=\"1.0\"?>\n<updates>\n</updates>".to_string(),
            Some(p) => {
                let mut lines = vec![
                    "<?xml version=\"1.0\"?>".to_string(),
                    "<updates>".to_string(),
                    p.header.clone(),
                ];
                lines.extend(p.body.iter().cloned());
                lines.push(p.footer.clone());
                lines.push("</updates>".into());
                if self.squash {
                    lines.iter().map(|l| l.trim_start()).collect::<Vec<_>>().join("")
                } else {
                    lines.join("\n")
                }
            }
        };
        escape_ampersands(&doc)
    }
}

/// Every `&` not already starting `&amp;` becomes `&amp;`.
pub fn escape_ampersands(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        if rest[i..].starts_with("&amp;") {
            out.push_str("&amp;");
            rest = &rest[i + 5..];
        } else {
            out.push_str("&amp;");
            rest = &rest[i + 1..];
        }
    }
    out.push_str(rest);
    out
}

enum Verdict {
    No,
    Yes,
    /// Newer than the pin: look for a pinned release.
    Maybe,
}

pub struct Engine {
    pub(super) source: Arc<dyn UpdateSource>,
    pub(super) config: UpdateConfig,
    dice: Dice,
}

fn bad_version(e: version::InvalidVersion) -> EvalError {
    EvalError::BadData(e.to_string())
}

impl Engine {
    pub fn new(source: Arc<dyn UpdateSource>, config: UpdateConfig, dice: Dice) -> Self {
        Self { source, config, dice }
    }

    pub(super) fn allowed(&self, url: &str, product: &str) -> bool {
        let Some(list) = &self.config.allowlist else {
            return true;
        };
        let host = url::Url::parse(url).ok().and_then(|u| u.host_str().map(str::to_string));
        host.and_then(|h| list.get(&h))
            .is_some_and(|products| products.iter().any(|p| p == product))
    }

    pub(super) fn apply_force(&self, url: String, q: &UpdateQuery) -> String {
        let Some(force) = q.force else { return url };
        if !self
            .config
            .special_force_hosts
            .iter()
            .any(|h| url.starts_with(h.as_str()))
        {
            return url;
        }
        let sep = if url.contains('?') { '&' } else { '?' };
        format!("{url}{sep}force={}", force.query_value())
    }

    /// Evaluate a request from the top.
    pub async fn evaluate(&self, q: &UpdateQuery) -> Result<Evaluation, EvalError> {
        let mut ev = Evaluation {
            rule: None,
            parts: None,
            squash: false,
        };
        if self.source.emergency_shutoff(&q.product, &q.channel).await?
            || self.source.emergency_shutoff(&q.product, q.fallback_channel()).await?
        {
            return Ok(ev);
        }
        let rules = self.source.rules().await?;
        let Some(rule) = matching::select(&rules, q).map_err(bad_version)? else {
            return Ok(ev);
        };
        ev.rule = Some((rule.rule_id, rule.data_version));
        let Some((name, blob)) = self.chosen_release(rule, q).await? else {
            return Ok(ev);
        };
        let update_type = rule.update_type.clone().unwrap_or_else(|| "minor".into());
        ev.squash = name == "Firefox-mozilla-central-nightly-latest"
            && matches!(q.build_id.as_str(), "20190103220533" | "20190104093221");
        let product = self.product_of(&name, q).await?;
        ev.parts = self.render(&blob, q, &update_type, &product).await?;
        Ok(ev)
    }

    /// The product whose allowlist applies to a release's URLs.
    async fn product_of(&self, release: &str, q: &UpdateQuery) -> Result<String, EvalError> {
        Ok(self
            .source
            .release_product(release)
            .await?
            .unwrap_or_else(|| q.product.clone()))
    }

    /// Mapping after throttling, loaded and checked (pins included).
    async fn chosen_release(
        &self,
        rule: &crate::services::balrog::rule::Rule,
        q: &UpdateQuery,
    ) -> Result<Option<(String, std::sync::Arc<Value>)>, EvalError> {
        let Some(mut mapping) = rule.mapping.clone() else {
            return Ok(None);
        };
        let rate = rule.background_rate.unwrap_or(100);
        if q.force != Some(Force::Always) && rate < 100 {
            let throttled = q.force == Some(Force::Fallback) || i64::from((self.dice)()) >= rate;
            if throttled {
                match &rule.fallback_mapping {
                    Some(f) => mapping = f.clone(),
                    None => return Ok(None),
                }
            }
        }
        let Some(blob) = self.source.release(&mapping).await? else {
            return Ok(None);
        };
        match self.verdict(&blob, q)? {
            Verdict::No => Ok(None),
            Verdict::Yes => Ok(Some((mapping, blob))),
            Verdict::Maybe => {
                let pin = q.pin.clone().unwrap_or_default();
                match self
                    .source
                    .pinned_release(&q.product, q.fallback_channel(), &pin)
                    .await?
                {
                    None => Ok(Some((mapping, blob))),
                    Some(pinned) => {
                        let Some(pblob) = self.source.release(&pinned).await? else {
                            return Ok(None);
                        };
                        match self.verdict(&pblob, q)? {
                            Verdict::No => Ok(None),
                            _ => Ok(Some((pinned, pblob))),
                        }
                    }
                }
            }
        }
    }

    fn verdict(&self, blob: &Value, q: &UpdateQuery) -> Result<Verdict, EvalError> {
        let schema = blob::schema(blob);
        if !(1..=9).contains(&schema) {
            return Ok(Verdict::Yes);
        }
        if q.build_target.is_empty() || q.locale.is_empty() || q.version.is_empty() || q.build_id.is_empty() {
            return Ok(Verdict::No);
        }
        let resolved = blob::platform(blob, &q.build_target);
        let loc = resolved.as_ref().and_then(|(_, p)| blob::locale(p, &q.locale));
        let Some(app_version) = blob::app_version(blob, loc) else {
            return Ok(Verdict::No);
        };
        let loose = matches!(q.product.as_str(), "FirefoxVPN" | "Guardian");
        let ord = if loose {
            version::loose_cmp(&q.version, &app_version)
        } else {
            version::cmp_versions(&q.version, &app_version).map_err(bad_version)?
        };
        match ord {
            std::cmp::Ordering::Greater => return Ok(Verdict::No),
            std::cmp::Ordering::Equal => {
                let release_build = resolved.as_ref().and_then(|(_, p)| blob::build_id(p, loc));
                if let Some(rb) = release_build {
                    if q.build_id.as_str() >= rb.as_str() {
                        return Ok(Verdict::No);
                    }
                }
            }
            std::cmp::Ordering::Less => {}
        }
        if !blob::has_platform(blob, &q.build_target) {
            return Ok(Verdict::No);
        }
        if let Some(pin) = &q.pin {
            if newer_than_pin(&app_version, pin)? {
                return Ok(Verdict::Maybe);
            }
        }
        Ok(Verdict::Yes)
    }

    /// Render a blob of any type; `None` when it yields no update.
    fn render<'a>(
        &'a self,
        blob: &'a Value,
        q: &'a UpdateQuery,
        update_type: &'a str,
        product: &'a str,
    ) -> futures::future::BoxFuture<'a, Result<Option<Parts>, EvalError>> {
        Box::pin(async move {
            let addons = |body: Vec<String>| Parts {
                header: "    <addons>".into(),
                body,
                footer: "    </addons>".into(),
            };
            match blob::schema(blob) {
                1..=9 => Ok(Some(self.render_app(blob, q, update_type, product).await?)),
                50 => Ok(Some(self.render_desupport(blob, q, update_type))),
                1000 => Ok(Some(addons(self.render_addons(blob, q, "vendors", true, product)))),
                5000 => {
                    let body = self.render_addons(blob, q, "addons", false, product);
                    let uninstall = blob.get("uninstall").and_then(Value::as_bool) == Some(true);
                    if body.is_empty() && !uninstall {
                        Ok(Some(Parts::empty()))
                    } else {
                        Ok(Some(addons(body)))
                    }
                }
                4000 => Ok(Some(addons(self.render_superblob(blob, q).await?))),
                _ => Ok(None),
            }
        })
    }

    async fn render_superblob(&self, blob: &Value, q: &UpdateQuery) -> Result<Vec<String>, EvalError> {
        let mut body = Vec::new();
        if let Some(products) = blob.get("products").and_then(Value::as_array) {
            for product in products.iter().filter_map(|p| text(Some(p))) {
                let mut sub = q.clone();
                sub.product = product;
                let rules = self.source.rules().await?;
                let Some(rule) = matching::select(&rules, &sub).map_err(bad_version)? else {
                    continue;
                };
                if let Some((name, b)) = self.chosen_release(rule, &sub).await? {
                    let t = rule.update_type.clone().unwrap_or_else(|| "minor".into());
                    let product = self.product_of(&name, &sub).await?;
                    if let Some(p) = self.render(&b, &sub, &t, &product).await? {
                        body.extend(p.body);
                    }
                }
            }
        } else if let Some(names) = blob.get("blobs").and_then(Value::as_array) {
            for name in names.iter().filter_map(|p| text(Some(p))) {
                if let Some(b) = self.source.release(&name).await? {
                    let product = self.product_of(&name, q).await?;
                    if let Some(p) = self.render(&b, q, "minor", &product).await? {
                        body.extend(p.body);
                    }
                }
            }
        }
        Ok(body)
    }
}

/// Whether `version` is newer than the pin `X.` or `X.Y.`; an invalid pin is bad data.
fn newer_than_pin(version: &str, pin: &str) -> Result<bool, EvalError> {
    let invalid = || EvalError::BadData(format!("Version Pin String '{}' is invalid.", render::html_escape(pin)));
    let parts: Vec<&str> = pin.split('.').collect();
    let valid = pin.ends_with('.')
        && (parts.len() == 2 || parts.len() == 3)
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
    if !valid {
        return Err(invalid());
    }
    let pin_nums: Vec<u64> = parts[..parts.len() - 1].iter().filter_map(|p| p.parse().ok()).collect();
    let v = MozVersion::parse(version).map_err(bad_version)?;
    Ok(v.nums[..pin_nums.len()] > pin_nums[..])
}
