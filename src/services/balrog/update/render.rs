//! Rendering app-release blobs (schema 1-9) and add-on blobs (GMP,
//! SystemAddons, Desupport) into the lines of an update document
//! (reference balrog.md §2.10, §3.3, §3.4).
use serde_json::Value;

use super::blob::{self, text};
use super::engine::{Engine, EvalError, Parts};
use super::matching::channel_matches;
use super::query::{fallback_channel, UpdateQuery};
use crate::services::balrog::version;

/// Attribute value or Python's `None`, as Balrog prints missing values.
fn or_none(v: Option<String>) -> String {
    v.unwrap_or_else(|| "None".into())
}

fn attr(name: &str, value: &str) -> String {
    format!(" {name}=\"{value}\"")
}

/// A scalar as Balrog prints it: booleans lower-case.
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::Bool(b) => Some(if *b { "true" } else { "false" }.into()),
        other => text(Some(other)),
    }
}

impl Engine {
    /// The `<update …>` line and patch lines of an app release.
    pub(super) async fn render_app(
        &self,
        blob: &Value,
        q: &UpdateQuery,
        update_type: &str,
        product: &str,
    ) -> Result<Parts, EvalError> {
        let schema = blob::schema(blob);
        let Some((real, platform)) = blob::platform(blob, &q.build_target) else {
            return Ok(Parts::empty());
        };
        let locale = blob::locale(platform, &q.locale).ok_or_else(|| {
            EvalError::BadData(format!(
                "No such locale '{}' in platform '{}'",
                html_escape(&q.locale),
                html_escape(&q.build_target)
            ))
        })?;
        let loc_sub = |s: String| blob::substitute(&s, &[("LOCALE", Some(q.locale.as_str()))]);
        let build_id = blob::build_id(platform, Some(locale));
        let header = match schema {
            1 => {
                let mut h = format!("    <update type=\"{update_type}\"");
                h += &attr("version", &or_none(blob::layered(blob, Some(locale), "appv")));
                h += &attr("extensionVersion", &or_none(blob::layered(blob, Some(locale), "extv")));
                h += &attr("buildID", &or_none(build_id));
                if let Some(u) = text(blob.get("detailsUrl")) {
                    h += &attr("detailsURL", &loc_sub(u));
                }
                if let Some(u) = text(blob.get("licenseUrl")) {
                    h += &attr("licenseURL", &loc_sub(u));
                }
                h + ">"
            }
            2..=8 => {
                let mut h = format!("    <update type=\"{update_type}\"");
                h += &attr(
                    "displayVersion",
                    &or_none(blob::layered(blob, Some(locale), "displayVersion")),
                );
                h += &attr("appVersion", &or_none(blob::layered(blob, Some(locale), "appVersion")));
                h += &attr(
                    "platformVersion",
                    &or_none(blob::layered(blob, Some(locale), "platformVersion")),
                );
                h += &attr("buildID", &or_none(build_id));
                if let Some(u) = text(blob.get("detailsUrl")) {
                    h += &attr("detailsURL", &loc_sub(u));
                }
                if let Some(u) = text(blob.get("licenseUrl")) {
                    h += &attr("licenseURL", &loc_sub(u));
                }
                if locale.get("isOSUpdate").and_then(Value::as_bool) == Some(true) {
                    h += &attr("isOSUpdate", "true");
                }
                let mut optional = vec![];
                if schema <= 5 {
                    optional.push("billboardURL");
                }
                optional.extend([
                    "showPrompt",
                    "showNeverForVersion",
                    "actions",
                    "openURL",
                    "notificationURL",
                    "alertURL",
                ]);
                if schema >= 5 {
                    optional.push("promptWaitTime");
                }
                if schema >= 8 {
                    optional.extend(["binTransMerkleRoot", "binTransCertificate", "binTransSCTList"]);
                }
                for key in optional {
                    if let Some(v) = blob.get(key).and_then(scalar) {
                        let v = if key.ends_with("URL") { loc_sub(v) } else { v };
                        h += &attr(key, &v);
                    }
                }
                h + ">"
            }
            _ => self.v9_header(blob, locale, q, update_type, build_id)?,
        };
        let mut body = Vec::new();
        for kind in ["complete", "partial"] {
            if let Some(line) = self
                .patch_line(blob, schema, &real, platform, locale, q, kind, product)
                .await?
            {
                body.push(line);
            }
        }
        Ok(Parts {
            header,
            body,
            footer: "    </update>".into(),
        })
    }

