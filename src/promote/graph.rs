//! Graph generation: every release task of a product for one release, per kind
//! × platform × locale with the dependency edges of promotion.md §7, then the
//! target set of a flavor (its kinds, closed over dependencies) and the
//! snowman replace pass against earlier graphs.
use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::flavor::{self, Resolved};
use super::input::ValidInput;
use super::snowman::{self, Fate, GraphRecord, TargetTask};
use crate::seed::generate::{Platform, PLATFORMS};
use crate::version::{Channel, GeckoVersion};

/// The release a graph is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    /// `firefox` or `devedition`.
    pub product: String,
    pub version: String,
    pub build_number: u32,
    /// (version, build number), newest first.
    pub partials: Vec<(String, u32)>,
    /// FTP platform names (`linux-x86_64`, `mac`, …).
    pub platforms: Vec<String>,
    pub locales: Vec<String>,
    /// `beta`, `release`, `esr153`.
    pub release_type: String,
    pub next_version: String,
    pub release_eta: Option<chrono::DateTime<chrono::Utc>>,
}

impl Release {
    pub fn from_input(v: &ValidInput, platforms: &[String], locales: &[String]) -> Self {
        let release_type = match v.version.channel {
            Channel::Esr => format!("esr{}", v.version.major),
            Channel::Release => "release".into(),
            _ => "beta".into(),
        };
        Self {
            product: v.flavor.product.to_string(),
            version: v.version.to_string(),
            build_number: v.input.build_number,
            partials: v.partials.iter().map(|(p, n)| (p.to_string(), *n)).collect(),
            platforms: platforms.to_vec(),
            locales: locales.to_vec(),
            release_type,
            next_version: v.input.next_version.clone(),
            release_eta: v.release_eta,
        }
    }

    /// `Firefox`, `Devedition`.
    pub fn title(&self) -> String {
        crate::services::shipit::state::capitalize(&self.product)
    }

    pub fn gecko(&self) -> Option<GeckoVersion> {
        self.version.parse().ok()
    }

    pub fn platform(&self, ftp: &str) -> Option<&'static Platform> {
        PLATFORMS.iter().find(|p| p.ftp == ftp)
    }
}

/// Taskgraph's build-platform name of an FTP platform (used in labels).
pub fn build_platform(ftp: &str) -> &'static str {
    match ftp {
        "linux-i686" => "linux",
        "linux-x86_64" => "linux64",
        "linux-aarch64" => "linux64-aarch64",
        "mac" => "macosx64",
        "win32" => "win32",
        "win64" => "win64",
        "win64-aarch64" => "win64-aarch64",
        _ => "unknown",
    }
}

/// One task of the full graph.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskDef {
    pub label: String,
    pub kind: String,
    pub phase: String,
    /// FTP platform.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    pub deps: Vec<String>,
}

