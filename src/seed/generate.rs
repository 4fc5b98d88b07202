//! `stagelib snapshot generate`: the default snapshot, a realistic recent Firefox
//! history built deterministically (same input, same bytes).
//!
//! Four channel families — release, beta, devedition (aurora) and esr — with their
//! last few versions; every version has complete MARs for every platform and
//! locale, and partials from the older versions of its family; Balrog rules with
//! fixed IDs for the live, `-cdntest` and `-localtest` channels, required
//! signoffs, permissions and roles; bouncer products, locations and aliases;
//! Ship-it releases; an S3 manifest of every MAR under `releases/`.
use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::mar::{self, MarSpec};
use super::snapshot::{
    sha512_hex, BouncerProduct, Origins, Permission, S3Object, Snapshot, UserRole, ARCHIVE_ORIGIN, DOWNLOAD_ORIGIN,
};
use crate::services::balrog::db::{ReleaseRow, RequiredSignoff};
use crate::services::balrog::rule::Rule;
use crate::services::shipit::state::{Phase, Release as ShipitRelease};

/// One FTP platform: its Balrog build target, the targets aliased to it, and
/// its bouncer OS and installer file name (`{V}` = version).
pub struct Platform {
    pub ftp: &'static str,
    pub target: &'static str,
    pub aliases: &'static [&'static str],
    pub bouncer_os: &'static str,
    pub installer: &'static str,
}

pub const PLATFORMS: [Platform; 7] = [
    Platform {
        ftp: "linux-i686",
        target: "Linux_x86-gcc3",
        aliases: &[],
        bouncer_os: "linux",
        installer: "firefox-{V}.tar.xz",
    },
    Platform {
        ftp: "linux-x86_64",
        target: "Linux_x86_64-gcc3",
        aliases: &["Linux_x86_64-gcc3-asan"],
        bouncer_os: "linux64",
        installer: "firefox-{V}.tar.xz",
    },
    Platform {
        ftp: "linux-aarch64",
        target: "Linux_aarch64-gcc3",
        aliases: &[],
        bouncer_os: "linux64-aarch64",
        installer: "firefox-{V}.tar.xz",
    },
    Platform {
        ftp: "mac",
        target: "Darwin_x86_64-gcc3-u-i386-x86_64",
        aliases: &[
            "Darwin_aarch64-gcc3",
            "Darwin_x86-gcc3",
            "Darwin_x86-gcc3-u-i386-x86_64",
            "Darwin_x86_64-gcc3",
        ],
        bouncer_os: "osx",
        installer: "Firefox%20{V}.dmg",
    },
    Platform {
        ftp: "win32",
        target: "WINNT_x86-msvc",
        aliases: &["WINNT_x86-msvc-x64", "WINNT_x86-msvc-x86"],
        bouncer_os: "win",
        installer: "Firefox%20Setup%20{V}.exe",
    },
    Platform {
        ftp: "win64",
        target: "WINNT_x86_64-msvc",
        aliases: &["WINNT_x86_64-msvc-x64"],
        bouncer_os: "win64",
        installer: "Firefox%20Setup%20{V}.exe",
    },
    Platform {
        ftp: "win64-aarch64",
        target: "WINNT_aarch64-msvc-aarch64",
        aliases: &[],
        bouncer_os: "win64-aarch64",
        installer: "Firefox%20Setup%20{V}.exe",
    },
];

