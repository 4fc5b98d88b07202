//! Every case of the Balrog fixtures through the update endpoint: the 84 cases of
//! update-cases.json (upstream's client tests) and the aus-data-snapshots
//! scenarios (AUS2 snippets). Prints how many passed.
mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use serde_json::Value;
use stagelib::services::balrog::update::{self, Engine, UpdateConfig};
use support::balrog::{parse_rules_sql, MemorySource};
use tower::ServiceExt;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/balrog")
}

fn load_json(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))).expect("json")
}

fn config_of(setup: &Value) -> UpdateConfig {
    let c = &setup["config"];
    UpdateConfig {
        special_force_hosts: c["SPECIAL_FORCE_HOSTS"]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
            .unwrap_or_default(),
        allowlist: c["ALLOWLISTED_DOMAINS"].as_object().map(|m| {
            m.iter()
                .map(|(k, v)| {
                    let products = v
                        .as_array()
                        .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
                        .unwrap_or_default();
                    (k.clone(), products)
                })
                .collect()
        }),
    }
}

fn source_of(setup: &Value) -> Arc<MemorySource> {
    let src = Arc::new(MemorySource::default());
    src.add_rules(setup["rules"].as_array().expect("rules"));
    {
        let mut rel = src.releases.lock().expect("lock");
        for r in setup["releases"].as_array().into_iter().flatten() {
            let name = r["name"].as_str().expect("name").to_string();
            src.products
                .lock()
                .expect("lock")
                .insert(name.clone(), r["product"].as_str().expect("product").into());
            rel.insert(name, r["data"].clone());
        }
        for r in setup["releases_json"].as_array().into_iter().flatten() {
            let blob = load_json(&fixtures().join(r["blob_file"].as_str().expect("file")));
            let name = blob["name"].as_str().expect("name").to_string();
            src.products
                .lock()
                .expect("lock")
                .insert(name.clone(), r["product"].as_str().expect("product").into());
            rel.insert(name, blob);
        }
    }
    for p in setup["pinnable_releases"].as_array().into_iter().flatten() {
        let key = |k: &str| p[k].as_str().expect("pin field").to_string();
        src.pins
            .lock()
            .expect("lock")
            .insert((key("product"), key("channel"), key("version")), key("mapping"));
    }
    src
}

/// What upstream's minidom comparison ignores: a trailing newline and line
/// breaks inside a start tag.
fn dom_normalise(s: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    let mut last_space = false;
    for c in s.trim_end_matches('\n').chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            _ => {}
        }
        if in_tag && c.is_whitespace() {
            if !last_space {
                out.push(' ');
            }
            last_space = true;
            continue;
        }
        last_space = false;
        out.push(c);
    }
    out
}

const EMPTY: &str = "<?xml version=\"1.0\"?>\n<updates>\n</updates>";

