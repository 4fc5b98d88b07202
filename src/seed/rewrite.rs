//! Mapping a whole snapshot onto a stack and a namespace ([`to_stack`]) and a
//! stack's view back to canonical names and production URLs ([`from_stack`]).
//!
//! Every name passes through [`Namespacer`]; URLs that point at the snapshot's
//! origins (the archive, the bouncer redirector) are re-pointed at the stack's S3
//! bucket and bouncer, with the S3 key and bouncer product inside them
//! namespaced too. `from_stack(to_stack(s)) == s`, and `from_stack` keeps only
//! what the namespace owns, so a user's view of a shared stack is their own data.
use serde_json::Value;

use super::namespace::{NameKind, Namespacer};
use super::snapshot::{Origins, Snapshot};

/// Where a stack serves what the snapshot's origins serve in production.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackUrls {
    /// Base under which S3 keys are public (`http://127.0.0.1:P/<bucket>`).
    pub archive: String,
    /// The stack's bouncer redirector (`http://127.0.0.1:Q`).
    pub download: String,
}

/// Offsets of rule IDs for a namespace on a stack shared with others (0 for the
/// first namespace seeded onto a stack, so production IDs are kept).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RuleIds {
    pub offset: i64,
}

/// Direction of a mapping.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Dir {
    ToStack,
    FromStack,
}

struct Mapper<'a> {
    ns: &'a Namespacer,
    dir: Dir,
    origins: &'a Origins,
    stack: &'a StackUrls,
}

impl Mapper<'_> {
    /// Map a name; `None` (only when reading a stack) if it is not the namespace's.
    fn name(&self, kind: NameKind, name: &str) -> Option<String> {
        match self.dir {
            Dir::ToStack => Some(self.ns.apply(kind, name)),
            Dir::FromStack => self.ns.strip(kind, name),
        }
    }

    /// A name that must map; when reading a stack, foreign names are kept as
    /// they are (the caller already decided the object is the namespace's).
    fn name_or_keep(&self, kind: NameKind, name: &str) -> String {
        self.name(kind, name).unwrap_or_else(|| name.to_string())
    }

    /// Bouncer location paths are S3 keys below `pub` with a leading `/`.
    fn location(&self, path: &str) -> Option<String> {
        match path.strip_prefix('/') {
            Some(rest) => self.name(NameKind::S3Key, rest).map(|k| format!("/{k}")),
            None => self.name(NameKind::S3Key, path),
        }
    }

    fn url(&self, url: &str) -> String {
        let (archive_from, archive_to, download_from, download_to) = match self.dir {
            Dir::ToStack => (
                &self.origins.archive,
                &self.stack.archive,
                &self.origins.download,
                &self.stack.download,
            ),
            Dir::FromStack => (
                &self.stack.archive,
                &self.origins.archive,
                &self.stack.download,
                &self.origins.download,
            ),
        };
        if let Some(rest) = url.strip_prefix(archive_from.as_str()) {
            if let Some(key) = rest.strip_prefix('/') {
                return format!("{archive_to}/{}", self.name_or_keep(NameKind::S3Key, key));
            }
        }
        if let Some(rest) = url.strip_prefix(download_from.as_str()) {
            if rest.starts_with("/?") || rest.starts_with('?') {
                return format!("{download_to}{}", self.query_product(rest));
            }
        }
        url.to_string()
    }

    /// Rewrite the `product=` parameter of a redirector query.
    fn query_product(&self, rest: &str) -> String {
        let Some(start) = rest.find("product=").map(|i| i + "product=".len()) else {
            return rest.to_string();
        };
        let end = rest[start..].find('&').map(|i| start + i).unwrap_or(rest.len());
        let product = self.name_or_keep(NameKind::BouncerProduct, &rest[start..end]);
        format!("{}{product}{}", &rest[..start], &rest[end..])
    }

    /// Walk a release blob: its name, channel keys of `fileUrls`, release names
    /// in `from` fields and partial maps, and every URL string.
    fn blob(&self, v: &mut Value, key: Option<&str>) {
        match v {
            Value::String(s) => {
                let mapped = match key {
                    Some("name") | Some("from") if s != "*" => self.name_or_keep(NameKind::Release, s),
                    _ => self.url(s),
                };
                *s = mapped;
            }
            Value::Array(a) => a.iter_mut().for_each(|x| self.blob(x, None)),
            Value::Object(m) => {
                let entries = std::mem::take(m);
                for (k, mut val) in entries {
                    let new_key = match key {
                        Some("fileUrls") if k != "*" => self.name_or_keep(NameKind::Channel, &k),
                        Some("partials") if val.is_string() => self.name_or_keep(NameKind::Release, &k),
                        _ => k.clone(),
                    };
                    self.blob(&mut val, Some(&k));
                    m.insert(new_key, val);
                }
            }
            _ => {}
        }
    }
}