/// Firefox's shipped locales (desktop, 2026); mac ships `ja-JP-mac` for `ja`.
pub const LOCALES: [&str; 103] = [
    "ach",
    "af",
    "an",
    "ar",
    "ast",
    "az",
    "be",
    "bg",
    "bn",
    "br",
    "bs",
    "ca",
    "ca-valencia",
    "cak",
    "cs",
    "cy",
    "da",
    "de",
    "dsb",
    "el",
    "en-CA",
    "en-GB",
    "en-US",
    "eo",
    "es-AR",
    "es-CL",
    "es-ES",
    "es-MX",
    "et",
    "eu",
    "fa",
    "ff",
    "fi",
    "fr",
    "fur",
    "fy-NL",
    "ga-IE",
    "gd",
    "gl",
    "gn",
    "gu-IN",
    "he",
    "hi-IN",
    "hr",
    "hsb",
    "hu",
    "hy-AM",
    "ia",
    "id",
    "is",
    "it",
    "ja",
    "ka",
    "kab",
    "kk",
    "km",
    "kn",
    "ko",
    "lij",
    "lt",
    "lv",
    "mk",
    "mr",
    "ms",
    "my",
    "nb-NO",
    "ne-NP",
    "nl",
    "nn-NO",
    "oc",
    "pa-IN",
    "pl",
    "pt-BR",
    "pt-PT",
    "rm",
    "ro",
    "ru",
    "sat",
    "sc",
    "sco",
    "si",
    "sk",
    "skr",
    "sl",
    "son",
    "sq",
    "sr",
    "sv-SE",
    "szl",
    "ta",
    "te",
    "tg",
    "th",
    "tl",
    "tr",
    "trs",
    "uk",
    "ur",
    "uz",
    "vi",
    "xh",
    "zh-CN",
    "zh-TW",
];

/// The locales of one platform.
pub fn locales_for(p: &Platform) -> Vec<&'static str> {
    LOCALES
        .iter()
        .map(|l| if p.ftp == "mac" && *l == "ja" { "ja-JP-mac" } else { l })
        .collect()
}

/// A channel family of the history.
pub struct Family {
    /// Balrog release name prefix and bouncer product prefix (`Firefox`, `Devedition`).
    pub name: &'static str,
    /// Directory under `pub/` and Ship-it product.
    pub dir: &'static str,
    pub channel: &'static str,
    pub branch: &'static str,
    /// Oldest first.
    pub versions: &'static [&'static str],
    /// IDs of the rules for `<channel>`, `<channel>-cdntest`, `<channel>-localtest`.
    pub rule_ids: [i64; 3],
    /// Bouncer alias prefix (`firefox`, `firefox-beta`, …).
    pub alias: &'static str,
}

pub const FAMILIES: [Family; 4] = [
    Family {
        name: "Firefox",
        dir: "firefox",
        channel: "release",
        branch: "releases/mozilla-release",
        versions: &["156.0", "157.0", "157.0.1"],
        rule_ids: [145, 146, 147],
        alias: "firefox",
    },
    Family {
        name: "Firefox",
        dir: "firefox",
        channel: "beta",
        branch: "releases/mozilla-beta",
        versions: &["158.0b1", "158.0b2", "158.0b3", "158.0b4"],
        rule_ids: [32, 33, 34],
        alias: "firefox-beta",
    },
    Family {
        name: "Devedition",
        dir: "devedition",
        channel: "aurora",
        branch: "releases/mozilla-beta",
        versions: &["158.0b2", "158.0b3", "158.0b4"],
        rule_ids: [59, 60, 61],
        alias: "firefox-devedition",
    },
    Family {
        name: "Firefox",
        dir: "firefox",
        channel: "esr",
        branch: "releases/mozilla-esr153",
        versions: &["153.2.0esr", "153.3.0esr", "153.4.0esr"],
        rule_ids: [301, 302, 303],
        alias: "firefox-esr",
    },
];

pub fn release_name(f: &Family, version: &str) -> String {
    format!("{}-{version}-build1", f.name)
}

/// The version Firefox reports (and Balrog's `appVersion`): betas report the
/// release they lead to (`158.0b4` → `158.0`), ESRs drop the suffix.
pub fn app_version(v: &str) -> String {
    let v = v.trim_end_matches("esr");
    match v.split_once('b') {
        Some((head, _)) => head.to_string(),
        None => v.to_string(),
    }
}

fn display_version(v: &str) -> String {
    match v.split_once('b') {
        Some((head, n)) if !v.ends_with("esr") => format!("{head} Beta {n}"),
        _ => v.to_string(),
    }
}

