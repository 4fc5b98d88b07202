//! Printing: aligned tables for people, JSON for scripts (`--json`), data on stdout.
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::lease::{format_duration, Lease};

/// Print `value` as pretty JSON.
pub fn json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Print rows as an aligned table with a header.
pub fn table(headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<String>| {
        let parts: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{:<w$}", c, w = widths.get(i).copied().unwrap_or(0)))
            .collect();
        println!("{}", parts.join("  ").trim_end());
    };
    line(headers.iter().map(|h| h.to_uppercase()).collect());
    for row in rows {
        line(row.clone());
    }
}

/// "in 3h12m" / "4m ago".
pub fn relative(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    if t >= now {
        format!("in {}", format_duration(t - now))
    } else {
        format!("{} ago", format_duration(now - t))
    }
}

pub fn lease_rows(leases: &[Lease], now: DateTime<Utc>) -> Vec<Vec<String>> {
    leases
        .iter()
        .map(|l| {
            vec![
                l.id.to_string(),
                l.owner.clone(),
                l.namespace.to_string(),
                l.state.to_string(),
                l.template.name.clone(),
                if l.state.is_active() {
                    relative(l.expires_at, now)
                } else {
                    "-".into()
                },
            ]
        })
        .collect()
}

pub const LEASE_HEADERS: [&str; 6] = ["id", "owner", "namespace", "state", "template", "expires"];

/// A lease as `key: value` lines.
pub fn lease_detail(l: &Lease, now: DateTime<Utc>) {
    println!("lease      {}", l.id);
    println!("owner      {}", l.owner);
    println!("namespace  {}", l.namespace);
    println!("state      {}", l.state);
    if let Some(r) = &l.failure_reason {
        println!("failure    {r}");
    }
    println!("template   {} ({})", l.template.name, services(l));
    println!("backend    {}", l.backend);
    println!("stack      {}", l.stack_id);
    println!("created    {}", l.created_at.to_rfc3339());
    println!(
        "expires    {} ({})",
        l.expires_at.to_rfc3339(),
        relative(l.expires_at, now)
    );
    if l.hold {
        println!("hold       yes (kept past expiry, up to the maximum lifetime)");
    }
    if let Some(h) = l.last_heartbeat_at {
        println!("heartbeat  {}", relative(h, now));
    }
    for (k, v) in &l.labels {
        println!("label      {k}={v}");
    }
    if let Some(eps) = &l.endpoints {
        for (svc, ep) in &eps.services {
            println!("{:<10} {}", svc.as_str(), ep.url);
        }
    }
}

fn services(l: &Lease) -> String {
    l.template
        .services
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}
