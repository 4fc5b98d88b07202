//! Write-time validation of release blobs (reference balrog.md §3): known
//! schema_version, the allowed keys at every level (`additionalProperties: false`
//! upstream), and the required fields and types of platforms, locales and
//! patches. Errors name the offending path, e.g. `.platforms.p.locales.de.completes[0].filesize`.
use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Invalid Blob: {path}: {problem}")]
pub struct BlobError {
    pub path: String,
    pub problem: String,
}

fn err(path: &str, problem: impl Into<String>) -> BlobError {
    BlobError {
        path: if path.is_empty() { ".".into() } else { path.to_string() },
        problem: problem.into(),
    }
}

const APP_COMMON: &[&str] = &[
    "name",
    "schema_version",
    "hashFunction",
    "platforms",
    "fileUrls",
    "appVersion",
    "displayVersion",
];

fn top_keys(schema: i64) -> Option<Vec<&'static str>> {
    let mut keys: Vec<&str> = APP_COMMON.to_vec();
    let extra: &[&str] = match schema {
        1 => &[
            "appv",
            "extv",
            "detailsUrl",
            "licenseUrl",
            "ftpFilenames",
            "bouncerProducts",
            "fakePartials",
            "oldVersionSpecialCases",
        ],
        2 | 3 => &[
            "platformVersion",
            "detailsUrl",
            "licenseUrl",
            "ftpFilenames",
            "bouncerProducts",
            "fakePartials",
            "billboardURL",
            "showPrompt",
            "showNeverForVersion",
            "actions",
            "openURL",
            "notificationURL",
            "alertURL",
            "oldVersionSpecialCases",
        ],
        4 | 5 => &[
            "platformVersion",
            "detailsUrl",
            "licenseUrl",
            "billboardURL",
            "showPrompt",
            "showNeverForVersion",
            "actions",
            "openURL",
            "notificationURL",
            "alertURL",
            "promptWaitTime",
        ],
        6 => &[
            "detailsUrl",
            "showPrompt",
            "showNeverForVersion",
            "actions",
            "openURL",
            "notificationURL",
            "alertURL",
            "promptWaitTime",
        ],
        8 => &[
            "detailsUrl",
            "showPrompt",
            "showNeverForVersion",
            "actions",
            "openURL",
            "notificationURL",
            "alertURL",
            "promptWaitTime",
            "binTransMerkleRoot",
            "binTransCertificate",
            "binTransSCTList",
        ],
        9 => &["updateLine"],
        _ => return None,
    };
    keys.extend_from_slice(extra);
    Some(keys)
}

fn check_keys(obj: &Map<String, Value>, allowed: &[&str], path: &str) -> Result<(), BlobError> {
    for k in obj.keys() {
        if !allowed.contains(&k.as_str()) {
            return Err(err(&format!("{path}.{k}"), "additional property not allowed"));
        }
    }
    Ok(())
}

fn object<'a>(v: &'a Value, path: &str) -> Result<&'a Map<String, Value>, BlobError> {
    v.as_object().ok_or_else(|| err(path, "must be an object"))
}

fn is_scalar_text(v: &Value) -> bool {
    v.is_string() || v.is_number()
}

fn check_patch(p: &Value, path: &str) -> Result<(), BlobError> {
    let o = object(p, path)?;
    check_keys(
        o,
        &["from", "filesize", "hashValue", "fileUrl", "binTransInclusionProof"],
        path,
    )?;
    for req in ["from", "filesize", "hashValue"] {
        match o.get(req) {
            Some(v) if is_scalar_text(v) => {}
            Some(_) => return Err(err(&format!("{path}.{req}"), "must be a string or number")),
            None => return Err(err(&format!("{path}.{req}"), "is a required property")),
        }
    }
    if let Some(size) = o.get("filesize") {
        let ok = size.as_u64().is_some() || size.as_str().is_some_and(|s| s.parse::<u64>().is_ok());
        if !ok {
            return Err(err(&format!("{path}.filesize"), "must be a non-negative integer"));
        }
    }
    Ok(())
}