/// The default snapshot.
pub fn default_snapshot() -> Snapshot {
    let mut snap = Snapshot::empty("default", "generated");
    snap.meta.description = "A recent Firefox history: release, beta, devedition and esr channels, \
        their last versions with partials, 7 platforms, 103 locales (generated by `stagelib snapshot generate`)."
        .into();
    snap.meta.origins = Origins {
        archive: ARCHIVE_ORIGIN.into(),
        download: DOWNLOAD_ORIGIN.into(),
    };
    for f in &FAMILIES {
        for (i, v) in f.versions.iter().enumerate() {
            let partials = &f.versions[..i];
            let (release, objects) = release_blob(f, v, partials);
            snap.balrog.releases.push(release);
            snap.s3.objects.extend(objects);
            snap.bouncer.products.extend(bouncer_products(f, v, partials));
            snap.shipit.releases.push(shipit_release(f, v));
        }
        let latest = f.versions[f.versions.len() - 1];
        snap.balrog.rules.extend(rules(f, latest));
        for (suffix, target) in [("latest", latest.to_string()), ("latest-ssl", format!("{latest}-SSL"))] {
            snap.bouncer
                .aliases
                .insert(format!("{}-{suffix}", f.alias), format!("{}-{target}", f.name));
        }
        for (role, n) in [("releng", 1), ("relman", 1)] {
            if role == "relman" && !matches!(f.channel, "release" | "esr") {
                continue;
            }
            snap.balrog.required_signoffs.push(RequiredSignoff {
                product: "Firefox".into(),
                channel: f.channel.into(),
                role: role.into(),
                signoffs_required: n,
                data_version: 1,
            });
        }
    }
    let opts = |pairs: &[(&str, &[&str])]| {
        Some(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
                .collect::<BTreeMap<_, _>>(),
        )
    };
    let products: &[&str] = &["Firefox", "Devedition"];
    snap.balrog.permissions = vec![
        Permission {
            username: "balrog-admin".into(),
            permission: "admin".into(),
            options: None,
        },
        Permission {
            username: "balrogagent".into(),
            permission: "scheduled_change".into(),
            options: opts(&[("actions", &["enact"])]),
        },
        Permission {
            username: "stage-ffxbld".into(),
            permission: "release".into(),
            options: opts(&[("products", products)]),
        },
        Permission {
            username: "stage-ffxbld".into(),
            permission: "release_locale".into(),
            options: opts(&[("products", products)]),
        },
        Permission {
            username: "stage-ffxbld".into(),
            permission: "release_read_only".into(),
            options: opts(&[("actions", &["set"]), ("products", products)]),
        },
        Permission {
            username: "stage-ffxbld".into(),
            permission: "rule".into(),
            options: opts(&[("actions", &["modify"]), ("products", &["Firefox"])]),
        },
    ];
    snap.balrog.roles = [
        ("releng-one", "releng"),
        ("releng-two", "releng"),
        ("relman-one", "relman"),
        ("relman-two", "relman"),
    ]
    .iter()
    .map(|(u, r)| UserRole {
        username: u.to_string(),
        role: r.to_string(),
    })
    .collect();
    snap.normalize();
    snap
}

fn bouncer_url(f: &Family, product: &str) -> String {
    format!(
        "{DOWNLOAD_ORIGIN}/?product={}-{product}&os=%OS_BOUNCER%&lang=%LOCALE%",
        f.name.to_ascii_lowercase()
    )
}

