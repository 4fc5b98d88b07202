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
    }
}
