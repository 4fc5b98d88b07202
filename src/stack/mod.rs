//! What a stack is made of: the services of a template and the endpoints a
//! provisioned stack exposes. Pure data, no IO.
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// One of the stand-in services a stack can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceKind {
    Balrog,
    Bouncer,
    S3,
    Shipit,
}

impl ServiceKind {
    pub const ALL: [ServiceKind; 4] = [Self::Balrog, Self::Bouncer, Self::S3, Self::Shipit];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Balrog => "balrog",
            Self::Bouncer => "bouncer",
            Self::S3 => "s3",
            Self::Shipit => "shipit",
        }
    }
}

impl fmt::Display for ServiceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StackError {
    #[error("unknown service `{0}`: expected one of balrog, bouncer, s3, shipit")]
    UnknownService(String),
    #[error("unknown template `{0}`: expected `default` (balrog, bouncer, s3) or `full` (adds shipit)")]
    UnknownTemplate(String),
}

impl FromStr for ServiceKind {
    type Err = StackError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "balrog" => Ok(Self::Balrog),
            "bouncer" => Ok(Self::Bouncer),
            "s3" => Ok(Self::S3),
            "shipit" | "ship-it" => Ok(Self::Shipit),
            other => Err(StackError::UnknownService(other.to_string())),
        }
    }
}

/// The set of services a lease asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Template {
    pub name: String,
    pub services: Vec<ServiceKind>,
}

impl Template {
    /// balrog, bouncer and s3.
    pub fn default_template() -> Self {
        Self {
            name: "default".into(),
            services: vec![ServiceKind::Balrog, ServiceKind::Bouncer, ServiceKind::S3],
        }
    }

    /// The default services plus ship-it.
    pub fn full() -> Self {
        Self {
            name: "full".into(),
            services: ServiceKind::ALL.to_vec(),
        }
    }

    pub fn by_name(name: &str) -> Result<Self, StackError> {
        match name {
            "default" => Ok(Self::default_template()),
            "full" => Ok(Self::full()),
            other => Err(StackError::UnknownTemplate(other.to_string())),
        }
    }

    pub fn has(&self, kind: ServiceKind) -> bool {
        self.services.contains(&kind)
    }
}

/// Credentials of one service. Every stand-in takes one identity and one secret:
/// balrog (OAuth client id / bearer token), bouncer (basic-auth user / password),
/// s3 (access key / secret key), shipit (Hawk id / Hawk key).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    pub username: String,
    pub secret: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// How to reach one service of a provisioned stack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// URL reachable from the host running the manager (e.g. `http://127.0.0.1:49153`).
    pub url: String,
    /// URL reachable from inside the stack's network (Docker backend only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub internal_url: Option<String>,
    pub credentials: Credentials,
}

/// Everything a release needs to talk to a stack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct StackEndpoints {
    pub services: BTreeMap<ServiceKind, Endpoint>,
}

/// The bucket a stack's S3 stand-in serves releases from (as production's
/// delivery bucket behind archive.mozilla.org).
pub const RELEASES_BUCKET: &str = "net-mozaws-stage-delivery-firefox";

/// Where a stack's S3 stand-in sends keys it does not have.
pub const PRODUCTION_ARCHIVE: &str = "https://archive.mozilla.org";

/// Service-specific flags of `stagelib service NAME` inside a stack. Bouncer
/// redirects into the stack's own S3 (`s3_url`, reachable by whoever follows
/// the redirect), so S3 starts first.
pub fn service_args(kind: ServiceKind, s3_url: Option<&str>) -> Vec<String> {
    let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    match kind {
        ServiceKind::Balrog => v(&["--agent-interval", "5s"]),
        ServiceKind::Bouncer => match s3_url {
            Some(u) => vec!["--download-base".into(), format!("{u}/{RELEASES_BUCKET}/pub")],
            None => Vec::new(),
        },
        ServiceKind::S3 => v(&[
            "--bucket",
            RELEASES_BUCKET,
            "--public-read",
            "--fallback-url",
            PRODUCTION_ARCHIVE,
        ]),
        ServiceKind::Shipit => v(&["--allow-multiple-build-numbers"]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_kind_round_trips() {
        for k in ServiceKind::ALL {
            assert_eq!(k.as_str().parse::<ServiceKind>(), Ok(k));
        }
        assert!("ftp".parse::<ServiceKind>().is_err());
    }

    #[test]
    fn templates() {
        assert!(!Template::default_template().has(ServiceKind::Shipit));
        assert!(Template::full().has(ServiceKind::Shipit));
        assert!(Template::by_name("huge").is_err());
    }

    #[test]
    fn credentials_debug_redacts_secret() {
        let c = Credentials {
            username: "u".into(),
            secret: "hunter2".into(),
        };
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
