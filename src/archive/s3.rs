//! S3-compatible object storage: both clients (`object_store` for objects, the AWS SDK for
//! the parts of the protocol it does not speak) configured from one place, the AWS SDK's
//! standard resolution of endpoint, region and credentials.
//!
//! S3 Object Lock (retention and legal hold) is set through the AWS SDK right after the upload
//! and before the record counts as done; it is then read back, so a store that ignores it is
//! caught. A whole bucket is listed through the AWS SDK too, with keys URL-encoded on the wire
//! ([`url_decode`]), so that one key no reader could take (`object_store` refuses a whole page
//! over a `..` segment) is set apart instead of failing the listing.

use chrono::{DateTime, Utc};
use serde::Serialize;

use std::path::{Path, PathBuf};

use super::{is_safe_key, Archive, Failure, Object, PushError, Skipped, Target};

/// S3 Object Lock modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum LockMode {
    /// Nobody, not even the bucket's owner, can delete the object or shorten its retention
    Compliance,
    /// Users with a special permission can lift the lock
    Governance,
}

impl LockMode {
    fn sdk(self) -> aws_sdk_s3::types::ObjectLockRetentionMode {
        match self {
            LockMode::Compliance => aws_sdk_s3::types::ObjectLockRetentionMode::Compliance,
            LockMode::Governance => aws_sdk_s3::types::ObjectLockRetentionMode::Governance,
        }
    }
}

/// The Object Lock a push asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retention {
    /// Keep the object until then (with `mode`); `None` for a legal hold alone.
    pub until: Option<DateTime<Utc>>,
    pub mode: LockMode,
    pub legal_hold: bool,
}

/// The Object Lock read back from the archive after it was set.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RetentionKept {
    pub mode: Option<String>,
    pub until: Option<String>,
    pub legal_hold: bool,
}

