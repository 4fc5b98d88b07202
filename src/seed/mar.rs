//! Small, valid MAR files generated deterministically from their S3 key.
//!
//! A snapshot lists previous releases' update MARs by key, size and SHA-512 only;
//! their bytes are a pure function of the key (product directory, version, the
//! version a partial updates from, platform, locale), so the S3 stand-in can serve
//! them without storing them and any reader can check them against the manifest.
//!
//! Layout (reference: artifacts-and-verify.md §8): the current format with an
//! empty signature block and one product-information section (MAR channel id and
//! version), then uncompressed entries `updatev3.manifest`, `precomplete` (complete
//! MARs) and one payload, then the index. The PyPI `mar` package reads, lists and
//! extracts them without errors (tests/python/test_seed.py).

/// What an update MAR is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarSpec {
    /// Product directory under `pub/` (`firefox`, `devedition`).
    pub product: String,
    pub version: String,
    /// The version a partial updates from; `None` for a complete MAR.
    pub from: Option<String>,
    /// FTP platform directory (`linux-x86_64`, `win64`, `mac`, …).
    pub platform: String,
    pub locale: String,
}

impl MarSpec {
    /// The file name release automation gives this MAR.
    pub fn file_name(&self) -> String {
        match &self.from {
            None => format!("firefox-{}.complete.mar", self.version),
            Some(f) => format!("firefox-{f}-{}.partial.mar", self.version),
        }
    }

    /// Key of this MAR under `pub/<product>/<dir>/` where `dir` is `releases/<V>`
    /// or `candidates/<V>-candidates/build<N>`.
    pub fn key(&self, dir: &str) -> String {
        format!(
            "pub/{}/{dir}/update/{}/{}/{}",
            self.product,
            self.platform,
            self.locale,
            self.file_name()
        )
    }

    /// The MAR channel id written into the product-information block.
    fn mar_channel(&self) -> String {
        let v = &self.version;
        let branch = if v.ends_with("esr") {
            "esr"
        } else if self.product == "devedition" {
            "aurora"
        } else if v.contains('b') {
            "beta"
        } else if v.contains('a') {
            "central"
        } else {
            "release"
        };
        format!("firefox-mozilla-{branch}")
    }
}

/// Recognise an update MAR key: `pub/<product>/…/update/<platform>/<locale>/
/// firefox-<V>.complete.mar` or `firefox-<PV>-<V>.partial.mar`. The directories
/// in between (`releases/<V>`, `alice-candidates/…`) do not change the bytes, so a
/// namespaced copy of a key yields the same content.
pub fn parse_key(key: &str) -> Option<MarSpec> {
    let parts: Vec<&str> = key.split('/').collect();
    let n = parts.len();
    if n < 6 || parts[0] != "pub" || parts[n - 4] != "update" {
        return None;
    }
    let (product, platform, locale, file) = (parts[1], parts[n - 3], parts[n - 2], parts[n - 1]);
    let ok = |s: &str| {
        !s.is_empty() && !s.starts_with('.') && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    };
    if ![product, platform, locale].iter().all(|s| ok(s)) {
        return None;
    }
    let (version, from) = if let Some(stem) = file.strip_suffix(".complete.mar") {
        (stem.strip_prefix("firefox-")?.to_string(), None)
    } else if let Some(stem) = file.strip_suffix(".partial.mar") {
        let (from, to) = stem.strip_prefix("firefox-")?.split_once('-')?;
        (to.to_string(), Some(from.to_string()))
    } else {
        return None;
    };
    let version_ok = |v: &str| v.starts_with(|c: char| c.is_ascii_digit()) && ok(v) && !v.contains('-');
    if !version_ok(&version) || from.as_deref().is_some_and(|f| !version_ok(f)) {
        return None;
    }
    Some(MarSpec {
        product: product.to_string(),
        version,
        from,
        platform: platform.to_string(),
        locale: locale.to_string(),
    })
}

/// The bytes of the MAR at `key`, or `None` when the key is not an update MAR.
pub fn content_for_key(key: &str) -> Option<Vec<u8>> {
    parse_key(key).map(|s| build(&s))
}

