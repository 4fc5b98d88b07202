//! Which rule answers a request (reference balrog.md §2.3, §2.4).
use super::query::{fallback_channel, UpdateQuery};
use crate::services::balrog::rule::Rule;
use crate::services::balrog::version::{self, InvalidVersion};

/// A rule channel matches a query channel: exact, or a prefix glob of at least
/// three characters ending in `*`.
pub fn channel_matches(rule: &str, channel: &str) -> bool {
    if rule.ends_with('*') && rule.len() >= 3 {
        return channel.starts_with(&rule[..rule.len() - 1]);
    }
    rule == channel
}

/// The rule's channel against the query channel or its `-cck-` fallback.
fn channel_ok(rule: &Rule, q: &UpdateQuery) -> bool {
    match &rule.channel {
        None => true,
        Some(c) => channel_matches(c, &q.channel) || channel_matches(c, fallback_channel(&q.channel)),
    }
}

fn csv_exact(rule: &Option<String>, value: Option<&str>) -> bool {
    match rule {
        None => true,
        Some(list) => {
            let v = value.unwrap_or("");
            list.split(',').any(|item| item == v)
        }
    }
}

fn os_version_ok(rule: &Option<String>, q: &UpdateQuery) -> bool {
    match rule {
        None => true,
        Some(cond) => cond
            .split(',')
            .any(|alt| alt.split("&&").map(str::trim).all(|term| q.os_version.contains(term))),
    }
}

fn bool_ok(rule: Option<bool>, value: Option<bool>) -> bool {
    match rule {
        None => true,
        Some(r) => value == Some(r),
    }
}

fn eq_or_null(rule: &Option<String>, value: &str) -> bool {
    rule.as_deref().is_none_or(|r| r == value)
}

/// Does `rule` match `q`? An unparseable query version is an error only when a
/// rule actually needs it.
pub fn rule_matches(rule: &Rule, q: &UpdateQuery) -> Result<bool, InvalidVersion> {
    if !eq_or_null(&rule.product, &q.product)
        || !eq_or_null(&rule.build_target, &q.build_target)
        || !eq_or_null(&rule.header_architecture, &q.header_architecture)
    {
        return Ok(false);
    }
    let dist_version_ok = match (&q.dist_version, &rule.dist_version) {
        (_, None) => true,
        (Some(v), Some(r)) => r == v,
        (None, Some(_)) => false,
    };
    if !dist_version_ok || !channel_ok(rule, q) {
        return Ok(false);
    }
    if let Some(b) = &rule.build_id {
        if !version::build_id_matches(b, &q.build_id) {
            return Ok(false);
        }
    }
    if let (Some(m), Some(mem)) = (&rule.memory, q.memory) {
        if !version::int_matches(m, mem) {
            return Ok(false);
        }
    }
    if !os_version_ok(&rule.os_version, q)
        || !csv_exact(&rule.instruction_set, q.instruction_set.as_deref())
        || !csv_exact(&rule.distribution, Some(q.distribution.as_str()))
        || !csv_exact(&rule.locale, Some(q.locale.as_str()))
        || !bool_ok(rule.mig64, q.mig64)
        || !bool_ok(rule.jaws, q.jaws)
    {
        return Ok(false);
    }
    if let Some(v) = &rule.version {
        let loose = matches!(q.product.as_str(), "FirefoxVPN" | "Guardian");
        let ok = if loose {
            v.split(',')
                .any(|t| version::loose_cmp(&q.version, t.trim_start_matches(['<', '>', '='])).is_eq())
        } else {
            version::version_matches(v, &q.version)?
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The winning rule: highest priority, ties to the lowest rule_id.
pub fn select<'a>(rules: &'a [Rule], q: &UpdateQuery) -> Result<Option<&'a Rule>, InvalidVersion> {
    let mut best: Option<&Rule> = None;
    for r in rules {
        if !rule_matches(r, q)? {
            continue;
        }
        let better = match best {
            None => true,
            Some(b) => {
                let (rp, bp) = (r.priority.unwrap_or(0), b.priority.unwrap_or(0));
                rp > bp || (rp == bp && r.rule_id < b.rule_id)
            }
        };
        if better {
            best = Some(r);
        }
    }
    Ok(best)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_globs() {
        assert!(channel_matches("release*", "release-cdntest"));
        assert!(channel_matches("release*", "releasetest"));
        assert!(!channel_matches("b*", "beta"), "globs need three characters");
        assert!(!channel_matches("*", "beta"));
        assert!(channel_matches("beta", "beta"));
    }
}
