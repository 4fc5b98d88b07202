//! The lease state machine.
//!
//! ```text
//! requested ─► provisioning ─► ready ─► releasing ─► released
//!     │              │           │          │
//!     └──────────────┴───────────┴──► expired / failed (reason)
//! ```
//! `releasing` can also be entered from `requested`, `provisioning` and `failed`
//! (a user gives back a lease whose stack is still coming up, or a held failure).
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LeaseState {
    Requested,
    Provisioning,
    Ready,
    Releasing,
    Released,
    Expired,
    Failed,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TransitionError {
    #[error("a lease cannot go from `{from}` to `{to}`")]
    Invalid { from: LeaseState, to: LeaseState },
    #[error(
        "unknown lease state `{0}` (expected requested, provisioning, ready, releasing, released, expired or failed)"
    )]
    UnknownState(String),
}

impl LeaseState {
    pub const ALL: [LeaseState; 7] = [
        Self::Requested,
        Self::Provisioning,
        Self::Ready,
        Self::Releasing,
        Self::Released,
        Self::Expired,
        Self::Failed,
    ];

    /// States that hold a stack and count against a user's quota.
    pub const ACTIVE: [LeaseState; 4] = [Self::Requested, Self::Provisioning, Self::Ready, Self::Releasing];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Requested => "requested",
            Self::Provisioning => "provisioning",
            Self::Ready => "ready",
            Self::Releasing => "releasing",
            Self::Released => "released",
            Self::Expired => "expired",
            Self::Failed => "failed",
        }
    }

    pub fn is_active(self) -> bool {
        Self::ACTIVE.contains(&self)
    }

    /// Whether the state machine allows `self → to`.
    pub fn can_become(self, to: LeaseState) -> bool {
        use LeaseState::*;
        matches!(
            (self, to),
            (Requested, Provisioning | Releasing | Expired | Failed)
                | (Provisioning, Ready | Releasing | Expired | Failed)
                | (Ready, Releasing | Expired | Failed)
                | (Releasing, Released | Failed)
                | (Failed, Releasing)
        )
    }

    /// The states from which `to` can be reached (used for compare-and-swap updates).
    pub fn sources_of(to: LeaseState) -> Vec<LeaseState> {
        Self::ALL.into_iter().filter(|s| s.can_become(to)).collect()
    }

    pub fn check(self, to: LeaseState) -> Result<(), TransitionError> {
        if self.can_become(to) {
            Ok(())
        } else {
            Err(TransitionError::Invalid { from: self, to })
        }
    }
}

impl fmt::Display for LeaseState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for LeaseState {
    type Err = TransitionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| TransitionError::UnknownState(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::LeaseState::*;
    use super::*;

    #[test]
    fn happy_path_is_allowed() {
        for (a, b) in [
            (Requested, Provisioning),
            (Provisioning, Ready),
            (Ready, Releasing),
            (Releasing, Released),
        ] {
            assert!(a.can_become(b), "{a} -> {b}");
        }
    }

    #[test]
    fn terminal_states_stay_terminal() {
        for to in LeaseState::ALL {
            assert!(!Released.can_become(to));
            assert!(!Expired.can_become(to));
        }
        assert_eq!(LeaseState::sources_of(Ready), vec![Provisioning]);
    }

    #[test]
    fn no_skipping_provisioning() {
        assert!(Requested.check(Ready).is_err());
        assert!(Ready.check(Provisioning).is_err());
    }

    #[test]
    fn parse_round_trip() {
        for s in LeaseState::ALL {
            assert_eq!(s.as_str().parse::<LeaseState>(), Ok(s));
        }
        assert!("bogus".parse::<LeaseState>().is_err());
    }
}
