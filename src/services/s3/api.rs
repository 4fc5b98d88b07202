//! The S3 operations, through the `s3s` protocol layer (SigV4, presigned URLs,
//! aws-chunked uploads, XML), over [`Store`].
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use s3s::dto::*;
use s3s::{s3_error, S3Error, S3ErrorCode, S3Request, S3Response, S3Result, S3};

use super::store::{Meta, Store, StoreError, Upload};

#[derive(Clone)]
pub struct S3Api {
    pub store: Arc<Store>,
}

fn err(e: StoreError) -> S3Error {
    let code = match &e {
        StoreError::NoSuchBucket(_) => S3ErrorCode::NoSuchBucket,
        StoreError::NoSuchKey(_) => S3ErrorCode::NoSuchKey,
        StoreError::InvalidBucket(_) => S3ErrorCode::InvalidBucketName,
        StoreError::InvalidKey(_) => S3ErrorCode::InvalidArgument,
        StoreError::BucketNotEmpty(_) => S3ErrorCode::BucketNotEmpty,
        StoreError::NoSuchUpload(_) => S3ErrorCode::NoSuchUpload,
        StoreError::InvalidPart(_) => S3ErrorCode::InvalidPart,
        StoreError::TooLarge { .. } => S3ErrorCode::EntityTooLarge,
        StoreError::Io(_) => S3ErrorCode::InternalError,
    };
    if code == S3ErrorCode::InternalError {
        tracing::error!(error = %e, "s3 storage failure");
    }
    S3Error::with_message(code, e.to_string())
}

