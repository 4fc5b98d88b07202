//! Lease policy: TTLs and quotas, and the pure decisions that follow from them.
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::{Lease, LeaseState};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// TTL of a new lease when none is asked for.
    #[serde(with = "secs")]
    pub default_ttl: Duration,
    /// No lease lives longer than this after its creation, not even with `hold`.
    #[serde(with = "secs")]
    pub max_ttl: Duration,
    /// Active leases one user may hold at once.
    pub quota: u32,
    /// A heartbeat pushes the expiry to at least `now + heartbeat_extension`.
    #[serde(with = "secs")]
    pub heartbeat_extension: Duration,
    /// Leases one user may hold (`hold`, e.g. a failed release kept for debugging).
    #[serde(default = "default_max_holds")]
    pub max_holds: u32,
}

fn default_max_holds() -> u32 {
    2
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            default_ttl: Duration::hours(8),
            max_ttl: Duration::days(7),
            quota: 3,
            heartbeat_extension: Duration::hours(1),
            max_holds: default_max_holds(),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PolicyError {
    #[error("ttl {asked} is longer than the maximum {max}")]
    TtlTooLong { asked: String, max: String },
    #[error("the lease would outlive its maximum lifetime ({max} after creation); it can be extended until {limit}")]
    BeyondMax { max: String, limit: DateTime<Utc> },
    #[error("the lease is `{0}`; only active leases can be changed")]
    NotActive(LeaseState),
}

impl Policy {
    /// The latest moment a lease may live until.
    pub fn hard_limit(&self, lease: &Lease) -> DateTime<Utc> {
        lease.created_at + self.max_ttl
    }

    /// Expiry for a new lease with an optional requested TTL.
    pub fn initial_expiry(&self, now: DateTime<Utc>, ttl: Option<Duration>) -> Result<DateTime<Utc>, PolicyError> {
        let ttl = ttl.unwrap_or(self.default_ttl);
        if ttl > self.max_ttl {
            return Err(PolicyError::TtlTooLong {
                asked: super::format_duration(ttl),
                max: super::format_duration(self.max_ttl),
            });
        }
        Ok(now + ttl)
    }

    /// New expiry after `extend --by`.
    pub fn extend(&self, lease: &Lease, by: Duration) -> Result<DateTime<Utc>, PolicyError> {
        if !lease.state.is_active() {
            return Err(PolicyError::NotActive(lease.state));
        }
        let limit = self.hard_limit(lease);
        let wanted = lease.expires_at + by;
        if wanted > limit {
            return Err(PolicyError::BeyondMax {
                max: super::format_duration(self.max_ttl),
                limit,
            });
        }
        Ok(wanted)
    }

    /// New expiry after a heartbeat: at least `now + heartbeat_extension`, capped at the limit.
    pub fn heartbeat(&self, lease: &Lease, now: DateTime<Utc>) -> Result<DateTime<Utc>, PolicyError> {
        if !lease.state.is_active() {
            return Err(PolicyError::NotActive(lease.state));
        }
        Ok(lease
            .expires_at
            .max(now + self.heartbeat_extension)
            .min(self.hard_limit(lease)))
    }

    /// Whether `reap` should expire this lease at `now`.
    pub fn is_stale(&self, lease: &Lease, now: DateTime<Utc>) -> bool {
        if !lease.state.is_active() || lease.state == LeaseState::Releasing {
            return false;
        }
        self.effective_expiry(lease) <= now
    }

    /// When the lease really ends: `expires_at`, or the hard limit if held.
    pub fn effective_expiry(&self, lease: &Lease) -> DateTime<Utc> {
        if lease.hold {
            self.hard_limit(lease)
        } else {
            lease.expires_at
        }
    }
}

mod secs {
    use chrono::Duration;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(d.num_seconds())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        i64::deserialize(d).map(Duration::seconds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lease::{LeaseId, Namespace};
    use crate::stack::Template;
    use chrono::TimeZone;

    fn lease(now: DateTime<Utc>) -> Lease {
        Lease {
            id: LeaseId::new(),
            owner: "alice".into(),
            namespace: Namespace::parse("alice").expect("ns"),
            stack_id: "s".into(),
            template: Template::default_template(),
            seed: None,
            state: LeaseState::Ready,
            failure_reason: None,
            created_at: now,
            updated_at: now,
            expires_at: now + Duration::hours(8),
            last_heartbeat_at: None,
            hold: false,
            labels: Default::default(),
            endpoints: None,
            backend: "process".into(),
            host: "local".into(),
        }
    }

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).single().expect("time")
    }

    #[test]
    fn extend_respects_max() {
        let p = Policy::default();
        let l = lease(t0());
        assert_eq!(p.extend(&l, Duration::hours(4)), Ok(t0() + Duration::hours(12)));
        assert!(p.extend(&l, Duration::days(7)).is_err());
    }

    #[test]
    fn staleness_and_hold() {
        let p = Policy::default();
        let mut l = lease(t0());
        assert!(!p.is_stale(&l, t0() + Duration::hours(7)));
        assert!(p.is_stale(&l, t0() + Duration::hours(8)));
        l.hold = true;
        assert!(!p.is_stale(&l, t0() + Duration::hours(9)));
        assert!(p.is_stale(&l, t0() + Duration::days(7)));
        l.state = LeaseState::Released;
        assert!(!p.is_stale(&l, t0() + Duration::days(8)));
    }

    #[test]
    fn heartbeat_extends_but_caps() {
        let p = Policy::default();
        let l = lease(t0());
        // Early heartbeat does not shorten the lease.
        assert_eq!(p.heartbeat(&l, t0()), Ok(t0() + Duration::hours(8)));
        assert_eq!(
            p.heartbeat(&l, t0() + Duration::hours(7) + Duration::minutes(30)),
            Ok(t0() + Duration::hours(8) + Duration::minutes(30))
        );
        assert_eq!(p.heartbeat(&l, t0() + Duration::days(7)), Ok(t0() + Duration::days(7)));
    }

    #[test]
    fn ttl_over_max_is_rejected() {
        let p = Policy::default();
        assert!(p.initial_expiry(t0(), Some(Duration::days(8))).is_err());
        assert_eq!(p.initial_expiry(t0(), None), Ok(t0() + Duration::hours(8)));
    }
}
