//! Update verify (promote) and final verify (push), acting as the Firefox
//! updater for every previous release × locale × patch type (reference
//! artifacts-and-verify.md §5-7). The update server is the stack's Balrog.
use std::collections::BTreeMap;

use futures::StreamExt;
use serde_json::Value;

use super::{StackRunner, TaskError, TaskLog};
use crate::promote::graph::build_platform;
use crate::seed::generate::PLATFORMS;
use crate::seed::namespace::NameKind;
use crate::stack::ServiceKind;
use crate::version::{Channel, GeckoVersion};

/// One line of `update-verify.cfg`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CfgLine(pub BTreeMap<String, String>);

impl CfgLine {
    fn get(&self, k: &str) -> &str {
        self.0.get(k).map(String::as_str).unwrap_or("")
    }

    fn render(&self) -> String {
        self.0
            .iter()
            .map(|(k, v)| format!("{k}=\"{v}\""))
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn parse(line: &str) -> Option<Self> {
        let mut out = BTreeMap::new();
        let mut rest = line.trim();
        while !rest.is_empty() {
            let (k, after) = rest.split_once("=\"")?;
            let (v, tail) = after.split_once('"')?;
            out.insert(k.trim().to_string(), v.to_string());
            rest = tail.trim_start();
        }
        Some(Self(out))
    }
}

fn cfg_name(platform: &str) -> String {
    format!("update-verify-{}.cfg", build_platform(platform))
}

/// Whether a previous release belongs to the same update family.
fn same_family(cur: &GeckoVersion, prev: &GeckoVersion) -> bool {
    match cur.channel {
        Channel::Esr => prev.channel == Channel::Esr && prev.major == cur.major,
        Channel::Release => prev.channel == Channel::Release,
        _ => prev.channel == Channel::Beta,
    }
}

/// Build `update-verify.cfg` for one platform from what the stack's Balrog holds:
/// every earlier release of the family (newest 6), with `complete partial`
/// for the versions this release has partials from.
pub async fn config(r: &StackRunner, platform: &str, log: &TaskLog) -> Result<String, TaskError> {
    let text = build_config(r, platform).await?;
    let p = r.write_work(&cfg_name(platform), &text)?;
    log.line(format!("wrote {}:\n{text}", p.display()));
    Ok(format!("{} from-releases", text.lines().count()))
}

async fn build_config(r: &StackRunner, platform: &str) -> Result<String, TaskError> {
    let rel = r.release();
    let cur: GeckoVersion = rel
        .version
        .parse()
        .map_err(|e| TaskError::Fatal(format!("version: {e}")))?;
    let Some(p) = PLATFORMS.iter().find(|p| p.ftp == platform) else {
        return Err(TaskError::Fatal(format!("unknown platform {platform}")));
    };
    let balrog = r.url(ServiceKind::Balrog)?;
    let title = rel.title();
    let list: Value = r
        .http
        .get(format!("{balrog}/api/v1/releases?product={title}"))
        .send()
        .await
        .map_err(|e| TaskError::Retryable(e.to_string()))?
        .json()
        .await
        .map_err(|e| TaskError::Retryable(e.to_string()))?;
    let mut previous: Vec<(GeckoVersion, String)> = Vec::new();
    for entry in list["releases"].as_array().into_iter().flatten() {
        let Some(name) = entry["name"].as_str() else { continue };
        let Some(canonical) = r.names.ns.strip(NameKind::Release, name) else {
            continue;
        };
        let Some(rest) = canonical.strip_prefix(&format!("{title}-")) else {
            continue;
        };
        let Some((ver, _build)) = rest.rsplit_once("-build") else {
            continue;
        };
        let Ok(v) = ver.parse::<GeckoVersion>() else { continue };
        if v < cur && same_family(&cur, &v) {
            previous.push((v, name.to_string()));
        }
    }
    previous.sort_by(|a, b| b.0.cmp(&a.0));
    previous.truncate(6);
    let partials: Vec<&str> = rel.partials.iter().map(|(v, _)| v.as_str()).collect();
    let mut lines = Vec::new();
    for (i, (v, name)) in previous.iter().enumerate() {
        let blob: Value = r
            .http
            .get(format!(
                "{balrog}/api/v1/releases/{}",
                crate::clients::balrog::enc(name)
            ))
            .send()
            .await
            .map_err(|e| TaskError::Retryable(e.to_string()))?
            .json()
            .await
            .map_err(|e| TaskError::Retryable(e.to_string()))?;
        let locales_of = &blob["platforms"][p.target]["locales"];
        let Some(locmap) = locales_of.as_object() else { continue };
        let mut locales: Vec<&str> = rel
            .locales
            .iter()
            .map(String::as_str)
            .filter(|l| locmap.contains_key(*l))
            .collect();
        locales.sort();
        let Some(build_id) = locales
            .first()
            .and_then(|l| locmap[*l]["buildID"].as_str())
            .map(str::to_string)
        else {
            continue;
        };
        let mut m = BTreeMap::new();
        m.insert("release".into(), v.app_version());
        m.insert("product".into(), "Firefox".into());
        m.insert("platform".into(), p.target.into());
        m.insert("build_id".into(), build_id);
        m.insert("locales".into(), locales.join(" "));
        m.insert("channel".into(), r.names.channel("-localtest"));
        let pt = if partials.contains(&v.to_string().as_str()) {
            "complete partial"
        } else {
            "complete"
        };
        m.insert("patch_types".into(), pt.into());
        if i == 0 {
            m.insert("aus_server".into(), balrog.clone());
            m.insert(
                "to_build_id".into(),
                crate::seed::mar::build_id(&rel.product, &rel.version),
            );
            m.insert("to_app_version".into(), cur.app_version());
            m.insert("to_display_version".into(), display(&rel.version));
        }
        lines.push(CfgLine(m).render());
    }
    if lines.is_empty() {
        return Err(TaskError::Fatal(format!(
            "no earlier {title} release of this family in the stack's Balrog to verify updates from (seed the stack)"
        )));
    }
    Ok(lines.join("\n") + "\n")
}

fn display(v: &str) -> String {
    match v.split_once('b') {
        Some((head, n)) if !v.ends_with("esr") => format!("{head} Beta {n}"),
        _ => v.to_string(),
    }
}

async fn read_config(r: &StackRunner, platform: &str) -> Result<Vec<CfgLine>, TaskError> {
    let p = r.work_file(&cfg_name(platform));
    let text = match std::fs::read_to_string(&p) {
        Ok(t) => t,
        // Scratch space lost: the config is a function of the stack's state.
        Err(_) => build_config(r, platform).await?,
    };
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| CfgLine::parse(l).ok_or_else(|| TaskError::Fatal(format!("{}: cannot parse `{l}`", p.display()))))
        .collect()
}

