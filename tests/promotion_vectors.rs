//! Every vector of promotion-vectors.json through the engine: existing_tasks and
//! the replace pass (S*), previous_graph_ids from Ship-it phases (P*), flavors and
//! their target kinds (F*). Prints the counts per type.
use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;
use stagelib::promote::flavor::{flavor, resolve};
use stagelib::promote::snowman::{self, Fate, GraphRecord, PhaseRecord, TargetTask};

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

#[test]
fn every_promotion_vector() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/reference/promotion-vectors.json");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).expect("vectors")).expect("json");
    let mut counts: BTreeMap<String, (u32, u32)> = BTreeMap::new();
    let mut failures = Vec::new();
    for v in doc["vectors"].as_array().expect("vectors") {
        let id = v["id"].as_str().unwrap_or("?");
        let ty = v["type"].as_str().unwrap_or("?").to_string();
        let (input, expected) = (&v["input"], &v["expected"]);
        let outcome: Result<(), String> = (|| match ty.as_str() {
            "existing_tasks" => {
                let graphs: Vec<GraphRecord> =
                    serde_json::from_value(input["previous_graphs"].clone()).expect("graphs");
                let e = snowman::existing_tasks(&graphs, &strings(&input["rebuild_kinds"]));
                let want: BTreeMap<String, String> =
                    serde_json::from_value(expected["existing_tasks"].clone()).expect("existing");
                let mut r = Ok(());
                if e.parameters_from.as_deref() != expected["parameters_from"].as_str() {
                    r = Err(format!("parameters_from {:?}", e.parameters_from));
                } else if e.existing_tasks != want {
                    r = Err(format!("existing_tasks {:?}\nwant {want:?}", e.existing_tasks));
                } else if let Some(tg) = input.get("target_graph") {
                    let target: BTreeMap<String, TargetTask> = serde_json::from_value(tg.clone()).expect("target");
                    let got = snowman::optimize(&target, &e.existing_tasks, &strings(&input["do_not_optimize"]))
                        .map_err(|e| e.to_string())?;
                    let got: BTreeMap<String, String> = got
                        .into_iter()
                        .map(|(l, f)| {
                            let s = match f {
                                Fate::Replaced(id) => format!("replaced:{id}"),
                                Fate::Run => "run".to_string(),
                            };
                            (l, s)
                        })
                        .collect();
                    let want: BTreeMap<String, String> =
                        serde_json::from_value(expected["optimized"].clone()).expect("optimized");
                    if got != want {
                        r = Err(format!("optimized {got:?}\nwant {want:?}"));
                    }
                }
                r
            }
            "previous_graph_ids" => {
                let phases: Vec<PhaseRecord> = serde_json::from_value(input["phases"].clone()).expect("phases");
                let got = snowman::previous_graph_ids(
                    input["decision_task_id"].as_str().expect("decision"),
                    &phases,
                    input["scheduled_phase"].as_str().expect("phase"),
                );
                if got == strings(&expected["previous_graph_ids"]) {
                    Ok(())
                } else {
                    Err(format!("{got:?}"))
                }
            }
            "flavor" => {
                let f = flavor(input["flavor"].as_str().expect("flavor")).map_err(|e| e.to_string())?;
                let r = resolve(f, input["decision_release_type"].as_str().expect("release type"));
                let got = serde_json::to_value(&r).expect("json");
                let mut mismatch = Vec::new();
                for key in [
                    "release_type",
                    "release_product",
                    "target_tasks_method",
                    "requires_next_version",
                    "requires_partial_updates_in_production",
                    "effective_rebuild_kinds_when_input_omits_it",
                ] {
                    if got[key] != expected[key] {
                        mismatch.push(format!("{key}: {} != {}", got[key], expected[key]));
                    }
                }
                let mut want_kinds = strings(&expected["target_kinds"]);
                want_kinds.sort();
                if r.target_kinds != want_kinds {
                    mismatch.push(format!("target_kinds {:?}\nwant {want_kinds:?}", r.target_kinds));
                }
                if let Some((repack, attribution, emefree)) = f.forced_partner_flags {
                    for (key, val) in [
                        ("release_enable_partner_repack", repack),
                        ("release_enable_partner_attribution", attribution),
                        ("release_enable_emefree", emefree),
                    ] {
                        if expected.get(key).is_some_and(|e| e.as_bool() != Some(val)) {
                            mismatch.push(key.to_string());
                        }
                    }
                }
                if mismatch.is_empty() {
                    Ok(())
                } else {
                    Err(mismatch.join("; "))
                }
            }
            other => Err(format!("unknown vector type {other}")),
        })();
        let c = counts.entry(ty).or_default();
        c.1 += 1;
        match outcome {
            Ok(()) => c.0 += 1,
            Err(e) => failures.push(format!("{id}: {e}")),
        }
    }
    for (ty, (ok, total)) in &counts {
        eprintln!("promotion vectors {ty}: {ok}/{total} passed");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(counts.values().map(|c| c.1).sum::<u32>(), 20, "every vector ran");
}
