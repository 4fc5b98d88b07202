//! Beetmover tasks: MARs to the candidates directory with their checksums,
//! the release checksum files, and push to releases (reference
//! artifacts-and-verify.md §2, §3). All S3 access goes through the `minio`
//! client.
use sha2::{Digest, Sha256, Sha512};

use super::{s3e, StackRunner, TaskError, TaskLog};

/// The update MARs of one platform and locale: (path under the build dir, bytes).
fn mars(r: &StackRunner, platform: &str, locale: &str) -> Result<Vec<(String, Vec<u8>)>, TaskError> {
    let rel = r.release();
    let v = &rel.version;
    let mut out = vec![(
        format!("update/{platform}/{locale}/firefox-{v}.complete.mar"),
        r.artifacts.mar(rel, platform, locale, None)?,
    )];
    for (pv, _) in &rel.partials {
        out.push((
            format!("update/{platform}/{locale}/firefox-{pv}-{v}.partial.mar"),
            r.artifacts.mar(rel, platform, locale, Some(pv))?,
        ));
    }
    Ok(out)
}

/// `.beet` lines: `<hex> <algo> <size> <path>`, sha512 then sha256, by path.
fn beet(files: &[(String, Vec<u8>)]) -> String {
    let mut sorted: Vec<&(String, Vec<u8>)> = files.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = String::new();
    for (path, bytes) in sorted {
        out.push_str(&format!(
            "{} sha512 {} {path}\n",
            hex::encode(Sha512::digest(bytes)),
            bytes.len()
        ));
        out.push_str(&format!(
            "{} sha256 {} {path}\n",
            hex::encode(Sha256::digest(bytes)),
            bytes.len()
        ));
    }
    out
}

pub async fn repackage(r: &StackRunner, platform: &str, locale: &str, log: &TaskLog) -> Result<String, TaskError> {
    let dir = r.names.candidates_dir();
    let files = mars(r, platform, locale)?;
    let mut bytes = 0;
    for (path, data) in &files {
        bytes += data.len();
        let key = format!("{dir}/{path}");
        r.s3.put(&key, data.clone()).await.map_err(s3e)?;
        log.line(format!("uploaded {key} ({} bytes)", data.len()));
    }
    Ok(format!("{} MARs ({bytes} bytes) to {dir}/", files.len()))
}

pub async fn checksums(r: &StackRunner, platform: &str, locale: &str, log: &TaskLog) -> Result<String, TaskError> {
    let files = mars(r, platform, locale)?;
    let text = beet(&files);
    let key = format!(
        "{}/beetmover-checksums/{platform}/{locale}/firefox-{}.checksums.beet",
        r.names.candidates_dir(),
        r.release().version
    );
    r.s3.put(&key, text.clone().into_bytes()).await.map_err(s3e)?;
    log.line(format!("uploaded {key}"));
    Ok(format!("{} checksum lines", text.lines().count()))
}

/// Files that go into SHA*SUMS (artifacts-and-verify.md §2.1).
fn summed(path: &str) -> bool {
    [
        ".tar.bz2", ".tar.xz", ".snap", ".dmg", ".pkg", ".bundle", ".mar", ".msi", ".xpi",
    ]
    .iter()
    .any(|s| path.ends_with(s))
        || (path.ends_with(".exe") && (path.contains("Setup") || path.contains("Installer")))
        || path.contains("/jsshell")
}