fn attr(tag: &str, name: &str) -> Option<String> {
    let at = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    let v = &tag[at..];
    Some(v[..v.find('"')?].replace("&amp;", "&"))
}

/// Follow redirects by hand (as wget does), at most 5.
async fn fetch(r: &StackRunner, url: &str, range: Option<&str>) -> Result<reqwest::Response, String> {
    let mut url = url.to_string();
    for _ in 0..5 {
        let mut req = r.http.get(&url);
        if let Some(rg) = range {
            req = req.header("Range", rg);
        }
        let resp = req.send().await.map_err(|e| format!("{url}: {e}"))?;
        if resp.status().is_redirection() {
            url = resp
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| format!("{url}: redirect without Location"))?
                .to_string();
            continue;
        }
        return Ok(resp);
    }
    Err(format!("{url}: too many redirects"))
}

/// One (line, locale) check; returns the failures.
async fn check_one(
    r: &StackRunner,
    line: &CfgLine,
    first: &CfgLine,
    locale: &str,
    channel: &str,
    final_verify: bool,
) -> Vec<String> {
    let aus = first.get("aus_server");
    let url = format!(
        "{aus}/update/3/{}/{}/{}/{}/{locale}/{channel}/default/default/default/update.xml?force=1",
        line.get("product"),
        line.get("release"),
        line.get("build_id"),
        line.get("platform")
    );
    let mut fails = Vec::new();
    let xml = match fetch(r, &url, None).await {
        Ok(resp) => resp.text().await.unwrap_or_default(),
        Err(e) => return vec![format!("UPDATE_XML_UNAVAILABLE {e}")],
    };
    let Some(update) = xml.lines().find(|l| l.trim_start().starts_with("<update ")) else {
        return vec![format!("TEST-UNEXPECTED-FAIL: no update offered by {url}")];
    };
    if !final_verify {
        for (key, want) in [
            ("buildID", "to_build_id"),
            ("appVersion", "to_app_version"),
            ("displayVersion", "to_display_version"),
        ] {
            let got = attr(update, key).unwrap_or_default();
            if got != first.get(want) {
                fails.push(format!(
                    "TEST-UNEXPECTED-FAIL: {url}: {key} {got} != {}",
                    first.get(want)
                ));
            }
        }
    }
    for kind in line.get("patch_types").split_whitespace() {
        let Some(patch) = xml.lines().find(|l| l.contains(&format!("<patch type=\"{kind}\""))) else {
            fails.push(format!("PATCH_TYPE_MISSING {kind}: {url}"));
            continue;
        };
        let (Some(mar), Some(size)) = (attr(patch, "URL"), attr(patch, "size")) else {
            fails.push(format!("malformed patch line: {patch}"));
            continue;
        };
        if final_verify {
            match fetch(r, &mar, Some("bytes=0-2")).await {
                Ok(resp) => {
                    let range = resp
                        .headers()
                        .get("content-range")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_string();
                    if resp.status().as_u16() != 206 {
                        fails.push(format!("BAD_HTTP_RESPONSE_CODE_FOR_MAR {} {mar}", resp.status()));
                    } else if range != format!("bytes 0-2/{size}") {
                        fails.push(format!("MAR_FILE_WRONG_SIZE {mar}: {range}, expected size {size}"));
                    }
                }
                Err(e) => fails.push(format!("NO_MAR_FILE {e}")),
            }
        } else {
            let hash = attr(patch, "hashValue").unwrap_or_default();
            match fetch(r, &mar, None).await {
                Ok(resp) if resp.status().is_success() => {
                    let bytes = resp.bytes().await.unwrap_or_default();
                    if bytes.len().to_string() != size {
                        fails.push(format!(
                            "TEST-UNEXPECTED-FAIL: {mar}: {} bytes, update.xml says {size}",
                            bytes.len()
                        ));
                    } else if crate::seed::snapshot::sha512_hex(&bytes) != hash {
                        fails.push(format!("TEST-UNEXPECTED-FAIL: {mar}: SHA-512 differs from update.xml"));
                    }
                }
                Ok(resp) => fails.push(format!("TEST-UNEXPECTED-FAIL: {mar}: {}", resp.status())),
                Err(e) => fails.push(format!("TEST-UNEXPECTED-FAIL: {e}")),
            }
        }
    }
    fails
}

