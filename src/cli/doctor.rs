//! `stagelib doctor`: is everything stagelib needs here?
use super::config::Settings;
use super::output;

/// One check's outcome.
#[derive(Debug, serde::Serialize)]
struct Check {
    check: &'static str,
    ok: bool,
    detail: String,
}

pub async fn run(settings: &Settings, json: bool) -> anyhow::Result<()> {
    let mut checks = Vec::new();
    match super::context::docker_backend().await {
        Ok(d) => {
            let (engine, api) = d.versions().await.unwrap_or_default();
            checks.push(Check {
                check: "docker engine",
                ok: true,
                detail: format!("engine {engine}, API {api} (negotiated)"),
            });
            let images = crate::backend::docker::image::list(d.docker())
                .await
                .unwrap_or_default();
            checks.push(Check {
                check: "stack image",
                ok: !images.is_empty(),
                detail: if images.is_empty() {
                    "none yet: `stagelib images build` (or the first reservation) builds it".into()
                } else {
                    images.iter().map(|i| i.0.clone()).collect::<Vec<_>>().join(", ")
                },
            });
        }
        Err(e) => checks.push(Check {
            check: "docker engine",
            ok: false,
            detail: format!("{e:#} (the process backend still works)"),
        }),
    }
    let db = crate::store::open(&settings.database_url).await;
    checks.push(Check {
        check: "database",
        ok: db.is_ok(),
        detail: match &db {
            Ok(s) => format!("{} at {}", s.kind(), super::config::redact_url(&settings.database_url)),
            Err(e) => e.to_string(),
        },
    });
    let writable = std::fs::create_dir_all(&settings.state_dir)
        .and_then(|_| std::fs::write(settings.state_dir.join(".doctor"), b"ok"))
        .and_then(|_| std::fs::remove_file(settings.state_dir.join(".doctor")));
    checks.push(Check {
        check: "state directory",
        ok: writable.is_ok(),
        detail: format!(
            "{} {}",
            settings.state_dir.display(),
            writable.err().map(|e| e.to_string()).unwrap_or_default()
        ),
    });
    let port_free = std::net::TcpListener::bind(settings.listen.as_str()).is_ok();
    checks.push(Check {
        check: "serve address",
        ok: port_free,
        detail: format!(
            "{} {}",
            settings.listen,
            if port_free {
                "is free"
            } else {
                "is in use (a serve running?)"
            }
        ),
    });
    if json {
        output::json(&checks)?;
    } else {
        let rows: Vec<Vec<String>> = checks
            .iter()
            .map(|c| {
                vec![
                    c.check.to_string(),
                    if c.ok { "ok" } else { "PROBLEM" }.into(),
                    c.detail.clone(),
                ]
            })
            .collect();
        output::table(&["check", "status", "detail"], &rows);
    }
    if checks.iter().any(|c| !c.ok && c.check == "database") {
        anyhow::bail!("the database is not usable");
    }
    Ok(())
}
