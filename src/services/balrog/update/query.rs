//! Parsing an update request: the path segments of `/update/<ver>/…/update.xml`
//! and the query string (reference balrog.md §2.1, §2.2).
use std::collections::BTreeMap;

/// What `force=` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Force {
    /// `force=1`: always the rule's mapping.
    Always,
    /// `force=-1`: the fallback branch when throttled.
    Fallback,
}

impl Force {
    pub fn query_value(self) -> &'static str {
        match self {
            Self::Always => "1",
            Self::Fallback => "-1",
        }
    }
}

/// One parsed update request.
#[derive(Debug, Clone, Default)]
pub struct UpdateQuery {
    pub query_version: u32,
    pub product: String,
    pub version: String,
    pub build_id: String,
    pub build_target: String,
    pub locale: String,
    pub channel: String,
    pub os_version: String,
    pub distribution: String,
    pub dist_version: Option<String>,
    pub instruction_set: Option<String>,
    pub memory: Option<i64>,
    pub jaws: Option<bool>,
    pub mig64: Option<bool>,
    pub force: Option<Force>,
    pub pin: Option<String>,
    pub header_architecture: String,
}

impl UpdateQuery {
    /// The channel with anything from `-cck-` on removed.
    pub fn fallback_channel(&self) -> &str {
        fallback_channel(&self.channel)
    }
}

pub fn fallback_channel(channel: &str) -> &str {
    match channel.find("-cck-") {
        Some(i) => &channel[..i],
        None => channel,
    }
}

/// Why a request cannot be answered normally.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryError {
    /// Unknown route shape: answered with the empty document (a 404 upstream).
    NotFound,
    /// Bad query string: 400 problem JSON.
    BadParameter(String),
}