fn time(secs: u64) -> Timestamp {
    Timestamp::from(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
}

async fn collect(body: Option<StreamingBlob>, limit: u64) -> S3Result<Vec<bytes::Bytes>> {
    let mut chunks = Vec::new();
    let mut total = 0u64;
    if let Some(mut b) = body {
        while let Some(c) = b.next().await {
            let c = c.map_err(|e| S3Error::with_message(S3ErrorCode::IncompleteBody, e.to_string()))?;
            total += c.len() as u64;
            if total > limit {
                return Err(S3Error::with_message(
                    S3ErrorCode::EntityTooLarge,
                    format!("object larger than the limit of {limit} bytes"),
                ));
            }
            chunks.push(c);
        }
    }
    Ok(chunks)
}

fn user_meta(m: Option<Metadata>) -> BTreeMap<String, String> {
    m.map(|m| m.into_iter().collect()).unwrap_or_default()
}

fn to_metadata(m: &BTreeMap<String, String>) -> Option<Metadata> {
    if m.is_empty() {
        None
    } else {
        Some(m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
    }
}

fn object(m: &Meta) -> Object {
    Object {
        key: Some(m.key.clone()),
        size: Some(m.size as i64),
        e_tag: Some(ETag::Strong(m.etag.clone())),
        last_modified: Some(time(m.modified)),
        storage_class: Some(ObjectStorageClass::from_static(ObjectStorageClass::STANDARD)),
        ..Default::default()
    }
}

/// Keys and common prefixes of a listing after prefix/delimiter/start.
fn listing(all: Vec<Meta>, prefix: &str, delimiter: Option<&str>, after: Option<&str>) -> Vec<(String, Option<Meta>)> {
    let mut out: Vec<(String, Option<Meta>)> = Vec::new();
    for m in all.into_iter().filter(|m| m.key.starts_with(prefix)) {
        if after.is_some_and(|a| m.key.as_str() <= a) {
            continue;
        }
        if let Some(d) = delimiter.filter(|d| !d.is_empty()) {
            if let Some(i) = m.key[prefix.len()..].find(d) {
                let cp = m.key[..prefix.len() + i + d.len()].to_string();
                if out.last().map(|(k, _)| k != &cp).unwrap_or(true) {
                    out.push((cp, None));
                }
                continue;
            }
        }
        out.push((m.key.clone(), Some(m)));
    }
    out
}

#[async_trait::async_trait]
impl S3 for S3Api {
    async fn list_buckets(&self, _req: S3Request<ListBucketsInput>) -> S3Result<S3Response<ListBucketsOutput>> {
        let buckets = self
            .store
            .buckets()
            .map_err(err)?
            .into_iter()
            .map(|(name, created)| Bucket {
                name: Some(name),
                creation_date: Some(Timestamp::from(created)),
                ..Default::default()
            })
            .collect();
        Ok(S3Response::new(ListBucketsOutput {
            buckets: Some(buckets),
            ..Default::default()
        }))
    }

    async fn create_bucket(&self, req: S3Request<CreateBucketInput>) -> S3Result<S3Response<CreateBucketOutput>> {
        if !self.store.create_bucket(&req.input.bucket).map_err(err)? {
            return Err(s3_error!(BucketAlreadyOwnedByYou));
        }
        Ok(S3Response::new(CreateBucketOutput::default()))
    }

    async fn head_bucket(&self, req: S3Request<HeadBucketInput>) -> S3Result<S3Response<HeadBucketOutput>> {
        if !self.store.bucket_exists(&req.input.bucket) {
            return Err(s3_error!(NoSuchBucket));
        }
        Ok(S3Response::new(HeadBucketOutput::default()))
    }

    async fn get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        if !self.store.bucket_exists(&req.input.bucket) {
            return Err(s3_error!(NoSuchBucket));
        }
        Ok(S3Response::new(GetBucketLocationOutput::default()))
    }

    async fn delete_bucket(&self, req: S3Request<DeleteBucketInput>) -> S3Result<S3Response<DeleteBucketOutput>> {
        self.store.delete_bucket(&req.input.bucket).map_err(err)?;
        Ok(S3Response::new(DeleteBucketOutput::default()))
    }

    async fn put_object(&self, req: S3Request<PutObjectInput>) -> S3Result<S3Response<PutObjectOutput>> {
        let input = req.input;
        if !self.store.bucket_exists(&input.bucket) {
            return Err(s3_error!(NoSuchBucket));
        }
        let chunks = collect(input.body, self.store.max_object_size).await?;
        let meta = self
            .store
            .put(
                &input.bucket,
                &input.key,
                &chunks,
                input.content_type,
                user_meta(input.metadata),
            )
            .map_err(err)?;
        Ok(S3Response::new(PutObjectOutput {
            e_tag: Some(ETag::Strong(meta.etag)),
            ..Default::default()
        }))
    }

    async fn get_object(&self, req: S3Request<GetObjectInput>) -> S3Result<S3Response<GetObjectOutput>> {
        let input = req.input;
        let meta = self.store.head(&input.bucket, &input.key).map_err(err)?;
        let (range, content_range) = match input.range {
            None => (0..meta.size, None),
            Some(r) => {
                let r = r.check(meta.size).map_err(|_| s3_error!(InvalidRange))?;
                let cr = format!("bytes {}-{}/{}", r.start, r.end - 1, meta.size);
                (r, Some(cr))
            }
        };
        let bytes = self.store.read(&input.bucket, &input.key, range.clone()).map_err(err)?;
        let body = futures::stream::once(async move { Ok::<_, std::io::Error>(bytes) });
        Ok(S3Response::new(GetObjectOutput {
            body: Some(StreamingBlob::wrap(body)),
            content_length: Some((range.end - range.start) as i64),
            content_range,
            content_type: meta.content_type.clone(),
            e_tag: Some(ETag::Strong(meta.etag.clone())),
            last_modified: Some(time(meta.modified)),
            metadata: to_metadata(&meta.user),
            accept_ranges: Some("bytes".into()),
            ..Default::default()
        }))
    }

    async fn head_object(&self, req: S3Request<HeadObjectInput>) -> S3Result<S3Response<HeadObjectOutput>> {
        let input = req.input;
        let meta = self.store.head(&input.bucket, &input.key).map_err(err)?;
        Ok(S3Response::new(HeadObjectOutput {
            content_length: Some(meta.size as i64),
            content_type: meta.content_type.clone(),
            e_tag: Some(ETag::Strong(meta.etag.clone())),
            last_modified: Some(time(meta.modified)),
            metadata: to_metadata(&meta.user),
            accept_ranges: Some("bytes".into()),
            ..Default::default()
        }))
    }

    async fn delete_object(&self, req: S3Request<DeleteObjectInput>) -> S3Result<S3Response<DeleteObjectOutput>> {
        self.store.delete(&req.input.bucket, &req.input.key).map_err(err)?;
        Ok(S3Response::new(DeleteObjectOutput::default()))
    }

    async fn delete_objects(&self, req: S3Request<DeleteObjectsInput>) -> S3Result<S3Response<DeleteObjectsOutput>> {
        let input = req.input;
        let mut deleted = Vec::new();
        for o in input.delete.objects {
            self.store.delete(&input.bucket, &o.key).map_err(err)?;
            deleted.push(DeletedObject {
                key: Some(o.key),
                ..Default::default()
            });
        }
        Ok(S3Response::new(DeleteObjectsOutput {
            deleted: Some(deleted),
            ..Default::default()
        }))
    }

    async fn copy_object(&self, req: S3Request<CopyObjectInput>) -> S3Result<S3Response<CopyObjectOutput>> {
        let input = req.input;
        let CopySource::Bucket { bucket, key, .. } = &input.copy_source else {
            return Err(s3_error!(NotImplemented, "only bucket copy sources are supported"));
        };
        let meta = self.store.copy(bucket, key, &input.bucket, &input.key).map_err(err)?;
        Ok(S3Response::new(CopyObjectOutput {
            copy_object_result: Some(CopyObjectResult {
                e_tag: Some(ETag::Strong(meta.etag)),
                last_modified: Some(time(meta.modified)),
                ..Default::default()
            }),
            ..Default::default()
        }))
    }

    async fn list_objects_v2(&self, req: S3Request<ListObjectsV2Input>) -> S3Result<S3Response<ListObjectsV2Output>> {
        let input = req.input;
        let prefix = input.prefix.clone().unwrap_or_default();
        let max = input.max_keys.unwrap_or(1000).clamp(0, 1000) as usize;
        let token = input
            .continuation_token
            .as_deref()
            .map(|t| {
                hex::decode(t)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .ok_or_else(|| s3_error!(InvalidArgument, "bad continuation token"))
            })
            .transpose()?;
        let after = token.clone().or(input.start_after.clone());
        let all = self.store.list(&input.bucket).map_err(err)?;
        let entries = listing(all, &prefix, input.delimiter.as_deref(), after.as_deref());
        let truncated = entries.len() > max;
        let page: Vec<_> = entries.into_iter().take(max).collect();
        let next = if truncated {
            page.last().map(|(k, _)| hex::encode(k))
        } else {
            None
        };
        let contents: Vec<Object> = page.iter().filter_map(|(_, m)| m.as_ref().map(object)).collect();
        let prefixes: Vec<CommonPrefix> = page
            .iter()
            .filter(|(_, m)| m.is_none())
            .map(|(k, _)| CommonPrefix {
                prefix: Some(k.clone()),
            })
            .collect();
        Ok(S3Response::new(ListObjectsV2Output {
            name: Some(input.bucket),
            prefix: Some(prefix),
            delimiter: input.delimiter,
            max_keys: Some(max as i32),
            key_count: Some(page.len() as i32),
            is_truncated: Some(truncated),
            continuation_token: input.continuation_token,
            next_continuation_token: next,
            start_after: input.start_after,
            contents: Some(contents),
            common_prefixes: if prefixes.is_empty() { None } else { Some(prefixes) },
            ..Default::default()
        }))
    }

    async fn list_objects(&self, req: S3Request<ListObjectsInput>) -> S3Result<S3Response<ListObjectsOutput>> {
        let input = req.input;
        let prefix = input.prefix.clone().unwrap_or_default();
        let max = input.max_keys.unwrap_or(1000).clamp(0, 1000) as usize;
        let all = self.store.list(&input.bucket).map_err(err)?;
        let entries = listing(all, &prefix, input.delimiter.as_deref(), input.marker.as_deref());
        let truncated = entries.len() > max;
        let page: Vec<_> = entries.into_iter().take(max).collect();
        Ok(S3Response::new(ListObjectsOutput {
            name: Some(input.bucket),
            prefix: Some(prefix),
            delimiter: input.delimiter,
            marker: input.marker,
            max_keys: Some(max as i32),
            is_truncated: Some(truncated),
            next_marker: if truncated {
                page.last().map(|(k, _)| k.clone())
            } else {
                None
            },
            contents: Some(page.iter().filter_map(|(_, m)| m.as_ref().map(object)).collect()),
            common_prefixes: Some(
                page.iter()
                    .filter(|(_, m)| m.is_none())
                    .map(|(k, _)| CommonPrefix {
                        prefix: Some(k.clone()),
                    })
                    .collect(),
            ),
            ..Default::default()
        }))
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        let input = req.input;
        let id = self
            .store
            .create_upload(&Upload {
                bucket: input.bucket.clone(),
                key: input.key.clone(),
                content_type: input.content_type,
                user: user_meta(input.metadata),
            })
            .map_err(err)?;
        Ok(S3Response::new(CreateMultipartUploadOutput {
            bucket: Some(input.bucket),
            key: Some(input.key),
            upload_id: Some(id),
            ..Default::default()
        }))
    }

    async fn upload_part(&self, req: S3Request<UploadPartInput>) -> S3Result<S3Response<UploadPartOutput>> {
        let input = req.input;
        let chunks = collect(input.body, self.store.max_object_size).await?;
        let etag = self
            .store
            .put_part(&input.upload_id, input.part_number, &chunks)
            .map_err(err)?;
        Ok(S3Response::new(UploadPartOutput {
            e_tag: Some(ETag::Strong(etag)),
            ..Default::default()
        }))
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        let input = req.input;
        let wanted: Vec<(i32, String)> = input
            .multipart_upload
            .and_then(|m| m.parts)
            .unwrap_or_default()
            .into_iter()
            .map(|p| {
                let etag = match p.e_tag {
                    Some(ETag::Strong(s)) | Some(ETag::Weak(s)) => s,
                    None => String::new(),
                };
                (p.part_number.unwrap_or(0), etag)
            })
            .collect();
        let (up, meta) = self.store.complete(&input.upload_id, &wanted).map_err(err)?;
        Ok(S3Response::new(CompleteMultipartUploadOutput {
            bucket: Some(up.bucket),
            key: Some(up.key),
            e_tag: Some(ETag::Strong(meta.etag)),
            ..Default::default()
        }))
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        self.store.abort(&req.input.upload_id).map_err(err)?;
        Ok(S3Response::new(AbortMultipartUploadOutput::default()))
    }

    async fn list_parts(&self, req: S3Request<ListPartsInput>) -> S3Result<S3Response<ListPartsOutput>> {
        let input = req.input;
        let parts = self
            .store
            .parts(&input.upload_id)
            .map_err(err)?
            .into_iter()
            .map(|(n, size, md5)| Part {
                part_number: Some(n),
                size: Some(size as i64),
                e_tag: Some(ETag::Strong(md5)),
                ..Default::default()
            })
            .collect();
        Ok(S3Response::new(ListPartsOutput {
            bucket: Some(input.bucket),
            key: Some(input.key),
            upload_id: Some(input.upload_id),
            parts: Some(parts),
            is_truncated: Some(false),
            ..Default::default()
        }))
    }
}