/// The snapshot as it is written onto a stack for namespace `ns`.
pub fn to_stack(snap: &Snapshot, ns: &Namespacer, stack: &StackUrls, ids: RuleIds) -> Snapshot {
    let m = Mapper {
        ns,
        dir: Dir::ToStack,
        origins: &snap.meta.origins,
        stack,
    };
    let mut out = snap.clone();
    map_all(&m, &mut out, ids.offset);
    out
}

/// The part of a stack's `view` that belongs to `ns`, in canonical names and
/// production URLs (`origins`).
pub fn from_stack(view: &Snapshot, ns: &Namespacer, stack: &StackUrls, origins: &Origins, ids: RuleIds) -> Snapshot {
    let m = Mapper {
        ns,
        dir: Dir::FromStack,
        origins,
        stack,
    };
    let mut out = view.clone();
    out.meta.origins = origins.clone();
    // Keep what the namespace owns; names are mapped below.
    let b = &mut out.balrog;
    b.releases.retain(|r| ns.owns(NameKind::Release, &r.name));
    b.rules.retain(|r| match &r.channel {
        Some(c) => ns.owns(NameKind::Channel, c),
        None => ns.namespace().is_none(),
    });
    b.required_signoffs.retain(|r| ns.owns(NameKind::Channel, &r.channel));
    b.emergency_shutoffs.retain(|r| ns.owns(NameKind::Channel, &r.channel));
    b.pins.retain(|p| ns.owns(NameKind::Channel, &p.channel));
    out.bouncer
        .products
        .retain(|p| ns.owns(NameKind::BouncerProduct, &p.name));
    out.bouncer.aliases.retain(|a, _| ns.owns(NameKind::BouncerAlias, a));
    out.s3.objects.retain(|o| ns.owns(NameKind::S3Key, &o.key));
    out.shipit
        .releases
        .retain(|r| ns.owns(NameKind::ShipitRelease, &r.name));
    map_all(&m, &mut out, -ids.offset);
    out.normalize();
    out
}

fn map_all(m: &Mapper, s: &mut Snapshot, id_delta: i64) {
    let b = &mut s.balrog;
    for r in &mut b.releases {
        r.name = m.name_or_keep(NameKind::Release, &r.name);
        m.blob(std::sync::Arc::make_mut(&mut r.blob), None);
    }
    for r in &mut b.rules {
        r.rule_id += id_delta;
        r.alias = r.alias.as_deref().map(|a| m.name_or_keep(NameKind::RuleAlias, a));
        r.channel = r.channel.as_deref().map(|c| m.name_or_keep(NameKind::Channel, c));
        r.mapping = r.mapping.as_deref().map(|x| m.name_or_keep(NameKind::Release, x));
        r.fallback_mapping = r
            .fallback_mapping
            .as_deref()
            .map(|x| m.name_or_keep(NameKind::Release, x));
    }
    for r in &mut b.required_signoffs {
        r.channel = m.name_or_keep(NameKind::Channel, &r.channel);
    }
    for r in &mut b.emergency_shutoffs {
        r.channel = m.name_or_keep(NameKind::Channel, &r.channel);
    }
    for p in &mut b.pins {
        p.channel = m.name_or_keep(NameKind::Channel, &p.channel);
        p.mapping = m.name_or_keep(NameKind::Release, &p.mapping);
    }
    for p in &mut s.bouncer.products {
        p.name = m.name_or_keep(NameKind::BouncerProduct, &p.name);
        for path in p.locations.values_mut() {
            *path = m.location(path).unwrap_or_else(|| path.clone());
        }
    }
    s.bouncer.aliases = std::mem::take(&mut s.bouncer.aliases)
        .into_iter()
        .map(|(a, p)| {
            (
                m.name_or_keep(NameKind::BouncerAlias, &a),
                m.name_or_keep(NameKind::BouncerProduct, &p),
            )
        })
        .collect();
    for o in &mut s.s3.objects {
        o.key = m.name_or_keep(NameKind::S3Key, &o.key);
    }
    for r in &mut s.shipit.releases {
        r.name = m.name_or_keep(NameKind::ShipitRelease, &r.name);
    }
}

