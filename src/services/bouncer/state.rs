//! Bouncer's data (reference bouncer.md §2): OSes, products with languages,
//! locations, aliases. Kept in memory and written atomically to
//! `<data-dir>/bouncer.json` (temp file, fsync, rename) before a write is
//! acknowledged. Name matching is case-insensitive; stored spelling is kept.
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Os {
    pub id: i64,
    pub name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Product {
    pub id: i64,
    pub name: String,
    pub ssl_only: bool,
    pub languages: BTreeSet<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Location {
    pub id: i64,
    pub product_id: i64,
    pub os_id: i64,
    pub path: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct State {
    pub oses: Vec<Os>,
    pub products: BTreeMap<i64, Product>,
    pub locations: BTreeMap<i64, Location>,
    /// alias → related product name.
    pub aliases: BTreeMap<String, String>,
    pub next_product_id: i64,
    pub next_location_id: i64,
    /// Languages read from a dump before their product.
    #[serde(skip)]
    pending_langs: Vec<(i64, String)>,
}

/// The OSes a fresh stack knows (the set is fixed data upstream).
pub const DEFAULT_OSES: [&str; 9] = [
    "win64",
    "osx",
    "win",
    "linux",
    "linux64",
    "win64-aarch64",
    "linux64-aarch64",
    "android",
    "android-x86",
];

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("corrupt bouncer state {path}: {source}")]
    Corrupt { path: PathBuf, source: serde_json::Error },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("SQL dump: {0}")]
    Dump(String),
}

impl State {
    pub fn with_default_oses() -> Self {
        Self {
            oses: DEFAULT_OSES
                .iter()
                .enumerate()
                .map(|(i, n)| Os {
                    id: i as i64 + 1,
                    name: n.to_string(),
                })
                .collect(),
            next_product_id: 1,
            next_location_id: 1,
            ..Default::default()
        }
    }

    pub fn file(dir: &Path) -> PathBuf {
        dir.join("bouncer.json")
    }

