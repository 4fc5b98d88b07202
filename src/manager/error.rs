//! Errors of the service layer, each with a kind that maps to an HTTP status and
//! a CLI exit code.
use crate::backend::BackendError;
use crate::lease::{AccessError, LeaseId, PolicyError};
use crate::store::StoreError;

/// The broad class of an error: decides the HTTP status and the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    Invalid,
    Unauthenticated,
    Forbidden,
    NotFound,
    Conflict,
    Unavailable,
    Internal,
}

#[derive(Debug, thiserror::Error)]
pub enum ManagerError {
    #[error("invalid `{field}`: {message}")]
    Invalid { field: &'static str, message: String },
    #[error("authentication required: {0}")]
    Unauthenticated(String),
    #[error(transparent)]
    Forbidden(#[from] AccessError),
    #[error("lease {0} not found")]
    NotFound(LeaseId),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error("{0}")]
    Internal(String),
    /// An error reported by a remote manager (`--server`), with its class.
    #[error("{message}")]
    Remote { kind: ErrorKind, message: String },
}

impl ManagerError {
    pub fn invalid(field: &'static str, message: impl std::fmt::Display) -> Self {
        Self::Invalid {
            field,
            message: message.to_string(),
        }
    }

    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Invalid { .. } => ErrorKind::Invalid,
            Self::Unauthenticated(_) => ErrorKind::Unauthenticated,
            Self::Forbidden(_) => ErrorKind::Forbidden,
            Self::NotFound(_) => ErrorKind::NotFound,
            Self::Conflict(_) => ErrorKind::Conflict,
            Self::Unavailable(_) => ErrorKind::Unavailable,
            Self::Backend(BackendError::Unavailable { .. }) => ErrorKind::Unavailable,
            Self::Backend(_) | Self::Internal(_) => ErrorKind::Internal,
            Self::Remote { kind, .. } => *kind,
        }
    }
}

impl From<StoreError> for ManagerError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(id) => Self::NotFound(id),
            StoreError::QuotaExceeded { .. } | StoreError::NamespaceTaken { .. } | StoreError::StateConflict { .. } => {
                Self::Conflict(e.to_string())
            }
            StoreError::Connect { .. } | StoreError::CapacityExhausted { .. } | StoreError::QueueNotEmpty { .. } => {
                Self::Unavailable(e.to_string())
            }
            StoreError::WaiterSettled(_) => Self::Conflict(e.to_string()),
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<PolicyError> for ManagerError {
    fn from(e: PolicyError) -> Self {
        match e {
            PolicyError::NotActive(_) => Self::Conflict(e.to_string()),
            PolicyError::TtlTooLong { .. } => Self::invalid("ttl", e),
            PolicyError::BeyondMax { .. } => Self::invalid("extend_by", e),
        }
    }
}