async fn get(app: &axum::Router, uri: &str) -> (u16, BTreeMap<String, String>, String) {
    let uri = uri.replace(' ', "%20");
    let resp = app
        .clone()
        .oneshot(Request::get(&uri).body(Body::empty()).expect("request"))
        .await
        .expect("response");
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_lowercase(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await.expect("body");
    (status, headers, String::from_utf8_lossy(&bytes).to_string())
}

#[tokio::test]
async fn update_cases_json() {
    let cases = load_json(&fixtures().join("update-cases.json"));
    let mut total = 0;
    let mut failures = Vec::new();
    for (scenario, sc) in cases["scenarios"].as_object().expect("scenarios") {
        let (mut passed, mut count) = (0, 0);
        for case in sc["cases"].as_array().expect("cases") {
            // Each upstream test starts from a fresh database.
            let src = source_of(&sc["setup"]);
            let engine = Arc::new(Engine::new(src.clone(), config_of(&sc["setup"]), Arc::new(|| 50)));
            let app = update::router(engine);
            let name = case["test"].as_str().unwrap_or("?");
            let mut bodies: Vec<String> = Vec::new();
            let mut ok = true;
            let mut why = String::new();
            for step in case["steps"].as_array().expect("steps") {
                if let Some(row) = step.get("insert_row") {
                    assert_eq!(row["table"], "emergencyShutoffs");
                    let r = &row["row"];
                    src.shutoffs.lock().expect("lock").insert((
                        r["product"].as_str().expect("product").into(),
                        r["channel"].as_str().expect("channel").into(),
                    ));
                    bodies.push(String::new());
                    continue;
                }
                let path = step["get"].as_str().expect("get");
                let (status, headers, body) = get(&app, path).await;
                let mut check = |cond: bool, what: String| {
                    if !cond && ok {
                        ok = false;
                        why = format!("{path}: {what}");
                    }
                };
                if let Some(s) = step.get("expect_status").and_then(Value::as_u64) {
                    check(
                        u64::from(status) == s,
                        format!("status {status}, expected {s}; body {body}"),
                    );
                }
                if let Some(x) = step.get("expect_xml").and_then(Value::as_str) {
                    let same = if step["compare"] == "exact" {
                        body == x
                    } else {
                        dom_normalise(&body) == dom_normalise(x)
                    };
                    check(same, format!("body\n{body}\nexpected\n{x}"));
                }
                if step.get("expect_empty_updates").and_then(Value::as_bool) == Some(true) {
                    check(body == EMPTY, format!("expected no update, got\n{body}"));
                }
                if let Some(t) = step.get("expect_updates_first_text_node").and_then(Value::as_str) {
                    let prefix = format!("<?xml version=\"1.0\"?>\n<updates>{t}<");
                    check(body.starts_with(&prefix), format!("first text node: {body}"));
                }
                if let Some(t) = step.get("expect_body_text").and_then(Value::as_str) {
                    check(body == t, format!("body {body:?}, expected {t:?}"));
                }
                if let Some(h) = step.get("expect_headers").and_then(Value::as_object) {
                    for (k, v) in h {
                        let got = headers.get(&k.to_lowercase()).cloned().unwrap_or_default();
                        check(
                            Some(got.as_str()) == v.as_str(),
                            format!("header {k}: {got}, expected {v}"),
                        );
                    }
                }
                bodies.push(body);
            }
            // Same-body expectations name other steps of the case (0-based), often later ones.
            for (n, step) in case["steps"].as_array().expect("steps").iter().enumerate() {
                for i in step["expect_same_body_as_steps"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_u64)
                {
                    let (a, b) = (&bodies[n], bodies.get(i as usize).cloned().unwrap_or_default());
                    if a != &b && ok {
                        ok = false;
                        why = format!("step {n} body differs from step {i}:\n{a}\nvs\n{b}");
                    }
                }
            }
            count += 1;
            if ok {
                passed += 1;
            } else {
                failures.push(format!("[{scenario}] {name}: {why}"));
            }
        }
        eprintln!("update-cases.json {scenario}: {passed}/{count} passed");
        total += count;
    }
    eprintln!("update-cases.json: {}/{total} passed", total - failures.len());
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    assert_eq!(total, 84, "every case of the fixture ran");
}

/// Parse the attributes of the `<update>` element and of the `<patch type=kind>`.
fn attributes(xml: &str, kind: &str) -> Option<BTreeMap<String, String>> {
    let mut attrs = BTreeMap::new();
    let grab = |tag: &str, out: &mut BTreeMap<String, String>| {
        let re = regex::Regex::new(r#"([A-Za-z]+)="([^"]*)""#).expect("regex");
        for cap in re.captures_iter(tag) {
            out.insert(cap[1].to_string(), cap[2].replace("&amp;", "&"));
        }
    };
    let update = xml.lines().find(|l| l.trim_start().starts_with("<update "))?;
    grab(update, &mut attrs);
    let patch = xml
        .lines()
        .find(|l| l.contains("<patch ") && l.contains(&format!("type=\"{kind}\"")))?;
    let mut p = BTreeMap::new();
    grab(patch, &mut p);
    for (k, v) in p {
        attrs.insert(format!("patch.{k}"), v);
    }
    Some(attrs)
}

#[tokio::test]
async fn aus_data_snapshots() {
    let root = fixtures().join("aus-data-snapshots");
    let mut total = 0;
    let mut failures = Vec::new();
    let mut dirs: Vec<_> = std::fs::read_dir(&root)
        .expect("dir")
        .flatten()
        .map(|e| e.path())
        .collect();
    dirs.sort();
    for dir in dirs {
        let scenario = dir.file_name().expect("name").to_string_lossy().to_string();
        let src = Arc::new(MemorySource::default());
        src.add_rules(&parse_rules_sql(
            &std::fs::read_to_string(dir.join("rules.sql")).expect("rules.sql"),
        ));
        for f in std::fs::read_dir(&dir).expect("dir").flatten() {
            if f.path().extension().is_some_and(|e| e == "json") {
                let blob = load_json(&f.path());
                let name = f.path().file_stem().expect("stem").to_string_lossy().to_string();
                src.releases.lock().expect("lock").insert(name, blob);
            }
        }
        let allow: BTreeMap<String, Vec<String>> = [
            "download.mozilla.org",
            "stage-old.mozilla.org",
            "ftp.mozilla.org",
            "stage.mozilla.org",
        ]
        .iter()
        .map(|h| (h.to_string(), vec!["Firefox".to_string()]))
        .collect();
        let config = UpdateConfig {
            special_force_hosts: vec!["http://download.mozilla.org".into()],
            allowlist: Some(allow),
        };
        let app = update::router(Arc::new(Engine::new(src, config, Arc::new(|| 50))));
        let mut snippets = Vec::new();
        collect_files(&dir.join("snippets"), &mut snippets);
        let (mut passed, mut count) = (0, 0);
        for snippet in snippets {
            let rel = snippet.strip_prefix(dir.join("snippets")).expect("prefix");
            let parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().to_string()).collect();
            // product/version/buildTarget/buildID/locale/channel/{complete,partial}.txt
            let (product, version, target, build_id, locale, channel) =
                (&parts[0], &parts[1], &parts[2], &parts[3], &parts[4], &parts[5]);
            let kind = parts[6].trim_end_matches(".txt");
            let url =
                format!("/update/3/{product}/{version}/{build_id}/{target}/{locale}/{channel}/foo/foo/foo/update.xml");
            let (status, _, body) = get(&app, &url).await;
            let expected = std::fs::read_to_string(&snippet).expect("snippet");
            let got = attributes(&body, kind);
            let ok = status == 200
                && if expected.trim().is_empty() {
                    got.is_none()
                } else {
                    let got = got.unwrap_or_default();
                    expected.lines().filter(|l| !l.is_empty()).all(|line| {
                        let Some((k, v)) = line.split_once('=') else {
                            return false;
                        };
                        let key = match k {
                            "version" => return v == "1" || v == "2",
                            "type" => return v == kind,
                            "url" => "patch.URL",
                            "hashFunction" => "patch.hashFunction",
                            "hashValue" => "patch.hashValue",
                            "size" => "patch.size",
                            "build" => "buildID",
                            "appv" => "version",
                            "extv" => "extensionVersion",
                            "detailsUrl" => "detailsURL",
                            other => other,
                        };
                        got.get(key).map(String::as_str) == Some(v)
                    })
                };
            count += 1;
            if ok {
                passed += 1;
            } else {
                failures.push(format!(
                    "[{scenario}] {url} ({kind}):\n{body}\nexpected snippet:\n{expected}"
                ));
            }
        }
        eprintln!("aus-data-snapshots {scenario}: {passed}/{count} passed");
        total += count;
    }
    eprintln!("aus-data-snapshots: {}/{total} passed", total - failures.len());
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert_eq!(total, 13, "every snippet ran");
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            collect_files(&p, out);
        } else {
            out.push(p);
        }
    }
    out.sort();
}
