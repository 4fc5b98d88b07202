//! Bouncer tasks: product submission (promote), the check after push, and the
//! "latest" aliases (ship).
use super::{StackRunner, TaskError, TaskLog};
use crate::seed::generate::PLATFORMS;
use crate::stack::ServiceKind;

/// A bouncer product: name, ssl_only, (bouncer OS, path) per platform.
type Product = (String, bool, Vec<(String, String)>);

/// The bouncer products of the release.
fn products(r: &StackRunner) -> Vec<Product> {
    let rel = r.release();
    let v = &rel.version;
    let per_os = |f: &dyn Fn(&crate::seed::generate::Platform) -> String| -> Vec<(String, String)> {
        rel.platforms
            .iter()
            .filter_map(|ftp| PLATFORMS.iter().find(|p| p.ftp == ftp))
            .map(|p| (p.bouncer_os.to_string(), f(p)))
            .collect()
    };
    let n = &r.names;
    let installer = per_os(&|p| n.releases_path(&format!("{}/:lang/{}", p.ftp, p.installer.replace("{V}", v))));
    let esr = rel.release_type.starts_with("esr");
    let mut out = vec![
        (
            n.bouncer_product("-Complete"),
            false,
            per_os(&|p| n.releases_path(&format!("update/{}/:lang/firefox-{v}.complete.mar", p.ftp))),
        ),
        (n.bouncer_product(""), esr, installer.clone()),
        (n.bouncer_product("-SSL"), true, installer),
    ];
    for (pv, _) in &rel.partials {
        out.push((
            n.bouncer_product(&format!("-Partial-{pv}")),
            false,
            per_os(&|p| n.releases_path(&format!("update/{}/:lang/firefox-{pv}-{v}.partial.mar", p.ftp))),
        ));
    }
    out
}

pub async fn submit(r: &StackRunner, log: &TaskLog) -> Result<String, TaskError> {
    let locales = r.release().locales.clone();
    let mut added = 0;
    let mut locations = 0;
    for (product, ssl, paths) in products(r) {
        if !r.bouncer.product_exists(&product).await? {
            r.bouncer.product_add(&product, &locales, ssl).await?;
            log.line(format!(
                "product_add {product} (ssl_only={ssl}, {} locales)",
                locales.len()
            ));
            added += 1;
        }
        let have = r.bouncer.locations(&product).await?;
        for (os, path) in paths {
            match have.iter().find(|l| l.os == os) {
                Some(l) if l.path == path => {}
                Some(_) => {
                    r.bouncer.location_modify(&product, &os, &path).await?;
                    locations += 1;
                }
                None => {
                    r.bouncer.location_add(&product, &os, &path).await?;
                    locations += 1;
                }
            }
        }
    }
    Ok(format!("{added} products added, {locations} locations written"))
}

/// Every MAR product resolves, through the stack's bouncer, to a file in the
/// stack's S3 releases directory; installer products resolve to their path.
pub async fn check(r: &StackRunner, log: &TaskLog) -> Result<String, TaskError> {
    let base = r.url(ServiceKind::Bouncer)?;
    let locales: Vec<&String> = r
        .release()
        .locales
        .iter()
        .filter(|l| ["en-US", "de", "ru"].contains(&l.as_str()))
        .chain(r.release().locales.first())
        .collect();
    let mut checked = 0;
    for (product, _, paths) in products(r) {
        let is_mar = product.contains("-Complete") || product.contains("-Partial-");
        for (os, path) in &paths {
            for l in &locales {
                let url = format!("{base}/?product={product}&os={os}&lang={l}");
                let resp = r
                    .http
                    .get(&url)
                    .send()
                    .await
                    .map_err(|e| TaskError::Retryable(format!("{url}: {e}")))?;
                let target = resp
                    .headers()
                    .get("location")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
                    .ok_or_else(|| TaskError::Fatal(format!("{url}: no redirect ({})", resp.status())))?;
                let want = path.replace(":lang", l);
                if !target.ends_with(&want) {
                    return Err(TaskError::Fatal(format!("{url} → {target}, expected …{want}")));
                }
                if is_mar {
                    let head = r
                        .http
                        .get(&target)
                        .header("Range", "bytes=0-2")
                        .send()
                        .await
                        .map_err(|e| TaskError::Retryable(format!("{target}: {e}")))?;
                    if head.status().as_u16() != 206 {
                        return Err(TaskError::Fatal(format!(
                            "{product} ({os}, {l}): {target} answered {}",
                            head.status()
                        )));
                    }
                }
                checked += 1;
            }
        }
        log.line(format!(
            "{product}: {} OS × {} locales resolve",
            paths.len(),
            locales.len()
        ));
    }
    Ok(format!("{checked} product/OS/locale combinations resolve"))
}

pub async fn aliases(r: &StackRunner, log: &TaskLog) -> Result<String, TaskError> {
    let pairs = [
        (r.names.alias("-latest"), r.names.bouncer_product("")),
        (r.names.alias("-latest-ssl"), r.names.bouncer_product("-SSL")),
    ];
    let base = r.url(ServiceKind::Bouncer)?;
    let os = r
        .release()
        .platforms
        .first()
        .and_then(|f| PLATFORMS.iter().find(|p| p.ftp == f))
        .map(|p| p.bouncer_os)
        .unwrap_or("win64");
    for (alias, product) in &pairs {
        r.bouncer.set_alias(alias, product).await?;
        // The alias must redirect exactly where the product does.
        let get = |p: &str| {
            let url = format!("{base}/?product={p}&os={os}&lang=en-US");
            async move {
                let resp = r
                    .http
                    .get(&url)
                    .send()
                    .await
                    .map_err(|e| TaskError::Retryable(format!("{url}: {e}")))?;
                Ok::<_, TaskError>(
                    resp.headers()
                        .get("location")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_string(),
                )
            }
        };
        let (a, p) = (get(alias).await?, get(product).await?);
        if a.is_empty() || a != p {
            return Err(TaskError::Fatal(format!("alias {alias} → `{a}` but {product} → `{p}`")));
        }
        log.line(format!("{alias} → {product} ({a})"));
    }
    Ok(format!("{} aliases point at {}", pairs.len(), r.release().version))
}