/// Build the MAR described by `spec`.
pub fn build(spec: &MarSpec) -> Vec<u8> {
    let payload = "application.ini";
    let mut entries: Vec<(String, Vec<u8>)> = Vec::new();
    match &spec.from {
        None => {
            let manifest =
                format!("type \"complete\"\nremove \"precomplete\"\nadd \"precomplete\"\nadd \"{payload}\"\n");
            entries.push(("updatev3.manifest".into(), manifest.into_bytes()));
            entries.push(("precomplete".into(), format!("remove \"{payload}\"\n").into_bytes()));
            let ini = format!(
                "[App]\nVendor=Mozilla\nName=Firefox\nVersion={}\nBuildID={}\nSourceRepository=https://hg.mozilla.org/releases/mozilla-{}\n[Stagelib]\nPlatform={}\nLocale={}\nProduct={}\n",
                spec.version,
                build_id(&spec.product, &spec.version),
                spec.mar_channel().trim_start_matches("firefox-mozilla-"),
                spec.platform,
                spec.locale,
                spec.product,
            );
            entries.push((payload.into(), ini.into_bytes()));
        }
        Some(from) => {
            let manifest = format!("type \"partial\"\npatch-if \"{payload}\" \"{payload}.patch\" \"{payload}\"\n");
            entries.push(("updatev3.manifest".into(), manifest.into_bytes()));
            // A bsdiff-style header followed by deterministic bytes.
            let mut patch = b"BSDIFF40".to_vec();
            let seed = format!(
                "{}|{from}|{}|{}|{}",
                spec.product, spec.version, spec.platform, spec.locale
            );
            patch.extend(pseudo_random(&seed, 64));
            entries.push((format!("{payload}.patch"), patch));
        }
    }
    write_mar(&spec.mar_channel(), &spec.version, &entries)
}

