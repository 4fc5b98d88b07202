//! Counters for `/metrics` (Prometheus text format), written by hand: a handful of
//! counters and one histogram do not justify a metrics framework.
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::lease::LeaseState;

/// Upper bounds (seconds) of the provisioning-time histogram.
pub const PROVISION_BUCKETS: [f64; 9] = [0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0, 120.0];

#[derive(Debug, Default)]
pub struct Metrics {
    pub reservations: AtomicU64,
    pub releases: AtomicU64,
    pub expiries: AtomicU64,
    pub failures: AtomicU64,
    pub orphans_removed: AtomicU64,
    pub pool_warmed: AtomicU64,
    pub pool_claims: AtomicU64,
    pub queued: AtomicU64,
    provision_buckets: [AtomicU64; PROVISION_BUCKETS.len()],
    provision_count: AtomicU64,
    /// Sum in milliseconds.
    provision_sum_ms: AtomicU64,
}

impl Metrics {
    pub fn inc(counter: &AtomicU64, by: u64) {
        counter.fetch_add(by, Ordering::Relaxed);
    }

    pub fn observe_provisioning(&self, secs: f64) {
        for (i, bound) in PROVISION_BUCKETS.iter().enumerate() {
            if secs <= *bound {
                self.provision_buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.provision_count.fetch_add(1, Ordering::Relaxed);
        self.provision_sum_ms
            .fetch_add((secs * 1000.0).round() as u64, Ordering::Relaxed);
    }

    /// Render everything, with the current number of leases per state.
    pub fn render(&self, by_state: &BTreeMap<LeaseState, u64>) -> String {
        let mut out = String::new();
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let _ = writeln!(out, "# HELP stagelib_leases Leases by state.");
        let _ = writeln!(out, "# TYPE stagelib_leases gauge");
        for state in LeaseState::ALL {
            let n = by_state.get(&state).copied().unwrap_or(0);
            let _ = writeln!(out, "stagelib_leases{{state=\"{state}\"}} {n}");
        }
        for (name, help, c) in [
            ("stagelib_reservations_total", "Leases reserved.", &self.reservations),
            ("stagelib_releases_total", "Leases released.", &self.releases),
            (
                "stagelib_expiries_total",
                "Leases expired by the reaper.",
                &self.expiries,
            ),
            ("stagelib_failures_total", "Leases that failed.", &self.failures),
            (
                "stagelib_orphans_removed_total",
                "Stacks or objects without a live lease removed by the reaper.",
                &self.orphans_removed,
            ),
            ("stagelib_pool_warmed_total", "Pool stacks warmed.", &self.pool_warmed),
            (
                "stagelib_pool_claims_total",
                "Reservations served from the pool.",
                &self.pool_claims,
            ),
            (
                "stagelib_queued_total",
                "Reservations that joined the wait queue.",
                &self.queued,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} counter");
            let _ = writeln!(out, "{name} {}", get(c));
        }
        let _ = writeln!(
            out,
            "# HELP stagelib_provisioning_seconds Time from reservation to a ready stack."
        );
        let _ = writeln!(out, "# TYPE stagelib_provisioning_seconds histogram");
        for (i, bound) in PROVISION_BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "stagelib_provisioning_seconds_bucket{{le=\"{bound}\"}} {}",
                get(&self.provision_buckets[i])
            );
        }
        let count = get(&self.provision_count);
        let _ = writeln!(out, "stagelib_provisioning_seconds_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(
            out,
            "stagelib_provisioning_seconds_sum {}",
            get(&self.provision_sum_ms) as f64 / 1000.0
        );
        let _ = writeln!(out, "stagelib_provisioning_seconds_count {count}");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_cumulative() {
        let m = Metrics::default();
        m.observe_provisioning(0.4);
        m.observe_provisioning(4.0);
        let text = m.render(&BTreeMap::new());
        assert!(text.contains("stagelib_provisioning_seconds_bucket{le=\"0.5\"} 1"));
        assert!(text.contains("stagelib_provisioning_seconds_bucket{le=\"5\"} 2"));
        assert!(text.contains("stagelib_provisioning_seconds_count 2"));
        assert!(text.contains("stagelib_leases{state=\"ready\"} 0"));
    }
}
