//! The CLI as a user runs it: exit codes, JSON output, errors naming the field.
use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_stagelib");

fn run(state: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("STAGELIB_STATE_DIR", state)
        .env(
            "STAGELIB_DATABASE_URL",
            format!("sqlite://{}", state.join("db.sqlite").display()),
        )
        .env("STAGELIB_BACKEND", "process")
        .env("STAGELIB_USER", "alice")
        .env_remove("STAGELIB_SERVER")
        .env_remove("STAGELIB_CONFIG")
        .env("XDG_CONFIG_HOME", state.join("no-config"))
        .output()
        .expect("run stagelib")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

#[test]
fn help_teaches() {
    let dir = tempfile::tempdir().expect("tmp");
    let o = run(dir.path(), &["--help"]);
    assert!(o.status.success());
    let text = String::from_utf8_lossy(&o.stdout);
    for word in ["reserve", "release", "reap", "serve", "env", "--server", "--json"] {
        assert!(text.contains(word), "--help lacks {word}");
    }
}

#[test]
fn exit_codes_and_messages() {
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    let unknown = uuid::Uuid::new_v4().to_string();
    let o = run(d, &["show", &unknown]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains(&unknown));

    let o = run(d, &["show", "not-a-uuid"]);
    assert_eq!(o.status.code(), Some(2));

    let o = run(d, &["reserve", "--ttl", "8x"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("ttl"), "{}", stderr(&o));

    let o = run(d, &["extend", &unknown, "--by", "soon"]);
    assert_eq!(
        o.status.code(),
        Some(3),
        "unknown lease is checked first: {}",
        stderr(&o)
    );

    let o = run(d, &["--quota", "lots", "list"]);
    assert_eq!(o.status.code(), Some(2));

    let o = run(d, &["--json", "list"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&o.stdout).expect("json"),
        serde_json::json!([])
    );

    let o = run(d, &["--server", "http://127.0.0.1:1", "list"]);
    assert_eq!(o.status.code(), Some(6), "unreachable server: {}", stderr(&o));
    assert!(stderr(&o).contains("stagelib serve"), "{}", stderr(&o));
}

#[test]
fn reserve_env_release_on_real_processes() {
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    let o = run(d, &["--json", "reserve", "--wait", "--label", "try=abc"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let lease: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(lease["state"], "ready");
    let id = lease["id"].as_str().expect("id").to_string();

    let o = run(d, &["env", &id]);
    assert!(o.status.success(), "{}", stderr(&o));
    let env = String::from_utf8_lossy(&o.stdout).to_string();
    for var in [
        "STAGELIB_LEASE_ID",
        "BALROG_URL",
        "BOUNCER_URL",
        "S3_ENDPOINT_URL",
        "AWS_SECRET_ACCESS_KEY",
    ] {
        assert!(env.contains(&format!("export {var}=")), "{var} missing in:\n{env}");
    }
    let o = run(d, &["env", &id, "--format", "try"]);
    let try_cfg: serde_json::Value = serde_json::from_slice(&o.stdout).expect("try json");
    assert_eq!(
        try_cfg["parameters"]["try_task_config"]["env"]["STAGELIB_LEASE_ID"],
        id.as_str()
    );
    assert!(
        !String::from_utf8_lossy(&o.stdout).contains("secret"),
        "no secrets in a Try push"
    );

    let o = run(d, &["list"]);
    assert!(String::from_utf8_lossy(&o.stdout).contains(&id));
    let o = run(d, &["extend", &id, "--by", "2h"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(d, &["--json", "release", &id]);
    assert!(o.status.success(), "{}", stderr(&o));
    let released: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(released["state"], "released");
    let o = run(d, &["env", &id]);
    assert_eq!(o.status.code(), Some(5), "no endpoints after release: {}", stderr(&o));
    let stacks = d.join("process/stacks");
    let left = std::fs::read_dir(&stacks).map(|r| r.count()).unwrap_or(0);
    assert_eq!(left, 0, "stack directory removed");
}

#[test]
fn demo_runs_promote_push_ship_twice_end_to_end() {
    let dir = tempfile::tempdir().expect("tmp");
    let o = run(dir.path(), &["--json", "demo", "--locales", "de,en-US"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json report");
    assert_eq!(report["failed"], 0, "{report}");
    let phases = report["phases"].as_array().expect("phases");
    let names: Vec<&str> = phases.iter().map(|p| p["phase"].as_str().unwrap_or("")).collect();
    assert_eq!(
        names,
        [
            "promote_firefox 158.0b5",
            "push_firefox 158.0b5",
            "ship_firefox 158.0b5",
            "promote_firefox 158.0b6",
            "push_firefox 158.0b6",
            "ship_firefox 158.0b6"
        ]
    );
    for p in phases {
        assert_eq!(p["report"]["ok"], true, "{}", p["phase"]);
    }
    // The second promote verified updates from the first release.
    let uv: Vec<&serde_json::Value> = phases[3]["report"]["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .filter(|t| t["kind"] == "release-update-verify")
        .collect();
    assert_eq!(uv.len(), 7);
    assert!(uv.iter().all(|t| t["state"] == "completed"));
    let left = std::fs::read_dir(dir.path().join("process/stacks"))
        .map(|r| r.count())
        .unwrap_or(0);
    assert_eq!(left, 0, "the demo released its stack");
}

#[test]
fn the_cli_against_a_running_server() {
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    let token = |user: &str| {
        let o = run(d, &["--json", "token", "create", "--user", user]);
        assert!(o.status.success(), "{}", stderr(&o));
        serde_json::from_slice::<serde_json::Value>(&o.stdout).expect("json")["token"]
            .as_str()
            .expect("token")
            .to_string()
    };
    let (alice, bob) = (token("alice"), token("bob"));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let mut serve = Command::new(BIN)
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--reap-interval",
            "0s",
        ])
        .env("STAGELIB_STATE_DIR", d)
        .env(
            "STAGELIB_DATABASE_URL",
            format!("sqlite://{}", d.join("db.sqlite").display()),
        )
        .env("STAGELIB_BACKEND", "process")
        .env("XDG_CONFIG_HOME", d.join("no-config"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("serve");
    let server = format!("http://127.0.0.1:{port}");
    let mut up = false;
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            up = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let remote = |tok: &str, args: &[&str]| {
        let mut all = vec!["--server", server.as_str(), "--token", tok];
        all.extend_from_slice(args);
        run(d, &all)
    };
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        assert!(up, "serve did not start");
        let o = remote(&alice, &["--json", "reserve", "--wait"]);
        assert!(o.status.success(), "{}", stderr(&o));
        let lease: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
        assert_eq!(lease["state"], "ready");
        assert_eq!(lease["owner"], "alice");
        let id = lease["id"].as_str().expect("id").to_string();
        let o = remote(&alice, &["env", &id]);
        assert!(String::from_utf8_lossy(&o.stdout).contains("export BALROG_URL="));
        let o = remote(&bob, &["show", &id]);
        assert_eq!(o.status.code(), Some(4), "someone else's lease: {}", stderr(&o));
        let o = remote("stl_wrong", &["list"]);
        assert_eq!(o.status.code(), Some(4));
        let o = remote(&alice, &["release", &id]);
        assert!(o.status.success(), "{}", stderr(&o));
    }));
    let _ = serve.kill();
    let _ = serve.wait();
    if let Err(p) = result {
        std::panic::resume_unwind(p);
    }
}

/// Snapshots from the command line: reserve (seeded with `default`), take the
/// stack, reserve a new stack from the taken snapshot, re-seed it (nothing
/// changes), and the errors a user can make.
#[test]
fn snapshot_take_then_reserve_from_it() {
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    let json = |o: &Output| -> serde_json::Value {
        assert!(o.status.success(), "{}", stderr(o));
        serde_json::from_slice(&o.stdout).expect("json")
    };
    let o = run(d, &["reserve", "--seed", "nope"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("seed") && stderr(&o).contains("nope"),
        "{}",
        stderr(&o)
    );

    let first = json(&run(d, &["--json", "reserve", "--wait"]));
    assert_eq!(first["state"], "ready", "{first}");
    assert_eq!(first["seed"], "default");
    let id = first["id"].as_str().expect("id").to_string();

    let taken = json(&run(d, &["--json", "snapshot", "take", &id, "--name", "mine"]));
    assert_eq!(taken["balrog"]["releases"], 13, "{taken}");
    assert_eq!(taken["s3"]["objects"], 20188, "{taken}");
    let listed = json(&run(d, &["--json", "snapshot", "list"]));
    assert!(
        listed.as_array().expect("list").iter().any(|s| s["name"] == "mine"),
        "{listed}"
    );
    let o = run(d, &["snapshot", "take", &id, "--name", "../evil"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));

    let second = json(&run(d, &["--json", "reserve", "--wait", "--seed", "mine"]));
    assert_eq!(second["state"], "ready", "{second}");
    let id2 = second["id"].as_str().expect("id").to_string();
    let again = json(&run(d, &["--json", "snapshot", "seed", &id2, "--name", "mine"]));
    for s in again["services"].as_array().expect("services") {
        let changed = s["result"]["changed"]
            .as_i64()
            .or_else(|| s["result"]["imported"]["releases"].as_i64());
        assert_eq!(changed, Some(0), "re-seeding changed {s}");
    }
    for id in [&id, &id2] {
        assert!(run(d, &["release", id]).status.success());
    }
}

/// `stagelib promote` validates its whole input first (exit 2, every field
/// named), prints the graph with --dry-run, and refuses unknown earlier graphs.
#[test]
fn promote_validates_and_dry_runs() {
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    let o = run(d, &["--json", "reserve", "--wait", "--no-seed"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let lease: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let id = lease["id"].as_str().expect("id").to_string();

    let o = run(
        d,
        &[
            "promote",
            "--lease",
            &id,
            "--flavor",
            "ship_firefox",
            "--version",
            "158.0.0",
            "--partial",
            "15x",
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    for field in ["version", "next_version", "partial_updates.15x"] {
        assert!(stderr(&o).contains(field), "{field} not named: {}", stderr(&o));
    }
    let o = run(
        d,
        &[
            "promote",
            "--lease",
            &id,
            "--flavor",
            "push_firefox",
            "--version",
            "158.0b5",
            "--previous-graph-id",
            "AAAAAAAAAAAAAAAAAAAAAA",
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("previous_graph_ids[0]"), "{}", stderr(&o));

    let o = run(
        d,
        &[
            "--json",
            "promote",
            "--lease",
            &id,
            "--flavor",
            "promote_firefox",
            "--version",
            "158.0b5",
            "--partial",
            "158.0b4",
            "--locales",
            "de,fr",
            "--platform",
            "win64",
            "--dry-run",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let g: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let tasks = g["tasks"].as_array().expect("tasks");
    assert!(tasks
        .iter()
        .any(|t| t["label"] == "balrog-win64-fr" && t["fate"] == "run"));
    assert!(
        tasks.iter().all(|t| t["phase"] == "promote"),
        "promote runs only promote tasks"
    );
    let o = run(d, &["--json", "promote", "--lease", &id, "--list"]);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&o.stdout).expect("json"),
        serde_json::json!([]),
        "a dry run stores nothing"
    );
    // A release that fails on this unseeded stack, with --hold-on-failure: the
    // report names the failed tasks and the lease is held for debugging.
    let o = run(
        d,
        &[
            "promote",
            "--lease",
            &id,
            "--flavor",
            "promote_firefox",
            "--version",
            "158.0b5",
            "--platform",
            "linux-x86_64",
            "--locales",
            "en-US",
            "--hold-on-failure",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("FAILED release-update-verify-config"), "{out}");
    assert!(stderr(&o).contains("holding lease"), "{}", stderr(&o));
    let o = run(d, &["--json", "show", &id]);
    let shown: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(shown["hold"], true, "held after the failure");
    assert_eq!(shown["state"], "ready", "its stack is still up");
    assert!(run(d, &["release", &id]).status.success());
}
