//! Mozilla version semantics as Balrog's rule matching uses them (reference
//! balrog.md §2.4, §2.5): `N.N[.N][aN]` for modern versions, `N.N[.N][tagN]`
//! for versions before 5, four-part ancient forms, and the rule-side matchers
//! (comma lists, `>=`/`>`/`<`/`<=` operators, `70.*` globs).
use std::cmp::Ordering;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Version number {0} is invalid.")]
pub struct InvalidVersion(pub String);

/// A parsed version: numbers first, then an optional pre-release tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MozVersion {
    pub nums: [u64; 3],
    /// (letters, number), e.g. ("a", 1), ("b", 3), ("rc", 2); `None` for a final release.
    pub pre: Option<(String, u64)>,
}

impl MozVersion {
    pub fn parse(s: &str) -> Result<Self, InvalidVersion> {
        let bad = || InvalidVersion(s.to_string());
        let dots = s.matches('.').count();
        if dots == 3 {
            // Ancient `1.5.0.12`: the third part is dropped.
            let parts: Vec<&str> = s.split('.').collect();
            let n = |p: &str| p.parse::<u64>().map_err(|_| bad());
            return Ok(Self {
                nums: [n(parts[0])?, n(parts[1])?, n(parts[3])?],
                pre: None,
            });
        }
        if !(1..=2).contains(&dots) {
            return Err(bad());
        }
        // Split the numeric part from a trailing tag on the last component.
        let (head, last) = s.rsplit_once('.').ok_or_else(bad)?;
        let digits_end = last.find(|c: char| !c.is_ascii_digit()).unwrap_or(last.len());
        let (last_num, tag) = last.split_at(digits_end);
        let mut nums = [0u64; 3];
        let mut i = 0;
        for p in head.split('.') {
            nums[i] = p.parse().map_err(|_| bad())?;
            i += 1;
        }
        nums[i] = last_num.parse().map_err(|_| bad())?;
        let pre = if tag.is_empty() {
            None
        } else {
            let letters_end = tag.find(|c: char| !c.is_ascii_alphabetic()).unwrap_or(tag.len());
            let (letters, number) = tag.split_at(letters_end);
            if letters.is_empty() || number.is_empty() || !number.chars().all(|c| c.is_ascii_digit()) {
                return Err(bad());
            }
            // Modern versions only know alpha tags.
            if nums[0] > 4 && letters != "a" {
                return Err(bad());
            }
            Some((letters.to_string(), number.parse().map_err(|_| bad())?))
        };
        Ok(Self { nums, pre })
    }
}

impl PartialOrd for MozVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for MozVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        self.nums.cmp(&other.nums).then_with(|| match (&self.pre, &other.pre) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Greater,
            (Some(_), None) => Ordering::Less,
            (Some(a), Some(b)) => a.cmp(b),
        })
    }
}

/// Loose dotted-number comparison (products FirefoxVPN and Guardian).
pub fn loose_cmp(a: &str, b: &str) -> Ordering {
    let nums = |s: &str| -> Vec<u64> { s.split('.').map(|p| p.parse().unwrap_or(0)).collect() };
    nums(a).cmp(&nums(b))
}

/// Compare two version strings with Mozilla semantics.
pub fn cmp_versions(a: &str, b: &str) -> Result<Ordering, InvalidVersion> {
    Ok(MozVersion::parse(a)?.cmp(&MozVersion::parse(b)?))
}

/// Split an operator prefix off a rule term.
fn split_op(term: &str) -> (&str, &str) {
    for op in [">=", "<=", ">", "<"] {
        if let Some(rest) = term.strip_prefix(op) {
            return (op, rest);
        }
    }
    ("", term)
}

fn apply_op(op: &str, ord: Ordering) -> bool {
    match op {
        ">=" => ord != Ordering::Less,
        "<=" => ord != Ordering::Greater,
        ">" => ord == Ordering::Greater,
        "<" => ord == Ordering::Less,
        _ => ord == Ordering::Equal,
    }
}

/// Does the query `version` match the rule's version condition?
pub fn version_matches(rule: &str, version: &str) -> Result<bool, InvalidVersion> {
    for term in rule.split(',').map(str::trim) {
        if let Some(prefix) = term.strip_suffix(".*") {
            // `70.*` / `99.8.*`: the leading components must be equal.
            let want: Vec<&str> = prefix.split('.').collect();
            let q = MozVersion::parse(version)?;
            let ok = want
                .iter()
                .enumerate()
                .all(|(i, w)| w.parse::<u64>().ok() == q.nums.get(i).copied());
            if ok {
                return Ok(true);
            }
            continue;
        }
        let (op, v) = split_op(term);
        if op.is_empty() && term.starts_with(|c: char| c.is_alphanumeric() || c == '_') {
            if MozVersion::parse(version)? == MozVersion::parse(term)? {
                return Ok(true);
            }
            continue;
        }
        if apply_op(op, cmp_versions(version, v)?) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// buildID conditions: optional operator, plain string comparison.
pub fn build_id_matches(rule: &str, build_id: &str) -> bool {
    rule.split(',').map(str::trim).any(|term| {
        let (op, v) = split_op(term);
        apply_op(op, build_id.cmp(v))
    })
}

/// memory conditions: optional operator, integer comparison; a non-integer rule never matches.
pub fn int_matches(rule: &str, value: i64) -> bool {
    let (op, v) = split_op(rule.trim());
    match v.trim().parse::<i64>() {
        Ok(n) => apply_op(op, value.cmp(&n)),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordering() {
        let lt = |a: &str, b: &str| cmp_versions(a, b).expect("valid") == Ordering::Less;
        assert!(lt("56.0", "100.0"));
        assert!(lt("62.0a1", "62.0"));
        assert!(lt("4.0rc2", "4.0"));
        assert!(lt("3.6b1", "3.6"));
        assert!(lt("3.6.12", "3.6.13"));
        assert_eq!(cmp_versions("1.5.0.12", "1.5.12"), Ok(Ordering::Equal));
        assert!(MozVersion::parse("62.0b3").is_err(), "modern betas are invalid");
        assert!(MozVersion::parse("62").is_err());
    }

    #[test]
    fn rule_matchers() {
        assert_eq!(version_matches("<56.0", "54.0.1"), Ok(true));
        assert_eq!(version_matches(">=56.0", "54.0.1"), Ok(false));
        assert_eq!(version_matches("54.0.1,55.0", "55.0"), Ok(true));
        assert_eq!(version_matches("99.8.*", "99.8.1"), Ok(true));
        assert_eq!(version_matches("70.*", "71.0"), Ok(false));
        assert!(build_id_matches("<20170101000000", "20160101000000"));
        assert!(!build_id_matches("20170101000000", "20160101000000"));
        assert!(int_matches("<=8000", 8000));
        assert!(!int_matches(">10000", 9000));
    }
}
