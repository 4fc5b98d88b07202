//! Lease rules: the model, the state machine, namespaces, durations and policy.
//! Pure: no IO, no clock of its own (callers pass `now`).
mod access;
mod duration;
mod model;
mod namespace;
mod policy;
mod state;

pub use access::{check as check_access, AccessError, Action, Actor, Scope};
pub use duration::{format_duration, parse_duration, DurationError};
pub use model::{AuditEvent, Lease, LeaseId, NewLease};
pub use namespace::{Namespace, NamespaceError};
pub use policy::{Policy, PolicyError};
pub use state::{LeaseState, TransitionError};
