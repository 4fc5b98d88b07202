//! The namespace of a lease: the prefix that keeps users apart on a shared stack
//! (`alice` → `alice-beta`, `alice-candidates/`). This module only validates and
//! derives the identifier; `seed::namespace` is the one place that applies it.
use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NamespaceError {
    #[error("invalid namespace `{0}`: use 1-32 characters of a-z, 0-9 and `-`, starting with a letter and not ending with `-`")]
    Invalid(String),
    #[error("cannot derive a namespace from owner `{0}`: it has no letters or digits; pass --namespace")]
    EmptyOwner(String),
}

/// A validated namespace: `[a-z][a-z0-9-]{0,31}`, no trailing `-`, no `--`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Namespace(String);

pub const MAX_LEN: usize = 32;

impl Namespace {
    /// Validate an explicit namespace.
    pub fn parse(s: &str) -> Result<Self, NamespaceError> {
        let ok = !s.is_empty()
            && s.len() <= MAX_LEN
            && s.starts_with(|c: char| c.is_ascii_lowercase())
            && !s.ends_with('-')
            && !s.contains("--")
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if ok {
            Ok(Self(s.to_string()))
        } else {
            Err(NamespaceError::Invalid(s.to_string()))
        }
    }

    /// Derive a namespace from an owner name: lower-case, anything outside
    /// `[a-z0-9]` becomes `-`, runs of `-` collapse, a leading digit gets a `u`
    /// prefix, and the result is cut to 32 characters. `Alice.Smith@mozilla.com`
    /// → `alice-smith`.
    pub fn from_owner(owner: &str) -> Result<Self, NamespaceError> {
        // An e-mail address: keep the local part.
        let base = owner.split('@').next().unwrap_or(owner);
        let mut out = String::with_capacity(base.len());
        for c in base.chars().flat_map(char::to_lowercase) {
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                out.push(c);
            } else if !out.ends_with('-') && !out.is_empty() {
                out.push('-');
            }
        }
        if out.starts_with(|c: char| c.is_ascii_digit()) {
            out.insert(0, 'u');
        }
        out.truncate(MAX_LEN);
        while out.ends_with('-') {
            out.pop();
        }
        if out.is_empty() {
            return Err(NamespaceError::EmptyOwner(owner.to_string()));
        }
        Self::parse(&out)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Namespace {
    type Error = NamespaceError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<Namespace> for String {
    fn from(n: Namespace) -> Self {
        n.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derives_from_owner() {
        let cases = [
            ("alice", "alice"),
            ("Alice.Smith@mozilla.com", "alice-smith"),
            ("bob_the--builder", "bob-the-builder"),
            ("  eve  ", "eve"),
            ("42", "u42"),
            ("Zoë", "zo"),
        ];
        for (owner, ns) in cases {
            assert_eq!(Namespace::from_owner(owner).expect(owner).as_str(), ns, "{owner}");
        }
        assert!(Namespace::from_owner("@@@").is_err());
        let long = "a".repeat(80);
        assert_eq!(Namespace::from_owner(&long).expect("long").as_str().len(), MAX_LEN);
    }

    #[test]
    fn validates_explicit() {
        assert!(Namespace::parse("team-a1").is_ok());
        for bad in ["", "A", "1abc", "a-", "a--b", "a_b", "a/b", &"a".repeat(33)] {
            assert!(Namespace::parse(bad).is_err(), "{bad}");
        }
    }
}
