//! Hawk request authentication as Ship-it checks it (reference shipit.md §2):
//! `Authorization: Hawk id="…", ts="…", nonce="…", hash="…", mac="…"`, the MAC
//! being HMAC-SHA-256 over the normalized request string, the hash covering the
//! payload. Used by the Ship-it stand-in to verify and by clients to sign.
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HawkError {
    #[error("missing Hawk authorization header")]
    Missing,
    #[error("malformed Hawk header: {0}")]
    Malformed(&'static str),
    #[error("unknown Hawk id `{0}`")]
    UnknownId(String),
    #[error("stale timestamp (more than {0}s away from the server's clock)")]
    Stale(i64),
    #[error("payload hash does not match the body")]
    BadHash,
    #[error("bad MAC")]
    BadMac,
}

/// The parsed attributes of a Hawk header.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Header {
    pub id: String,
    pub ts: String,
    pub nonce: String,
    pub hash: Option<String>,
    pub ext: String,
    pub mac: String,
}

pub fn parse(value: &str) -> Result<Header, HawkError> {
    let rest = value
        .strip_prefix("Hawk ")
        .ok_or(HawkError::Malformed("not a Hawk header"))?;
    let mut h = Header::default();
    for part in rest.split(',') {
        let (k, v) = part
            .trim()
            .split_once('=')
            .ok_or(HawkError::Malformed("attribute without ="))?;
        let v = v.trim().trim_matches('"').to_string();
        match k.trim() {
            "id" => h.id = v,
            "ts" => h.ts = v,
            "nonce" => h.nonce = v,
            "hash" => h.hash = Some(v),
            "ext" => h.ext = v,
            "mac" => h.mac = v,
            _ => return Err(HawkError::Malformed("unknown attribute")),
        }
    }
    if h.id.is_empty() || h.ts.is_empty() || h.nonce.is_empty() || h.mac.is_empty() {
        return Err(HawkError::Malformed("id, ts, nonce and mac are required"));
    }
    Ok(h)
}

/// base64(SHA-256("hawk.1.payload\n" + content type + "\n" + body + "\n")).
pub fn payload_hash(content_type: &str, body: &[u8]) -> String {
    let ct = content_type.split(';').next().unwrap_or("").trim().to_lowercase();
    let mut d = Sha256::new();
    d.update(b"hawk.1.payload\n");
    d.update(ct.as_bytes());
    d.update(b"\n");
    d.update(body);
    d.update(b"\n");
    B64.encode(d.finalize())
}

/// The request being authenticated.
pub struct Request<'a> {
    pub method: &'a str,
    /// Path plus `?query` if any.
    pub resource: &'a str,
    pub host: &'a str,
    pub port: u16,
}

pub fn mac(key: &str, h: &Header, r: &Request) -> String {
    let normalized = format!(
        "hawk.1.header\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n",
        h.ts,
        h.nonce,
        r.method.to_uppercase(),
        r.resource,
        r.host.to_lowercase(),
        r.port,
        h.hash.as_deref().unwrap_or(""),
        h.ext
    );
    let mut m = match Hmac::<Sha256>::new_from_slice(key.as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    m.update(normalized.as_bytes());
    B64.encode(m.finalize().into_bytes())
}

/// Build a header for a request (what a client does).
pub fn sign(id: &str, key: &str, r: &Request, content_type: &str, body: &[u8], ts: i64) -> String {
    let mut h = Header {
        id: id.to_string(),
        ts: ts.to_string(),
        nonce: hex::encode(rand::random::<[u8; 3]>()),
        hash: Some(payload_hash(content_type, body)),
        ..Default::default()
    };
    h.mac = mac(key, &h, r);
    format!(
        "Hawk mac=\"{}\", hash=\"{}\", id=\"{}\", ts=\"{}\", nonce=\"{}\"",
        h.mac,
        h.hash.as_deref().unwrap_or(""),
        h.id,
        h.ts,
        h.nonce
    )
}

/// Verify a request; returns the client id.
#[allow(clippy::too_many_arguments)]
pub fn verify(
    header: Option<&str>,
    credentials: (&str, &str),
    r: &Request,
    content_type: &str,
    body: &[u8],
    now: i64,
    skew: i64,
) -> Result<String, HawkError> {
    let h = parse(header.ok_or(HawkError::Missing)?)?;
    if h.id != credentials.0 {
        return Err(HawkError::UnknownId(h.id));
    }
    let ts: i64 = h.ts.parse().map_err(|_| HawkError::Malformed("ts is not a number"))?;
    if (ts - now).abs() > skew {
        return Err(HawkError::Stale(skew));
    }
    if let Some(hash) = &h.hash {
        if *hash != payload_hash(content_type, body) {
            return Err(HawkError::BadHash);
        }
    }
    let expected = mac(credentials.1, &h, r);
    // Constant-time comparison of the MACs.
    let ok = expected.len() == h.mac.len()
        && expected
            .bytes()
            .zip(h.mac.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if ok {
        Ok(h.id)
    } else {
        Err(HawkError::BadMac)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_then_verify() {
        let r = Request {
            method: "PATCH",
            resource: "/releases/Firefox-140.0b3-build1",
            host: "127.0.0.1",
            port: 8000,
        };
        let body = br#"{"status": "shipped"}"#;
        let h = sign("client", "key", &r, "application/json", body, 1000);
        assert_eq!(
            verify(Some(&h), ("client", "key"), &r, "application/json", body, 1010, 60),
            Ok("client".into())
        );
        assert_eq!(
            verify(Some(&h), ("client", "other"), &r, "application/json", body, 1010, 60),
            Err(HawkError::BadMac)
        );
        assert_eq!(
            verify(Some(&h), ("client", "key"), &r, "application/json", b"{}", 1010, 60),
            Err(HawkError::BadHash)
        );
        assert_eq!(
            verify(Some(&h), ("client", "key"), &r, "application/json", body, 5000, 60),
            Err(HawkError::Stale(60))
        );
        assert_eq!(
            verify(None, ("client", "key"), &r, "application/json", body, 1000, 60),
            Err(HawkError::Missing)
        );
    }
}