impl Archive {
    /// Every sealed record's and anchor's object in the bucket under the prefix, sorted by key,
    /// and apart the keys of such names that are not safe archive keys ([`is_safe_key`]: a `.` or `..`
    /// segment, an empty segment, a backslash, a control character, not UTF-8) or that
    /// `object_store`, which reads them back, would name otherwise. The ETag is kept as the
    /// store sends it (quoted), as `object_store` gives it.
    pub(super) fn list_bucket(
        &self,
        client: &aws_sdk_s3::Client,
        bucket: &str,
    ) -> Result<(Vec<Object>, Vec<Skipped>), PushError> {
        let (mut objects, mut unsafe_keys) = (Vec::new(), Vec::new());
        let mut take = |key: Result<String, String>, size: u64, etag: String| {
            let utf8 = key.is_ok();
            let (Ok(key) | Err(key)) = key;
            let path = Path::new(&key);
            if !crate::cli::walk_takes(crate::cli::Walk::Evidence, path) {
                return;
            }
            // A key is read back through `object_store`, which must name the same key.
            let addressable = |key: &str| object_store::path::Path::from(key).as_ref() == key;
            if utf8 && is_safe_key(&key) && addressable(&key) {
                objects.push(Object { key, size, etag });
            } else {
                unsafe_keys.push(key);
            }
        };
        self.runtime.block_on(async {
            let prefix = (!self.prefix.is_empty()).then(|| format!("{}/", self.prefix));
            let mut pages = client
                .list_objects_v2()
                .bucket(bucket)
                .set_prefix(prefix)
                .encoding_type(aws_sdk_s3::types::EncodingType::Url)
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| Failure::from_sdk(&e).classify(&self.target))?;
                for object in page.contents() {
                    let Some(raw) = object.key() else { continue };
                    let key = url_decode(raw);
                    let etag = match (object.e_tag(), object.last_modified()) {
                        (Some(etag), _) => etag.to_string(),
                        (None, Some(t)) => {
                            DateTime::<Utc>::from_timestamp(t.secs(), t.subsec_nanos())
                                .map(|t| t.to_rfc3339())
                                .unwrap_or_default()
                        }
                        (None, None) => String::new(),
                    };
                    take(key, object.size().unwrap_or_default().max(0) as u64, etag);
                }
            }
            Ok::<_, PushError>(())
        })?;
        objects.sort_by(|a, b| a.key.cmp(&b.key));
        unsafe_keys.sort();
        let skipped = unsafe_keys
            .into_iter()
            .map(|key| Skipped {
                path: PathBuf::from(key),
                reason: "not a safe archive key (a `.` or `..` segment, an empty segment, a \
                         backslash, a control or other character object storage keys cannot \
                         be read with, or not UTF-8)"
                    .to_string(),
            })
            .collect();
        Ok((objects, skipped))
    }

    /// Set the Object Lock on an archived object and read it back. The outer error is a
    /// temporary failure; the inner one says why the archive did not keep the lock. A
    /// retention already at least as long (as after an earlier push) is left as it is.
    pub(super) async fn lock(
        &self,
        key: &str,
        version: Option<&str>,
        want: &Retention,
    ) -> Result<Result<RetentionKept, String>, PushError> {
        let Some((client, bucket)) = &self.s3 else {
            return Ok(Err("a directory archive has no Object Lock".into()));
        };
        let version = version.map(str::to_string);
        // HeadObject reports the lock of a version (as GetObjectRetention and
        // GetObjectLegalHold do, in one request).
        let read_back = || async {
            let head = match client
                .head_object()
                .bucket(bucket)
                .key(key)
                .set_version_id(version.clone())
                .send()
                .await
            {
                Ok(head) => head,
                Err(e) => return sdk_failure(&self.target, e).map(Err),
            };
            let until = head
                .object_lock_retain_until_date
                .and_then(|d| DateTime::<Utc>::from_timestamp(d.secs(), d.subsec_nanos()));
            Ok(Ok((
                RetentionKept {
                    mode: head.object_lock_mode.map(|m| m.as_str().to_string()),
                    until: until.map(|u| u.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
                    legal_hold: head.object_lock_legal_hold_status
                        == Some(aws_sdk_s3::types::ObjectLockLegalHoldStatus::On),
                },
                until,
            )))
        };
        let mode = want.mode.sdk().as_str().to_string();
        let kept = |current: &(RetentionKept, Option<DateTime<Utc>>)| {
            let (kept, until) = current;
            let retained = match want.until {
                None => true,
                Some(wanted) => {
                    kept.mode.as_deref() == Some(&mode)
                        && until.is_some_and(|u| u.timestamp() >= wanted.timestamp())
                }
            };
            retained && (kept.legal_hold || !want.legal_hold)
        };
        let current = match read_back().await? {
            Ok(current) => current,
            Err(reason) => return Ok(Err(reason)),
        };
        if kept(&current) {
            return Ok(Ok(current.0));
        }
        if let Some(until) = want.until {
            let date = aws_sdk_s3::primitives::DateTime::from_secs(until.timestamp());
            let retention = aws_sdk_s3::types::ObjectLockRetention::builder()
                .mode(want.mode.sdk())
                .retain_until_date(date)
                .build();
            if let Err(e) = client
                .put_object_retention()
                .bucket(bucket)
                .key(key)
                .set_version_id(version.clone())
                .retention(retention)
                .send()
                .await
            {
                return sdk_failure(&self.target, e).map(Err);
            }
        }
        if want.legal_hold {
            let hold = aws_sdk_s3::types::ObjectLockLegalHold::builder()
                .status(aws_sdk_s3::types::ObjectLockLegalHoldStatus::On)
                .build();
            if let Err(e) = client
                .put_object_legal_hold()
                .bucket(bucket)
                .key(key)
                .set_version_id(version.clone())
                .legal_hold(hold)
                .send()
                .await
            {
                return sdk_failure(&self.target, e).map(Err);
            }
        }
        Ok(match read_back().await? {
            Ok(current) if kept(&current) => Ok(current.0),
            Ok((current, _)) => Err(format!(
                "asked for {}{}, read back mode {}, until {}, legal hold {}",
                want.until
                    .map(|u| format!(
                        "{mode} until {}",
                        u.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                    ))
                    .unwrap_or_default(),
                if want.legal_hold {
                    " with a legal hold"
                } else {
                    ""
                },
                current.mode.as_deref().unwrap_or("none"),
                current.until.as_deref().unwrap_or("none"),
                if current.legal_hold { "on" } else { "off" },
            )),
            Err(reason) => Err(reason),
        })
    }
}

