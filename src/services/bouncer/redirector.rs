//! The download redirector (reference bouncer.md §4): `/?product=&os=&lang=`
//! → 302 to `<base><path with :lang replaced>`, `print=yes`, aliases, language
//! rules, the Windows 7/8 and old-stub rewrites, stub attribution, and Go's
//! exact 404.
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::state::State as Data;
use super::Bouncer;

const ESR115: &str = "firefox-esr115-latest-ssl";
const PRE2024_NIGHTLY: &str = "firefox-nightly-pre2024";
const PRE2024_BETA: &str = "127.0b9";
const PRE2024_RELEASE: &str = "127.0";

pub fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        "404 page not found\n",
    )
        .into_response()
}

fn redirect(location: &str) -> Response {
    let body = format!("<a href=\"{}\">Found</a>.\n\n", super::admin::esc(location));
    (
        StatusCode::FOUND,
        [
            (header::LOCATION, location.to_string()),
            (header::CONTENT_TYPE, "text/html; charset=utf-8".into()),
        ],
        body,
    )
        .into_response()
}

/// The product an old (pre-2024 certificate) stub installer gets instead.
fn pre2024_product(product: &str) -> String {
    let Some((head, tail)) = product.split_once('-') else {
        return product.to_string();
    };
    if let Some(rest) = product.strip_prefix("partner-firefox-release-unitedinternet-") {
        if let Some(partner) = rest.strip_suffix("-latest") {
            return format!("firefox-{PRE2024_RELEASE}-unitedinternet-{partner}");
        }
    }
    if head != "firefox" {
        return product.to_string();
    }
    match tail {
        "nightly-latest" | "nightly-latest-l10n" => PRE2024_NIGHTLY.to_string(),
        "nightly-latest-ssl" | "nightly-latest-l10n-ssl" => format!("{PRE2024_NIGHTLY}-ssl"),
        "beta-latest-ssl" => format!("firefox-{PRE2024_BETA}-ssl"),
        "beta-latest" => format!("firefox-{PRE2024_BETA}"),
        "devedition-latest-ssl" => format!("devedition-{PRE2024_BETA}-ssl"),
        "devedition-latest" => format!("devedition-{PRE2024_BETA}"),
        "latest-ssl" => format!("firefox-{PRE2024_RELEASE}-ssl"),
        "latest" => format!("firefox-{PRE2024_RELEASE}"),
        _ => product.to_string(),
    }
}

fn allowed_referer(r: &str) -> bool {
    r.starts_with("https://www.mozilla.org/") || r.starts_with("https://www.firefox.com/")
}

/// Whether a (URL-safe, `.`-padded base64) attribution code comes from RTAMO.
fn from_rtamo(code: &str) -> bool {
    use base64::Engine;
    let cleaned = code.replace('.', "=");
    let Ok(bytes) = base64::engine::general_purpose::URL_SAFE.decode(cleaned) else {
        return false;
    };
    let text = String::from_utf8_lossy(&bytes).to_string();
    url::form_urlencoded::parse(text.as_bytes()).any(|(k, v)| k == "content" && v.starts_with("rta:"))
}

/// The download URL, or `None` for a 404.
fn resolve(d: &Data, b: &Bouncer, pin_https: bool, lang: &str, os: &str, product: &str) -> Option<String> {
    let product = d.alias(product).cloned().unwrap_or_else(|| product.to_string());
    let os = d.os_by_name(os)?;
    let p = d.product_by_name(&product)?;
    if !p.languages.is_empty() && !p.languages.iter().any(|l| l.eq_ignore_ascii_case(lang)) {
        return None;
    }
    let loc = d
        .locations
        .values()
        .find(|l| l.product_id == p.id && l.os_id == os.id)?;
    let path = loc.path.replace(":lang", lang);
    let base = if pin_https || p.ssl_only {
        b.redirect.https_base()
    } else {
        b.redirect.http_base()
    };
    Some(format!("{base}{path}"))
}

pub fn handle(b: &Bouncer, raw_query: &str, headers: &HeaderMap) -> Response {
    let params: Vec<(String, String)> = url::form_urlencoded::parse(raw_query.as_bytes()).into_owned().collect();
    let get = |k: &str| {
        params
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let mut product = get("product").trim().to_lowercase();
    let mut os = get("os").trim().to_lowercase();
    let mut lang = get("lang");
    let print = get("print") == "yes";
    let ua = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let referer = headers.get(header::REFERER).and_then(|v| v.to_str().ok()).unwrap_or("");
    if product.is_empty() {
        return redirect("https://www.mozilla.org/");
    }
    if os.is_empty() {
        os = "win".into();
    }
    if lang.is_empty() {
        lang = "en-US".into();
    }
    let (code, sig) = (get("attribution_code"), get("attribution_sig"));
    if let Some(stub) = &b.redirect.stub_root_url {
        let attributable = !code.is_empty()
            && !sig.is_empty()
            && ["win", "win64", "win64-aarch64", "osx"].contains(&os.as_str())
            && !["-partial", "-complete", "-msi", "-msix"]
                .iter()
                .any(|s| product.contains(s))
            && (!from_rtamo(&code) || allowed_referer(referer));
        if attributable {
            let mut q = url::form_urlencoded::Serializer::new(String::new());
            q.append_pair("attribution_code", &code);
            q.append_pair("attribution_sig", &sig);
            q.append_pair("lang", &lang);
            q.append_pair("os", &os);
            q.append_pair("product", &product);
            return redirect(&format!("{stub}?{}", q.finish()));
        }
    }
    let windows_7_8 = ["Windows NT 6.1", "Windows NT 6.2", "Windows NT 6.3"]
        .iter()
        .any(|w| ua.contains(w));
    if product.starts_with("firefox-")
        && !product.contains("-msi")
        && !product.contains("-partial")
        && !product.contains("-complete")
        && os.starts_with("win")
        && windows_7_8
        && !allowed_referer(referer)
    {
        if product.contains("-stub") && (ua.contains("Win64") || ua.contains("WOW64")) {
            os = "win64".into();
        }
        product = ESR115.into();
    }
    if ua == "NSIS InetBgDL (Mozilla)" {
        product = pre2024_product(&product);
    }
    let pin_https = headers
        .get(b.redirect.pin_https_header.as_str())
        .and_then(|v| v.to_str().ok())
        == Some("https");
    let data = b.data.lock().unwrap_or_else(|p| p.into_inner());
    let Some(url) = resolve(&data, b, pin_https, &lang, &os, &product) else {
        return not_found();
    };
    let mut resp = if print {
        (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain")], url).into_response()
    } else {
        redirect(&url)
    };
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, header::HeaderValue::from_static("max-age=60"));
    resp
}
