//! The manager key: stack secrets are derived from it (HMAC-SHA256 over the stack
//! ID and service), so re-provisioning a stack after a crash yields the same
//! credentials without storing secrets in the lease table.
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::stack::{Credentials, ServiceKind, Template};

#[derive(Clone)]
pub struct ManagerKey(Vec<u8>);

impl fmt::Debug for ManagerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ManagerKey(<redacted>)")
    }
}

impl ManagerKey {
    pub fn from_bytes(bytes: impl Into<Vec<u8>>) -> Self {
        Self(bytes.into())
    }

    /// Read the key from `path`, creating a random one (mode 0600) if missing.
    pub fn load_or_create(path: &Path) -> std::io::Result<Self> {
        match std::fs::read_to_string(path) {
            Ok(s) if !s.trim().is_empty() => return Ok(Self(s.trim().as_bytes().to_vec())),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let key = hex::encode(rand::random::<[u8; 32]>());
        let tmp = path.with_extension("tmp");
        {
            use std::io::Write;
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create(true).truncate(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                opts.mode(0o600);
            }
            let mut f = opts.open(&tmp)?;
            f.write_all(key.as_bytes())?;
            f.sync_all()?;
        }
        // Another process may have won the race: keep whichever file landed first.
        if path.exists() {
            let _ = std::fs::remove_file(&tmp);
            return Self::load_or_create(path);
        }
        std::fs::rename(&tmp, path)?;
        Ok(Self(key.into_bytes()))
    }

    fn derive(&self, stack_id: &str, service: ServiceKind) -> String {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac = match Hmac::<Sha256>::new_from_slice(&self.0) {
            Ok(m) => m,
            Err(_) => return String::new(),
        };
        mac.update(stack_id.as_bytes());
        mac.update(b"/");
        mac.update(service.as_str().as_bytes());
        hex::encode(&mac.finalize().into_bytes()[..20])
    }

    /// Credentials of every service of `template` for `stack_id`.
    pub fn credentials(&self, stack_id: &str, template: &Template) -> BTreeMap<ServiceKind, Credentials> {
        template
            .services
            .iter()
            .map(|&s| {
                (
                    s,
                    Credentials {
                        username: "stagelib".into(),
                        secret: self.derive(stack_id, s),
                    },
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derivation_is_stable_and_distinct() {
        let k = ManagerKey::from_bytes(b"k".to_vec());
        let t = Template::full();
        let a = k.credentials("s1", &t);
        assert_eq!(a, k.credentials("s1", &t));
        assert_ne!(
            a[&ServiceKind::Balrog].secret,
            k.credentials("s2", &t)[&ServiceKind::Balrog].secret
        );
        assert_ne!(a[&ServiceKind::Balrog].secret, a[&ServiceKind::S3].secret);
        assert_eq!(a[&ServiceKind::S3].secret.len(), 40);
    }

    #[test]
    fn key_file_is_created_once() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("sub/key");
        let a = ManagerKey::load_or_create(&p).expect("create");
        let b = ManagerKey::load_or_create(&p).expect("load");
        assert_eq!(a.0, b.0);
    }
}
