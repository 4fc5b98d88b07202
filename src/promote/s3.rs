//! The S3 operations beetmover needs, through the `minio` client: upload, list
//! a prefix, read, stat and server-side copy.
use futures::StreamExt;
use minio::s3::builders::{CopySource, ObjectContent};
use minio::s3::types::{BucketName, ObjectKey, S3Api, ToStream};
use minio::s3::MinioClient;

use crate::stack::Endpoint;

/// One listed object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub key: String,
    pub size: u64,
    /// Without quotes.
    pub etag: String,
}

#[derive(Clone)]
pub struct Bucket {
    client: MinioClient,
    bucket: String,
}

fn err(e: impl std::fmt::Display) -> String {
    format!("s3: {e}")
}

impl Bucket {
    pub fn new(s3: &Endpoint, bucket: &str) -> Result<Self, String> {
        let base: minio::s3::http::BaseUrl = s3.url.parse().map_err(err)?;
        let client = minio::s3::MinioClientBuilder::new(base)
            .provider(Some(minio::s3::creds::StaticProvider::new(
                &s3.credentials.username,
                &s3.credentials.secret,
                None,
            )))
            .build()
            .map_err(err)?;
        Ok(Self {
            client,
            bucket: bucket.to_string(),
        })
    }

    pub fn name(&self) -> &str {
        &self.bucket
    }

    pub async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), String> {
        self.client
            .put_object_content(self.bucket.as_str(), key, ObjectContent::from(bytes))
            .map_err(err)?
            .build()
            .send()
            .await
            .map_err(err)?;
        Ok(())
    }

    pub async fn get(&self, key: &str) -> Result<Vec<u8>, String> {
        let resp = self
            .client
            .get_object(self.bucket.as_str(), key)
            .map_err(err)?
            .build()
            .send()
            .await
            .map_err(err)?;
        Ok(resp.into_bytes().await.map_err(err)?.to_vec())
    }

    /// Every object under `prefix`, sorted by key.
    pub async fn list(&self, prefix: &str) -> Result<Vec<Listed>, String> {
        let mut stream = self
            .client
            .list_objects(self.bucket.as_str())
            .map_err(err)?
            .recursive(true)
            .prefix(Some(prefix.to_string()))
            .build()
            .to_stream()
            .await;
        let mut out = Vec::new();
        while let Some(page) = stream.next().await {
            let page = page.map_err(err)?;
            for e in page.contents {
                if e.is_prefix {
                    continue;
                }
                out.push(Listed {
                    key: e.name,
                    size: e.size.unwrap_or(0),
                    etag: e.etag.unwrap_or_default().trim_matches('"').to_string(),
                });
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    /// Server-side copy within the bucket.
    pub async fn copy(&self, from: &str, to: &str) -> Result<(), String> {
        let source = CopySource::builder()
            .bucket(BucketName::new(self.bucket.as_str()).map_err(err)?)
            .object(ObjectKey::new(from).map_err(err)?)
            .build();
        self.client
            .copy_object(self.bucket.as_str(), to)
            .map_err(err)?
            .source(source)
            .build()
            .send()
            .await
            .map_err(err)?;
        Ok(())
    }
}