fn release_blob(f: &Family, v: &str, partials: &[&str]) -> (ReleaseRow, Vec<S3Object>) {
    let name = release_name(f, v);
    let candidates = format!(
        "{ARCHIVE_ORIGIN}/pub/{}/candidates/{v}-candidates/build1/update/%OS_FTP%/%LOCALE%",
        f.dir
    );
    let mut live = json!({"completes": {"*": bouncer_url(f, &format!("{v}-complete"))}, "partials": {}});
    let mut local = json!({"completes": {"*": format!("{candidates}/firefox-{v}.complete.mar")}, "partials": {}});
    for pv in partials {
        let from = release_name(f, pv);
        live["partials"][&from] = json!(bouncer_url(f, &format!("{v}-partial-{pv}")));
        local["partials"][&from] = json!(format!("{candidates}/firefox-{pv}-{v}.partial.mar"));
    }
    let mut file_urls = Map::new();
    file_urls.insert("*".into(), live);
    file_urls.insert(format!("{}-localtest", f.channel), local);
    let build_id = mar::build_id(f.dir, v);
    let mut platforms = Map::new();
    let mut objects = Vec::new();
    for p in &PLATFORMS {
        let mut locales = Map::new();
        for l in locales_for(p) {
            let mut entry = |from: Option<&str>| {
                let spec = MarSpec {
                    product: f.dir.into(),
                    version: v.into(),
                    from: from.map(str::to_string),
                    platform: p.ftp.into(),
                    locale: l.into(),
                };
                let bytes = mar::build(&spec);
                let sha = sha512_hex(&bytes);
                objects.push(S3Object {
                    key: spec.key(&format!("releases/{v}")),
                    size: bytes.len() as u64,
                    sha512: sha.clone(),
                    stored: false,
                });
                json!({"filesize": bytes.len(), "from": from.map(|pv| release_name(f, pv)).unwrap_or_else(|| "*".into()),
                    "hashValue": sha})
            };
            let completes = vec![entry(None)];
            let partials: Vec<Value> = partials.iter().map(|pv| entry(Some(pv))).collect();
            locales.insert(
                l.into(),
                json!({"appVersion": app_version(v), "buildID": build_id, "completes": completes,
                    "displayVersion": display_version(v), "partials": partials, "platformVersion": app_version(v)}),
            );
        }
        platforms.insert(
            p.target.into(),
            json!({"OS_BOUNCER": p.bouncer_os, "OS_FTP": p.ftp, "locales": locales}),
        );
        for a in p.aliases {
            platforms.insert(a.to_string(), json!({"alias": p.target}));
        }
    }
    let app_version = app_version(v);
    let blob = json!({
        "appVersion": app_version,
        "detailsUrl": format!("https://www.mozilla.org/%LOCALE%/firefox/{v}/releasenotes/"),
        "displayVersion": display_version(v),
        "fileUrls": file_urls,
        "hashFunction": "sha512",
        "name": name,
        "platformVersion": app_version,
        "platforms": platforms,
        "schema_version": 4,
    });
    let row = ReleaseRow {
        name,
        product: f.name.into(),
        blob: blob.into(),
        // Each platform's submission bumps the version twice (complete, then partials).
        data_version: 1 + 2 * PLATFORMS.len() as i64,
        read_only: true,
    };
    (row, objects)
}

fn rules(f: &Family, latest: &str) -> Vec<Rule> {
    let mapping = release_name(f, latest);
    let channels = [
        f.channel.to_string(),
        format!("{}-cdntest", f.channel),
        format!("{}-localtest", f.channel),
    ];
    channels
        .iter()
        .zip(f.rule_ids)
        .map(|(channel, id)| {
            let alias = format!("{}-{channel}", f.alias.split('-').next().unwrap_or("firefox"));
            let alias = if f.name == "Devedition" {
                format!("devedition-{channel}")
            } else {
                alias
            };
            Rule {
                rule_id: id,
                alias: Some(alias),
                priority: Some(90),
                mapping: Some(mapping.clone()),
                background_rate: Some(100),
                update_type: Some("minor".into()),
                product: Some("Firefox".into()),
                version: (f.channel == "esr").then(|| format!("<{}", app_version(latest))),
                channel: Some(channel.clone()),
                comment: Some(format!("{} {} updates", f.name, channel)),
                data_version: 7,
                ..Rule::default()
            }
        })
        .collect()
}

