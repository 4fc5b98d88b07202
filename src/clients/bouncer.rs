//! A typed client for Bouncer's admin API as bouncerscript uses it (reference
//! bouncer.md §3, §6): form-encoded POSTs, XML answers, HTTP basic auth.
use quick_xml::events::Event;
use reqwest::Method;

use super::http::{self, ClientError, RetryPolicy};

const SERVICE: &str = "bouncer";

/// One download location of a product.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub id: String,
    pub os: String,
    pub path: String,
}

#[derive(Debug, Clone)]
pub struct BouncerClient {
    api: String,
    user: String,
    password: String,
    http: reqwest::Client,
    retry: RetryPolicy,
}

impl BouncerClient {
    /// `base` is the service URL; requests go to `<base>/api/<route>`.
    pub fn new(base: &str, user: &str, password: &str) -> Self {
        Self {
            api: format!("{}/api", base.trim_end_matches('/')),
            user: user.to_string(),
            password: password.to_string(),
            http: http::http_client(),
            retry: RetryPolicy::default(),
        }
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    async fn call(&self, method: Method, route: &str, form: &[(&str, &str)]) -> Result<String, ClientError> {
        self.retry
            .run(|| async {
                let mut req = self
                    .http
                    .request(method.clone(), format!("{}/{route}", self.api))
                    .basic_auth(&self.user, Some(&self.password));
                if method == Method::GET {
                    req = req.query(form);
                } else {
                    req = req.form(form);
                }
                let resp = http::send(SERVICE, req).await?;
                resp.text().await.map_err(|source| ClientError::Transport {
                    service: SERVICE,
                    url: route.to_string(),
                    source,
                })
            })
            .await
    }

    pub async fn product_exists(&self, product: &str) -> Result<bool, ClientError> {
        let xml = self.call(Method::GET, "product_show", &[("product", product)]).await?;
        Ok(xml.matches("<product ").count() > 0)
    }

    pub async fn product_add(&self, product: &str, languages: &[String], ssl_only: bool) -> Result<(), ClientError> {
        let mut form: Vec<(&str, &str)> = vec![("product", product)];
        for l in languages {
            form.push(("languages", l));
        }
        if ssl_only {
            form.push(("ssl_only", "true"));
        }
        let xml = self.call(Method::POST, "product_add/", &form).await?;
        check_error(&xml, "product_add")
    }

    pub async fn locations(&self, product: &str) -> Result<Vec<Location>, ClientError> {
        let xml = self.call(Method::GET, "location_show", &[("product", product)]).await?;
        parse_locations(&xml)
    }

    pub async fn location_add(&self, product: &str, os: &str, path: &str) -> Result<(), ClientError> {
        let xml = self
            .call(
                Method::POST,
                "location_add/",
                &[("product", product), ("os", os), ("path", path)],
            )
            .await?;
        check_error(&xml, "location_add")
    }

    pub async fn location_modify(&self, product: &str, os: &str, path: &str) -> Result<(), ClientError> {
        let xml = self
            .call(
                Method::POST,
                "location_modify/",
                &[("product", product), ("os", os), ("path", path)],
            )
            .await?;
        check_error(&xml, "location_modify")
    }

    pub async fn set_alias(&self, alias: &str, product: &str) -> Result<(), ClientError> {
        let xml = self
            .call(
                Method::POST,
                "create_update_alias",
                &[("alias", alias), ("related_product", product)],
            )
            .await?;
        check_error(&xml, "create_update_alias")
    }
}

impl BouncerClient {
    /// Products whose name contains `needle` (`product_show` with `fuzzy`):
    /// name and languages of each.
    pub async fn products_like(&self, needle: &str) -> Result<Vec<(String, Vec<String>)>, ClientError> {
        let xml = self
            .call(Method::GET, "product_show", &[("product", needle), ("fuzzy", "true")])
            .await?;
        Ok(parse_tree(&xml)?.into_iter().map(|p| (p.name, p.languages)).collect())
    }

    /// Locations of the products whose name contains `needle`, by product.
    pub async fn locations_like(&self, needle: &str) -> Result<Vec<(String, Vec<Location>)>, ClientError> {
        let xml = self
            .call(Method::GET, "location_show", &[("product", needle), ("fuzzy", "true")])
            .await?;
        Ok(parse_tree(&xml)?.into_iter().map(|p| (p.name, p.locations)).collect())
    }
}

/// One `<product>` element of a `<products>` or `<locations>` document.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProductTree {
    pub name: String,
    pub languages: Vec<String>,
    pub locations: Vec<Location>,
}

