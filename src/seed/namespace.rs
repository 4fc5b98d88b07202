//! The one place that turns a canonical name into a namespaced one (and back).
//!
//! A lease on its own stack uses canonical names (`beta`, `pub/firefox/candidates/`).
//! Several users sharing one stack each get a namespace `u`, applied to every name
//! release automation writes or reads (reference: promotion.md §8.1):
//!
//! | kind | canonical | namespaced |
//! | --- | --- | --- |
//! | Balrog channel | `beta-localtest` | `u-beta-localtest` |
//! | Balrog rule alias | `firefox-beta-localtest` | `u-firefox-beta-localtest` |
//! | Balrog release | `Firefox-99.0b3-build1` | `Firefox-99.0b3-build1-u` |
//! | S3 key | `pub/firefox/candidates/…` | `pub/firefox/u-candidates/…` |
//! | Bouncer product | `Firefox-99.0b3-SSL` | `Firefox-99.0b3-u-SSL` |
//! | Bouncer alias | `firefox-beta-latest-ssl` | `u-firefox-beta-latest-ssl` |
//! | Ship-it release | `Firefox-99.0b3-build1` | `Firefox-99.0b3-build1-u` |
use serde::{Deserialize, Serialize};

use crate::lease::Namespace;

/// What kind of name is being namespaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NameKind {
    Channel,
    RuleAlias,
    Release,
    S3Key,
    BouncerProduct,
    BouncerAlias,
    ShipitRelease,
}

impl NameKind {
    pub const ALL: [NameKind; 7] = [
        Self::Channel,
        Self::RuleAlias,
        Self::Release,
        Self::S3Key,
        Self::BouncerProduct,
        Self::BouncerAlias,
        Self::ShipitRelease,
    ];
}

/// S3 directories that carry the namespace (`<product>/candidates/`, `<product>/releases/`).
const S3_NAMESPACED_DIRS: [&str; 2] = ["candidates", "releases"];

/// Applies (or removes) one namespace. `Namespacer::canonical()` is the identity,
/// for a lease that has its stack to itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespacer {
    ns: Option<Namespace>,
}

impl Namespacer {
    pub fn canonical() -> Self {
        Self { ns: None }
    }

    pub fn new(ns: Namespace) -> Self {
        Self { ns: Some(ns) }
    }

    pub fn namespace(&self) -> Option<&Namespace> {
        self.ns.as_ref()
    }

    /// The namespaced form of `name`.
    pub fn apply(&self, kind: NameKind, name: &str) -> String {
        let Some(ns) = &self.ns else {
            return name.to_string();
        };
        let u = ns.as_str();
        match kind {
            NameKind::Channel | NameKind::RuleAlias | NameKind::BouncerAlias => format!("{u}-{name}"),
            NameKind::Release | NameKind::ShipitRelease => format!("{name}-{u}"),
            NameKind::S3Key => map_s3_dir(name, |dir| format!("{u}-{dir}")).unwrap_or_else(|| name.to_string()),
            NameKind::BouncerProduct => match split_versioned_product(name) {
                Some((head, rest)) => format!("{head}-{u}{rest}"),
                None => format!("{u}-{name}"),
            },
        }
    }

    /// The canonical form of a namespaced `name`, or `None` if `name` does not
    /// belong to this namespace.
    pub fn strip(&self, kind: NameKind, name: &str) -> Option<String> {
        let Some(ns) = &self.ns else {
            return Some(name.to_string());
        };
        let u = ns.as_str();
        let prefix = format!("{u}-");
        match kind {
            NameKind::Channel | NameKind::RuleAlias | NameKind::BouncerAlias => {
                name.strip_prefix(&prefix).map(str::to_string)
            }
            NameKind::Release | NameKind::ShipitRelease => name.strip_suffix(&format!("-{u}")).map(str::to_string),
            NameKind::S3Key => {
                let mut found = false;
                let out = map_s3_dir(name, |dir| match dir.strip_prefix(&prefix) {
                    Some(d) if S3_NAMESPACED_DIRS.contains(&d) => {
                        found = true;
                        d.to_string()
                    }
                    _ => dir.to_string(),
                });
                // Keys outside candidates/releases are shared and stay as they are.
                match out {
                    Some(s) if found => Some(s),
                    Some(_) => None,
                    None => Some(name.to_string()),
                }
            }
            NameKind::BouncerProduct => match split_versioned_product(name) {
                Some((head, rest)) => rest.strip_prefix(&format!("-{u}")).map(|r| format!("{head}{r}")),
                None => name.strip_prefix(&prefix).map(str::to_string),
            },
        }
    }

    /// Whether `name` is one this namespace may write. With the canonical
    /// namespacer every name is writable.
    pub fn owns(&self, kind: NameKind, name: &str) -> bool {
        self.ns.is_none() || self.strip(kind, name).is_some()
    }
}

