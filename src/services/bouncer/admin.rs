//! Bouncer's admin API (reference bouncer.md §3): form-encoded POSTs, compact
//! XML answers, `<error number="N">` bodies with HTTP 400, basic auth on writes.
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::state::{Location, Product, State as Data};
use super::Bouncer;

const DECL: &str = "<?xml version=\"1.0\" encoding=\"utf-8\"?>";

pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn xml(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "text/xml; charset=utf-8")], body).into_response()
}

fn error(number: u32, text: &str) -> Response {
    xml(
        StatusCode::BAD_REQUEST,
        format!("{DECL}<error number=\"{number}\">{}</error>", esc(text)),
    )
}

fn success(text: &str) -> Response {
    xml(StatusCode::OK, format!("{DECL}<success>{}</success>", esc(text)))
}

fn product_xml(p: &Product) -> String {
    if p.languages.is_empty() {
        return format!("<product id=\"{}\" name=\"{}\"/>", p.id, esc(&p.name));
    }
    let langs: String = p
        .languages
        .iter()
        .map(|l| format!("<language locale=\"{}\"/>", esc(l)))
        .collect();
    format!("<product id=\"{}\" name=\"{}\">{langs}</product>", p.id, esc(&p.name))
}

fn products_xml(ps: &[&Product]) -> Response {
    if ps.is_empty() {
        return xml(StatusCode::OK, format!("{DECL}<products/>"));
    }
    let inner: String = ps.iter().map(|p| product_xml(p)).collect();
    xml(StatusCode::OK, format!("{DECL}<products>{inner}</products>"))
}

fn locations_xml(d: &Data, ps: &[&Product]) -> Response {
    if ps.is_empty() {
        // Upstream answers the bare declaration: not a well-formed document.
        return xml(StatusCode::OK, DECL.to_string());
    }
    let mut out = format!("{DECL}<locations>");
    for p in ps {
        let locs: Vec<&Location> = d.locations_of(p.id);
        if locs.is_empty() {
            out += &format!("<product id=\"{}\" name=\"{}\"/>", p.id, esc(&p.name));
            continue;
        }
        out += &format!("<product id=\"{}\" name=\"{}\">", p.id, esc(&p.name));
        for l in locs {
            out += &format!(
                "<location id=\"{}\" os=\"{}\">{}</location>",
                l.id,
                esc(d.os_name(l.os_id)),
                esc(&l.path)
            );
        }
        out += "</product>";
    }
    xml(StatusCode::OK, out + "</locations>")
}

/// Form or query fields, `languages` repeated.
pub struct Form(Vec<(String, String)>);

impl Form {
    pub fn parse(raw: &[u8]) -> Self {
        Self(url::form_urlencoded::parse(raw).into_owned().collect())
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    pub fn all(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }

    fn fuzzy(&self) -> bool {
        self.get("fuzzy")
            .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "true" | "1" | "yes"))
    }
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Basic realm=\"Authentication Required\"")],
        "Unauthorized Access",
    )
        .into_response()
}

/// Basic auth check: `None` when the credentials are right.
pub fn check_auth(b: &Bouncer, headers: &HeaderMap) -> Option<Response> {
    let Some(secret) = &b.secret else { return None };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|v| base64::Engine::decode(&base64::engine::general_purpose::STANDARD, v.trim()).ok())
        .and_then(|v| String::from_utf8(v).ok());
    match given {
        Some(pair) if pair == format!("{}:{}", b.user, secret) => None,
        _ => Some(unauthorized()),
    }
}

/// A refused write: the error number and text of `<error number="N">`.
type Fail = (u32, String);

fn fail(number: u32, text: &str) -> Fail {
    (number, text.to_string())
}

