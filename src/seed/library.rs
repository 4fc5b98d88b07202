//! Where snapshots live: an ordered list of directories, each holding one
//! sub-directory per snapshot. The first is where `snapshot take` and `pull`
//! write by default (`<state_dir>/snapshots`); the repository's `seed-data/` comes
//! after it. `default` is always available: when no directory holds it, it is
//! generated in memory (it is deterministic, so this is the committed one).
use std::path::{Path, PathBuf};

use super::snapshot::Snapshot;
use super::SeedError;

#[derive(Debug, Clone)]
pub struct SnapshotLibrary {
    dirs: Vec<PathBuf>,
}

/// The repository's committed snapshots.
pub fn repository_seed_data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("seed-data")
}

/// A snapshot name: 1-64 characters of `a-z 0-9 . _ -`, not starting with `.`.
pub fn check_name(name: &str) -> Result<(), SeedError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(SeedError::Invalid(format!(
            "name `{name}`: use 1-64 characters of a-z, 0-9, `.`, `_` and `-`"
        )))
    }
}

impl SnapshotLibrary {
    pub fn new(dirs: Vec<PathBuf>) -> Self {
        Self { dirs }
    }

    /// `<state_dir>/snapshots`, then the repository's `seed-data/`.
    pub fn for_state_dir(state_dir: &Path) -> Self {
        Self::new(vec![state_dir.join("snapshots"), repository_seed_data()])
    }

    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// Directory a new snapshot called `name` is written to.
    pub fn target(&self, name: &str) -> Result<PathBuf, SeedError> {
        check_name(name)?;
        let base = self
            .dirs
            .first()
            .ok_or_else(|| SeedError::Invalid("no snapshot directory configured".into()))?;
        Ok(base.join(name))
    }

    /// The directory holding snapshot `name`, if any.
    pub fn locate(&self, name: &str) -> Option<PathBuf> {
        check_name(name).ok()?;
        self.dirs
            .iter()
            .map(|d| d.join(name))
            .find(|d| d.join("snapshot.json").is_file())
    }

    /// Whether `name` can be loaded (without reading it).
    pub fn exists(&self, name: &str) -> bool {
        name == "default" || self.locate(name).is_some()
    }

    /// Load snapshot `name` with the directory it came from (`None` for a
    /// generated `default`).
    pub fn load(&self, name: &str) -> Result<(Snapshot, Option<PathBuf>), SeedError> {
        check_name(name)?;
        match self.locate(name) {
            Some(dir) => Ok((Snapshot::read(&dir)?, Some(dir))),
            None if name == "default" => Ok((super::generate::default_snapshot(), None)),
            None => Err(SeedError::NotFound {
                name: name.to_string(),
                searched: self.dirs.clone(),
            }),
        }
    }

    /// Names of the snapshots found, sorted, `default` included.
    pub fn names(&self) -> Vec<String> {
        let mut out = vec!["default".to_string()];
        for d in &self.dirs {
            if let Ok(rd) = std::fs::read_dir(d) {
                for e in rd.flatten() {
                    if e.path().join("snapshot.json").is_file() {
                        out.push(e.file_name().to_string_lossy().to_string());
                    }
                }
            }
        }
        out.sort();
        out.dedup();
        out
    }
}

/// The manager's [`crate::manager::Seeder`]: loads snapshots from a library
/// (cached once read) and applies them with [`super::seed_stack`].
/// A loaded snapshot and the directory it came from.
type Loaded = std::sync::Arc<(Snapshot, Option<PathBuf>)>;

pub struct LibrarySeeder {
    library: SnapshotLibrary,
    cache: tokio::sync::Mutex<std::collections::BTreeMap<String, Loaded>>,
}

impl LibrarySeeder {
    pub fn new(library: SnapshotLibrary) -> Self {
        Self {
            library,
            cache: Default::default(),
        }
    }

    async fn get(&self, name: &str) -> Result<Loaded, SeedError> {
        let mut cache = self.cache.lock().await;
        if let Some(s) = cache.get(name) {
            return Ok(s.clone());
        }
        let lib = self.library.clone();
        let owned = name.to_string();
        let loaded = tokio::task::spawn_blocking(move || lib.load(&owned))
            .await
            .map_err(|e| SeedError::Invalid(format!("loading snapshot: {e}")))??;
        let loaded = std::sync::Arc::new(loaded);
        cache.insert(name.to_string(), loaded.clone());
        Ok(loaded)
    }
}

#[async_trait::async_trait]
impl crate::manager::Seeder for LibrarySeeder {
    fn exists(&self, snapshot: &str) -> bool {
        self.library.exists(snapshot)
    }

    async fn prepare(&self, snapshot: &str) -> Result<(), String> {
        self.get(snapshot).await.map(|_| ()).map_err(|e| e.to_string())
    }

    async fn seed(
        &self,
        snapshot: &str,
        endpoints: &crate::stack::StackEndpoints,
        namespace: &crate::lease::Namespace,
    ) -> Result<String, String> {
        let loaded = self.get(snapshot).await.map_err(|e| e.to_string())?;
        let (snap, dir) = (&loaded.0, loaded.1.as_deref());
        let ns = super::namespace::Namespacer::new(namespace.clone());
        let report = super::seed_stack(snap, dir, endpoints, &ns)
            .await
            .map_err(|e| e.to_string())?;
        Ok(format!(
            "snapshot {} seeded for namespace {} in {:.2}s",
            report.snapshot,
            namespace.as_str(),
            report.seconds
        ))
    }
}