/// Parse `<products>` / `<locations>` documents into their `<product>`s. The
/// "no product matched" answer of `location_show` (a bare declaration) is empty.
pub fn parse_tree(xml: &str) -> Result<Vec<ProductTree>, ClientError> {
    let bad = |m: String| ClientError::Decode {
        service: SERVICE,
        url: "product_show".into(),
        message: m,
    };
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut out: Vec<ProductTree> = Vec::new();
    let mut loc: Option<(String, String)> = None;
    let mut text = String::new();
    let attrs = |e: &quick_xml::events::BytesStart| -> Result<Vec<(Vec<u8>, String)>, ClientError> {
        e.attributes()
            .flatten()
            .map(|a| {
                a.unescape_value()
                    .map(|v| (a.key.as_ref().to_vec(), v.to_string()))
                    .map_err(|e| bad(e.to_string()))
            })
            .collect()
    };
    let get = |v: &[(Vec<u8>, String)], k: &[u8]| {
        v.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) | Ok(Event::Empty(e)) if e.name().as_ref() == b"product" => {
                let a = attrs(&e)?;
                out.push(ProductTree {
                    name: get(&a, b"name"),
                    ..Default::default()
                });
            }
            Ok(Event::Empty(e)) if e.name().as_ref() == b"language" => {
                let a = attrs(&e)?;
                if let Some(p) = out.last_mut() {
                    p.languages.push(get(&a, b"locale"));
                }
            }
            Ok(Event::Start(e)) if e.name().as_ref() == b"location" => {
                let a = attrs(&e)?;
                loc = Some((get(&a, b"id"), get(&a, b"os")));
                text.clear();
            }
            Ok(Event::Text(t)) if loc.is_some() => text.push_str(&t.unescape().map_err(|e| bad(e.to_string()))?),
            Ok(Event::End(e)) if e.name().as_ref() == b"location" => {
                if let (Some((id, os)), Some(p)) = (loc.take(), out.last_mut()) {
                    p.locations.push(Location {
                        id,
                        os,
                        path: text.clone(),
                    });
                }
            }
            Ok(Event::Eof) => break,
            Err(e) => return Err(bad(e.to_string())),
            _ => {}
        }
    }
    Ok(out)
}

fn check_error(xml: &str, what: &str) -> Result<(), ClientError> {
    if let Some(start) = xml.find("<error") {
        return Err(ClientError::Invalid {
            service: SERVICE,
            message: format!("{what} refused: {}", &xml[start..]),
        });
    }
    Ok(())
}

/// Parse a `<locations>` document.
pub fn parse_locations(xml: &str) -> Result<Vec<Location>, ClientError> {
    let bad = |m: String| ClientError::Decode {
        service: SERVICE,
        url: "location_show".into(),
        message: m,
    };
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut out = Vec::new();
    let mut current: Option<(String, String)> = None;
    let mut text = String::new();
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) if e.name().as_ref() == b"location" => {
                let mut id = String::new();
                let mut os = String::new();
                for a in e.attributes().flatten() {
                    let v = a.unescape_value().map_err(|e| bad(e.to_string()))?.to_string();
                    match a.key.as_ref() {
                        b"id" => id = v,
                        b"os" => os = v,
                        _ => {}
                    }
                }
                current = Some((id, os));
                text.clear();
            }
            Ok(Event::Text(t)) if current.is_some() => {
                text.push_str(&t.unescape().map_err(|e| bad(e.to_string()))?);
            }
            Ok(Event::End(e)) if e.name().as_ref() == b"location" => {
                if let Some((id, os)) = current.take() {
                    out.push(Location {
                        id,
                        os,
                        path: text.clone(),
                    });
                }
            }
            Ok(Event::Eof) => break,
            Err(e) => return Err(bad(e.to_string())),
            _ => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_locations() {
        let xml = r#"<?xml version="1.0" encoding="utf-8"?><locations><product id="1" name="Firefox"><location id="1" os="win64">/firefox/releases/39.0/win64/:lang/Firefox%20Setup%2039.0.exe</location><location id="2" os="linux">/a&amp;b</location></product></locations>"#;
        let locs = parse_locations(xml).expect("parse");
        assert_eq!(locs.len(), 2);
        assert_eq!(locs[0].os, "win64");
        assert_eq!(locs[1].path, "/a&b");
        assert!(check_error(r#"<error number="104">exists</error>"#, "x").is_err());
        let tree = parse_tree(
            r#"<?xml version="1.0" encoding="utf-8"?><products><product id="1" name="A"><language locale="de"/><language locale="en-US"/></product><product id="2" name="B"/></products>"#,
        )
        .expect("parse");
        assert_eq!(tree.len(), 2);
        assert_eq!(tree[0].languages, vec!["de", "en-US"]);
        assert!(tree[1].languages.is_empty());
        let tree = parse_tree(xml).expect("locations");
        assert_eq!(tree[0].name, "Firefox");
        assert_eq!(tree[0].locations.len(), 2);
        assert!(parse_tree(r#"<?xml version="1.0" encoding="utf-8"?>"#)
            .expect("bare")
            .is_empty());
    }
}