/// Every task that could exist for the release (label → task).
pub fn full_graph(r: &Release) -> BTreeMap<String, TaskDef> {
    let p = r.product.as_str();
    let mut g: BTreeMap<String, TaskDef> = BTreeMap::new();
    let mut add =
        |label: String, kind: &str, phase: &str, platform: Option<&str>, locale: Option<&str>, deps: Vec<String>| {
            g.insert(
                label.clone(),
                TaskDef {
                    label,
                    kind: kind.into(),
                    phase: phase.into(),
                    platform: platform.map(str::to_string),
                    locale: locale.map(str::to_string),
                    deps,
                },
            );
        };
    let toplevel = format!("release-balrog-submit-toplevel-{p}");
    let bouncer_sub = format!("release-bouncer-sub-{p}");
    add(
        format!("release-notify-started-{p}"),
        "release-notify-started",
        "promote",
        None,
        None,
        vec![],
    );
    add(
        format!("release-early-tagging-{p}"),
        "release-early-tagging",
        "promote",
        None,
        None,
        vec![],
    );
    add(
        bouncer_sub.clone(),
        "release-bouncer-sub",
        "promote",
        None,
        None,
        vec![],
    );
    add(
        toplevel.clone(),
        "release-balrog-submit-toplevel",
        "promote",
        None,
        None,
        vec![],
    );
    let mut post_beetmover = Vec::new();
    let mut post_update_verify = Vec::new();
    let mut uv_configs = Vec::new();
    for plat in &r.platforms {
        let bp = build_platform(plat);
        let mut beetmovers = Vec::new();
        let mut balrogs = Vec::new();
        for l in &r.locales {
            let bm = format!("beetmover-repackage-{bp}-{l}");
            let ck = format!("beetmover-checksums-{bp}-{l}");
            let ba = format!("balrog-{bp}-{l}");
            add(
                bm.clone(),
                "beetmover-repackage",
                "promote",
                Some(plat),
                Some(l),
                vec![],
            );
            add(
                ck.clone(),
                "beetmover-checksums",
                "promote",
                Some(plat),
                Some(l),
                vec![bm.clone()],
            );
            // The toplevel submission is a soft dependency; it is always in our graphs.
            add(
                ba.clone(),
                "balrog",
                "promote",
                Some(plat),
                Some(l),
                vec![bm.clone(), toplevel.clone()],
            );
            beetmovers.push(bm);
            beetmovers.push(ck);
            balrogs.push(ba);
        }
        let pb = format!("post-balrog-dummy-{p}-{bp}-1");
        let pm = format!("post-beetmover-dummy-{p}-{bp}-1");
        let cfg = format!("release-update-verify-config-{p}-{bp}");
        let uv = format!("release-update-verify-{p}-{bp}-1/1");
        let puv = format!("post-update-verify-dummy-{p}-{bp}-1");
        add(pb.clone(), "post-balrog-dummy", "promote", Some(plat), None, balrogs);
        add(
            pm.clone(),
            "post-beetmover-dummy",
            "promote",
            Some(plat),
            None,
            beetmovers,
        );
        add(
            cfg.clone(),
            "release-update-verify-config",
            "promote",
            Some(plat),
            None,
            vec![],
        );
        add(
            uv.clone(),
            "release-update-verify",
            "promote",
            Some(plat),
            None,
            vec![pb, pm.clone(), toplevel.clone(), cfg.clone()],
        );
        add(
            puv.clone(),
            "post-update-verify-dummy",
            "promote",
            Some(plat),
            None,
            vec![uv],
        );
        post_beetmover.push(pm);
        post_update_verify.push(puv);
        uv_configs.push(cfg);
    }
    let gen = format!("release-generate-checksums-{p}");
    let gen_sign = format!("release-generate-checksums-{p}-signing");
    let gen_bm = format!("release-generate-checksums-{p}-beetmover");
    add(
        gen.clone(),
        "release-generate-checksums",
        "promote",
        None,
        None,
        post_beetmover.clone(),
    );
    add(
        gen_sign.clone(),
        "release-generate-checksums-signing",
        "promote",
        None,
        None,
        vec![gen],
    );
    add(
        gen_bm.clone(),
        "release-generate-checksums-beetmover",
        "promote",
        None,
        None,
        vec![gen_sign],
    );
    let mut notify_promote = post_beetmover.clone();
    notify_promote.extend([gen_bm.clone(), bouncer_sub]);
    add(
        format!("release-notify-promote-{p}"),
        "release-notify-promote",
        "promote",
        None,
        None,
        notify_promote,
    );

    let push = format!("{p}-push-to-release");
    let mut push_deps = vec![gen_bm];
    push_deps.extend(post_update_verify);
    add(
        push.clone(),
        "release-beetmover-push-to-release",
        "push",
        None,
        None,
        push_deps,
    );
    let check = format!("release-bouncer-check-{p}");
    add(
        check.clone(),
        "release-bouncer-check",
        "push",
        None,
        None,
        vec![push.clone()],
    );
    let mut fv = vec![check.clone()];
    fv.extend(uv_configs);
    add(
        format!("release-final-verify-{p}"),
        "release-final-verify",
        "push",
        None,
        None,
        fv,
    );
    add(
        format!("release-notify-push-{p}"),
        "release-notify-push",
        "push",
        None,
        None,
        vec![push.clone()],
    );
    add(
        format!("release-notify-av-announce-{p}"),
        "release-notify-av-announce",
        "push",
        None,
        None,
        post_beetmover,
    );

    let aliases = format!("release-bouncer-aliases-{p}");
    let sched = format!("release-balrog-scheduling-{p}");
    let bump = format!("release-version-bump-{p}");
    let shipped = format!("release-mark-as-shipped-{p}");
    add(
        aliases.clone(),
        "release-bouncer-aliases",
        "ship",
        None,
        None,
        vec![check.clone()],
    );
    add(
        sched.clone(),
        "release-balrog-scheduling",
        "ship",
        None,
        None,
        vec![check],
    );
    add(bump.clone(), "release-version-bump", "ship", None, None, vec![push]);
    add(
        shipped.clone(),
        "release-mark-as-shipped",
        "ship",
        None,
        None,
        vec![sched.clone(), aliases.clone(), bump.clone()],
    );
    add(
        format!("release-notify-ship-{p}"),
        "release-notify-ship",
        "ship",
        None,
        None,
        vec![sched, aliases, bump, shipped],
    );
    g
}