fn check_app(blob: &Map<String, Value>, schema: i64) -> Result<(), BlobError> {
    let allowed = top_keys(schema).ok_or_else(|| err(".schema_version", format!("unknown schema {schema}")))?;
    check_keys(blob, &allowed, "")?;
    let Some(platforms) = blob.get("platforms") else {
        return Ok(());
    };
    for (pname, platform) in object(platforms, ".platforms")? {
        let ppath = format!(".platforms.{pname}");
        let p = object(platform, &ppath)?;
        if let Some(alias) = p.get("alias") {
            if !alias.is_string() || p.len() != 1 {
                return Err(err(&ppath, "an alias entry has exactly one string field `alias`"));
            }
            continue;
        }
        check_keys(p, &["OS_BOUNCER", "OS_FTP", "buildID", "locales"], &ppath)?;
        let Some(locales) = p.get("locales") else { continue };
        for (lname, locale) in object(locales, &format!("{ppath}.locales"))? {
            let lpath = format!("{ppath}.locales.{lname}");
            let l = object(locale, &lpath)?;
            let keys: &[&str] = match schema {
                1 => &["appv", "extv", "buildID", "complete", "partial"],
                2 => &[
                    "appVersion",
                    "displayVersion",
                    "platformVersion",
                    "buildID",
                    "isOSUpdate",
                    "complete",
                    "partial",
                ],
                _ => &[
                    "appVersion",
                    "displayVersion",
                    "platformVersion",
                    "buildID",
                    "isOSUpdate",
                    "completes",
                    "partials",
                ],
            };
            check_keys(l, keys, &lpath)?;
            if let Some(b) = l.get("buildID") {
                if !is_scalar_text(b) {
                    return Err(err(&format!("{lpath}.buildID"), "must be a string or number"));
                }
            }
            for single in ["complete", "partial"] {
                if let Some(p) = l.get(single) {
                    check_patch(p, &format!("{lpath}.{single}"))?;
                }
            }
            for list in ["completes", "partials"] {
                if let Some(items) = l.get(list) {
                    let arr = items
                        .as_array()
                        .ok_or_else(|| err(&format!("{lpath}.{list}"), "must be an array"))?;
                    for (i, p) in arr.iter().enumerate() {
                        check_patch(p, &format!("{lpath}.{list}[{i}]"))?;
                    }
                }
            }
        }
    }
    Ok(())
}

fn check_addons(blob: &Map<String, Value>, key: &str, extra: &[&str]) -> Result<(), BlobError> {
    let mut allowed = vec!["name", "schema_version", "hashFunction", "product", key];
    allowed.extend_from_slice(extra);
    check_keys(blob, &allowed, "")?;
    let Some(items) = blob.get(key) else {
        return Ok(());
    };
    for (id, item) in object(items, &format!(".{key}"))? {
        let ipath = format!(".{key}.{id}");
        let o = object(item, &ipath)?;
        check_keys(o, &["version", "platforms"], &ipath)?;
        for (pname, p) in object(
            o.get("platforms").unwrap_or(&Value::Null),
            &format!("{ipath}.platforms"),
        )
        .map(|m| m.iter().collect::<Vec<_>>())
        .unwrap_or_default()
        {
            let ppath = format!("{ipath}.platforms.{pname}");
            let po = object(p, &ppath)?;
            if po.contains_key("alias") {
                continue;
            }
            check_keys(po, &["fileUrl", "filesize", "hashValue", "mirrorUrls"], &ppath)?;
            for req in ["fileUrl", "filesize", "hashValue"] {
                if !po.contains_key(req) {
                    return Err(err(&format!("{ppath}.{req}"), "is a required property"));
                }
            }
        }
    }
    Ok(())
}

/// Validate a whole blob about to be stored under `name` (`None`: name not checked).
pub fn validate(blob: &Value, name: Option<&str>) -> Result<(), BlobError> {
    let o = object(blob, "")?;
    let schema = o
        .get("schema_version")
        .and_then(Value::as_i64)
        .ok_or_else(|| err(".schema_version", "is a required integer"))?;
    if let Some(n) = name {
        match o.get("name").and_then(Value::as_str) {
            Some(b) if b == n => {}
            Some(b) => return Err(err(".name", format!("`{b}` does not match the release name `{n}`"))),
            None => return Err(err(".name", "is a required property")),
        }
    }
    match schema {
        1..=6 | 8 | 9 => check_app(o, schema),
        50 => check_keys(
            o,
            &["name", "schema_version", "detailsUrl", "displayVersion", "product"],
            "",
        ),
        1000 => check_addons(o, "vendors", &[]),
        4000 => check_keys(o, &["name", "schema_version", "products", "blobs", "product"], ""),
        5000 => check_addons(o, "addons", &["uninstall"]),
        10000 => Ok(()),
        other => Err(err(".schema_version", format!("unknown schema {other}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_the_bad_field() {
        let blob = json!({"name": "r", "schema_version": 9, "hashFunction": "sha512",
            "platforms": {"p": {"locales": {"de": {"buildID": "1", "completes": [{"from": "*", "hashValue": "x"}]}}}}});
        let e = validate(&blob, Some("r")).expect_err("missing filesize");
        assert_eq!(e.path, ".platforms.p.locales.de.completes[0].filesize");
        let e = validate(&json!({"name": "r", "schema_version": 9, "bogus": 1}), Some("r")).expect_err("extra key");
        assert_eq!(e.path, ".bogus");
        let e = validate(&json!({"name": "x", "schema_version": 9}), Some("r")).expect_err("name");
        assert_eq!(e.path, ".name");
        assert!(validate(&json!({"name": "r", "schema_version": 7}), None).is_err());
    }
}
