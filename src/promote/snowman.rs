//! The snowman model (reference promotion.md §4): a new graph reuses the tasks
//! of earlier graphs. `existing_tasks` merges the previous graphs (parameters
//! from the first, rightmost label wins, rebuild kinds excluded); the replace
//! pass then swaps every target task found there for the earlier task ID —
//! unless it is in `do_not_optimize` or one of its dependencies runs again, in
//! which case it runs too (the cascade).
use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// What the engine keeps of one earlier graph.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GraphRecord {
    pub task_id: String,
    /// label → taskId of every task of the graph (replaced ones with their old ids).
    pub label_to_taskid: BTreeMap<String, String>,
    /// label → kind of the graph's full task graph.
    pub full_task_graph: BTreeMap<String, String>,
}

/// `existing_tasks` and where the parameters come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Existing {
    pub parameters_from: Option<String>,
    pub existing_tasks: BTreeMap<String, String>,
}

pub fn existing_tasks(previous: &[GraphRecord], rebuild_kinds: &[String]) -> Existing {
    let mut full: BTreeMap<&str, &str> = BTreeMap::new();
    let mut ltt: BTreeMap<&str, &str> = BTreeMap::new();
    for g in previous {
        full.extend(g.full_task_graph.iter().map(|(l, k)| (l.as_str(), k.as_str())));
        ltt.extend(g.label_to_taskid.iter().map(|(l, t)| (l.as_str(), t.as_str())));
    }
    let existing_tasks = ltt
        .into_iter()
        .filter(|(l, _)| full.get(l).is_some_and(|k| !rebuild_kinds.iter().any(|r| r == k)))
        .map(|(l, t)| (l.to_string(), t.to_string()))
        .collect();
    Existing {
        parameters_from: previous.first().map(|g| g.task_id.clone()),
        existing_tasks,
    }
}

/// A task of the target graph (already closed over its dependencies).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetTask {
    pub kind: String,
    pub deps: Vec<String>,
}

/// The fate of a target task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Fate {
    Replaced(String),
    Run,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    #[error("task `{task}` depends on `{dep}`, which is not in the graph")]
    UnknownDependency { task: String, dep: String },
    #[error("the graph has a cycle through `{0}`")]
    Cycle(String),
}

/// The replace pass, dependencies first.
pub fn optimize(
    target: &BTreeMap<String, TargetTask>,
    existing: &BTreeMap<String, String>,
    do_not_optimize: &[String],
) -> Result<BTreeMap<String, Fate>, GraphError> {
    let mut fate: BTreeMap<String, Fate> = BTreeMap::new();
    let mut visiting: BTreeSet<String> = BTreeSet::new();
    fn visit(
        label: &str,
        target: &BTreeMap<String, TargetTask>,
        existing: &BTreeMap<String, String>,
        dno: &[String],
        fate: &mut BTreeMap<String, Fate>,
        visiting: &mut BTreeSet<String>,
    ) -> Result<(), GraphError> {
        if fate.contains_key(label) {
            return Ok(());
        }
        if !visiting.insert(label.to_string()) {
            return Err(GraphError::Cycle(label.to_string()));
        }
        let task = &target[label];
        let mut dep_runs = false;
        for d in &task.deps {
            if !target.contains_key(d) {
                return Err(GraphError::UnknownDependency {
                    task: label.to_string(),
                    dep: d.clone(),
                });
            }
            visit(d, target, existing, dno, fate, visiting)?;
            dep_runs |= fate[d] == Fate::Run;
        }
        let f = match existing.get(label) {
            Some(id) if !dep_runs && !dno.iter().any(|x| x == label) => Fate::Replaced(id.clone()),
            _ => Fate::Run,
        };
        visiting.remove(label);
        fate.insert(label.to_string(), f);
        Ok(())
    }
    for label in target.keys() {
        visit(label, target, existing, do_not_optimize, &mut fate, &mut visiting)?;
    }
    Ok(fate)
}

/// A Ship-it phase as the release records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhaseRecord {
    pub name: String,
    pub in_previous_graph_ids: bool,
    pub task_id: Option<String>,
}

/// `previous_graph_ids` for scheduling `phase`: the decision task, then every
/// earlier phase that ran and is chained (skipped phases have no task id).
pub fn previous_graph_ids(decision: &str, phases: &[PhaseRecord], phase: &str) -> Vec<String> {
    let mut ids = vec![decision.to_string()];
    for p in phases.iter().take_while(|p| p.name != phase) {
        if let (true, Some(id)) = (p.in_previous_graph_ids, &p.task_id) {
            ids.push(id.clone());
        }
    }
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(kind: &str, deps: &[&str]) -> TargetTask {
        TargetTask {
            kind: kind.into(),
            deps: deps.iter().map(|d| d.to_string()).collect(),
        }
    }

    #[test]
    fn a_rerun_cascades_downstream_only() {
        let target: BTreeMap<String, TargetTask> = [
            ("build".to_string(), t("build", &[])),
            ("sign".to_string(), t("signing", &["build"])),
            ("beetmover".to_string(), t("beetmover", &["sign"])),
            ("notify".to_string(), t("notify", &[])),
        ]
        .into();
        let existing: BTreeMap<String, String> = [("build", "B"), ("sign", "S"), ("beetmover", "M"), ("notify", "N")]
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        let f = optimize(&target, &existing, &["sign".to_string()]).expect("valid graph");
        assert_eq!(f["build"], Fate::Replaced("B".into()));
        assert_eq!(f["sign"], Fate::Run);
        assert_eq!(f["beetmover"], Fate::Run, "downstream of a re-run task runs too");
        assert_eq!(f["notify"], Fate::Replaced("N".into()));
    }

    #[test]
    fn invalid_graphs_are_refused() {
        let cyclic: BTreeMap<String, TargetTask> =
            [("a".to_string(), t("k", &["b"])), ("b".to_string(), t("k", &["a"]))].into();
        assert!(matches!(
            optimize(&cyclic, &BTreeMap::new(), &[]),
            Err(GraphError::Cycle(_))
        ));
        let dangling: BTreeMap<String, TargetTask> = [("a".to_string(), t("k", &["ghost"]))].into();
        assert!(matches!(
            optimize(&dangling, &BTreeMap::new(), &[]),
            Err(GraphError::UnknownDependency { .. })
        ));
    }
}
