//! Release promotion flavors and the kinds they target (reference promotion.md
//! §3). `promote_desktop` = the promote-phase kinds of the product (secondary
//! ones only for `release-rc`); `push_desktop` adds the push phase; `ship_desktop`
//! adds the primary ship kinds, or — for `release-rc` — only the secondary ones on
//! top of promote.
use serde::{Deserialize, Serialize};

/// How a flavor is configured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Flavor {
    pub name: &'static str,
    pub product: &'static str,
    pub target_tasks_method: &'static str,
    pub is_rc: bool,
    pub version_bump: bool,
    pub partial_updates: bool,
    pub rebuild_kinds: &'static [&'static str],
    /// Partner flavors force these flags (repack, attribution, emefree).
    pub forced_partner_flags: Option<(bool, bool, bool)>,
}

const PARTNER_REPACK_KINDS: &[&str] = &[
    "release-partner-repack",
    "release-partner-repack-chunking-dummy",
    "release-partner-repack-signing",
    "release-partner-repack-mac-signing",
    "release-partner-repack-mac-notarization",
    "release-partner-repack-repackage",
    "release-partner-repack-repackage-signing",
    "release-partner-repack-beetmover",
];

const fn fl(
    name: &'static str,
    product: &'static str,
    method: &'static str,
    is_rc: bool,
    version_bump: bool,
    partial_updates: bool,
) -> Flavor {
    Flavor {
        name,
        product,
        target_tasks_method: method,
        is_rc,
        version_bump,
        partial_updates,
        rebuild_kinds: &[],
        forced_partner_flags: None,
    }
}

pub const FLAVORS: &[Flavor] = &[
    fl("promote_firefox", "firefox", "promote_desktop", false, false, true),
    fl("push_firefox", "firefox", "push_desktop", false, false, true),
    fl("ship_firefox", "firefox", "ship_desktop", false, true, true),
    fl("promote_firefox_rc", "firefox", "promote_desktop", true, false, true),
    fl("ship_firefox_rc", "firefox", "ship_desktop", true, false, true),
    fl(
        "promote_devedition",
        "devedition",
        "promote_desktop",
        false,
        false,
        true,
    ),
    fl("push_devedition", "devedition", "push_desktop", false, false, true),
    fl("ship_devedition", "devedition", "ship_desktop", false, true, true),
    Flavor {
        rebuild_kinds: PARTNER_REPACK_KINDS,
        forced_partner_flags: Some((true, false, false)),
        ..fl(
            "promote_firefox_partner_repack",
            "firefox",
            "promote_desktop",
            false,
            false,
            false,
        )
    },
    Flavor {
        rebuild_kinds: &["release-partner-attribution", "release-partner-attribution-beetmover"],
        forced_partner_flags: Some((false, true, false)),
        ..fl(
            "promote_firefox_partner_attribution",
            "firefox",
            "promote_desktop",
            false,
            false,
            false,
        )
    },
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown release_promotion_flavor `{0}` (expected one of promote_firefox, push_firefox, ship_firefox, promote_devedition, push_devedition, ship_devedition, promote_firefox_rc, ship_firefox_rc, promote_firefox_partner_repack, promote_firefox_partner_attribution)")]
pub struct UnknownFlavor(pub String);

pub fn flavor(name: &str) -> Result<&'static Flavor, UnknownFlavor> {
    FLAVORS
        .iter()
        .find(|f| f.name == name)
        .ok_or_else(|| UnknownFlavor(name.to_string()))
}

/// One kind of release task: which phase runs it, for which products.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kind {
    pub name: &'static str,
    pub phase: &'static str,
    pub products: &'static [&'static str],
    pub secondary: bool,
    /// `None`: every release type.
    pub release_types: Option<&'static [&'static str]>,
}

const BOTH: &[&str] = &["firefox", "devedition"];
const FX: &[&str] = &["firefox"];
const STORES: &[&str] = &["beta", "release", "release-rc"];

const fn k(name: &'static str, phase: &'static str, products: &'static [&'static str], secondary: bool) -> Kind {
    Kind {
        name,
        phase,
        products,
        secondary,
        release_types: None,
    }
}

