//! Balrog tasks: the toplevel submission with the test channels' rules
//! repointed, per-platform/locale submission, and the ship-phase scheduled
//! change of the live rule with its signoffs.
use serde_json::{json, Map, Value};

use super::{StackRunner, TaskError, TaskLog};
use crate::seed::generate::PLATFORMS;
use crate::stack::ServiceKind;

fn display_version(v: &str) -> String {
    match v.split_once('b') {
        Some((head, n)) if !v.ends_with("esr") => format!("{head} Beta {n}"),
        _ => v.to_string(),
    }
}

fn app_version(v: &str) -> String {
    crate::seed::generate::app_version(v)
}

pub async fn toplevel(r: &StackRunner, log: &TaskLog) -> Result<String, TaskError> {
    let rel = r.release();
    let n = &r.names;
    let v = &rel.version;
    let bouncer = r.url(ServiceKind::Bouncer)?;
    let lower = |p: &str| p.to_ascii_lowercase();
    let bouncer_url = |suffix: &str| {
        format!(
            "{bouncer}/?product={}&os=%OS_BOUNCER%&lang=%LOCALE%",
            lower(&n.bouncer_product(suffix))
        )
    };
    let candidates = r
        .s3_url(&format!("{}/update/%OS_FTP%/%LOCALE%", n.candidates_dir()))?
        .replace("%25", "%");
    let mut live = json!({"completes": {"*": bouncer_url("-Complete")}, "partials": {}});
    let mut local = json!({"completes": {"*": format!("{candidates}/firefox-{v}.complete.mar")}, "partials": {}});
    for (pv, pn) in &rel.partials {
        let from = n.blob_of(pv, *pn);
        live["partials"][&from] = json!(bouncer_url(&format!("-Partial-{pv}")));
        local["partials"][&from] = json!(format!("{candidates}/firefox-{pv}-{v}.partial.mar"));
    }
    let mut file_urls = Map::new();
    file_urls.insert("*".into(), live);
    file_urls.insert(n.channel("-localtest"), local);
    let mut platforms = Map::new();
    for ftp in &rel.platforms {
        let Some(p) = PLATFORMS.iter().find(|p| p.ftp == ftp) else {
            return Err(TaskError::Fatal(format!("unknown platform {ftp}")));
        };
        platforms.insert(p.target.into(), json!({"OS_BOUNCER": p.bouncer_os, "OS_FTP": p.ftp}));
        for a in p.aliases {
            platforms.insert(a.to_string(), json!({"alias": p.target}));
        }
    }
    let blob_name = n.blob();
    let top = json!({
        "schema_version": 4, "hashFunction": "sha512", "name": blob_name,
        "appVersion": app_version(v), "platformVersion": app_version(v), "displayVersion": display_version(v),
        "detailsUrl": format!("https://www.mozilla.org/%LOCALE%/firefox/{v}/releasenotes/"),
        "fileUrls": file_urls, "platforms": platforms,
    });
    r.balrog.submit_release(&blob_name, &rel.title(), &top).await?;
    log.line(format!("submitted toplevel {blob_name}"));
    for suffix in ["-cdntest", "-localtest"] {
        let alias = n.rule_alias(suffix);
        r.balrog.update_rule(&alias, &json!({"mapping": blob_name})).await?;
        log.line(format!("rule {alias} → {blob_name}"));
    }
    Ok(format!(
        "{blob_name}; {} and {} now map it",
        n.rule_alias("-cdntest"),
        n.rule_alias("-localtest")
    ))
}

pub async fn submit_locale(r: &StackRunner, platform: &str, locale: &str, log: &TaskLog) -> Result<String, TaskError> {
    let rel = r.release();
    let v = &rel.version;
    let Some(p) = PLATFORMS.iter().find(|p| p.ftp == platform) else {
        return Err(TaskError::Fatal(format!("unknown platform {platform}")));
    };
    let entry = |bytes: &[u8], from: String| json!({"filesize": bytes.len(), "from": from, "hashValue": crate::seed::snapshot::sha512_hex(bytes)});
    let complete = r.artifacts.mar(rel, platform, locale, None)?;
    let mut partials = Vec::new();
    for (pv, pn) in &rel.partials {
        let bytes = r.artifacts.mar(rel, platform, locale, Some(pv))?;
        partials.push(entry(&bytes, r.names.blob_of(pv, *pn)));
    }
    let data = json!({
        "buildID": crate::seed::mar::build_id(&rel.product, v),
        "appVersion": app_version(v), "platformVersion": app_version(v), "displayVersion": display_version(v),
        "completes": [entry(&complete, "*".into())], "partials": partials,
    });
    let blob = r.names.blob();
    r.balrog
        .put_build(&blob, &rel.title(), p.target, locale, &data, 4)
        .await?;
    log.line(format!(
        "{blob}: {} / {locale} with {} partials",
        p.target,
        rel.partials.len()
    ));
    Ok(format!(
        "{} {locale}: complete + {} partials",
        p.target,
        rel.partials.len()
    ))
}

