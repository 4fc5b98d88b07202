//! Settings, resolved with the precedence defaults < config file < environment <
//! flags. The environment is injected (a lookup function) so the precedence can be
//! tested without touching the process environment. Secrets (`database_url`,
//! `token`) are also read from `STAGELIB_*_FILE`.
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::lease::{parse_duration, Policy};

/// Values given on the command line (`None`: not given).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct Flags {
    /// Config file (TOML) [env: STAGELIB_CONFIG] [default: $XDG_CONFIG_HOME/stagelib/config.toml]
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// Database: sqlite://PATH (default, under the XDG data dir) or postgres://…
    /// [env: STAGELIB_DATABASE_URL or STAGELIB_DATABASE_URL_FILE]
    #[arg(long, global = true)]
    pub database_url: Option<String>,
    /// Talk to a running `stagelib serve` at this URL instead of the database
    /// [env: STAGELIB_SERVER]
    #[arg(long, global = true)]
    pub server: Option<String>,
    /// API token for --server [env: STAGELIB_TOKEN or STAGELIB_TOKEN_FILE]
    #[arg(long, global = true, hide_env_values = true)]
    pub token: Option<String>,
    /// Who you are when using the database directly [env: STAGELIB_USER, else $USER]
    #[arg(long, global = true)]
    pub user: Option<String>,
    /// Where stacks run: auto, process or docker [env: STAGELIB_BACKEND] [default: auto]
    #[arg(long, global = true)]
    pub backend: Option<String>,
    /// Directory for stack data, logs and the manager key [env: STAGELIB_STATE_DIR]
    /// [default: $XDG_DATA_HOME/stagelib]
    #[arg(long, global = true)]
    pub state_dir: Option<PathBuf>,
    /// Active leases per user [env: STAGELIB_QUOTA] [default: 3]
    #[arg(long, global = true)]
    pub quota: Option<u32>,
    /// TTL of a new lease [env: STAGELIB_DEFAULT_TTL] [default: 8h]
    #[arg(long, global = true)]
    pub default_ttl: Option<String>,
    /// Longest life of a lease, extensions and holds included [env: STAGELIB_MAX_TTL] [default: 7d]
    #[arg(long, global = true)]
    pub max_ttl: Option<String>,
    /// Pretend the time is this RFC 3339 instant (for tests and rehearsals) [env: STAGELIB_NOW]
    #[arg(long, global = true, hide = true)]
    pub now: Option<String>,
}

/// The config file's shape.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub database_url: Option<String>,
    pub server: Option<String>,
    pub token: Option<String>,
    pub user: Option<String>,
    pub backend: Option<String>,
    pub state_dir: Option<PathBuf>,
    pub listen: Option<String>,
    #[serde(default)]
    pub policy: FilePolicy,
    /// Stacks this machine may run at once (the local host's capacity).
    pub capacity: Option<u32>,
    /// Pre-warmed stacks to keep ready (`[[pool]]` tables).
    #[serde(default)]
    pub pool: Vec<FilePool>,
    /// Docker engines to place stacks on (`[[docker_hosts]]` tables); empty:
    /// the local engine only.
    #[serde(default)]
    pub docker_hosts: Vec<DockerHost>,
}

/// One `[[pool]]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilePool {
    /// `default` or `full`.
    pub template: String,
    /// Snapshot the pool's stacks are for; `none` for unseeded stacks.
    #[serde(default = "default_seed")]
    pub seed: String,
    pub min_ready: u32,
    /// Retire pool stacks older than this (default 12h).
    pub max_age: Option<String>,
}

fn default_seed() -> String {
    "default".into()
}