/// Rewrite the path segment after `<product>/` when it is `candidates` or
/// `releases` (or, for `strip`, their namespaced forms). `None` when the key has
/// no such segment.
fn map_s3_dir(key: &str, mut f: impl FnMut(&str) -> String) -> Option<String> {
    let parts: Vec<&str> = key.split('/').collect();
    // pub/<product>/<dir>/... : the directory is the third segment.
    let idx = if parts.first() == Some(&"pub") { 2 } else { 1 };
    let dir = parts.get(idx)?;
    let is_target = S3_NAMESPACED_DIRS
        .iter()
        .any(|d| dir == d || dir.ends_with(&format!("-{d}")));
    if !is_target || parts.len() <= idx + 1 {
        return None;
    }
    let mut out: Vec<String> = parts.iter().map(|s| s.to_string()).collect();
    out[idx] = f(dir);
    Some(out.join("/"))
}

/// `Firefox-99.0b3-SSL` → (`Firefox-99.0b3`, `-SSL`); `None` when the second
/// dash-separated segment is not a version.
fn split_versioned_product(name: &str) -> Option<(&str, &str)> {
    let first = name.find('-')?;
    let after = &name[first + 1..];
    if !after.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let end = after.find('-').map(|i| first + 1 + i).unwrap_or(name.len());
    Some((&name[..end], &name[end..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> Namespacer {
        Namespacer::new(Namespace::parse("alice").expect("ns"))
    }

    #[test]
    fn applies_the_reference_table() {
        let a = alice();
        let cases = [
            (NameKind::Channel, "beta-localtest", "alice-beta-localtest"),
            (
                NameKind::RuleAlias,
                "firefox-beta-cdntest",
                "alice-firefox-beta-cdntest",
            ),
            (
                NameKind::Release,
                "Firefox-99.0b3-build1",
                "Firefox-99.0b3-build1-alice",
            ),
            (
                NameKind::S3Key,
                "pub/firefox/candidates/99.0b3-candidates/build1/linux-x86_64/en-US/firefox-99.0b3.tar.bz2",
                "pub/firefox/alice-candidates/99.0b3-candidates/build1/linux-x86_64/en-US/firefox-99.0b3.tar.bz2",
            ),
            (
                NameKind::S3Key,
                "pub/devedition/releases/99.0b3/SHA512SUMS",
                "pub/devedition/alice-releases/99.0b3/SHA512SUMS",
            ),
            (
                NameKind::BouncerProduct,
                "Firefox-99.0b3-SSL",
                "Firefox-99.0b3-alice-SSL",
            ),
            (
                NameKind::BouncerProduct,
                "Firefox-99.0b3-Partial-98.0b2",
                "Firefox-99.0b3-alice-Partial-98.0b2",
            ),
            (NameKind::BouncerProduct, "Firefox-99.0b3", "Firefox-99.0b3-alice"),
            (
                NameKind::BouncerProduct,
                "firefox-nightly-latest-ssl",
                "alice-firefox-nightly-latest-ssl",
            ),
            (
                NameKind::BouncerAlias,
                "firefox-beta-latest-ssl",
                "alice-firefox-beta-latest-ssl",
            ),
            (
                NameKind::ShipitRelease,
                "Devedition-99.0b3-build1",
                "Devedition-99.0b3-build1-alice",
            ),
        ];
        for (kind, canonical, namespaced) in cases {
            assert_eq!(a.apply(kind, canonical), namespaced, "{kind:?}");
            assert_eq!(a.strip(kind, namespaced).as_deref(), Some(canonical), "{kind:?} strip");
            assert!(a.owns(kind, namespaced));
        }
    }

    #[test]
    fn other_users_names_are_not_owned() {
        let a = alice();
        let bob = Namespacer::new(Namespace::parse("bob").expect("ns"));
        for kind in NameKind::ALL {
            let canonical = match kind {
                NameKind::S3Key => "pub/firefox/candidates/1.0-candidates/build1/x",
                NameKind::BouncerProduct => "Firefox-1.0-SSL",
                _ => "beta",
            };
            let bobs = bob.apply(kind, canonical);
            assert!(!a.owns(kind, &bobs), "{kind:?}: alice must not own {bobs}");
            assert!(
                !a.owns(kind, canonical),
                "{kind:?}: alice must not own canonical {canonical}"
            );
        }
    }

    #[test]
    fn shared_s3_keys_are_untouched_and_canonical_is_identity() {
        let a = alice();
        assert_eq!(
            a.apply(NameKind::S3Key, "pub/firefox/nightly/latest/x"),
            "pub/firefox/nightly/latest/x"
        );
        let c = Namespacer::canonical();
        for kind in NameKind::ALL {
            assert_eq!(c.apply(kind, "beta"), "beta");
            assert!(c.owns(kind, "anything"));
        }
    }
}