/// Open an S3 bucket with both clients, configured from the one standard resolution.
pub(super) async fn open_s3(
    bucket: &str,
    endpoint: Option<&str>,
) -> Result<(object_store::aws::AmazonS3, aws_sdk_s3::Client), PushError> {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(endpoint) = endpoint {
        loader = loader.endpoint_url(endpoint);
    }
    let config = loader.load().await;
    let region = config
        .region()
        .map(|r| r.to_string())
        .unwrap_or_else(|| "us-east-1".to_string());
    let credentials = match config.credentials_provider() {
        Some(provider) => {
            use aws_sdk_s3::config::ProvideCredentials as _;
            provider.provide_credentials().await.map_err(|e| {
                PushError::Setup(format!("no S3 credentials ({e}): set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE"))
            })?
        }
        None => return Err(PushError::Setup("no S3 credentials provider".into())),
    };
    let mut builder = object_store::aws::AmazonS3Builder::new()
        .with_bucket_name(bucket)
        .with_region(&region)
        .with_access_key_id(credentials.access_key_id())
        .with_secret_access_key(credentials.secret_access_key())
        .with_virtual_hosted_style_request(false)
        .with_retry(object_store::RetryConfig {
            max_retries: 3,
            retry_timeout: std::time::Duration::from_secs(20),
            backoff: object_store::BackoffConfig::default(),
        });
    if let Some(token) = credentials.session_token() {
        builder = builder.with_token(token);
    }
    if let Some(endpoint) = config.endpoint_url() {
        builder = builder
            .with_allow_http(endpoint.starts_with("http://"))
            .with_endpoint(endpoint);
    }
    let store = builder
        .build()
        .map_err(|e| PushError::Setup(e.to_string()))?;
    let client = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .region(aws_sdk_s3::config::Region::new(region))
            .force_path_style(true)
            .build(),
    );
    Ok((store, client))
}

/// A failed SDK call setting or reading the Object Lock: temporary (the outer error) when it
/// may pass by itself ([`PushError::exit_code`]), otherwise the store's answer, which says
/// why it did not keep the lock.
fn sdk_failure<E>(
    target: &Target,
    e: aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> Result<String, PushError>
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    let failure = Failure::from_sdk(&e);
    let reason = failure.answer();
    match failure.classify(target) {
        e if e.is_temporary() => Err(e),
        _ => Ok(reason),
    }
}

/// A key as S3 sends it with `encoding-type=url`: `%XX` escapes (and `+` for a space, as
/// AWS encodes). A key that is not UTF-8 is returned as an error, its bad bytes replaced.
fn url_decode(encoded: &str) -> Result<String, String> {
    let bytes = encoded.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_listed_url_encoded_are_decoded() {
        assert_eq!(
            url_decode("a/b%20c+d%2B.sealed.bin"),
            Ok("a/b c d+.sealed.bin".into())
        );
        assert_eq!(url_decode("a/%1B%5B31m"), Ok("a/\u{1b}[31m".into()));
        assert_eq!(url_decode("100%"), Ok("100%".into()));
        assert_eq!(url_decode("%zz%4"), Ok("%zz%4".into()));
        assert!(url_decode("a%FF").is_err());
    }
}
