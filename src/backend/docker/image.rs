//! The stack image, built offline through the engine from a tar context holding
//! `images/Dockerfile`, the static `stagelib` binary and an empty `data/`.
use std::collections::HashMap;
use std::path::Path;

use bollard::Docker;
use futures::StreamExt;
use sha2::{Digest, Sha256};

use super::{docker_err, LABEL_MANAGED};
use crate::backend::BackendError;

const DOCKERFILE: &str = include_str!("../../../images/Dockerfile");

/// `stagelib:<version>-<first 12 hex of the binary's SHA-256>`.
pub fn tag_for(binary: &[u8]) -> String {
    let hash = hex::encode(Sha256::digest(binary));
    format!("stagelib:{}-{}", env!("CARGO_PKG_VERSION"), &hash[..12])
}

fn context(binary: &[u8]) -> Result<Vec<u8>, BackendError> {
    let io = |e: std::io::Error| BackendError::Other(format!("cannot build the image context: {e}"));
    let mut ar = tar::Builder::new(Vec::new());
    let mut add = |path: &str, data: &[u8], mode: u32, dir: bool| -> Result<(), BackendError> {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(mode);
        h.set_entry_type(if dir {
            tar::EntryType::Directory
        } else {
            tar::EntryType::Regular
        });
        h.set_cksum();
        ar.append_data(&mut h, path, data).map_err(io)
    };
    add("Dockerfile", DOCKERFILE.as_bytes(), 0o644, false)?;
    add("stagelib", binary, 0o755, false)?;
    add("data/", &[], 0o755, true)?;
    ar.into_inner().map_err(io)
}

/// Build the image for `binary` unless a tag for it exists; returns the tag.
pub async fn ensure(docker: &Docker, binary_path: &Path) -> Result<(String, bool), BackendError> {
    let binary = std::fs::read(binary_path)
        .map_err(|e| BackendError::Other(format!("cannot read {}: {e}", binary_path.display())))?;
    let tag = tag_for(&binary);
    if docker.inspect_image(&tag).await.is_ok() {
        return Ok((tag, false));
    }
    let labels: HashMap<String, String> = [(LABEL_MANAGED.to_string(), "true".to_string())].into();
    let opts = bollard::query_parameters::BuildImageOptionsBuilder::new()
        .t(&tag)
        .rm(true)
        .forcerm(true)
        .labels(&labels)
        .build();
    let body = bollard::body_full(context(&binary)?.into());
    let mut stream = docker.build_image(opts, None, Some(body));
    while let Some(item) = stream.next().await {
        let info = item.map_err(docker_err)?;
        if let Some(e) = info.error {
            return Err(BackendError::Other(format!("image build failed: {e}")));
        }
    }
    // Also tag it :latest for people inspecting by hand.
    let _ = docker
        .tag_image(
            &tag,
            Some(
                bollard::query_parameters::TagImageOptionsBuilder::new()
                    .repo("stagelib")
                    .tag("latest")
                    .build(),
            ),
        )
        .await;
    Ok((tag, true))
}

/// Images built by stagelib: (tag, size in bytes, created).
pub async fn list(docker: &Docker) -> Result<Vec<(String, i64, i64)>, BackendError> {
    let filters: HashMap<String, Vec<String>> = [("label".to_string(), vec![format!("{LABEL_MANAGED}=true")])].into();
    let opts = bollard::query_parameters::ListImagesOptionsBuilder::new()
        .filters(&filters)
        .build();
    let images = docker.list_images(Some(opts)).await.map_err(docker_err)?;
    let mut out = Vec::new();
    for i in images {
        for t in i.repo_tags {
            out.push((t, i.size, i.created));
        }
    }
    out.sort();
    Ok(out)
}