    fn v9_header(
        &self,
        blob: &Value,
        locale: &Value,
        q: &UpdateQuery,
        update_type: &str,
        build_id: Option<String>,
    ) -> Result<String, EvalError> {
        let mut attrs: std::collections::BTreeMap<String, String> = std::collections::BTreeMap::new();
        attrs.insert(
            "appVersion".into(),
            or_none(blob::layered(blob, Some(locale), "appVersion")),
        );
        attrs.insert(
            "displayVersion".into(),
            or_none(blob::layered(blob, Some(locale), "displayVersion")),
        );
        attrs.insert("buildID".into(), or_none(build_id));
        attrs.insert("type".into(), update_type.to_string());
        for group in blob.get("updateLine").and_then(Value::as_array).into_iter().flatten() {
            if !self.update_line_applies(group.get("for"), q)? {
                continue;
            }
            for (k, v) in group.get("fields").and_then(Value::as_object).into_iter().flatten() {
                if let Some(s) = scalar(v) {
                    let s = if matches!(k.as_str(), "detailsURL" | "openURL" | "notificationURL" | "alertURL") {
                        blob::substitute(&s, &[("LOCALE", Some(q.locale.as_str()))])
                    } else {
                        s
                    };
                    attrs.insert(k.clone(), s);
                }
            }
        }
        let mut h = String::from("    <update");
        for (k, v) in attrs {
            h += &attr(&k, &v);
        }
        Ok(h + ">")
    }