fn bouncer_products(f: &Family, v: &str, partials: &[&str]) -> Vec<BouncerProduct> {
    let languages: Vec<String> = LOCALES
        .iter()
        .map(|s| s.to_string())
        .chain(std::iter::once("ja-JP-mac".to_string()))
        .collect();
    let each = |path: &dyn Fn(&Platform) -> String| -> BTreeMap<String, String> {
        PLATFORMS.iter().map(|p| (p.bouncer_os.to_string(), path(p))).collect()
    };
    let base = format!("/{}/releases/{v}", f.dir);
    let installer = each(&|p| format!("{base}/{}/:lang/{}", p.ftp, p.installer.replace("{V}", v)));
    let mut out = vec![
        BouncerProduct {
            name: format!("{}-{v}", f.name),
            ssl_only: false,
            languages: languages.clone(),
            locations: installer.clone(),
        },
        BouncerProduct {
            name: format!("{}-{v}-SSL", f.name),
            ssl_only: true,
            languages: languages.clone(),
            locations: installer,
        },
        BouncerProduct {
            name: format!("{}-{v}-Complete", f.name),
            ssl_only: false,
            languages: languages.clone(),
            locations: each(&|p| format!("{base}/update/{}/:lang/firefox-{v}.complete.mar", p.ftp)),
        },
    ];
    for pv in partials {
        out.push(BouncerProduct {
            name: format!("{}-{v}-Partial-{pv}", f.name),
            ssl_only: false,
            languages: languages.clone(),
            locations: each(&|p| format!("{base}/update/{}/:lang/firefox-{pv}-{v}.partial.mar", p.ftp)),
        });
    }
    out
}

fn shipit_release(f: &Family, v: &str) -> ShipitRelease {
    let id = mar::build_id(f.dir, v);
    let at = |hours: i64| {
        chrono::NaiveDateTime::parse_from_str(&id, "%Y%m%d%H%M%S")
            .map(|t| {
                (t + chrono::Duration::hours(hours))
                    .format("%Y-%m-%dT%H:%M:%S%.6fZ")
                    .to_string()
            })
            .unwrap_or_default()
    };
    let revision = {
        let h = sha512_hex(format!("{}/{v}", f.dir).as_bytes());
        h[..40].to_string()
    };
    let task = |phase: &str| {
        let h = sha512_hex(format!("{}/{v}/{phase}", f.dir).as_bytes());
        // Taskcluster slugids are 22 URL-safe base64 characters.
        base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, &h.as_bytes()[..16])
    };
    let phases = ["promote", "push", "ship"]
        .iter()
        .enumerate()
        .map(|(i, p)| Phase {
            name: format!("{p}_{}", f.dir),
            submitted: true,
            action_task_id: task(p),
            created: at(0),
            scheduled_at: at(2 + 24 * i as i64),
            skipped: false,
        })
        .collect();
    ShipitRelease {
        name: format!("{}-{v}-build1", capitalize(f.dir)),
        product: f.dir.into(),
        branch: f.branch.into(),
        project: f.branch.rsplit('/').next().unwrap_or(f.branch).into(),
        version: v.into(),
        revision,
        build_number: 1,
        release_eta: String::new(),
        status: "shipped".into(),
        created: at(0),
        completed: at(50),
        phases,
        allow_phase_skipping: false,
        partial_updates: Value::Null,
    }
}

fn capitalize(s: &str) -> String {
    crate::services::shipit::state::capitalize(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_snapshot_is_valid_and_deterministic() {
        let a = default_snapshot();
        a.validate().expect("valid");
        assert_eq!(a, default_snapshot());
        let releases: usize = FAMILIES.iter().map(|f| f.versions.len()).sum();
        assert_eq!(a.balrog.releases.len(), releases);
        assert_eq!(a.balrog.rules.len(), 3 * FAMILIES.len());
        // Every MAR the blobs mention is in the S3 manifest with the same hash.
        let by_sha: std::collections::BTreeSet<&str> = a.s3.objects.iter().map(|o| o.sha512.as_str()).collect();
        let mut mars = 0;
        for r in &a.balrog.releases {
            for p in r.blob["platforms"].as_object().expect("platforms").values() {
                for l in p
                    .get("locales")
                    .and_then(Value::as_object)
                    .into_iter()
                    .flat_map(|m| m.values())
                {
                    for e in l["completes"]
                        .as_array()
                        .into_iter()
                        .chain(l["partials"].as_array())
                        .flatten()
                    {
                        assert!(by_sha.contains(e["hashValue"].as_str().expect("hash")));
                        mars += 1;
                    }
                }
            }
        }
        assert_eq!(mars, a.s3.objects.len());
        // 28 MARs per platform and locale: completes (13) + partials (15).
        assert_eq!(mars, 28 * PLATFORMS.len() * LOCALES.len());
    }
}