/// A Taskcluster-style slugid: a v4 UUID in URL-safe base64 without padding,
/// first bit clear (a "nice" slugid never starts with `-`).
pub fn slugid() -> String {
    use base64::Engine;
    let mut b = *uuid::Uuid::new_v4().as_bytes();
    b[0] &= 0x7f;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// What a new graph will do.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Plan {
    /// The action's task ID, which is also the task group of what it creates.
    pub graph_id: String,
    pub flavor: String,
    pub resolved: Resolved,
    pub release: Release,
    pub input: super::input::PromotionInput,
    /// Whose parameters seed this graph (the first previous graph).
    pub parameters_from: Option<String>,
    /// Every task of the full graph (label → definition).
    pub tasks: BTreeMap<String, TaskDef>,
    /// Target labels and their fate (`Run` or replaced by an earlier task).
    pub fates: BTreeMap<String, Fate>,
    /// label → taskId for every target task (new ids for tasks that run).
    pub label_to_taskid: BTreeMap<String, String>,
}

impl Plan {
    /// What later graphs need of this one.
    pub fn record(&self) -> GraphRecord {
        GraphRecord {
            task_id: self.graph_id.clone(),
            label_to_taskid: self.label_to_taskid.clone(),
            full_task_graph: self.tasks.iter().map(|(l, t)| (l.clone(), t.kind.clone())).collect(),
        }
    }

