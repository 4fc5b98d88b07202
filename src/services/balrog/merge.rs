//! Balrog's three-way merge for writes with a stale data_version (reference
//! balrog.md §5.1): dicts merge recursively, lists as set unions, a scalar
//! changed on one side wins, changed differently on both sides is a conflict.
use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("conflicting change at {0}")]
pub struct MergeConflict(pub String);

/// Merge `ours` and `theirs`, both derived from `base`.
pub fn merge3(base: &Value, ours: &Value, theirs: &Value) -> Result<Value, MergeConflict> {
    merge_at("", Some(base), Some(ours), Some(theirs)).map(|v| v.unwrap_or(Value::Null))
}

fn merge_at(
    path: &str,
    base: Option<&Value>,
    ours: Option<&Value>,
    theirs: Option<&Value>,
) -> Result<Option<Value>, MergeConflict> {
    if ours == theirs {
        return Ok(ours.cloned());
    }
    if ours == base {
        return Ok(theirs.cloned());
    }
    if theirs == base {
        return Ok(ours.cloned());
    }
    match (ours, theirs) {
        (Some(Value::Object(o)), Some(Value::Object(t))) => {
            let b = base.and_then(Value::as_object);
            let mut out = Map::new();
            let mut keys: Vec<&String> = o.keys().chain(t.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let merged = merge_at(&format!("{path}.{k}"), b.and_then(|b| b.get(k)), o.get(k), t.get(k))?;
                if let Some(v) = merged {
                    out.insert(k.clone(), v);
                }
            }
            Ok(Some(Value::Object(out)))
        }
        (Some(Value::Array(o)), Some(Value::Array(t))) => {
            let mut out = o.clone();
            for item in t {
                if !out.contains(item) {
                    out.push(item.clone());
                }
            }
            Ok(Some(Value::Array(out)))
        }
        _ => Err(MergeConflict(if path.is_empty() {
            ".".into()
        } else {
            path.to_string()
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn concurrent_locales_merge() {
        let base = json!({"name": "r", "platforms": {"p": {"locales": {"de": {"x": 1}}}}});
        let ours = json!({"name": "r", "platforms": {"p": {"locales": {"de": {"x": 1}, "fr": {"x": 2}}}}});
        let theirs = json!({"name": "r", "platforms": {"p": {"locales": {"de": {"x": 1}, "it": {"x": 3}}}, "q": {"alias": "p"}}});
        let m = merge3(&base, &ours, &theirs).expect("merge");
        assert_eq!(m["platforms"]["p"]["locales"].as_object().expect("locales").len(), 3);
        assert_eq!(m["platforms"]["q"]["alias"], "p");
    }

    #[test]
    fn same_scalar_changed_differently_conflicts() {
        let base = json!({"a": 1});
        assert!(merge3(&base, &json!({"a": 2}), &json!({"a": 3})).is_err());
        assert_eq!(merge3(&base, &json!({"a": 2}), &json!({"a": 1})), Ok(json!({"a": 2})));
        assert_eq!(
            merge3(&json!({"l": [1]}), &json!({"l": [1, 2]}), &json!({"l": [1, 3]})),
            Ok(json!({"l": [1, 2, 3]}))
        );
    }
}