/// A plausible 14-digit build ID for `version`, later for later versions: one
/// release every four weeks from Firefox 100 (2022-05-03), betas during the
/// previous cycle, ESR X.Y with release X+Y, dot releases a week apart; the time
/// of day comes from a hash of product and version.
pub fn build_id(product: &str, version: &str) -> String {
    let digits = |s: &str| -> i64 {
        let d: String = s.chars().take_while(char::is_ascii_digit).collect();
        d.parse().unwrap_or(0)
    };
    let parts: Vec<&str> = version.split('.').collect();
    let major = digits(parts.first().copied().unwrap_or("0"));
    let minor_part = parts.get(1).copied().unwrap_or("0");
    let day = |m: i64| (m - 100) * 28;
    let offset = if let Some((_, b)) = minor_part.split_once('b') {
        day(major) - 28 + 2 * digits(b)
    } else if version.ends_with("esr") {
        day(major + digits(minor_part)) + digits(parts.get(2).copied().unwrap_or("0"))
    } else {
        day(major) + 7 * digits(parts.get(2).copied().unwrap_or("0"))
    };
    let base = chrono::NaiveDate::from_ymd_opt(2022, 5, 3).unwrap_or_default();
    let date = base + chrono::Duration::days(offset.clamp(-20_000, 20_000));
    let h = fnv(&format!("{product}/{version}"));
    let (hh, mm, ss) = (h % 24, (h >> 8) % 60, (h >> 16) % 60);
    format!("{}{hh:02}{mm:02}{ss:02}", date.format("%Y%m%d"))
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn pseudo_random(seed: &str, len: usize) -> Vec<u8> {
    let mut x = fnv(seed) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Serialise a MAR: header, empty signature block, product information, entries,
/// index.
fn write_mar(channel: &str, version: &str, entries: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut info = Vec::new();
    info.extend_from_slice(channel.as_bytes());
    info.push(0);
    info.extend_from_slice(version.as_bytes());
    info.push(0);
    let section_len = 8 + info.len();
    // magic(4) index offset(4) file size(8) signature count(4) section count(4)
    let data_start = 24 + section_len;
    let data_len: usize = entries.iter().map(|(_, d)| d.len()).sum();
    let index_offset = data_start + data_len;
    let index_len: usize = entries.iter().map(|(n, _)| 12 + n.len() + 1).sum();
    let total = index_offset + 4 + index_len;

    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(b"MAR1");
    out.extend_from_slice(&(index_offset as u32).to_be_bytes());
    out.extend_from_slice(&(total as u64).to_be_bytes());
    out.extend_from_slice(&0u32.to_be_bytes());
    out.extend_from_slice(&1u32.to_be_bytes());
    out.extend_from_slice(&(section_len as u32).to_be_bytes());
    out.extend_from_slice(&1u32.to_be_bytes());
    out.extend_from_slice(&info);
    for (_, data) in entries {
        out.extend_from_slice(data);
    }
    out.extend_from_slice(&(index_len as u32).to_be_bytes());
    let mut offset = data_start;
    for (name, data) in entries {
        out.extend_from_slice(&(offset as u32).to_be_bytes());
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        out.extend_from_slice(&0o644u32.to_be_bytes());
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        offset += data.len();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u32_at(b: &[u8], at: usize) -> usize {
        u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]) as usize
    }

    #[test]
    fn keys_round_trip_and_namespaced_copies_have_the_same_bytes() {
        let spec = MarSpec {
            product: "firefox".into(),
            version: "145.0".into(),
            from: Some("144.0".into()),
            platform: "linux-x86_64".into(),
            locale: "de".into(),
        };
        let key = spec.key("releases/145.0");
        assert_eq!(
            key,
            "pub/firefox/releases/145.0/update/linux-x86_64/de/firefox-144.0-145.0.partial.mar"
        );
        assert_eq!(parse_key(&key), Some(spec.clone()));
        let ns = key.replace("/releases/", "/alice-releases/");
        assert_eq!(content_for_key(&ns), content_for_key(&key));
        assert_ne!(content_for_key(&key), content_for_key(&key.replace("/de/", "/fr/")));
        for bad in [
            "pub/firefox/releases/145.0/SHA512SUMS",
            "pub/firefox/releases/145.0/update/linux/de/firefox-145.0.tar.xz",
            "firefox/releases/145.0/update/linux/de/firefox-145.0.complete.mar",
            "pub/firefox/releases/145.0/update/linux/../firefox-145.0.complete.mar",
        ] {
            assert_eq!(parse_key(bad), None, "{bad}");
        }
    }

    #[test]
    fn layout_is_consistent() {
        let key = "pub/devedition/releases/146.0b3/update/mac/ja-JP-mac/firefox-146.0b3.complete.mar";
        let b = content_for_key(key).expect("mar");
        assert_eq!(&b[..4], b"MAR1");
        let index = u32_at(&b, 4);
        let total = u64::from_be_bytes(b[8..16].try_into().expect("8 bytes")) as usize;
        assert_eq!(total, b.len());
        assert_eq!(u32_at(&b, 16), 0, "no signatures");
        assert_eq!(u32_at(&b, 20), 1, "one additional section");
        let info = String::from_utf8_lossy(&b[32..32 + u32_at(&b, 24) - 8]).to_string();
        assert_eq!(info, "firefox-mozilla-aurora\u{0}146.0b3\u{0}");
        let index_len = u32_at(&b, index);
        assert_eq!(index + 4 + index_len, b.len());
        // First entry starts right after the product-information section.
        assert_eq!(u32_at(&b, index + 4), 24 + u32_at(&b, 24));
        assert_eq!(content_for_key(key), Some(b), "deterministic");
    }

    #[test]
    fn build_ids_look_real() {
        let id = build_id("firefox", "145.0");
        assert_eq!(id.len(), 14);
        assert!(id.starts_with("2025"), "{id}");
        assert_eq!(id, build_id("firefox", "145.0"));
        let order = ["144.0", "145.0b1", "145.0b9", "145.0", "145.0.1"];
        for w in order.windows(2) {
            assert!(build_id("firefox", w[0]) < build_id("firefox", w[1]), "{w:?}");
        }
        assert!(build_id("firefox", "140.4.0esr") < build_id("firefox", "140.5.0esr"));
    }
}