/// Every name a namespaced writer is about to write, with its kind: the check
/// seeding runs before it sends anything (and tests run on whole snapshots).
pub fn written_names(s: &Snapshot) -> Vec<(NameKind, String)> {
    let mut out = Vec::new();
    let b = &s.balrog;
    for r in &b.releases {
        out.push((NameKind::Release, r.name.clone()));
    }
    for r in &b.rules {
        out.extend(r.alias.clone().map(|a| (NameKind::RuleAlias, a)));
        out.extend(r.channel.clone().map(|c| (NameKind::Channel, c)));
        out.extend(r.mapping.clone().map(|c| (NameKind::Release, c)));
    }
    for r in &b.required_signoffs {
        out.push((NameKind::Channel, r.channel.clone()));
    }
    for r in &b.emergency_shutoffs {
        out.push((NameKind::Channel, r.channel.clone()));
    }
    for p in &s.bouncer.products {
        out.push((NameKind::BouncerProduct, p.name.clone()));
    }
    for (a, p) in &s.bouncer.aliases {
        out.push((NameKind::BouncerAlias, a.clone()));
        out.push((NameKind::BouncerProduct, p.clone()));
    }
    for o in &s.s3.objects {
        out.push((NameKind::S3Key, o.key.clone()));
    }
    for r in &s.shipit.releases {
        out.push((NameKind::ShipitRelease, r.name.clone()));
    }
    out
}

/// Refuse a write set containing a name the namespace does not own.
pub fn check_owned(s: &Snapshot, ns: &Namespacer) -> Result<(), super::SeedError> {
    match written_names(s).into_iter().find(|(k, n)| !ns.owns(*k, n)) {
        Some((kind, name)) => Err(super::SeedError::Namespace(format!(
            "refusing to write {kind:?} `{name}`: it is outside namespace `{}`",
            ns.namespace().map(|n| n.as_str()).unwrap_or("")
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lease::Namespace;

    fn urls() -> StackUrls {
        StackUrls {
            archive: "http://127.0.0.1:9000/bucket".into(),
            download: "http://127.0.0.1:9001".into(),
        }
    }

    #[test]
    fn round_trips_the_default_snapshot_and_writes_only_namespaced_names() {
        let snap = super::super::generate::default_snapshot();
        let alice = Namespacer::new(Namespace::parse("alice").expect("ns"));
        let ids = RuleIds { offset: 100_000 };
        let on_stack = to_stack(&snap, &alice, &urls(), ids);
        check_owned(&on_stack, &alice).expect("every written name is alice's");
        assert!(check_owned(&snap, &alice).is_err(), "canonical names are not alice's");
        let rel = &on_stack.balrog.releases[0];
        assert!(rel.name.ends_with("-alice"), "{}", rel.name);
        let text = serde_json::to_string(&rel.blob).expect("json");
        assert!(!text.contains("archive.mozilla.org") && !text.contains("download.mozilla.org"));
        assert!(text.contains("http://127.0.0.1:9000/bucket/pub/"));
        assert!(
            text.contains("-alice-complete"),
            "bouncer products in URLs are namespaced"
        );
        assert!(on_stack.balrog.rules.iter().all(|r| r.rule_id > 100_000));
        let back = from_stack(&on_stack, &alice, &urls(), &snap.meta.origins, ids);
        assert_eq!(back, snap);
        // Bob sees nothing of alice's.
        let bob = Namespacer::new(Namespace::parse("bob").expect("ns"));
        let bobs = from_stack(&on_stack, &bob, &urls(), &snap.meta.origins, RuleIds::default());
        assert!(bobs.balrog.releases.is_empty() && bobs.balrog.rules.is_empty());
        assert!(bobs.s3.objects.is_empty() && bobs.bouncer.products.is_empty());
    }
}