    fn update_line_applies(&self, cond: Option<&Value>, q: &UpdateQuery) -> Result<bool, EvalError> {
        let Some(cond) = cond.and_then(Value::as_object) else {
            return Ok(true);
        };
        let list = |k: &str| -> Option<Vec<String>> {
            cond.get(k)
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|v| text(Some(v))).collect())
        };
        if let Some(chans) = list("channels") {
            let fb = fallback_channel(&q.channel);
            if !chans
                .iter()
                .any(|c| channel_matches(c, &q.channel) || channel_matches(c, fb))
            {
                return Ok(false);
            }
        }
        if let Some(locales) = list("locales") {
            if !locales.contains(&q.locale) {
                return Ok(false);
            }
        }
        if let Some(versions) = list("versions") {
            let mut any = false;
            for v in &versions {
                if version::version_matches(v, &q.version).map_err(|e| EvalError::BadData(e.to_string()))? {
                    any = true;
                }
            }
            if !any {
                return Ok(false);
            }
        }
        if let Some(ids) = list("buildIDs") {
            if !ids.iter().any(|b| version::build_id_matches(b, &q.build_id)) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The first qualifying patch of `kind` as a `<patch …/>` line.
    #[allow(clippy::too_many_arguments)]
    async fn patch_line(
        &self,
        blob: &Value,
        schema: i64,
        real: &str,
        platform: &Value,
        locale: &Value,
        q: &UpdateQuery,
        kind: &str,
        product: &str,
    ) -> Result<Option<String>, EvalError> {
        let candidates: Vec<&Value> = if schema <= 2 {
            locale.get(kind).into_iter().collect()
        } else {
            locale
                .get(format!("{kind}s"))
                .and_then(Value::as_array)
                .map(|a| a.iter().collect())
                .unwrap_or_default()
        };
        let hash_function = text(blob.get("hashFunction")).unwrap_or_default();
        for patch in candidates {
            let from = text(patch.get("from")).unwrap_or_default();
            if !self.partial_source_matches(&from, blob, real, q).await? {
                continue;
            }
            let Some(url) = self.patch_url(blob, schema, platform, q, kind, &from, patch) else {
                if kind == "complete" {
                    return Err(EvalError::Internal(format!(
                        "no URL for the complete patch of {}",
                        q.locale
                    )));
                }
                continue;
            };
            let url = self.apply_force(url, q);
            if !self.allowed(&url, product) {
                continue;
            }
            let mut line = format!("        <patch type=\"{kind}\"");
            line += &attr("URL", &url);
            line += &attr("hashFunction", &hash_function);
            line += &attr("hashValue", &or_none(text(patch.get("hashValue"))));
            line += &attr("size", &or_none(text(patch.get("filesize"))));
            if schema >= 8 {
                if let Some(p) = text(patch.get("binTransInclusionProof")) {
                    line += &attr("binTransInclusionProof", &p);
                }
            }
            return Ok(Some(line + "/>"));
        }
        Ok(None)
    }

    /// `from` is `*`, or the named release's build for this platform/locale is the
    /// one asking.
    async fn partial_source_matches(
        &self,
        from: &str,
        blob: &Value,
        real: &str,
        q: &UpdateQuery,
    ) -> Result<bool, EvalError> {
        if from == "*" {
            return Ok(true);
        }
        let Some(other) = self.source.release(from).await.map_err(EvalError::from)? else {
            return Ok(false);
        };
        let mut names = vec![q.build_target.clone(), real.to_string()];
        names.extend(blob::aliases_of(blob, real));
        for name in names {
            if let Some((_, plat)) = blob::platform(&other, &name) {
                let loc = blob::locale(plat, &q.locale);
                if blob::build_id(plat, loc).as_deref() == Some(q.build_id.as_str()) {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    #[allow(clippy::too_many_arguments)]
    fn patch_url(
        &self,
        blob: &Value,
        schema: i64,
        platform: &Value,
        q: &UpdateQuery,
        kind: &str,
        from: &str,
        patch: &Value,
    ) -> Option<String> {
        let os_ftp = text(platform.get("OS_FTP"));
        let os_bouncer = text(platform.get("OS_BOUNCER"));
        let mut pairs: Vec<(&str, Option<&str>)> = vec![
            ("LOCALE", Some(q.locale.as_str())),
            ("OS_FTP", os_ftp.as_deref()),
            ("OS_BOUNCER", os_bouncer.as_deref()),
        ];
        if let Some(own) = text(patch.get("fileUrl")) {
            return Some(blob::substitute(&own, &pairs));
        }
        let file_urls = blob.get("fileUrls")?;
        let fallback = fallback_channel(&q.channel);
        if schema >= 4 {
            let block = [q.channel.as_str(), fallback, "*"]
                .iter()
                .find_map(|c| file_urls.get(*c))?;
            let url = text(block.get(format!("{kind}s")).and_then(|m| m.get(from)))?;
            return Some(blob::substitute(&url, &pairs));
        }
        let template = [q.channel.as_str(), fallback]
            .iter()
            .find_map(|c| text(file_urls.get(*c)))?;
        let keyed = |table: &str| -> Option<String> {
            let t = blob.get(table)?.get(kind)?;
            if schema == 3 {
                text(t.get(from))
            } else {
                text(Some(t))
            }
        };
        let filename = keyed("ftpFilenames");
        let product = keyed("bouncerProducts");
        pairs.push(("FILENAME", filename.as_deref()));
        pairs.push(("PRODUCT", product.as_deref()));
        Some(blob::substitute(&template, &pairs))
    }

    /// GMP and SystemAddons: one `<addon>` per servable vendor/add-on.
    pub(super) fn render_addons(
        &self,
        blob: &Value,
        q: &UpdateQuery,
        key: &str,
        mirrors: bool,
        product: &str,
    ) -> Vec<String> {
        let hash_function = text(blob.get("hashFunction")).unwrap_or_default();
        let mut lines = Vec::new();
        let Some(items) = blob.get(key).and_then(Value::as_object) else {
            return lines;
        };
        let mut ids: Vec<&String> = items.keys().collect();
        ids.sort();
        for id in ids {
            let item = &items[id];
            let fake = serde_json::json!({ "platforms": item.get("platforms").cloned().unwrap_or(Value::Null) });
            let entry = blob::platform(&fake, &q.build_target)
                .or_else(|| blob::platform(&fake, "default"))
                .map(|(_, e)| e.clone());
            let Some(entry) = entry else { continue };
            let Some(url) = text(entry.get("fileUrl")) else {
                continue;
            };
            if !self.allowed(&url, product) {
                continue;
            }
            let mut line = format!("        <addon id=\"{id}\"");
            line += &attr("URL", &url);
            line += &attr("hashFunction", &hash_function);
            line += &attr("hashValue", &or_none(text(entry.get("hashValue"))));
            line += &attr("size", &or_none(text(entry.get("filesize"))));
            line += &attr("version", &or_none(text(item.get("version"))));
            let mirror_urls: Vec<String> = entry
                .get("mirrorUrls")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|v| text(Some(v))).collect())
                .unwrap_or_default();
            if mirrors && !mirror_urls.is_empty() {
                lines.push(line + ">");
                for m in mirror_urls {
                    lines.push(format!("            <mirror URL=\"{m}\"/>"));
                }
                lines.push("        </addon>".into());
            } else {
                lines.push(line + "/>");
            }
        }
        lines
    }

    /// Desupport (schema 50): an unindented wrapper around one `<update unsupported>` line.
    pub(super) fn render_desupport(&self, blob: &Value, q: &UpdateQuery, update_type: &str) -> Parts {
        let os = q.build_target.split('_').next().unwrap_or("");
        let url = blob::substitute(
            &text(blob.get("detailsUrl")).unwrap_or_default(),
            &[
                ("LOCALE", Some(&q.locale)),
                ("VERSION", Some(&q.version)),
                ("OS", Some(os)),
            ],
        );
        let mut line = format!("    <update type=\"{update_type}\" unsupported=\"true\"");
        line += &attr("detailsURL", &url);
        line += &attr("displayVersion", &or_none(text(blob.get("displayVersion"))));
        Parts {
            header: String::new(),
            body: vec![line + ">"],
            footer: "</update>".into(),
        }
    }
}

pub fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#x27;")
}