async fn run_checks(
    r: &StackRunner,
    lines: &[CfgLine],
    final_verify: bool,
    log: &TaskLog,
) -> Result<String, TaskError> {
    let Some(first) = lines.first() else {
        return Err(TaskError::Fatal("empty update-verify config".into()));
    };
    let mut jobs = Vec::new();
    for line in lines {
        let channel = if final_verify {
            line.get("channel").replace("localtest", "cdntest")
        } else {
            line.get("channel").to_string()
        };
        for locale in line.get("locales").split_whitespace() {
            let channel = channel.clone();
            jobs.push(async move { check_one(r, line, first, locale, &channel, final_verify).await });
        }
    }
    let n = jobs.len();
    let fails: Vec<String> = futures::stream::iter(jobs)
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .flatten()
        .collect();
    for f in fails.iter().take(50) {
        log.line(f.clone());
    }
    if !fails.is_empty() {
        return Err(TaskError::Fatal(format!(
            "{} of {n} checks failed; first: {}",
            fails.len(),
            fails[0]
        )));
    }
    Ok(format!("{n} updater checks passed ({} from-releases)", lines.len()))
}

fn leading_number(s: &str) -> usize {
    s.split_whitespace().next().and_then(|n| n.parse().ok()).unwrap_or(0)
}

pub async fn update_verify(r: &StackRunner, platform: &str, log: &TaskLog) -> Result<String, TaskError> {
    let lines = read_config(r, platform).await?;
    run_checks(r, &lines, false, log).await
}

pub async fn final_verify(r: &StackRunner, log: &TaskLog) -> Result<String, TaskError> {
    let mut checks = 0;
    for platform in &r.release().platforms {
        let lines = read_config(r, platform).await?;
        // Each platform's config carries its own first line.
        let done = run_checks(r, &lines, true, log).await?;
        log.line(format!("{platform}: {done}"));
        checks += leading_number(&done);
    }
    Ok(format!(
        "{checks} cdntest update queries with range checks of their MARs passed on {} platforms",
        r.release().platforms.len()
    ))
}