pub async fn generate_checksums(r: &StackRunner, log: &TaskLog) -> Result<String, TaskError> {
    let dir = r.names.candidates_dir();
    let listed = r.s3.list(&format!("{dir}/beetmover-checksums/")).await.map_err(s3e)?;
    let mut sums: std::collections::BTreeMap<(String, String), String> = Default::default();
    for o in &listed {
        let text = String::from_utf8(r.s3.get(&o.key).await.map_err(s3e)?)
            .map_err(|e| TaskError::Fatal(format!("{}: {e}", o.key)))?;
        for line in text.lines() {
            let mut parts = line.splitn(4, ' ');
            let (Some(hash), Some(algo), Some(_size), Some(path)) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                return Err(TaskError::Fatal(format!("{}: malformed line `{line}`", o.key)));
            };
            if !summed(path) {
                continue;
            }
            let k = (algo.to_string(), path.to_string());
            if let Some(old) = sums.get(&k) {
                if old != hash {
                    return Err(TaskError::Fatal(format!("conflicting {algo} checksums for {path}")));
                }
            }
            sums.insert(k, hash.to_string());
        }
    }
    if sums.is_empty() {
        return Err(TaskError::Fatal(format!(
            "no checksum files under {dir}/beetmover-checksums/"
        )));
    }
    for algo in ["sha512", "sha256"] {
        let body: String = sums
            .iter()
            .filter(|((a, _), _)| a == algo)
            .map(|((_, path), hash)| format!("{hash}  {path}\n"))
            .collect();
        let name = format!("{}SUMS", algo.to_uppercase());
        r.write_work(&name, &body)?;
        log.line(format!("{name}: {} files", body.lines().count()));
    }
    Ok(format!(
        "SHA512SUMS and SHA256SUMS over {} files from {} .beet files",
        sums.len() / 2,
        listed.len()
    ))
}

pub async fn upload_checksums(r: &StackRunner, log: &TaskLog) -> Result<String, TaskError> {
    let dir = r.names.candidates_dir();
    for name in ["SHA512SUMS", "SHA256SUMS"] {
        let p = r.work_file(name);
        if !super::exists(&p) {
            // The scratch space was lost (another machine, a wiped state dir):
            // regenerate from the .beet files, which is what the file holds.
            generate_checksums(r, log).await?;
        }
        let bytes = std::fs::read(&p).map_err(|e| TaskError::Fatal(format!("{}: {e}", p.display())))?;
        r.s3.put(&format!("{dir}/{name}"), bytes).await.map_err(s3e)?;
        log.line(format!("uploaded {dir}/{name}"));
    }
    Ok(format!("SHA512SUMS, SHA256SUMS to {dir}/"))
}

/// Candidates keys push-to-releases leaves behind.
fn excluded(rel_path: &str) -> bool {
    rel_path.contains("tests")
        || rel_path.contains("crashreporter")
        || ((rel_path.ends_with(".zip") || rel_path.ends_with(".zip.asc")) && !rel_path.contains("jsshell-"))
        || rel_path.ends_with(".log")
        || rel_path.ends_with(".txt")
        || rel_path.ends_with(".checksums")
        || rel_path.ends_with(".checksums.asc")
        || rel_path.contains("/logs/")
        || rel_path.ends_with("json")
        || rel_path.contains("/host")
        || rel_path.contains("mar-tools/")
        || rel_path.contains("contrib")
        || rel_path.starts_with("beetmover-checksums/")
        || rel_path.contains("/beetmover-checksums/")
        || rel_path.starts_with("partner-repacks/")
}

pub async fn push_to_releases(r: &StackRunner, log: &TaskLog) -> Result<String, TaskError> {
    let from = r.names.candidates_dir();
    let to = r.names.releases_dir();
    let candidates = r.s3.list(&format!("{from}/")).await.map_err(s3e)?;
    if candidates.is_empty() {
        return Err(TaskError::Fatal(format!(
            "No artifacts to copy from {from}/ so there is no reason to continue."
        )));
    }
    let existing: std::collections::BTreeMap<String, String> =
        r.s3.list(&format!("{to}/"))
            .await
            .map_err(s3e)?
            .into_iter()
            .map(|o| (o.key, o.etag))
            .collect();
    if !existing.is_empty() {
        log.line(format!("warning: {to}/ already has {} objects", existing.len()));
    }
    let (mut copied, mut skipped, mut same) = (0, 0, 0);
    for o in &candidates {
        let rel = &o.key[from.len() + 1..];
        if excluded(rel) {
            skipped += 1;
            continue;
        }
        let dest = format!("{to}/{rel}");
        match existing.get(&dest) {
            Some(etag) if *etag == o.etag => same += 1,
            Some(_) => {
                return Err(TaskError::Fatal(format!(
                    "{dest} already exists with different content"
                )));
            }
            None => {
                r.s3.copy(&o.key, &dest).await.map_err(s3e)?;
                copied += 1;
            }
        }
    }
    log.line(format!("copied {copied}, excluded {skipped}, already there {same}"));
    Ok(format!(
        "{copied} files copied to {to}/ ({skipped} excluded, {same} already there)"
    ))
}