    pub fn to_run(&self) -> impl Iterator<Item = &TaskDef> {
        self.fates
            .iter()
            .filter(|(_, f)| **f == Fate::Run)
            .filter_map(|(l, _)| self.tasks.get(l))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Graph(#[from] snowman::GraphError),
    #[error("previous_graph_ids: {0}")]
    Previous(String),
}

/// The graph of `input` for `release`, reusing `previous` graphs (in order).
pub fn plan(v: &ValidInput, release: Release, previous: &[GraphRecord]) -> Result<Plan, PlanError> {
    let resolved = flavor::resolve(v.flavor, &release.release_type);
    let tasks = full_graph(&release);
    let kinds: BTreeSet<&str> = resolved.target_kinds.iter().map(String::as_str).collect();
    // Target set: the flavor's kinds, closed over dependencies.
    let mut target: BTreeMap<String, TargetTask> = BTreeMap::new();
    let mut stack: Vec<&str> = tasks
        .values()
        .filter(|t| kinds.contains(t.kind.as_str()))
        .map(|t| t.label.as_str())
        .collect();
    while let Some(l) = stack.pop() {
        if target.contains_key(l) {
            continue;
        }
        let t = &tasks[l];
        target.insert(
            l.to_string(),
            TargetTask {
                kind: t.kind.clone(),
                deps: t.deps.clone(),
            },
        );
        stack.extend(t.deps.iter().map(String::as_str));
    }
    let existing = snowman::existing_tasks(previous, &v.rebuild_kinds);
    let fates = snowman::optimize(&target, &existing.existing_tasks, &v.do_not_optimize)?;
    let label_to_taskid = fates
        .iter()
        .map(|(l, f)| {
            let id = match f {
                Fate::Replaced(id) => id.clone(),
                Fate::Run => slugid(),
            };
            (l.clone(), id)
        })
        .collect();
    Ok(Plan {
        graph_id: slugid(),
        flavor: v.flavor.name.to_string(),
        resolved,
        release,
        input: v.input.clone(),
        parameters_from: existing.parameters_from,
        tasks,
        fates,
        label_to_taskid,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::promote::input::{PartialUpdate, PromotionInput};

    fn input(flavor: &str) -> ValidInput {
        let mut i = PromotionInput {
            release_promotion_flavor: flavor.into(),
            build_number: 1,
            version: "158.0b5".into(),
            next_version: if flavor.starts_with("ship") {
                "158.0b6".into()
            } else {
                String::new()
            },
            ..Default::default()
        };
        i.partial_updates.insert(
            "158.0b4".into(),
            PartialUpdate {
                build_number: 1,
                locales: vec!["de".into()],
            },
        );
        i.validate().expect("valid")
    }

    fn release(v: &ValidInput) -> Release {
        Release::from_input(
            v,
            &["linux-x86_64".into(), "win64".into()],
            &["de".into(), "en-US".into()],
        )
    }

    #[test]
    fn promote_push_ship_chain_like_the_snowman() {
        let p = input("promote_firefox");
        let promote = plan(&p, release(&p), &[]).expect("plan");
        assert!(crate::promote::input::is_slugid(&promote.graph_id));
        // 2 platforms × 2 locales × (beetmover, checksums, balrog) + per-platform and global tasks.
        assert_eq!(promote.to_run().filter(|t| t.kind == "balrog").count(), 4);
        assert!(promote.fates.keys().all(|l| promote.tasks[l].phase == "promote"));

        let push_in = input("push_firefox");
        let push = plan(&push_in, release(&push_in), &[promote.record()]).expect("push");
        let run: Vec<&str> = push.to_run().map(|t| t.label.as_str()).collect();
        assert_eq!(
            run,
            [
                "firefox-push-to-release",
                "release-bouncer-check-firefox",
                "release-final-verify-firefox",
                "release-notify-av-announce-firefox",
                "release-notify-push-firefox"
            ]
        );
        assert_eq!(
            push.label_to_taskid["balrog-linux64-de"], promote.label_to_taskid["balrog-linux64-de"],
            "promote's tasks are replaced by their earlier IDs"
        );

        let ship_in = input("ship_firefox");
        let ship = plan(&ship_in, release(&ship_in), &[promote.record(), push.record()]).expect("ship");
        let run: BTreeSet<&str> = ship.to_run().map(|t| t.kind.as_str()).collect();
        let want: BTreeSet<&str> = [
            "release-bouncer-aliases",
            "release-balrog-scheduling",
            "release-version-bump",
            "release-mark-as-shipped",
            "release-notify-ship",
        ]
        .into();
        assert_eq!(run, want);
        assert_eq!(ship.parameters_from.as_deref(), Some(promote.graph_id.as_str()));
    }

    #[test]
    fn rebuild_kinds_and_do_not_optimize_rerun_downstream() {
        let p = input("promote_firefox");
        let promote = plan(&p, release(&p), &[]).expect("plan");
        let mut again = input("promote_firefox");
        again.rebuild_kinds = vec!["release-balrog-submit-toplevel".into()];
        let g = plan(&again, release(&again), &[promote.record()]).expect("plan");
        let run: BTreeSet<&str> = g.to_run().map(|t| t.kind.as_str()).collect();
        // Toplevel re-runs, and with it balrog, its dummies and update verify.
        for k in [
            "release-balrog-submit-toplevel",
            "balrog",
            "post-balrog-dummy",
            "release-update-verify",
        ] {
            assert!(run.contains(k), "{k} should re-run: {run:?}");
        }
        assert!(!run.contains("beetmover-repackage"));
    }
}
