//! Who may do what to a lease. Pure rules shared by the CLI and the HTTP API.
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::Lease;

/// What a token allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Reserve and manage one's own leases.
    User,
    /// Read the endpoints of any lease whose ID it is given (a Try push).
    Try,
    /// Everything, on every lease.
    Admin,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Try => "try",
            Self::Admin => "admin",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AccessError {
    #[error("unknown scope `{0}` (expected user, try or admin)")]
    UnknownScope(String),
    #[error("{actor} may not {action} lease {lease}: it belongs to {owner}")]
    NotOwner {
        actor: String,
        action: Action,
        lease: String,
        owner: String,
    },
    #[error("a `{scope}` token may not {action}")]
    ScopeForbids { scope: Scope, action: Action },
}

impl FromStr for Scope {
    type Err = AccessError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "user" => Ok(Self::User),
            "try" => Ok(Self::Try),
            "admin" => Ok(Self::Admin),
            other => Err(AccessError::UnknownScope(other.to_string())),
        }
    }
}

/// The caller of an operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub user: String,
    pub scope: Scope,
}

impl Actor {
    pub fn user(name: impl Into<String>) -> Self {
        Self {
            user: name.into(),
            scope: Scope::User,
        }
    }

    pub fn admin(name: impl Into<String>) -> Self {
        Self {
            user: name.into(),
            scope: Scope::Admin,
        }
    }
}

/// Operations subject to access rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Reserve,
    List,
    ListAll,
    Read,
    Change,
    Release,
    ReadEndpoints,
    Reap,
    ManageTokens,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Reserve => "reserve leases",
            Self::List => "list leases",
            Self::ListAll => "list every user's leases",
            Self::Read => "read",
            Self::Change => "change",
            Self::Release => "release",
            Self::ReadEndpoints => "read the endpoints of",
            Self::Reap => "reap stale leases",
            Self::ManageTokens => "manage tokens",
        })
    }
}

/// Whether `actor` may perform `action` (on `lease`, for per-lease actions).
pub fn check(actor: &Actor, action: Action, lease: Option<&Lease>) -> Result<(), AccessError> {
    match actor.scope {
        Scope::Admin => Ok(()),
        Scope::Try => match (action, lease) {
            (Action::ReadEndpoints, Some(_)) => Ok(()),
            _ => Err(AccessError::ScopeForbids {
                scope: Scope::Try,
                action,
            }),
        },
        Scope::User => match action {
            Action::Reserve | Action::List => Ok(()),
            Action::ListAll | Action::Reap | Action::ManageTokens => Err(AccessError::ScopeForbids {
                scope: Scope::User,
                action,
            }),
            Action::Read | Action::Change | Action::Release | Action::ReadEndpoints => match lease {
                Some(l) if l.owner == actor.user => Ok(()),
                Some(l) => Err(AccessError::NotOwner {
                    actor: actor.user.clone(),
                    action,
                    lease: l.id.to_string(),
                    owner: l.owner.clone(),
                }),
                None => Ok(()),
            },
        },
    }
}
