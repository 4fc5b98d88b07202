//! Reading release blobs (serde_json values) the way the update endpoint needs:
//! alias resolution, version fields, URL templates (reference balrog.md §3).
use serde_json::Value;

/// A JSON scalar as text (`"1"`, `1`, `true`); `None` for null/absent/objects.
pub fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

pub fn schema(blob: &Value) -> i64 {
    blob.get("schema_version").and_then(Value::as_i64).unwrap_or(0)
}

/// Follow platform aliases: the real platform name and entry.
pub fn platform<'a>(blob: &'a Value, target: &str) -> Option<(String, &'a Value)> {
    let platforms = blob.get("platforms")?.as_object()?;
    let mut name = target.to_string();
    for _ in 0..8 {
        let entry = platforms.get(&name)?;
        match entry.get("alias").and_then(Value::as_str) {
            Some(next) => name = next.to_string(),
            None => return Some((name, entry)),
        }
    }
    None
}

/// Whether `target` is a key of `platforms` (aliases count).
pub fn has_platform(blob: &Value, target: &str) -> bool {
    blob.get("platforms")
        .and_then(Value::as_object)
        .is_some_and(|p| p.contains_key(target))
}

/// Platforms of `blob` that alias to `real`.
pub fn aliases_of(blob: &Value, real: &str) -> Vec<String> {
    blob.get("platforms")
        .and_then(Value::as_object)
        .map(|p| {
            p.iter()
                .filter(|(_, v)| v.get("alias").and_then(Value::as_str) == Some(real))
                .map(|(k, _)| k.clone())
                .collect()
        })
        .unwrap_or_default()
}

/// The locale entry of a (resolved) platform.
pub fn locale<'a>(platform: &'a Value, locale: &str) -> Option<&'a Value> {
    platform.get("locales")?.get(locale)
}

/// A field from the locale entry, else the top level.
pub fn layered(blob: &Value, locale: Option<&Value>, key: &str) -> Option<String> {
    text(locale.and_then(|l| l.get(key))).or_else(|| text(blob.get(key)))
}

/// buildID from the locale entry, else the platform entry.
pub fn build_id(platform: &Value, locale: Option<&Value>) -> Option<String> {
    text(locale.and_then(|l| l.get("buildID"))).or_else(|| text(platform.get("buildID")))
}

/// The release's app version for matching: `appVersion` (v1: `extv`), locale level first.
pub fn app_version(blob: &Value, locale: Option<&Value>) -> Option<String> {
    let key = if schema(blob) == 1 { "extv" } else { "appVersion" };
    layered(blob, locale, key)
}

/// Replace `%LOCALE%`-style placeholders (upper- and lower-case forms).
pub fn substitute(template: &str, pairs: &[(&str, Option<&str>)]) -> String {
    let mut out = template.to_string();
    for (name, value) in pairs {
        if let Some(v) = value {
            out = out.replace(&format!("%{name}%"), v);
            out = out.replace(&format!("%{}%", name.to_lowercase()), v);
        }
    }
    out
}
