//! The snapshot format (docs/seed-data.md): one directory per snapshot,
//! `snapshot.json` plus one file per service (`balrog.json`, `bouncer.json`,
//! `s3.json`, `shipit.json`, each optionally gzip-compressed as `*.json.gz`) and
//! `s3-objects/<sha512>` for objects whose bytes cannot be generated from their key.
//!
//! Everything is kept in canonical (un-namespaced) names and production URLs;
//! `seed::rewrite` maps it onto a stack and a namespace and back.
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha512};

use super::SeedError;
pub use crate::services::balrog::db::{Permission, UserRole};
use crate::services::balrog::db::{Pin, ReleaseRow, RequiredSignoff, Shutoff};
use crate::services::balrog::rule::Rule;

/// Version of the on-disk format.
pub const FORMAT: u32 = 1;

/// Rule IDs of a snapshot stay below this; each further namespace seeded onto a
/// shared Balrog gets its rules offset by a multiple of it.
pub const MAX_RULE_ID: i64 = 100_000;

/// Production hosts the data's URLs point at.
pub const ARCHIVE_ORIGIN: &str = "http://archive.mozilla.org";
pub const DOWNLOAD_ORIGIN: &str = "http://download.mozilla.org";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub meta: Meta,
    pub balrog: BalrogData,
    pub bouncer: BouncerData,
    pub s3: S3Data,
    pub shipit: ShipitData,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    pub format: u32,
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Where the data came from: `generated`, a production URL, `lease <id>`.
    pub source: String,
    /// Hosts the data's URLs point at; seeding swaps them for the stack's.
    pub origins: Origins,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origins {
    /// Base of S3 keys (`<archive>/pub/...`).
    pub archive: String,
    /// The bouncer redirector (`<download>/?product=...`).
    pub download: String,
}

