//! Object storage on disk under `--data-dir`: one directory per bucket, each
//! object a file named by the hex encoding of its key (so no key — `../x`,
//! absolute paths, NUL bytes — can name a path outside the bucket), written to a
//! temporary file, fsynced and renamed; its metadata beside it as JSON.
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no such bucket `{0}`")]
    NoSuchBucket(String),
    #[error("no such key `{0}`")]
    NoSuchKey(String),
    #[error("invalid bucket name `{0}`: 3-63 characters of a-z, 0-9, `.` and `-`")]
    InvalidBucket(String),
    #[error("invalid key: {0}")]
    InvalidKey(String),
    #[error("the bucket `{0}` is not empty")]
    BucketNotEmpty(String),
    #[error("no such upload `{0}`")]
    NoSuchUpload(String),
    #[error("invalid part list: {0}")]
    InvalidPart(String),
    #[error("object too large: {size} bytes (limit {limit})")]
    TooLarge { size: u64, limit: u64 },
    #[error("storage: {0}")]
    Io(#[from] std::io::Error),
}

/// What is kept about an object besides its bytes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Meta {
    pub key: String,
    pub size: u64,
    /// Without quotes.
    pub etag: String,
    pub content_type: Option<String>,
    /// Seconds since the epoch.
    pub modified: u64,
    #[serde(default)]
    pub user: BTreeMap<String, String>,
}

/// A multipart upload in progress.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Upload {
    pub bucket: String,
    pub key: String,
    pub content_type: Option<String>,
    #[serde(default)]
    pub user: BTreeMap<String, String>,
}

pub struct Store {
    root: PathBuf,
    pub max_object_size: u64,
    /// Seeded objects whose bytes are generated from their key (`seed::mar`):
    /// bucket → key → what HEAD and LIST show. A stored object of the same key
    /// wins; deleting removes both.
    generated: std::sync::RwLock<BTreeMap<String, BTreeMap<String, Generated>>>,
}

/// A seeded object served from its generator.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Generated {
    pub size: u64,
    pub etag: String,
    pub sha512: String,
    pub modified: u64,
}

pub fn valid_bucket(name: &str) -> bool {
    (3..=63).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
        && !name.starts_with(['.', '-'])
}

/// The file an object's bytes live in: the hex of its key, or for keys too long
/// for a file name (S3 allows 1024 bytes, file systems 255) `k-` and the SHA-256
/// of the key. The key itself is in the metadata beside it.
fn file_name(key: &str) -> String {
    let hex = hex::encode(key.as_bytes());
    if hex.len() <= 200 {
        hex
    } else {
        use sha2::Digest;
        format!("k-{}", hex::encode(sha2::Sha256::digest(key.as_bytes())))
    }
}