/// Run a write against the data and persist it; nothing changes on error.
fn write(b: &Bouncer, f: impl FnOnce(&mut Data) -> Result<Response, Fail>) -> Response {
    let mut guard = b.data.lock().unwrap_or_else(|p| p.into_inner());
    let mut next = guard.clone();
    match f(&mut next) {
        Ok(resp) => {
            if let Some(dir) = &b.data_dir {
                if let Err(e) = next.save(dir) {
                    tracing::error!(error = %e, "cannot persist bouncer state");
                    return (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error.").into_response();
                }
            }
            *guard = next;
            resp
        }
        Err((number, text)) => error(number, &text),
    }
}

pub async fn get_route(State(b): State<Bouncer>, route: String, RawQuery(q): RawQuery) -> Response {
    let form = Form::parse(q.unwrap_or_default().as_bytes());
    let d = b.data.lock().unwrap_or_else(|p| p.into_inner()).clone();
    match route.as_str() {
        "product_show" => match form.get("product") {
            None => products_xml(&[]),
            Some(name) => products_xml(&d.matching_products(name, form.fuzzy())),
        },
        "location_show" => match form.get("product") {
            None => error(103, "The GET parameter product is required"),
            Some(name) => locations_xml(&d, &d.matching_products(name, form.fuzzy())),
        },
        "uptake" => {
            let (Some(product), Some(os)) = (form.get("product"), form.get("os")) else {
                return error(101, "product and/or os are required GET parameters.");
            };
            let products = d.matching_products(product, form.fuzzy());
            if products.is_empty() {
                return error(102, "No products found");
            }
            let oses: Vec<&str> = d
                .oses
                .iter()
                .filter(|o| {
                    if form.fuzzy() {
                        o.name.to_lowercase().contains(&os.to_lowercase())
                    } else {
                        o.name.eq_ignore_ascii_case(os)
                    }
                })
                .map(|o| o.name.as_str())
                .collect();
            if oses.is_empty() {
                return error(102, "No OSes found");
            }
            let mut out = format!("{DECL}<mirror_uptake>");
            for p in &products {
                for o in &oses {
                    out += &format!(
                        "<item><product>{}</product><os>{}</os><available>2000000</available><total>2000000</total></item>",
                        esc(&p.name),
                        esc(o)
                    );
                }
            }
            xml(StatusCode::OK, out + "</mirror_uptake>")
        }
        _ => (StatusCode::NOT_FOUND, "404 page not found\n").into_response(),
    }
}

pub async fn post_route(b: Bouncer, route: String, headers: HeaderMap, body: Bytes) -> Response {
    if body.len() > super::MAX_FORM_BYTES {
        return xml(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("{DECL}<error number=\"101\">POST request length exceeded 500KB</error>"),
        );
    }
    if let Some(resp) = check_auth(&b, &headers) {
        return resp;
    }
    let form = Form::parse(&body);
    match route.as_str() {
        "product_add" => write(&b, |d| {
            let name = form
                .get("product")
                .ok_or_else(|| fail(103, "Cannot add an empty product name"))?;
            if d.product_by_name(name).is_some() {
                return Err(fail(104, "product already exists."));
            }
            let id = d.next_product_id;
            d.next_product_id += 1;
            let p = Product {
                id,
                name: name.to_string(),
                ssl_only: form.get("ssl_only").is_some_and(|v| v.eq_ignore_ascii_case("true")),
                languages: form.all("languages").into_iter().filter(|l| !l.is_empty()).collect(),
            };
            let resp = products_xml(&[&p]);
            d.products.insert(id, p);
            Ok(resp)
        }),
        "product_delete" => write(&b, |d| {
            let id = match (form.get("product_id"), form.get("product")) {
                (Some(id), _) => id.parse::<i64>().ok().filter(|id| d.products.contains_key(id)),
                (None, Some(name)) => d.product_by_name(name).map(|p| p.id),
                (None, None) => None,
            }
            .ok_or_else(|| fail(102, "No product found."))?;
            d.products.remove(&id);
            d.locations.retain(|_, l| l.product_id != id);
            Ok(success("SUCCESS: product has been deleted"))
        }),
        "product_language_add" => write(&b, |d| {
            let id = form
                .get("product")
                .and_then(|n| d.product_by_name(n))
                .map(|p| p.id)
                .ok_or_else(|| fail(102, "Product not found."))?;
            let p = d.products.get_mut(&id).ok_or_else(|| fail(102, "Product not found."))?;
            p.languages
                .extend(form.all("languages").into_iter().filter(|l| !l.is_empty()));
            Ok(products_xml(&[p]))
        }),
        "product_language_delete" => write(&b, |d| {
            let id = form
                .get("product")
                .and_then(|n| d.product_by_name(n))
                .map(|p| p.id)
                .ok_or_else(|| fail(102, "Product not found."))?;
            let p = d.products.get_mut(&id).ok_or_else(|| fail(102, "Product not found."))?;
            let langs = form.all("languages");
            if langs.iter().any(|l| l == "*") {
                p.languages.clear();
            } else {
                for l in langs {
                    p.languages.remove(&l);
                }
            }
            Ok(success("SUCCESS: language has been deleted"))
        }),
        "location_add" | "location_modify" => write(&b, |d| {
            let (Some(product), Some(os), Some(path)) = (form.get("product"), form.get("os"), form.get("path")) else {
                return Err(fail(101, "product, os, and path are required POST parameters."));
            };
            let os_id = d
                .os_by_name(os)
                .map(|o| o.id)
                .ok_or_else(|| fail(106, &format!("FAILED: '{os}' does not exist")))?;
            let pid = d
                .product_by_name(product)
                .map(|p| p.id)
                .ok_or_else(|| fail(105, &format!("FAILED: '{product}' does not exist")))?;
            let existing = d
                .locations
                .values()
                .find(|l| l.product_id == pid && l.os_id == os_id)
                .map(|l| l.id);
            if route == "location_add" {
                if existing.is_some() {
                    return Err(fail(104, "The specified location already exists."));
                }
                let id = d.next_location_id;
                d.next_location_id += 1;
                d.locations.insert(
                    id,
                    Location {
                        id,
                        product_id: pid,
                        os_id,
                        path: path.to_string(),
                    },
                );
            } else {
                let id = existing.ok_or_else(|| {
                    fail(
                        104,
                        &format!("FAILED: location '{product}' on OS '{os}' does not exist"),
                    )
                })?;
                if let Some(l) = d.locations.get_mut(&id) {
                    l.path = path.to_string();
                }
            }
            let p = d
                .products
                .get(&pid)
                .cloned()
                .ok_or_else(|| fail(105, "product vanished"))?;
            Ok(locations_xml(d, &[&p]))
        }),
        "location_delete" => write(&b, |d| {
            let id = form
                .get("location_id")
                .ok_or_else(|| fail(101, "location_id is required."))?;
            let id: i64 = id.parse().map_err(|_| fail(102, "No location found."))?;
            d.locations.remove(&id).ok_or_else(|| fail(102, "No location found."))?;
            Ok(success("SUCCESS: location has been deleted"))
        }),
        "create_update_alias" => write(&b, |d| {
            let alias = form.get("alias").ok_or_else(|| fail(102, "Alias name not provided"))?;
            let related = form
                .get("related_product")
                .ok_or_else(|| fail(103, "Related product name not provided"))?;
            let product = d
                .product_by_name(related)
                .map(|p| p.name.clone())
                .ok_or_else(|| fail(103, "You must specify a valid product to match with an alias"))?;
            if d.product_by_name(alias).is_some() {
                return Err(fail(104, "You cannot create an alias with the same name as a product"));
            }
            let key = d
                .aliases
                .keys()
                .find(|a| a.eq_ignore_ascii_case(alias))
                .cloned()
                .unwrap_or_else(|| alias.to_string());
            d.aliases.insert(key, product);
            Ok(success(&format!("Created/updated alias {alias}")))
        }),
        _ => (StatusCode::NOT_FOUND, "404 page not found\n").into_response(),
    }
}
