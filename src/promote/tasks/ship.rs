//! Ship-it's mark-as-shipped, and the tasks a staging stack can only simulate.
use serde_json::json;

use super::{StackRunner, TaskError, TaskLog};
use crate::stack::ServiceKind;

pub async fn mark_as_shipped(r: &StackRunner, log: &TaskLog) -> Result<String, TaskError> {
    let Some(shipit) = r.endpoints.services.get(&ServiceKind::Shipit) else {
        log.line("the stack has no ship-it (reserve with --template full to include it)");
        return Ok("skipped: no ship-it in this stack".into());
    };
    let name = r.names.shipit_release();
    let path = format!("/releases/{name}");
    let body = json!({"status": "shipped"}).to_string();
    let req = crate::seed::apply::shipit_signed(&r.http, shipit, reqwest::Method::PATCH, &path, &body);
    let resp = req.send().await.map_err(|e| TaskError::Retryable(e.to_string()))?;
    let status = resp.status();
    if status.is_server_error() {
        return Err(TaskError::Retryable(format!("PATCH {path}: {status}")));
    }
    if !status.is_success() {
        let text = resp.text().await.unwrap_or_default();
        return Err(TaskError::Fatal(format!("PATCH {path}: {status} {text}")));
    }
    let back: serde_json::Value = r
        .http
        .get(format!("{}{path}", shipit.url.trim_end_matches('/')))
        .send()
        .await
        .map_err(|e| TaskError::Retryable(e.to_string()))?
        .json()
        .await
        .map_err(|e| TaskError::Retryable(e.to_string()))?;
    if back["status"] != "shipped" {
        return Err(TaskError::Fatal(format!("{name} reads back as {}", back["status"])));
    }
    log.line(format!("{name} is shipped"));
    Ok(format!("{name} marked as shipped"))
}

pub fn simulated_repo(r: &StackRunner, kind: &str, log: &TaskLog) -> Result<String, TaskError> {
    let rel = r.release();
    let tag = format!(
        "{}_{}_BUILD{}",
        rel.product.to_ascii_uppercase(),
        rel.version.replace('.', "_"),
        rel.build_number
    );
    let what = if kind == "release-early-tagging" {
        format!("would tag {tag}")
    } else {
        format!(
            "would tag {} and bump the version to {}",
            tag.replace("_BUILD", "_RELEASE_BUILD"),
            rel.next_version
        )
    };
    log.line(format!("{what} (a staging stack has no repository)"));
    Ok(format!("simulated: {what}"))
}

pub fn simulated_notify(r: &StackRunner, kind: &str, log: &TaskLog) -> Result<String, TaskError> {
    let rel = r.release();
    let what = kind.trim_start_matches("release-notify-");
    log.line(format!(
        "email ({what}): {} {} build {} — candidates {}",
        rel.title(),
        rel.version,
        rel.build_number,
        r.names.candidates_dir()
    ));
    Ok(format!("simulated: `{what}` email logged"))
}