pub fn check_key(key: &str) -> Result<(), StoreError> {
    if key.is_empty() || key.len() > 1024 {
        return Err(StoreError::InvalidKey("keys are 1 to 1024 bytes long".into()));
    }
    if key.contains('\0') {
        return Err(StoreError::InvalidKey("keys cannot contain NUL".into()));
    }
    Ok(())
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Store {
    pub fn open(root: &Path, max_object_size: u64) -> Result<Self, StoreError> {
        std::fs::create_dir_all(root.join("buckets"))?;
        std::fs::create_dir_all(root.join("uploads"))?;
        std::fs::create_dir_all(root.join("generated"))?;
        let mut generated = BTreeMap::new();
        for e in std::fs::read_dir(root.join("generated"))?.flatten() {
            let p = e.path();
            let Some(bucket) = p
                .extension()
                .is_some_and(|x| x == "json")
                .then(|| {
                    p.file_stem()
                        .and_then(|s| hex::decode(s.to_string_lossy().as_bytes()).ok())
                })
                .flatten()
                .and_then(|b| String::from_utf8(b).ok())
            else {
                continue;
            };
            let map: BTreeMap<String, Generated> =
                serde_json::from_slice(&std::fs::read(&p)?).map_err(|e| StoreError::Io(std::io::Error::other(e)))?;
            generated.insert(bucket, map);
        }
        Ok(Self {
            root: root.to_path_buf(),
            max_object_size,
            generated: std::sync::RwLock::new(generated),
        })
    }

    fn generated_file(&self, bucket: &str) -> PathBuf {
        self.root
            .join("generated")
            .join(format!("{}.json", hex::encode(bucket.as_bytes())))
    }

    fn save_generated(&self, bucket: &str, map: &BTreeMap<String, Generated>) -> Result<(), StoreError> {
        let path = self.generated_file(bucket);
        let bytes = serde_json::to_vec(map).map_err(|e| StoreError::Io(std::io::Error::other(e)))?;
        Self::write_atomic(&path, &[bytes::Bytes::from(bytes)])?;
        Ok(())
    }

    /// Seed generated objects into `bucket` (replacing entries of the same key),
    /// durably. Returns how many entries changed.
    pub fn add_generated(&self, bucket: &str, objects: Vec<(String, Generated)>) -> Result<usize, StoreError> {
        self.existing_bucket(bucket)?;
        let mut all = self.generated.write().unwrap_or_else(|p| p.into_inner());
        let mut map = all.get(bucket).cloned().unwrap_or_default();
        let mut changed = 0;
        for (key, g) in objects {
            check_key(&key)?;
            let same = map
                .get(&key)
                .is_some_and(|old| old.sha512 == g.sha512 && old.size == g.size);
            if !same {
                map.insert(key, g);
                changed += 1;
            }
        }
        if changed > 0 {
            self.save_generated(bucket, &map)?;
            all.insert(bucket.to_string(), map);
        }
        Ok(changed)
    }

    /// The generated entry of `key`, if it was seeded.
    pub fn generated_entry(&self, bucket: &str, key: &str) -> Option<Generated> {
        let all = self.generated.read().unwrap_or_else(|p| p.into_inner());
        all.get(bucket)?.get(key).cloned()
    }

    fn generated_meta(&self, bucket: &str, key: &str) -> Option<Meta> {
        let all = self.generated.read().unwrap_or_else(|p| p.into_inner());
        let g = all.get(bucket)?.get(key)?;
        Some(Meta {
            key: key.to_string(),
            size: g.size,
            etag: g.etag.clone(),
            content_type: Some("application/octet-stream".into()),
            modified: g.modified,
            user: BTreeMap::new(),
        })
    }

    fn bucket_dir(&self, bucket: &str) -> Result<PathBuf, StoreError> {
        if !valid_bucket(bucket) {
            return Err(StoreError::InvalidBucket(bucket.to_string()));
        }
        Ok(self.root.join("buckets").join(bucket))
    }

    fn existing_bucket(&self, bucket: &str) -> Result<PathBuf, StoreError> {
        let d = self.bucket_dir(bucket)?;
        if d.is_dir() {
            Ok(d)
        } else {
            Err(StoreError::NoSuchBucket(bucket.to_string()))
        }
    }

    fn object_path(&self, bucket: &str, key: &str) -> Result<PathBuf, StoreError> {
        check_key(key)?;
        Ok(self.existing_bucket(bucket)?.join(file_name(key)))
    }

    pub fn create_bucket(&self, bucket: &str) -> Result<bool, StoreError> {
        let d = self.bucket_dir(bucket)?;
        if d.is_dir() {
            return Ok(false);
        }
        std::fs::create_dir_all(&d)?;
        Ok(true)
    }

    pub fn bucket_exists(&self, bucket: &str) -> bool {
        self.bucket_dir(bucket).map(|d| d.is_dir()).unwrap_or(false)
    }

    pub fn delete_bucket(&self, bucket: &str) -> Result<(), StoreError> {
        let d = self.existing_bucket(bucket)?;
        let seeded = self
            .generated
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(bucket)
            .is_some_and(|m| !m.is_empty());
        if seeded || std::fs::read_dir(&d)?.next().is_some() {
            return Err(StoreError::BucketNotEmpty(bucket.to_string()));
        }
        std::fs::remove_dir(&d)?;
        Ok(())
    }

    pub fn buckets(&self) -> Result<Vec<(String, SystemTime)>, StoreError> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(self.root.join("buckets"))?.flatten() {
            let created = e
                .metadata()
                .and_then(|m| m.modified())
                .unwrap_or(SystemTime::UNIX_EPOCH);
            out.push((e.file_name().to_string_lossy().to_string(), created));
        }
        out.sort();
        Ok(out)
    }

    /// Write bytes durably under `dest` (temp file, fsync, rename); returns the MD5 hex.
    fn write_atomic(dest: &Path, chunks: &[bytes::Bytes]) -> Result<String, StoreError> {
        let tmp = dest.with_extension(format!("tmp{}", rand::random::<u32>()));
        let mut md5 = Md5::new();
        {
            let mut f = std::fs::File::create(&tmp)?;
            for c in chunks {
                md5.update(c);
                f.write_all(c)?;
            }
            f.sync_all()?;
        }
        std::fs::rename(&tmp, dest)?;
        Ok(hex::encode(md5.finalize()))
    }

    fn write_meta(path: &Path, meta: &Meta) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(meta).map_err(std::io::Error::other)?;
        let tmp = path.with_extension("meta.tmp");
        {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
        }
        std::fs::rename(tmp, path.with_extension("meta"))?;
        Ok(())
    }

    pub fn put(
        &self,
        bucket: &str,
        key: &str,
        chunks: &[bytes::Bytes],
        content_type: Option<String>,
        user: BTreeMap<String, String>,
    ) -> Result<Meta, StoreError> {
        let size: u64 = chunks.iter().map(|c| c.len() as u64).sum();
        if size > self.max_object_size {
            return Err(StoreError::TooLarge {
                size,
                limit: self.max_object_size,
            });
        }
        let path = self.object_path(bucket, key)?;
        let etag = Self::write_atomic(&path, chunks)?;
        let meta = Meta {
            key: key.to_string(),
            size,
            etag,
            content_type,
            modified: now_secs(),
            user,
        };
        Self::write_meta(&path, &meta)?;
        Ok(meta)
    }

    pub fn head(&self, bucket: &str, key: &str) -> Result<Meta, StoreError> {
        let path = self.object_path(bucket, key)?;
        let stored = std::fs::read(path.with_extension("meta"))
            .ok()
            .filter(|_| path.is_file());
        match stored {
            Some(bytes) => serde_json::from_slice(&bytes).map_err(|e| StoreError::Io(std::io::Error::other(e))),
            None => self
                .generated_meta(bucket, key)
                .ok_or_else(|| StoreError::NoSuchKey(key.to_string())),
        }
    }

    /// The bytes of `range` (end exclusive) of an object.
    pub fn read(&self, bucket: &str, key: &str, range: std::ops::Range<u64>) -> Result<bytes::Bytes, StoreError> {
        use std::io::{Read, Seek, SeekFrom};
        let path = self.object_path(bucket, key)?;
        let mut f = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(_) => {
                self.generated_meta(bucket, key)
                    .ok_or_else(|| StoreError::NoSuchKey(key.to_string()))?;
                let bytes =
                    crate::seed::mar::content_for_key(key).ok_or_else(|| StoreError::NoSuchKey(key.to_string()))?;
                let end = (range.end as usize).min(bytes.len());
                let start = (range.start as usize).min(end);
                return Ok(bytes::Bytes::copy_from_slice(&bytes[start..end]));
            }
        };
        f.seek(SeekFrom::Start(range.start))?;
        let mut buf = vec![0u8; (range.end - range.start) as usize];
        f.read_exact(&mut buf)?;
        Ok(buf.into())
    }

    pub fn delete(&self, bucket: &str, key: &str) -> Result<(), StoreError> {
        let path = self.object_path(bucket, key)?;
        {
            let mut all = self.generated.write().unwrap_or_else(|p| p.into_inner());
            if let Some(map) = all.get(bucket) {
                if map.contains_key(key) {
                    let mut map = map.clone();
                    map.remove(key);
                    self.save_generated(bucket, &map)?;
                    all.insert(bucket.to_string(), map);
                }
            }
        }
        let _ = std::fs::remove_file(path.with_extension("meta"));
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    pub fn copy(&self, from_bucket: &str, from_key: &str, to_bucket: &str, to_key: &str) -> Result<Meta, StoreError> {
        let src = self.head(from_bucket, from_key)?;
        let bytes = self.read(from_bucket, from_key, 0..src.size)?;
        self.put(to_bucket, to_key, &[bytes], src.content_type, src.user)
    }

    /// Every object of a bucket, sorted by key.
    pub fn list(&self, bucket: &str) -> Result<Vec<Meta>, StoreError> {
        let d = self.existing_bucket(bucket)?;
        let mut out = Vec::new();
        for e in std::fs::read_dir(d)?.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "meta") {
                if let Ok(m) = serde_json::from_slice::<Meta>(&std::fs::read(&p)?) {
                    out.push(m);
                }
            }
        }
        let stored: std::collections::BTreeSet<String> = out.iter().map(|m| m.key.clone()).collect();
        {
            let all = self.generated.read().unwrap_or_else(|p| p.into_inner());
            if let Some(map) = all.get(bucket) {
                out.extend(map.iter().filter(|(k, _)| !stored.contains(*k)).map(|(k, g)| Meta {
                    key: k.clone(),
                    size: g.size,
                    etag: g.etag.clone(),
                    content_type: Some("application/octet-stream".into()),
                    modified: g.modified,
                    user: BTreeMap::new(),
                }));
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    fn upload_dir(&self, id: &str) -> Result<PathBuf, StoreError> {
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(StoreError::NoSuchUpload(id.to_string()));
        }
        Ok(self.root.join("uploads").join(id))
    }

    pub fn create_upload(&self, up: &Upload) -> Result<String, StoreError> {
        self.object_path(&up.bucket, &up.key)?;
        let id = hex::encode(rand::random::<[u8; 16]>());
        let d = self.upload_dir(&id)?;
        std::fs::create_dir_all(&d)?;
        std::fs::write(
            d.join("upload.json"),
            serde_json::to_vec(up).map_err(std::io::Error::other)?,
        )?;
        Ok(id)
    }

    pub fn upload(&self, id: &str) -> Result<Upload, StoreError> {
        let d = self.upload_dir(id)?;
        let bytes = std::fs::read(d.join("upload.json")).map_err(|_| StoreError::NoSuchUpload(id.to_string()))?;
        serde_json::from_slice(&bytes).map_err(|e| StoreError::Io(std::io::Error::other(e)))
    }

    pub fn put_part(&self, id: &str, number: i32, chunks: &[bytes::Bytes]) -> Result<String, StoreError> {
        self.upload(id)?;
        if !(1..=10_000).contains(&number) {
            return Err(StoreError::InvalidPart(format!(
                "part number {number} is outside 1-10000"
            )));
        }
        Self::write_atomic(&self.upload_dir(id)?.join(format!("part-{number:05}")), chunks)
    }

    /// (number, size, md5) of the parts uploaded so far.
    pub fn parts(&self, id: &str) -> Result<Vec<(i32, u64, String)>, StoreError> {
        let d = self.upload_dir(id)?;
        self.upload(id)?;
        let mut out = Vec::new();
        for e in std::fs::read_dir(&d)?.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if let Some(n) = name.strip_prefix("part-").and_then(|n| n.parse::<i32>().ok()) {
                let bytes = std::fs::read(e.path())?;
                out.push((n, bytes.len() as u64, hex::encode(Md5::digest(&bytes))));
            }
        }
        out.sort();
        Ok(out)
    }

    /// Join the listed parts into the object; the ETag is S3's md5-of-md5s-N.
    pub fn complete(&self, id: &str, wanted: &[(i32, String)]) -> Result<(Upload, Meta), StoreError> {
        let up = self.upload(id)?;
        let have = self.parts(id)?;
        let d = self.upload_dir(id)?;
        let mut chunks = Vec::new();
        let mut digests = Vec::new();
        let mut last = 0;
        for (n, etag) in wanted {
            if *n <= last {
                return Err(StoreError::InvalidPart(
                    "parts must be listed in ascending order".into(),
                ));
            }
            last = *n;
            let (_, _, md5) = have
                .iter()
                .find(|(pn, _, _)| pn == n)
                .ok_or_else(|| StoreError::InvalidPart(format!("part {n} was not uploaded")))?;
            if etag.trim_matches('"') != md5 {
                return Err(StoreError::InvalidPart(format!("part {n}: ETag does not match")));
            }
            digests.extend(hex::decode(md5).unwrap_or_default());
            chunks.push(bytes::Bytes::from(std::fs::read(d.join(format!("part-{n:05}")))?));
        }
        if wanted.is_empty() {
            return Err(StoreError::InvalidPart("no parts listed".into()));
        }
        let mut meta = self.put(&up.bucket, &up.key, &chunks, up.content_type.clone(), up.user.clone())?;
        meta.etag = format!("{}-{}", hex::encode(Md5::digest(&digests)), wanted.len());
        Self::write_meta(&self.object_path(&up.bucket, &up.key)?, &meta)?;
        let _ = std::fs::remove_dir_all(d);
        Ok((up, meta))
    }

    pub fn abort(&self, id: &str) -> Result<(), StoreError> {
        self.upload(id)?;
        std::fs::remove_dir_all(self.upload_dir(id)?)?;
        Ok(())
    }
}