/// The desktop release kinds (reference promotion.md §6).
pub const KINDS: &[Kind] = &[
    k("release-notify-started", "promote", BOTH, false),
    k("release-early-tagging", "promote", BOTH, false),
    k("release-bouncer-sub", "promote", BOTH, false),
    k("release-balrog-submit-toplevel", "promote", BOTH, false),
    k("beetmover-repackage", "promote", BOTH, false),
    k("beetmover-checksums", "promote", BOTH, false),
    k("balrog", "promote", BOTH, false),
    k("post-balrog-dummy", "promote", BOTH, false),
    k("post-beetmover-dummy", "promote", BOTH, false),
    k("release-generate-checksums", "promote", BOTH, false),
    k("release-generate-checksums-signing", "promote", BOTH, false),
    k("release-generate-checksums-beetmover", "promote", BOTH, false),
    k("release-update-verify-config", "promote", BOTH, false),
    k("release-update-verify", "promote", BOTH, false),
    k("post-update-verify-dummy", "promote", BOTH, false),
    k("release-push-langpacks", "promote", BOTH, false),
    k("release-notify-promote", "promote", BOTH, false),
    k("release-secondary-balrog-submit-toplevel", "promote", FX, true),
    k("release-secondary-update-verify-config", "promote", FX, true),
    k("release-secondary-update-verify", "promote", FX, true),
    k("release-secondary-final-verify", "promote", FX, true),
    k("release-beetmover-push-to-release", "push", BOTH, false),
    k("release-bouncer-check", "push", BOTH, false),
    k("release-final-verify", "push", BOTH, false),
    k("release-notify-push", "push", BOTH, false),
    k("release-notify-av-announce", "push", BOTH, false),
    k("release-bouncer-aliases", "ship", BOTH, false),
    k("release-balrog-scheduling", "ship", BOTH, false),
    k("release-version-bump", "ship", BOTH, false),
    k("release-mark-as-shipped", "ship", BOTH, false),
    k("release-notify-ship", "ship", BOTH, false),
    Kind {
        release_types: Some(STORES),
        ..k("release-flatpak-push", "ship", FX, false)
    },
    Kind {
        release_types: Some(STORES),
        ..k("release-msix-push", "ship", FX, false)
    },
    k("release-secondary-balrog-scheduling", "ship", FX, true),
    k("release-secondary-notify-ship", "ship", FX, true),
];

/// What a flavor means for a given decision task's release type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resolved {
    pub release_type: String,
    pub release_product: String,
    pub target_tasks_method: String,
    pub requires_next_version: bool,
    pub requires_partial_updates_in_production: bool,
    pub effective_rebuild_kinds_when_input_omits_it: Vec<String>,
    pub target_kinds: Vec<String>,
}

pub fn resolve(f: &Flavor, decision_release_type: &str) -> Resolved {
    let release_type = if f.is_rc {
        format!("{decision_release_type}-rc")
    } else {
        decision_release_type.to_string()
    };
    let rc = release_type == "release-rc";
    let t = |phase: &str| -> Vec<&Kind> {
        KINDS
            .iter()
            .filter(|k| k.phase == phase && k.products.contains(&f.product))
            .filter(|k| k.release_types.is_none_or(|r| r.contains(&release_type.as_str())))
            .collect()
    };
    let promote: Vec<&Kind> = t("promote").into_iter().filter(|k| rc || !k.secondary).collect();
    let mut kinds: Vec<&Kind> = promote.clone();
    match f.target_tasks_method {
        "push_desktop" => kinds.extend(t("push")),
        "ship_desktop" if rc => kinds.extend(t("ship").into_iter().filter(|k| k.secondary)),
        "ship_desktop" => {
            kinds.extend(t("push"));
            kinds.extend(t("ship").into_iter().filter(|k| !k.secondary));
        }
        _ => {}
    }
    let mut target_kinds: Vec<String> = kinds.iter().map(|k| k.name.to_string()).collect();
    target_kinds.sort();
    Resolved {
        release_type,
        release_product: f.product.to_string(),
        target_tasks_method: f.target_tasks_method.to_string(),
        requires_next_version: f.version_bump,
        requires_partial_updates_in_production: f.partial_updates,
        effective_rebuild_kinds_when_input_omits_it: f.rebuild_kinds.iter().map(|s| s.to_string()).collect(),
        target_kinds,
    }
}