    /// Load `<dir>/bouncer.json`, or a fresh state with the default OSes.
    pub fn load(dir: &Path) -> Result<Self, StateError> {
        let path = Self::file(dir);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| StateError::Corrupt { path, source }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::with_default_oses()),
            Err(source) => Err(StateError::Read { path, source }),
        }
    }

    /// Write durably: temp file, fsync, rename.
    pub fn save(&self, dir: &Path) -> Result<(), StateError> {
        let path = Self::file(dir);
        crate::services::common::write_json_atomic(&path, self).map_err(|source| StateError::Write { path, source })
    }

    pub fn product_by_name(&self, name: &str) -> Option<&Product> {
        self.products.values().find(|p| p.name.eq_ignore_ascii_case(name))
    }

    pub fn os_by_name(&self, name: &str) -> Option<&Os> {
        self.oses.iter().find(|o| o.name.eq_ignore_ascii_case(name))
    }

    pub fn alias(&self, name: &str) -> Option<&String> {
        self.aliases
            .iter()
            .find(|(a, _)| a.eq_ignore_ascii_case(name))
            .map(|(_, p)| p)
    }

    /// Products whose name equals (or, fuzzy, contains) `name`, sorted by name.
    pub fn matching_products(&self, name: &str, fuzzy: bool) -> Vec<&Product> {
        let needle = name.to_lowercase();
        let mut v: Vec<&Product> = self
            .products
            .values()
            .filter(|p| {
                let n = p.name.to_lowercase();
                if fuzzy {
                    n.contains(&needle)
                } else {
                    n == needle
                }
            })
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// Locations of a product, grouped by OS row id.
    pub fn locations_of(&self, product_id: i64) -> Vec<&Location> {
        let mut v: Vec<&Location> = self.locations.values().filter(|l| l.product_id == product_id).collect();
        v.sort_by_key(|l| (l.os_id, l.id));
        v
    }

    pub fn os_name(&self, id: i64) -> &str {
        self.oses
            .iter()
            .find(|o| o.id == id)
            .map(|o| o.name.as_str())
            .unwrap_or("")
    }

    /// Load the `mirror_*` tables of a MySQL dump (bouncer-admin's and
    /// go-bouncer's test data, or a production export).
    pub fn from_mysql_dump(sql: &str) -> Result<Self, StateError> {
        let mut st = State::default();
        let mut auto: BTreeMap<String, i64> = BTreeMap::new();
        for stmt in split_statements(sql) {
            let s = stmt.trim();
            if let Some(rest) = s.strip_prefix("CREATE TABLE `") {
                let table = rest.split('`').next().unwrap_or("").to_string();
                if let Some(i) = s.find("AUTO_INCREMENT=") {
                    let n: String = s[i + 15..].chars().take_while(char::is_ascii_digit).collect();
                    if let Ok(n) = n.parse() {
                        auto.insert(table, n);
                    }
                }
                continue;
            }
            let Some(rest) = s.strip_prefix("INSERT INTO `") else {
                continue;
            };
            let table = rest.split('`').next().unwrap_or("").to_string();
            let after = &rest[table.len() + 1..];
            let (cols, values) = match after.find("VALUES") {
                Some(i) => (&after[..i], &after[i + 6..]),
                None => return Err(StateError::Dump(format!("INSERT without VALUES: {s}"))),
            };
            let cols: Vec<String> = cols
                .trim()
                .trim_start_matches('(')
                .trim_end_matches(')')
                .split(',')
                .map(|c| c.trim().trim_matches('`').to_string())
                .filter(|c| !c.is_empty())
                .collect();
            let default_cols: &[&str] = match table.as_str() {
                "mirror_os" => &["id", "name", "priority"],
                "mirror_products" => &["id", "name", "priority", "count", "active", "checknow", "ssl_only"],
                "mirror_product_langs" => &["id", "product_id", "language"],
                "mirror_locations" => &["id", "product_id", "os_id", "path"],
                "mirror_aliases" => &["id", "alias", "related_product"],
                _ => continue,
            };
            for tuple in parse_tuples(values)? {
                let row: BTreeMap<String, String> = if cols.is_empty() {
                    default_cols.iter().map(|c| c.to_string()).zip(tuple).collect()
                } else {
                    cols.iter().cloned().zip(tuple).collect()
                };
                st.apply_row(&table, &row)?;
            }
        }
        // Languages may come before their products in a dump.
        for (pid, lang) in std::mem::take(&mut st.pending_langs) {
            if let Some(p) = st.products.get_mut(&pid) {
                p.languages.insert(lang);
            }
        }
        let max_p = st.products.keys().max().copied().unwrap_or(0);
        let max_l = st.locations.keys().max().copied().unwrap_or(0);
        st.next_product_id = auto.get("mirror_products").copied().unwrap_or(max_p + 1).max(max_p + 1);
        st.next_location_id = auto
            .get("mirror_locations")
            .copied()
            .unwrap_or(max_l + 1)
            .max(max_l + 1);
        Ok(st)
    }

    fn apply_row(&mut self, table: &str, row: &BTreeMap<String, String>) -> Result<(), StateError> {
        let int = |k: &str| -> Result<i64, StateError> {
            row.get(k)
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| StateError::Dump(format!("{table}: bad `{k}` in {row:?}")))
        };
        let text = |k: &str| row.get(k).cloned().unwrap_or_default();
        match table {
            "mirror_os" => self.oses.push(Os {
                id: int("id")?,
                name: text("name"),
            }),
            "mirror_products" => {
                let id = int("id")?;
                self.products.insert(
                    id,
                    Product {
                        id,
                        name: text("name"),
                        ssl_only: row.get("ssl_only").map(|v| v == "1").unwrap_or(false),
                        languages: BTreeSet::new(),
                    },
                );
            }
            "mirror_product_langs" => self.pending_langs.push((int("product_id")?, text("language"))),
            "mirror_locations" => {
                let id = int("id")?;
                self.locations.insert(
                    id,
                    Location {
                        id,
                        product_id: int("product_id")?,
                        os_id: int("os_id")?,
                        path: text("path"),
                    },
                );
            }
            _ => {
                self.aliases.insert(text("alias"), text("related_product"));
            }
        }
        Ok(())
    }
}

/// Split on `;` outside quotes.
fn split_statements(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_str = false;
    let mut escaped = false;
    for c in sql.chars() {
        cur.push(c);
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if in_str => escaped = true,
            '\'' => in_str = !in_str,
            ';' if !in_str => out.push(std::mem::take(&mut cur)),
            _ => {}
        }
    }
    out.push(cur);
    out
}

/// `(1,'a'),(2,'b')` → rows of unquoted values.
fn parse_tuples(s: &str) -> Result<Vec<Vec<String>>, StateError> {
    let mut rows = Vec::new();
    let mut row: Option<Vec<String>> = None;
    let mut cur = String::new();
    let mut in_str = false;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if in_str {
            match c {
                '\\' => {
                    if let Some(n) = chars.next() {
                        cur.push(n);
                    }
                }
                '\'' => in_str = false,
                _ => cur.push(c),
            }
            continue;
        }
        match c {
            '\'' => in_str = true,
            '(' if row.is_none() => row = Some(Vec::new()),
            ',' if row.is_some() => {
                if let Some(r) = row.as_mut() {
                    r.push(cur.trim().to_string());
                }
                cur.clear();
            }
            ')' if row.is_some() => {
                if let Some(mut r) = row.take() {
                    r.push(cur.trim().to_string());
                    rows.push(r);
                }
                cur.clear();
            }
            _ if row.is_some() => cur.push(c),
            _ => {}
        }
    }
    if row.is_some() || in_str {
        return Err(StateError::Dump("unterminated VALUES tuple".into()));
    }
    Ok(rows)
}
