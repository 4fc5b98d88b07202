//! Gecko product versions as Ship-it and release promotion read them (the
//! `mozilla-version` grammar, reference promotion.md §9.1): `130.0`, `130.0.1`,
//! `128.3.1esr`, `130.0b3`, `131.0a1`; ordering and bumping.
use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{input}` is not a valid version: {why}")]
pub struct VersionError {
    pub input: String,
    pub why: &'static str,
}

/// What kind of release a version names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Channel {
    Nightly,
    Beta,
    Release,
    Esr,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GeckoVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: Option<u32>,
    /// Beta number (`b3`) or alpha number (`a1`).
    pub pre: Option<u32>,
    pub channel: Channel,
}

impl FromStr for GeckoVersion {
    type Err = VersionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |why| VersionError {
            input: s.to_string(),
            why,
        };
        let (body, esr) = match s.strip_suffix("esr") {
            Some(b) => (b, true),
            None => (s, false),
        };
        let (nums, pre) = match body.find(['a', 'b']) {
            Some(i) => (&body[..i], Some((&body[i..i + 1], &body[i + 1..]))),
            None => (body, None),
        };
        let parts: Vec<&str> = nums.split('.').collect();
        if !(2..=3).contains(&parts.len())
            || parts
                .iter()
                .any(|p| p.is_empty() || !p.chars().all(|c| c.is_ascii_digit()))
        {
            return Err(bad(
                "expected MAJOR.MINOR[.PATCH] with an optional b<N>, a<N> or esr suffix",
            ));
        }
        if parts.iter().any(|p| p.len() > 1 && p.starts_with('0')) {
            return Err(bad("numbers cannot have leading zeros"));
        }
        let n = |p: &str| p.parse::<u32>().map_err(|_| bad("number too large"));
        let major = n(parts[0])?;
        let minor = n(parts[1])?;
        let patch = parts.get(2).map(|p| n(p)).transpose()?;
        if major < 5 {
            return Err(bad("versions before 5.0 are not supported"));
        }
        if minor == 0 && patch == Some(0) {
            return Err(bad("minor and patch cannot both be 0"));
        }
        if minor > 0 && patch.is_none() {
            return Err(bad("a non-zero minor needs a patch number"));
        }
        let (pre, channel) = match pre {
            None if esr => (None, Channel::Esr),
            None => (None, Channel::Release),
            Some((_, _)) if esr => return Err(bad("esr versions have no beta or alpha suffix")),
            Some((kind, num)) => {
                if patch.is_some() || minor != 0 {
                    return Err(bad("betas and nightlies are X.0bN / X.0aN"));
                }
                let k = n(num)?;
                if k == 0 {
                    return Err(bad("beta and alpha numbers start at 1"));
                }
                if kind == "a" {
                    if k > 2 {
                        return Err(bad("only a1 and a2 exist"));
                    }
                    (Some(k), Channel::Nightly)
                } else {
                    (Some(k), Channel::Beta)
                }
            }
        };
        Ok(Self {
            major,
            minor,
            patch,
            pre,
            channel,
        })
    }
}

impl fmt::Display for GeckoVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)?;
        if let Some(p) = self.patch {
            write!(f, ".{p}")?;
        }
        match (self.channel, self.pre) {
            (Channel::Beta, Some(k)) => write!(f, "b{k}"),
            (Channel::Nightly, Some(k)) => write!(f, "a{k}"),
            (Channel::Esr, _) => write!(f, "esr"),
            _ => Ok(()),
        }
    }
}

impl Ord for GeckoVersion {
    fn cmp(&self, o: &Self) -> Ordering {
        let rank = |v: &Self| match v.channel {
            Channel::Nightly => 0,
            Channel::Beta => 1,
            Channel::Release | Channel::Esr => 2,
        };
        (
            self.major,
            self.minor,
            self.patch.unwrap_or(0),
            rank(self),
            self.pre.unwrap_or(0),
        )
            .cmp(&(o.major, o.minor, o.patch.unwrap_or(0), rank(o), o.pre.unwrap_or(0)))
    }
}

impl PartialOrd for GeckoVersion {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

impl GeckoVersion {
    pub fn is_beta(&self) -> bool {
        self.channel == Channel::Beta
    }

    /// The version after this one: the next beta, or the next patch release.
    pub fn bump(&self) -> Result<Self, VersionError> {
        let mut v = self.clone();
        match self.channel {
            Channel::Nightly => {
                return Err(VersionError {
                    input: self.to_string(),
                    why: "nightly versions cannot be bumped",
                })
            }
            Channel::Beta => v.pre = self.pre.map(|k| k + 1),
            Channel::Release | Channel::Esr => v.patch = Some(self.patch.unwrap_or(0) + 1),
        }
        Ok(v)
    }

    /// `140.0b3` → `140.0` (the app version a beta reports).
    pub fn app_version(&self) -> String {
        match self.patch {
            Some(p) => format!("{}.{}.{}", self.major, self.minor, p),
            None => format!("{}.{}", self.major, self.minor),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> GeckoVersion {
        s.parse().expect(s)
    }

    #[test]
    fn grammar() {
        for ok in [
            "130.0",
            "130.0.1",
            "128.3.1esr",
            "115.0esr",
            "130.0b3",
            "131.0a1",
            "99.1.2",
        ] {
            assert_eq!(v(ok).to_string(), ok);
        }
        for bad in [
            "99.0.0", "99.1", "99.0.1b2", "62.0rc1", "130", "130.0b0", "4.0", "130.0a3", "130.00",
        ] {
            assert!(bad.parse::<GeckoVersion>().is_err(), "{bad}");
        }
    }

    #[test]
    fn ordering_and_bumps() {
        let mut list = [v("123.0.1"), v("123.0"), v("123.0b10"), v("123.0b9")];
        list.sort();
        let s: Vec<String> = list.iter().map(|x| x.to_string()).collect();
        assert_eq!(s, ["123.0b9", "123.0b10", "123.0", "123.0.1"]);
        assert_eq!(v("130.0b3").bump().expect("bump").to_string(), "130.0b4");
        assert_eq!(v("130.0").bump().expect("bump").to_string(), "130.0.1");
        assert_eq!(v("128.2.0esr").bump().expect("bump").to_string(), "128.2.1esr");
        assert!(v("131.0a1").bump().is_err());
        assert_eq!(v("140.0b3").app_version(), "140.0");
    }
}
