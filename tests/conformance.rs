//! Conformance tests: the real PyPI clients (balrogclient, boto3, mar, shipitapi,
//! bouncerscript…) run by pytest from `.venv/` against `stagelib service NAME`.
//! `.ci/run` creates the venv. Without it the tests fail in CI and skip loudly
//! elsewhere.
use std::path::Path;
use std::process::Command;

/// Run `pytest tests/python/<file>` with the stagelib binary under test.
#[allow(dead_code)]
fn run_pytest(file: &str) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = root.join(".venv/bin/python");
    if !python.exists() {
        let msg = format!(
            "!!! SKIPPING conformance test {file}: no Python venv at {} (create it with .ci/run) !!!",
            python.display()
        );
        if std::env::var_os("CI").is_some() {
            panic!("{msg} -- CI is set, so this is a failure");
        }
        eprintln!("{msg}");
        return;
    }
    let status = Command::new(&python)
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
        .arg(root.join("tests/python").join(file))
        .env("STAGELIB_BIN", env!("CARGO_BIN_EXE_stagelib"))
        .current_dir(root.join("tests/python"))
        .status()
        .expect("run pytest");
    assert!(status.success(), "pytest {file} failed: {status}");
}

#[test]
fn balrog() {
    run_pytest("test_balrog.py");
}

#[test]
fn bouncer() {
    run_pytest("test_bouncer.py");
}

#[test]
fn s3() {
    run_pytest("test_s3.py");
}

#[test]
fn shipit() {
    run_pytest("test_shipit.py");
}

#[test]
fn seeded_mars() {
    run_pytest("test_seed.py");
}