/// One `[[docker_hosts]]` table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DockerHost {
    /// A short name, recorded with each lease placed there.
    pub name: String,
    /// `unix:///var/run/docker.sock` or `tcp://HOST:2375`.
    pub url: String,
    /// Stacks this host may run at once.
    pub capacity: u32,
    /// Address clients reach the host's published ports on (default 127.0.0.1).
    pub advertise: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilePolicy {
    pub quota: Option<u32>,
    pub default_ttl: Option<String>,
    pub max_ttl: Option<String>,
    pub heartbeat_extension: Option<String>,
    pub max_holds: Option<u32>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("invalid config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid `{field}`: {message}")]
    Invalid { field: &'static str, message: String },
    #[error("cannot read {var} file {path}: {source}")]
    SecretFile {
        var: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Which backend to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendChoice {
    Auto,
    Process,
    Docker,
    /// Stacks as records only, no services (benchmarks of the manager itself).
    Memory,
}

/// Fully resolved settings.
#[derive(Clone)]
pub struct Settings {
    pub database_url: String,
    pub server: Option<String>,
    pub token: Option<String>,
    pub user: String,
    pub backend: BackendChoice,
    pub state_dir: PathBuf,
    pub listen: String,
    pub policy: Policy,
    pub now: Option<chrono::DateTime<chrono::Utc>>,
    /// Capacity of the local host (`None`: unlimited).
    pub capacity: Option<u32>,
    pub pools: Vec<crate::manager::PoolConfig>,
    pub docker_hosts: Vec<DockerHost>,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("database_url", &redact_url(&self.database_url))
            .field("server", &self.server)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("user", &self.user)
            .field("backend", &self.backend)
            .field("state_dir", &self.state_dir)
            .field("listen", &self.listen)
            .field("policy", &self.policy)
            .finish()
    }
}

/// Hide the password of a database URL.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("<redacted>"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}

fn xdg_dir(env: &dyn Fn(&str) -> Option<String>, var: &str, fallback: &str) -> PathBuf {
    if let Some(d) = env(var).filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    let home = env("HOME").unwrap_or_else(|| "/tmp".into());
    Path::new(&home).join(fallback)
}

fn secret(
    env: &dyn Fn(&str) -> Option<String>,
    var: &'static str,
    file_var: &'static str,
) -> Result<Option<String>, ConfigError> {
    if let Some(v) = env(var).filter(|v| !v.is_empty()) {
        return Ok(Some(v));
    }
    match env(file_var).filter(|v| !v.is_empty()) {
        Some(path) => std::fs::read_to_string(&path)
            .map(|s| Some(s.trim().to_string()))
            .map_err(|source| ConfigError::SecretFile {
                var: file_var,
                path: path.into(),
                source,
            }),
        None => Ok(None),
    }
}

fn duration(field: &'static str, s: &str) -> Result<chrono::Duration, ConfigError> {
    parse_duration(s).map_err(|e| ConfigError::Invalid {
        field,
        message: e.to_string(),
    })
}

impl Settings {
    /// Resolve from flags, the environment (`env`) and the config file it names.
    pub fn resolve(flags: &Flags, env: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let config_path = flags
            .config
            .clone()
            .or_else(|| env("STAGELIB_CONFIG").map(PathBuf::from));
        let explicit = config_path.is_some();
        let config_path =
            config_path.unwrap_or_else(|| xdg_dir(env, "XDG_CONFIG_HOME", ".config").join("stagelib/config.toml"));
        let file = match std::fs::read_to_string(&config_path) {
            Ok(text) => toml::from_str::<FileConfig>(&text).map_err(|e| ConfigError::Parse {
                path: config_path.clone(),
                message: e.to_string(),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => FileConfig::default(),
            Err(source) => {
                return Err(ConfigError::Read {
                    path: config_path,
                    source,
                })
            }
        };
        Self::merge(flags, env, file)
    }

    /// Merge the layers: flags > environment > file > defaults.
    pub fn merge(flags: &Flags, env: &dyn Fn(&str) -> Option<String>, file: FileConfig) -> Result<Self, ConfigError> {
        let env_s = |k: &str| env(k).filter(|v| !v.is_empty());
        let data_home = xdg_dir(env, "XDG_DATA_HOME", ".local/share").join("stagelib");
        let state_dir = flags
            .state_dir
            .clone()
            .or_else(|| env_s("STAGELIB_STATE_DIR").map(PathBuf::from))
            .or(file.state_dir)
            .unwrap_or(data_home);
        let database_url = match flags.database_url.clone() {
            Some(u) => u,
            None => match secret(env, "STAGELIB_DATABASE_URL", "STAGELIB_DATABASE_URL_FILE")? {
                Some(u) => u,
                None => file
                    .database_url
                    .unwrap_or_else(|| format!("sqlite://{}", state_dir.join("stagelib.db").display())),
            },
        };
        let token = match flags.token.clone() {
            Some(t) => Some(t),
            None => secret(env, "STAGELIB_TOKEN", "STAGELIB_TOKEN_FILE")?.or(file.token),
        };
        let server = flags
            .server
            .clone()
            .or_else(|| env_s("STAGELIB_SERVER"))
            .or(file.server);
        let user = flags
            .user
            .clone()
            .or_else(|| env_s("STAGELIB_USER"))
            .or(file.user)
            .or_else(|| env_s("USER"))
            .unwrap_or_else(|| "unknown".into());
        let backend = match flags
            .backend
            .clone()
            .or_else(|| env_s("STAGELIB_BACKEND"))
            .or(file.backend)
            .as_deref()
        {
            None | Some("auto") => BackendChoice::Auto,
            Some("process") => BackendChoice::Process,
            Some("docker") => BackendChoice::Docker,
            Some("memory") => BackendChoice::Memory,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    field: "backend",
                    message: format!("`{other}`: expected auto, process or docker"),
                })
            }
        };
        let listen = env_s("STAGELIB_LISTEN")
            .or(file.listen)
            .unwrap_or_else(|| "127.0.0.1:8080".into());
        let mut policy = Policy::default();
        let quota = match flags.quota {
            Some(q) => Some(q),
            None => match env_s("STAGELIB_QUOTA") {
                Some(q) => Some(q.parse().map_err(|_| ConfigError::Invalid {
                    field: "quota",
                    message: format!("`{q}` is not a whole number"),
                })?),
                None => file.policy.quota,
            },
        };
        if let Some(q) = quota {
            policy.quota = q;
        }
        if let Some(t) = flags
            .default_ttl
            .clone()
            .or_else(|| env_s("STAGELIB_DEFAULT_TTL"))
            .or(file.policy.default_ttl)
        {
            policy.default_ttl = duration("default_ttl", &t)?;
        }
        if let Some(t) = flags
            .max_ttl
            .clone()
            .or_else(|| env_s("STAGELIB_MAX_TTL"))
            .or(file.policy.max_ttl)
        {
            policy.max_ttl = duration("max_ttl", &t)?;
        }
        if let Some(n) = file.policy.max_holds {
            policy.max_holds = n;
        }
        let capacity = match env_s("STAGELIB_CAPACITY") {
            Some(c) => Some(c.parse().map_err(|_| ConfigError::Invalid {
                field: "capacity",
                message: format!("`{c}` is not a whole number"),
            })?),
            None => file.capacity,
        };
        let mut pools = Vec::new();
        for p in &file.pool {
            let template = crate::stack::Template::by_name(&p.template).map_err(|e| ConfigError::Invalid {
                field: "pool.template",
                message: e.to_string(),
            })?;
            let max_age = duration("pool.max_age", p.max_age.as_deref().unwrap_or("12h"))?;
            pools.push(crate::manager::PoolConfig {
                template,
                seed: (p.seed != "none").then(|| p.seed.clone()),
                min_ready: p.min_ready,
                max_age,
            });
        }
        let mut names = std::collections::BTreeSet::new();
        for h in &file.docker_hosts {
            if h.name.is_empty() || !names.insert(h.name.clone()) {
                return Err(ConfigError::Invalid {
                    field: "docker_hosts.name",
                    message: format!("`{}` is empty or listed twice", h.name),
                });
            }
            if !(h.url.starts_with("unix://") || h.url.starts_with("tcp://") || h.url.starts_with("http://")) {
                return Err(ConfigError::Invalid {
                    field: "docker_hosts.url",
                    message: format!("`{}`: expected unix://PATH or tcp://HOST:PORT", h.url),
                });
            }
        }
        if let Some(t) = file.policy.heartbeat_extension {
            policy.heartbeat_extension = duration("heartbeat_extension", &t)?;
        }
        if policy.default_ttl > policy.max_ttl {
            return Err(ConfigError::Invalid {
                field: "default_ttl",
                message: "longer than max_ttl".into(),
            });
        }
        let now = match flags.now.clone().or_else(|| env_s("STAGELIB_NOW")) {
            Some(t) => Some(
                chrono::DateTime::parse_from_rfc3339(&t)
                    .map_err(|e| ConfigError::Invalid {
                        field: "now",
                        message: e.to_string(),
                    })?
                    .with_timezone(&chrono::Utc),
            ),
            None => None,
        };
        Ok(Self {
            database_url,
            server,
            token,
            user,
            backend,
            state_dir,
            listen,
            policy,
            now,
            capacity,
            pools,
            docker_hosts: file.docker_hosts,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn precedence_defaults_file_env_flags() {
        let file = FileConfig {
            server: Some("http://file".into()),
            user: Some("file-user".into()),
            policy: FilePolicy {
                quota: Some(5),
                ..Default::default()
            },
            ..Default::default()
        };
        // Defaults where nothing is given.
        let s = Settings::merge(&Flags::default(), &env_of(&[("HOME", "/h")]), FileConfig::default()).expect("ok");
        assert_eq!(s.database_url, "sqlite:///h/.local/share/stagelib/stagelib.db");
        assert_eq!(s.policy.quota, 3);
        assert_eq!(s.server, None);
        // File beats defaults.
        let s = Settings::merge(&Flags::default(), &env_of(&[]), file.clone()).expect("ok");
        assert_eq!(s.server.as_deref(), Some("http://file"));
        assert_eq!(s.policy.quota, 5);
        assert_eq!(s.user, "file-user");
        // Env beats file.
        let env = env_of(&[
            ("STAGELIB_SERVER", "http://env"),
            ("STAGELIB_QUOTA", "7"),
            ("USER", "os-user"),
        ]);
        let s = Settings::merge(&Flags::default(), &env, file.clone()).expect("ok");
        assert_eq!(s.server.as_deref(), Some("http://env"));
        assert_eq!(s.policy.quota, 7);
        assert_eq!(s.user, "file-user", "the file's user beats $USER");
        // Flags beat env.
        let flags = Flags {
            server: Some("http://flag".into()),
            quota: Some(9),
            ..Default::default()
        };
        let s = Settings::merge(&flags, &env, file).expect("ok");
        assert_eq!(s.server.as_deref(), Some("http://flag"));
        assert_eq!(s.policy.quota, 9);
    }

    #[test]
    fn secrets_from_files_and_redacted_debug() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("tok");
        std::fs::write(&p, "s3cret\n").expect("write");
        let env = env_of(&[
            ("STAGELIB_TOKEN_FILE", p.to_str().expect("utf8")),
            ("STAGELIB_DATABASE_URL", "postgres://u:pw@db/x"),
        ]);
        let s = Settings::merge(&Flags::default(), &env, FileConfig::default()).expect("ok");
        assert_eq!(s.token.as_deref(), Some("s3cret"));
        let dbg = format!("{s:?}");
        assert!(!dbg.contains("s3cret") && !dbg.contains("pw@"), "{dbg}");
    }

    #[test]
    fn bad_values_name_the_field() {
        let env = env_of(&[("STAGELIB_QUOTA", "lots")]);
        let e = Settings::merge(&Flags::default(), &env, FileConfig::default()).expect_err("bad quota");
        assert!(e.to_string().contains("quota"), "{e}");
        let flags = Flags {
            backend: Some("k8s".into()),
            ..Default::default()
        };
        let e = Settings::merge(&flags, &env_of(&[]), FileConfig::default()).expect_err("bad backend");
        assert!(e.to_string().contains("backend"), "{e}");
        let e = toml::from_str::<FileConfig>("quotaa = 3").expect_err("unknown key");
        assert!(e.to_string().contains("quotaa"), "{e}");
    }
}