impl Default for Origins {
    fn default() -> Self {
        Self {
            archive: ARCHIVE_ORIGIN.into(),
            download: DOWNLOAD_ORIGIN.into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct BalrogData {
    pub releases: Vec<ReleaseRow>,
    /// Rules with their production IDs and data versions.
    pub rules: Vec<Rule>,
    pub required_signoffs: Vec<RequiredSignoff>,
    pub permissions: Vec<Permission>,
    pub roles: Vec<UserRole>,
    pub emergency_shutoffs: Vec<Shutoff>,
    pub pins: Vec<Pin>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct BouncerData {
    pub products: Vec<BouncerProduct>,
    /// alias → product name.
    pub aliases: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BouncerProduct {
    pub name: String,
    #[serde(default)]
    pub ssl_only: bool,
    /// Empty = every language.
    #[serde(default)]
    pub languages: Vec<String>,
    /// bouncer OS name → path (relative to the CDN's `/pub`, with `:lang`).
    #[serde(default)]
    pub locations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct S3Data {
    pub objects: Vec<S3Object>,
}

/// One file of a previous release. Its bytes are generated from the key
/// (`seed::mar`) unless `stored`, in which case they are in
/// `s3-objects/<sha512>` beside the snapshot.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct S3Object {
    pub key: String,
    pub size: u64,
    pub sha512: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stored: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ShipitData {
    pub releases: Vec<crate::services::shipit::state::Release>,
}

/// How a snapshot is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WriteOptions {
    /// gzip the service files (`*.json.gz`).
    pub gzip: bool,
}

const SERVICE_FILES: [&str; 4] = ["balrog", "bouncer", "s3", "shipit"];

pub fn sha512_hex(b: &[u8]) -> String {
    hex::encode(Sha512::digest(b))
}

impl Snapshot {
    /// An empty snapshot named `name`.
    pub fn empty(name: &str, source: &str) -> Self {
        Self {
            meta: Meta {
                format: FORMAT,
                name: name.to_string(),
                description: String::new(),
                source: source.to_string(),
                origins: Origins::default(),
            },
            balrog: BalrogData::default(),
            bouncer: BouncerData::default(),
            s3: S3Data::default(),
            shipit: ShipitData::default(),
        }
    }

    /// Sort every list by its key so equal data gives equal files.
    pub fn normalize(&mut self) {
        let b = &mut self.balrog;
        b.releases.sort_by(|x, y| x.name.cmp(&y.name));
        b.rules.sort_by_key(|r| r.rule_id);
        b.required_signoffs
            .sort_by(|x, y| (&x.product, &x.channel, &x.role).cmp(&(&y.product, &y.channel, &y.role)));
        b.permissions.sort();
        b.roles.sort();
        b.emergency_shutoffs
            .sort_by(|x, y| (&x.product, &x.channel).cmp(&(&y.product, &y.channel)));
        b.pins
            .sort_by(|x, y| (&x.product, &x.channel, &x.version).cmp(&(&y.product, &y.channel, &y.version)));
        for p in &mut self.bouncer.products {
            p.languages.sort();
        }
        self.bouncer.products.sort_by(|x, y| x.name.cmp(&y.name));
        self.s3.objects.sort();
        self.shipit.releases.sort_by(|x, y| x.name.cmp(&y.name));
    }

    /// Check what seeding relies on; the error names the object and field.
    pub fn validate(&self) -> Result<(), SeedError> {
        let bad = |what: String| Err(SeedError::Invalid(what));
        if self.meta.format != FORMAT {
            return bad(format!(
                "snapshot.json: format {} is not supported (this stagelib reads format {FORMAT})",
                self.meta.format
            ));
        }
        let names: std::collections::BTreeSet<&str> = self.balrog.releases.iter().map(|r| r.name.as_str()).collect();
        if names.len() != self.balrog.releases.len() {
            return bad("balrog.releases: two releases have the same name".into());
        }
        for r in &self.balrog.releases {
            if r.blob.get("name").and_then(Value::as_str) != Some(r.name.as_str()) {
                return bad(format!(
                    "balrog.releases[{}].blob.name: must equal the release name",
                    r.name
                ));
            }
        }
        let mut ids = std::collections::BTreeSet::new();
        for r in &self.balrog.rules {
            if r.rule_id <= 0 || r.rule_id >= MAX_RULE_ID || !ids.insert(r.rule_id) {
                return bad(format!(
                    "balrog.rules: rule_id {} must be unique and between 1 and {} (namespaces are offset by {MAX_RULE_ID})",
                    r.rule_id,
                    MAX_RULE_ID - 1
                ));
            }
            for m in r.mapping.iter().chain(r.fallback_mapping.iter()) {
                if !names.contains(m.as_str()) {
                    return bad(format!(
                        "balrog.rules[{}].mapping: `{m}` is not a release of the snapshot",
                        r.rule_id
                    ));
                }
            }
        }
        for p in &self.balrog.pins {
            if !names.contains(p.mapping.as_str()) {
                return bad(format!("balrog.pins: `{}` is not a release of the snapshot", p.mapping));
            }
        }
        let products: std::collections::BTreeSet<String> = self
            .bouncer
            .products
            .iter()
            .map(|p| p.name.to_ascii_lowercase())
            .collect();
        for (alias, target) in &self.bouncer.aliases {
            if !products.contains(&target.to_ascii_lowercase()) {
                return bad(format!(
                    "bouncer.aliases.{alias}: `{target}` is not a product of the snapshot"
                ));
            }
        }
        for o in &self.s3.objects {
            if o.sha512.len() != 128 || !o.sha512.chars().all(|c| c.is_ascii_hexdigit()) {
                return bad(format!("s3.objects[{}].sha512: must be 128 hex digits", o.key));
            }
            if !o.stored && super::mar::parse_key(&o.key).is_none() {
                return bad(format!(
                    "s3.objects[{}]: only update MARs can be generated from their key; store other objects (`stored: true`)",
                    o.key
                ));
            }
        }
        Ok(())
    }

    /// Read the snapshot in `dir`.
    pub fn read(dir: &Path) -> Result<Self, SeedError> {
        let meta: Meta = read_json(&dir.join("snapshot.json"))?.ok_or_else(|| SeedError::NotFound {
            name: dir.display().to_string(),
            searched: vec![dir.to_path_buf()],
        })?;
        let part = |name: &str| -> Result<Option<Value>, SeedError> {
            if let Some(v) = read_json(&dir.join(format!("{name}.json")))? {
                return Ok(Some(v));
            }
            read_json(&dir.join(format!("{name}.json.gz")))
        };
        let typed =
            |name: &str| -> Result<Value, SeedError> { Ok(part(name)?.unwrap_or(Value::Object(Default::default()))) };
        let field = |name: &str, e: serde_json::Error| SeedError::Invalid(format!("{name}.json: {e}"));
        let snap = Snapshot {
            meta,
            balrog: serde_json::from_value(typed("balrog")?).map_err(|e| field("balrog", e))?,
            bouncer: serde_json::from_value(typed("bouncer")?).map_err(|e| field("bouncer", e))?,
            s3: serde_json::from_value(typed("s3")?).map_err(|e| field("s3", e))?,
            shipit: serde_json::from_value(typed("shipit")?).map_err(|e| field("shipit", e))?,
        };
        snap.validate()?;
        Ok(snap)
    }

    /// Write the snapshot to `dir` (created; service files replaced).
    /// `stored` gives the bytes of objects marked `stored`, by SHA-512.
    pub fn write(&self, dir: &Path, opts: WriteOptions, stored: &BTreeMap<String, Vec<u8>>) -> Result<(), SeedError> {
        let io = |path: &Path, e: std::io::Error| SeedError::Io {
            path: path.to_path_buf(),
            source: e,
        };
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        let mut snap = self.clone();
        snap.normalize();
        write_file(&dir.join("snapshot.json"), &pretty(&snap.meta)?)?;
        let parts: [(&str, Vec<u8>); 4] = [
            ("balrog", encode(&snap.balrog, opts.gzip)?),
            ("bouncer", encode(&snap.bouncer, opts.gzip)?),
            ("s3", encode(&snap.s3, opts.gzip)?),
            ("shipit", encode(&snap.shipit, opts.gzip)?),
        ];
        for (name, bytes) in parts {
            let (keep, drop) = if opts.gzip {
                ("json.gz", "json")
            } else {
                ("json", "json.gz")
            };
            let _ = std::fs::remove_file(dir.join(format!("{name}.{drop}")));
            write_file(&dir.join(format!("{name}.{keep}")), &bytes)?;
        }
        let objects = dir.join("s3-objects");
        for o in snap.s3.objects.iter().filter(|o| o.stored) {
            let bytes = stored
                .get(&o.sha512)
                .ok_or_else(|| SeedError::Invalid(format!("s3.objects[{}]: its bytes were not given", o.key)))?;
            std::fs::create_dir_all(&objects).map_err(|e| io(&objects, e))?;
            write_file(&objects.join(&o.sha512), bytes)?;
        }
        Ok(())
    }

    /// The bytes of a stored object of the snapshot in `dir`, checked against
    /// its SHA-512.
    pub fn stored_object(dir: &Path, o: &S3Object) -> Result<Vec<u8>, SeedError> {
        let path = dir.join("s3-objects").join(&o.sha512);
        let bytes = std::fs::read(&path).map_err(|source| SeedError::Io { path, source })?;
        if sha512_hex(&bytes) != o.sha512 {
            return Err(SeedError::Invalid(format!(
                "s3-objects/{}: content does not match its SHA-512 (for key {})",
                o.sha512, o.key
            )));
        }
        Ok(bytes)
    }

    /// Total size in bytes of the files of the snapshot in `dir`.
    pub fn size_on_disk(dir: &Path) -> u64 {
        let mut total = 0;
        let mut files: Vec<PathBuf> = vec!["snapshot.json".into()];
        for n in SERVICE_FILES {
            files.push(format!("{n}.json").into());
            files.push(format!("{n}.json.gz").into());
        }
        for f in files {
            total += std::fs::metadata(dir.join(f)).map(|m| m.len()).unwrap_or(0);
        }
        if let Ok(rd) = std::fs::read_dir(dir.join("s3-objects")) {
            total += rd
                .flatten()
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum::<u64>();
        }
        total
    }

    /// Counts for reports.
    pub fn summary(&self) -> Value {
        serde_json::json!({
            "name": self.meta.name,
            "source": self.meta.source,
            "balrog": {"releases": self.balrog.releases.len(), "rules": self.balrog.rules.len(),
                "required_signoffs": self.balrog.required_signoffs.len(), "permissions": self.balrog.permissions.len()},
            "bouncer": {"products": self.bouncer.products.len(), "aliases": self.bouncer.aliases.len()},
            "s3": {"objects": self.s3.objects.len(), "bytes": self.s3.objects.iter().map(|o| o.size).sum::<u64>()},
            "shipit": {"releases": self.shipit.releases.len()},
        })
    }
}

fn pretty<T: Serialize>(v: &T) -> Result<Vec<u8>, SeedError> {
    let mut out = serde_json::to_vec_pretty(v).map_err(|e| SeedError::Invalid(e.to_string()))?;
    out.push(b'\n');
    Ok(out)
}

fn encode<T: Serialize>(v: &T, gzip: bool) -> Result<Vec<u8>, SeedError> {
    if !gzip {
        return pretty(v);
    }
    let raw = serde_json::to_vec(v).map_err(|e| SeedError::Invalid(e.to_string()))?;
    // mtime 0 and no file name: the same data always gives the same bytes.
    let mut enc = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::best());
    enc.write_all(&raw)
        .and_then(|()| enc.finish())
        .map_err(|e| SeedError::Invalid(format!("gzip: {e}")))
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), SeedError> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|source| SeedError::Io {
            path: path.to_path_buf(),
            source,
        })
}

/// Read a JSON (or, for `*.gz`, gzip-compressed JSON) file; `None` if absent.
fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Option<T>, SeedError> {
    let raw = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(SeedError::Io {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let bytes = if path.extension().is_some_and(|x| x == "gz") {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| SeedError::Invalid(format!("{}: not valid gzip: {e}", path.display())))?;
        out
    } else {
        raw
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| SeedError::Invalid(format!("{}: {e}", path.display())))
}