fn decode(seg: &str) -> String {
    let bytes: Vec<u8> = url::form_urlencoded::parse(format!("x={}", seg.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned().into_bytes())
        .unwrap_or_default();
    // Force ASCII: anything else becomes `?`.
    String::from_utf8_lossy(&bytes)
        .chars()
        .map(|c| if c.is_ascii() { c } else { '?' })
        .collect()
}

/// Parse `rest` (what follows `/update/`, without the query string) and the raw query.
pub fn parse(rest: &str, raw_query: Option<&str>, user_agent: Option<&str>) -> Result<UpdateQuery, QueryError> {
    let rest = rest.strip_suffix("/update.xml").ok_or(QueryError::NotFound)?;
    let mut segs = rest.split('/');
    let ver: u32 = segs.next().and_then(|v| v.parse().ok()).ok_or(QueryError::NotFound)?;
    let segs: Vec<String> = segs.map(decode).collect();
    let expected = match ver {
        1 => 6,
        2 => 7,
        3 => 9,
        4..=6 => 10,
        _ => return Err(QueryError::NotFound),
    };
    if segs.len() != expected {
        return Err(QueryError::NotFound);
    }
    let mut q = UpdateQuery {
        query_version: ver,
        product: segs[0].clone(),
        version: segs[1].clone(),
        build_id: segs[2].clone(),
        build_target: segs[3].clone(),
        locale: segs[4].clone(),
        channel: segs[5].clone(),
        ..Default::default()
    };
    if ver == 3 {
        if let Some(v) = q.version.strip_suffix("esrpre") {
            q.version = v.to_string();
        }
    }
    if let Some(l) = q.locale.strip_prefix("x86 ") {
        q.locale = l.to_string();
    }
    if ver >= 2 {
        q.os_version = segs[6].clone();
    }
    match ver {
        3..=5 => {
            q.distribution = segs[7].clone();
            q.dist_version = Some(segs[8].clone());
        }
        6 => {
            parse_system_capabilities(&segs[7], &mut q);
            q.distribution = segs[8].clone();
            q.dist_version = Some(segs[9].clone());
        }
        _ => {}
    }
    q.header_architecture = if q.build_target.starts_with("Darwin") && user_agent.is_some_and(|ua| ua.contains("PPC")) {
        "PPC".into()
    } else {
        "Intel".into()
    };
    parse_query_string(raw_query, &mut q)?;
    Ok(q)
}

fn parse_system_capabilities(caps: &str, q: &mut UpdateQuery) {
    if let Some(rest) = caps.strip_prefix("ISET:") {
        let full = format!("ISET:{rest}");
        for part in full.split(',') {
            let Some((k, v)) = part.split_once(':') else { continue };
            match k {
                "ISET" => q.instruction_set = Some(v.to_string()),
                "MEM" => q.memory = v.parse().ok(),
                "JAWS" => q.jaws = v.parse::<i64>().ok().map(|n| n != 0),
                _ => {}
            }
        }
    } else {
        let parts: Vec<&str> = caps.split(',').collect();
        match parts.len() {
            1 => q.instruction_set = Some(parts[0].to_string()),
            2 => {
                q.instruction_set = Some(parts[0].to_string());
                q.memory = parts[1].parse().ok();
            }
            _ => {}
        }
    }
}

fn parse_query_string(raw: Option<&str>, q: &mut UpdateQuery) -> Result<(), QueryError> {
    let mut params: BTreeMap<String, String> = BTreeMap::new();
    let mut extra = Vec::new();
    let allowed: &[&str] = if q.query_version == 2 {
        &["force", "mig64", "avast"]
    } else {
        &["force", "mig64", "pin", "avast"]
    };
    for (k, v) in url::form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        if allowed.contains(&k.as_ref()) {
            params.insert(k.into_owned(), v.into_owned());
        } else {
            extra.push(k.into_owned());
        }
    }
    if !extra.is_empty() {
        return Err(QueryError::BadParameter(format!(
            "Extra query parameter(s) {} not in spec",
            extra.join(", ")
        )));
    }
    if let Some(force) = params.get("force") {
        // Avast sends `force=1?avast=1` (or %3F): keep what comes before.
        let lower = force.to_ascii_lowercase();
        let cut = ["?", "%3f"]
            .iter()
            .filter_map(|sep| lower.find(sep).filter(|i| lower[*i..].contains("avast")))
            .min()
            .unwrap_or(force.len());
        q.force = match &force[..cut] {
            "1" => Some(Force::Always),
            "-1" => Some(Force::Fallback),
            _ => None,
        };
    }
    q.mig64 = params.get("mig64").map(|v| v == "1");
    if let Some(pin) = params.get("pin") {
        if pin.is_empty() {
            return Err(QueryError::BadParameter("'' is too short - 'pin'".into()));
        }
        q.pin = Some(pin.clone());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v6_with_capabilities() {
        let q = parse(
            "6/Firefox/54.0.1/20170628075643/WINNT_x86-msvc-x64/en-US/release/Windows_NT%206.1.0.0%20(x86)/ISET:SSE3,MEM:4096,JAWS:0/default/default/update.xml",
            Some("force=1"),
            None,
        )
        .expect("parse");
        assert_eq!(q.os_version, "Windows_NT 6.1.0.0 (x86)");
        assert_eq!(q.instruction_set.as_deref(), Some("SSE3"));
        assert_eq!(q.memory, Some(4096));
        assert_eq!(q.jaws, Some(false));
        assert_eq!(q.force, Some(Force::Always));
        assert_eq!(q.dist_version.as_deref(), Some("default"));
    }

    #[test]
    fn bad_shapes_and_params() {
        assert_eq!(parse("3/a/b/update.xml", None, None).err(), Some(QueryError::NotFound));
        assert!(matches!(
            parse("1/b/1.0/1/p/l/a/update.xml", Some("foo=1"), None),
            Err(QueryError::BadParameter(_))
        ));
        let q = parse("1/b/1.0/1/p/l/a-cck-x/update.xml", Some("force=1%3Favast=1"), None).expect("ok");
        assert_eq!(q.force, Some(Force::Always));
        assert_eq!(q.fallback_channel(), "a");
    }
}
