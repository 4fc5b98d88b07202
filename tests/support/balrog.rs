//! An in-memory Balrog data source loaded from the fixtures.
#![allow(dead_code)]
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use async_trait::async_trait;
use serde_json::Value;
use stagelib::services::balrog::rule::Rule;
use stagelib::services::balrog::source::{SourceError, UpdateSource};

#[derive(Default)]
pub struct MemorySource {
    pub rules: Mutex<Vec<Rule>>,
    pub releases: Mutex<BTreeMap<String, Value>>,
    pub shutoffs: Mutex<BTreeSet<(String, String)>>,
    pub pins: Mutex<BTreeMap<(String, String, String), String>>,
    pub products: Mutex<BTreeMap<String, String>>,
}

#[async_trait]
impl UpdateSource for MemorySource {
    async fn rules(&self) -> Result<Vec<Rule>, SourceError> {
        Ok(self.rules.lock().expect("lock").clone())
    }
    async fn release(&self, name: &str) -> Result<Option<std::sync::Arc<Value>>, SourceError> {
        Ok(self.releases.lock().expect("lock").get(name).cloned().map(Into::into))
    }
    async fn release_product(&self, name: &str) -> Result<Option<String>, SourceError> {
        Ok(self.products.lock().expect("lock").get(name).cloned())
    }
    async fn emergency_shutoff(&self, product: &str, channel: &str) -> Result<bool, SourceError> {
        Ok(self
            .shutoffs
            .lock()
            .expect("lock")
            .contains(&(product.to_string(), channel.to_string())))
    }
    async fn pinned_release(&self, product: &str, channel: &str, version: &str) -> Result<Option<String>, SourceError> {
        Ok(self
            .pins
            .lock()
            .expect("lock")
            .get(&(product.to_string(), channel.to_string(), version.to_string()))
            .cloned())
    }
}

impl MemorySource {
    /// Add rules in insertion order; rule_id auto-assigned unless given.
    pub fn add_rules(&self, rows: &[Value]) {
        let mut rules = self.rules.lock().expect("lock");
        for row in rows {
            let mut rule: Rule = serde_json::from_value(row.clone()).expect("rule row");
            if row.get("rule_id").is_none() {
                rule.rule_id = rules.iter().map(|r| r.rule_id).max().unwrap_or(0) + 1;
            }
            rules.push(rule);
        }
    }
}

/// Parse the `INSERT INTO rules (cols) VALUES (vals);` lines of a rules.sql.
pub fn parse_rules_sql(sql: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for line in sql.lines().map(str::trim).filter(|l| l.starts_with("INSERT")) {
        let cols_start = line.find('(').expect("(");
        let cols_end = line.find(')').expect(")");
        let cols: Vec<&str> = line[cols_start + 1..cols_end].split(',').map(str::trim).collect();
        let vals_start = line[cols_end..].find('(').expect("values (") + cols_end;
        let vals_end = line.rfind(')').expect(")");
        let vals = split_sql_values(&line[vals_start + 1..vals_end]);
        let mut obj = serde_json::Map::new();
        for (c, v) in cols.iter().zip(vals) {
            obj.insert(c.to_string(), v);
        }
        out.push(Value::Object(obj));
    }
    out
}

fn split_sql_values(s: &str) -> Vec<Value> {
    let mut vals = Vec::new();
    let mut cur = String::new();
    let mut in_str = false;
    let mut was_str = false;
    for c in s.chars() {
        match c {
            '\'' => {
                in_str = !in_str;
                was_str = true;
            }
            ',' if !in_str => {
                vals.push(to_value(cur.trim(), was_str));
                cur.clear();
                was_str = false;
            }
            _ => cur.push(c),
        }
    }
    vals.push(to_value(cur.trim(), was_str));
    vals
}

fn to_value(s: &str, quoted: bool) -> Value {
    if quoted {
        return Value::String(s.to_string());
    }
    if s.eq_ignore_ascii_case("NULL") {
        return Value::Null;
    }
    s.parse::<i64>()
        .map(Value::from)
        .unwrap_or_else(|_| Value::String(s.to_string()))
}