/// Schedule the live rule's switch to the new release at
/// max(release_eta, now + 5 min), keep the old mapping as fallback when the
/// rule serves everyone, and give the configured signoffs.
pub async fn schedule(r: &StackRunner, log: &TaskLog) -> Result<String, TaskError> {
    let alias = r.names.rule_alias("");
    let rule = r
        .balrog
        .get_rule(&alias)
        .await?
        .ok_or_else(|| TaskError::Fatal(format!("no live rule `{alias}` to schedule")))?;
    let rule_id = rule["rule_id"]
        .as_i64()
        .ok_or_else(|| TaskError::Fatal(format!("rule {alias} has no rule_id")))?;
    let blob = r.names.blob();
    let mut fields = json!({"mapping": blob});
    if rule["backgroundRate"].as_i64() == Some(100) {
        if let Some(m) = rule["mapping"].as_str() {
            fields["fallbackMapping"] = json!(m);
        }
    }
    let soon = chrono::Utc::now() + chrono::Duration::minutes(5);
    let when = r.release().release_eta.map(|eta| eta.max(soon)).unwrap_or(soon);
    // A rule has at most one pending change: a re-run finds its own, and an
    // earlier release's change that has not gone live yet is superseded.
    let existing = r.balrog.scheduled_rule_changes().await?;
    let pending = existing
        .iter()
        .find(|sc| sc["rule_id"].as_i64() == Some(rule_id) && sc["complete"] != json!(true));
    let sc_id = match pending {
        Some(sc) if sc["mapping"].as_str() == Some(blob.as_str()) => {
            let id = sc["sc_id"].as_i64().unwrap_or_default();
            log.line(format!("scheduled change {id} already exists"));
            id
        }
        Some(sc) => {
            let id = sc["sc_id"]
                .as_i64()
                .ok_or_else(|| TaskError::Fatal("pending scheduled change without sc_id".into()))?;
            let dv = sc["sc_data_version"].as_i64().unwrap_or(1);
            // Keep the fallback the earlier change chose (what is live now).
            if let Some(f) = sc["fallbackMapping"].as_str() {
                fields["fallbackMapping"] = json!(f);
            }
            r.balrog
                .update_scheduled_rule_change(id, dv, &fields, when.timestamp_millis())
                .await?;
            log.line(format!("superseded scheduled change {id} (was {})", sc["mapping"]));
            id
        }
        None => {
            r.balrog
                .schedule_rule_update(rule_id, &fields, when.timestamp_millis())
                .await?
        }
    };
    log.line(format!(
        "rule {rule_id} ({alias}) → {blob} at {when} (scheduled change {sc_id})"
    ));
    let mut signed = Vec::new();
    for (user, role) in &r.signoffs {
        match r.balrog.signoff_rule_change_as(sc_id, user, role).await {
            Ok(()) => signed.push(format!("{user} as {role}")),
            // Already signed by this user (a re-run): fine.
            Err(e) if e.status().is_some_and(|s| s.as_u16() == 400 || s.as_u16() == 409) => {
                log.line(format!("signoff by {user}: {e}"));
            }
            Err(e) => return Err(e.into()),
        }
    }
    let sc: Value = r.balrog.scheduled_rule_change(sc_id).await?;
    let required = sc["required_signoffs"].clone();
    let given = sc["signoffs"].clone();
    log.line(format!("required signoffs {required}, given {given}"));
    Ok(format!(
        "rule {rule_id} ({alias}) → {blob} at {} (sc {sc_id}; signoffs {given}, required {required})",
        when.format("%Y-%m-%d %H:%M UTC")
    ))
}
