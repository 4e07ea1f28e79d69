//! The server archive: a directory (or mounted share) or S3-compatible object storage, through
//! one interface (`object_store`), so both behave alike. Records are pushed to it and read
//! back from it (listed, ranged reads of their seals, fetched whole).
//!
//! Archive keys are `[PREFIX/]YYYY/MM/DD/RECORD-ID.HASH.sealed.EXT`, from the signed manifest
//! (the sealing date in UTC and the record id, which is restricted to `[A-Za-z0-9_-]`, so no
//! record can name a key outside its prefix) and `HASH`, the first 16 hex digits of the
//! manifest's SHA-256. Two different seals of one record (a correction, a record sealed again)
//! therefore never share a key, and two pushes racing for one key can only be pushing the same
//! seal: no store has to honour conditional writes (Garage ignores `If-None-Match`). An
//! existing key is never overwritten: if it holds the same seal the record is already
//! archived, otherwise it is a conflict and nothing changes. After an upload the object's seal
//! is read back (a ranged read of its manifest, signature and footer; all of it with full
//! verification) before the record counts as done.
//!
//! A directory archive is written by callrec itself: a locked temporary file in the key's
//! directory, fsynced, linked into place only if the key is free, then the file and every
//! directory up to the archive's root fsynced before the record counts as done.
//!
//! S3 Object Lock (retention and legal hold) is set through the AWS SDK, which speaks those
//! parts of the protocol, right after the upload and before the record counts as done; it is
//! then read back, so a store that ignores it is caught. Endpoint, region and credentials for
//! both clients come from one place: the AWS SDK's standard resolution. A whole bucket is
//! listed through the AWS SDK too, so that one key no reader could take (`object_store`
//! refuses a page over a `..` segment) is set apart instead of failing the listing.
//!
//! A failure is classed from what the store answered ([`PushError::exit_code`]): only what may
//! pass by itself is temporary (exit 75: no connection, a timeout, HTTP 5xx, 429, `SlowDown`);
//! refused credentials, a bucket that does not exist and an archive path that cannot be
//! written are named, and trying again is left to a person.

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Datelike, Utc};
use futures::StreamExt;
use object_store::{ObjectStore, PutMode, PutOptions, PutPayload};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::format::Manifest;
use crate::fsutil::{self, PathContext, PathError};
use crate::keys::TrustedKeys;
use crate::verify::{self, SealedFile, VerifyError};

/// Where records go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Dir(PathBuf),
    S3 { bucket: String, prefix: String },
}

impl std::fmt::Display for Target {
    /// The form [`Target::from_str`](std::str::FromStr) reads back.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Dir(dir) => write!(f, "{}", dir.display()),
            Target::S3 { bucket, prefix } if prefix.is_empty() => write!(f, "s3://{bucket}"),
            Target::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

/// An archived object, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    pub key: String,
    pub size: u64,
    /// What changes when the object changes: its ETag (or, failing that, its modification
    /// time).
    pub etag: String,
}

/// Is `key` a safe archive key: relative, `/`-separated, no empty, `.` or `..` segment, no
/// control characters? Only such keys are read, so none can name a file outside a directory
/// archive.
pub fn is_safe_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .split('/')
            .all(|s| !s.is_empty() && s != "." && s != ".." && !s.contains('\\'))
        && !key.chars().any(char::is_control)
}

impl Target {
    /// The file holding `key` in a directory archive (`None` for object storage). A key that
    /// is not safe is refused, so no key can name a file outside the archive.
    pub fn local_path(&self, key: &str) -> Result<Option<PathBuf>, PushError> {
        if !is_safe_key(key) {
            return Err(PushError::Setup(format!("unsafe archive key {key:?}")));
        }
        Ok(match self {
            Target::Dir(dir) => Some(dir.join(key)),
            Target::S3 { .. } => None,
        })
    }
}

impl std::str::FromStr for Target {
    type Err = String;
    fn from_str(s: &str) -> Result<Target, String> {
        if let Some(rest) = s.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(format!("{s:?}: no bucket; use s3://BUCKET/PREFIX"));
            }
            return Ok(Target::S3 {
                bucket: bucket.to_string(),
                prefix: prefix.trim_matches('/').to_string(),
            });
        }
        let path = s.strip_prefix("file://").unwrap_or(s);
        if path.is_empty() {
            return Err("empty target".into());
        }
        Ok(Target::Dir(PathBuf::from(path)))
    }
}

/// Why a push (or a read of the archive) failed. [`PushError::exit_code`] classes it: only
/// what may pass by itself is temporary (exit 75, the spool left to be tried again); what
/// will not (refused credentials, a bucket that does not exist, an archive path that cannot
/// be written) names its cause and is exit 1 or 2.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error(transparent)]
    NotSealed(#[from] VerifyError),
    #[error(transparent)]
    Io(#[from] PathError),
    #[error("archive key {key} already holds a different record; nothing was changed")]
    Conflict { key: String },
    #[error("the archived copy of {key} does not match the local seal after upload")]
    Mismatch { key: String },
    /// The archive could not be reached (connection refused or reset, a timeout, a name that
    /// did not resolve) or answered that it is failing or busy (HTTP 5xx, 429, `SlowDown`):
    /// this may pass by itself, so try again later.
    #[error("archive unreachable: {0}")]
    Unreachable(String),
    /// The archive refused the credentials (HTTP 401 or 403: an unknown key, a wrong secret,
    /// a key without access to the bucket).
    #[error("{archive} refused the credentials ({answer}): check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) and the key's access to the bucket")]
    Credentials { archive: String, answer: String },
    /// The bucket named by the target does not exist.
    #[error("the bucket {bucket:?} does not exist ({answer})")]
    NoBucket { bucket: String, answer: String },
    /// Any other failure of the archive that trying again will not mend, as it answered.
    #[error("{archive}: {answer}")]
    Refused { archive: String, answer: String },
    #[error("{key}: the archive did not keep the retention: {reason}")]
    RetentionNotKept { key: String, reason: String },
    #[error("cannot open the archive: {0}")]
    Setup(String),
}

/// EX_TEMPFAIL: a temporary failure; try again later.
pub const EXIT_TEMPORARY: u8 = 75;

impl PushError {
    /// The exit status this error calls for: [`EXIT_TEMPORARY`] (75) for what may pass by
    /// itself (the archive unreachable, failing or busy); [`crate::cli::EXIT_ERROR`] (2) when
    /// the archive cannot be used at all (it cannot be opened, the credentials are refused,
    /// the bucket does not exist), so no other record can go either; otherwise
    /// [`crate::cli::EXIT_FAILED`] (1): this record failed, the others may not.
    pub fn exit_code(&self) -> u8 {
        match self {
            PushError::Unreachable(_) => EXIT_TEMPORARY,
            PushError::Io(e) if io_temporary(e.source.kind()) => EXIT_TEMPORARY,
            PushError::Credentials { .. } | PushError::NoBucket { .. } | PushError::Setup(_) => {
                crate::cli::EXIT_ERROR
            }
            _ => crate::cli::EXIT_FAILED,
        }
    }

    /// Temporary failures (exit 75) leave everything to be tried again.
    pub fn is_temporary(&self) -> bool {
        self.exit_code() == EXIT_TEMPORARY
    }
}

/// Local I/O failures that may pass by themselves (a network file system that timed out).
fn io_temporary(kind: std::io::ErrorKind) -> bool {
    use std::io::ErrorKind::*;
    matches!(kind, TimedOut | WouldBlock | Interrupted)
}

/// What is known of a failed request to the archive, from either client.
#[derive(Debug, Default)]
struct Failure {
    /// The HTTP status the store answered.
    status: Option<u16>,
    /// The S3 error code (`AccessDenied`, `NoSuchBucket`, `SlowDown`, ...) and message.
    code: Option<String>,
    message: Option<String>,
    /// The request failed in transport: no connection, a timeout, a connection dropped.
    transport: bool,
    /// The first I/O error in the chain of causes.
    io: Option<std::io::ErrorKind>,
    /// The whole error, with its causes.
    detail: String,
}

impl Failure {
    /// Fill in what the causes of `err` say: the first I/O error's kind.
    fn with_causes(mut self, err: &(dyn std::error::Error + 'static)) -> Failure {
        let mut cause = Some(err);
        while let Some(e) = cause {
            if let Some(io) = e.downcast_ref::<std::io::Error>() {
                self.io.get_or_insert(io.kind());
            }
            cause = e.source();
        }
        self
    }

    /// From an `object_store` error: its variant, the HTTP failure kind of its cause, and the
    /// status and S3 error of the answer (which `object_store` keeps only in its message).
    fn from_store(err: &object_store::Error) -> Failure {
        use object_store::client::{HttpError, HttpErrorKind};
        let detail = crate::cli::error_chain(err);
        let mut failure = Failure {
            status: match err {
                object_store::Error::Unauthenticated { .. } => Some(401),
                object_store::Error::PermissionDenied { .. } => Some(403),
                _ => None,
            },
            ..Failure::default()
        }
        .with_causes(err);
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(err);
        while let Some(e) = cause {
            if let Some(http) = e.downcast_ref::<HttpError>() {
                failure.transport |= matches!(
                    http.kind(),
                    HttpErrorKind::Connect
                        | HttpErrorKind::Request
                        | HttpErrorKind::Timeout
                        | HttpErrorKind::Interrupted
                        | HttpErrorKind::Decode
                );
            }
            cause = e.source();
        }
        // `object_store` shows the cause of a request that failed in transport as `HTTP
        // error: ...` but hides its `HttpError` from the chain of causes (a transparent
        // wrapper forwards past it), so the message says it.
        failure.transport |= detail.contains("HTTP error: ");
        if let Some(at) = detail.find("Server returned non-2xx status code: ") {
            let digits = &detail[at + "Server returned non-2xx status code: ".len()..];
            failure.status = digits
                .get(..3)
                .and_then(|d| d.parse().ok())
                .or(failure.status);
        }
        let element = |name: &str| {
            let open = format!("<{name}>");
            let start = detail.find(&open)? + open.len();
            let len = detail[start..].find(&format!("</{name}>"))?;
            Some(detail[start..start + len].to_string())
        };
        failure.code = element("Code");
        failure.message = element("Message");
        failure.detail = detail;
        failure
    }

    /// From an AWS SDK error: its kind (dispatch, timeout, service, response) and the
    /// service's error metadata and HTTP status.
    fn from_sdk<E>(
        err: &aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
    ) -> Failure
    where
        E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
    {
        use aws_sdk_s3::error::SdkError;
        let mut failure = Failure {
            detail: crate::cli::error_chain(err),
            ..Failure::default()
        }
        .with_causes(err);
        match err {
            // A request that could not be sent (no connection, a name that did not resolve);
            // one refused before sending (`is_user`: a bad endpoint) is not temporary.
            SdkError::DispatchFailure(dispatch) => failure.transport = !dispatch.is_user(),
            SdkError::TimeoutError(_) => failure.transport = true,
            SdkError::ServiceError(service) => {
                failure.status = Some(service.raw().status().as_u16());
                failure.code = service.err().code().map(str::to_string);
                failure.message = service.err().message().map(str::to_string);
            }
            SdkError::ResponseError(response) => {
                failure.status = Some(response.raw().status().as_u16())
            }
            _ => {}
        }
        failure
    }

    /// The store's answer, in short: `403 AccessDenied: Invalid signature`.
    fn answer(&self) -> String {
        match (self.status, &self.code) {
            (None, None) => self.detail.clone(),
            (status, code) => {
                let mut answer = "the store answered".to_string();
                if let Some(status) = status {
                    answer.push_str(&format!(" {status}"));
                }
                if let Some(code) = code {
                    answer.push_str(&format!(" {code}"));
                }
                if let Some(message) = &self.message {
                    answer.push_str(&format!(": {message}"));
                }
                answer
            }
        }
    }

    /// Class the failure (see [`PushError::exit_code`]).
    fn classify(self, target: &Target) -> PushError {
        let code = self.code.as_deref().unwrap_or_default();
        let status = self.status.unwrap_or_default();
        let archive = target.to_string();
        if code == "NoSuchBucket" {
            if let Target::S3 { bucket, .. } = target {
                return PushError::NoBucket {
                    bucket: bucket.clone(),
                    answer: self.answer(),
                };
            }
        }
        let credentials = matches!(
            code,
            "AccessDenied"
                | "InvalidAccessKeyId"
                | "SignatureDoesNotMatch"
                | "ExpiredToken"
                | "InvalidToken"
                | "TokenRefreshRequired"
        );
        if status == 401 || status == 403 || credentials {
            return PushError::Credentials {
                archive,
                answer: self.answer(),
            };
        }
        let busy = matches!(
            code,
            "SlowDown"
                | "ServiceUnavailable"
                | "InternalError"
                | "RequestTimeout"
                | "Throttling"
                | "ThrottlingException"
                | "RequestThrottled"
                | "TooManyRequests"
                | "OperationAborted"
        );
        // 501 Not Implemented (an S3 feature this store lacks) does not pass by itself.
        if (status >= 500 && status != 501) || status == 429 || status == 408 || busy {
            return PushError::Unreachable(self.answer());
        }
        // A TLS failure (a certificate not trusted) does not pass by itself.
        let tls = self.io == Some(std::io::ErrorKind::InvalidData);
        if self.status.is_none() && !tls && (self.transport || self.io.is_some_and(io_temporary)) {
            return PushError::Unreachable(self.detail);
        }
        PushError::Refused {
            archive,
            answer: self.answer(),
        }
    }
}
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

/// How a record came to be in the archive.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Archived {
    /// By this push.
    Uploaded,
    /// The same seal was there before.
    AlreadyArchived,
}

/// The proof that a record was handed over, appended to the journal.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Receipt {
    pub key: String,
    pub record_id: String,
    pub size: u64,
    /// SHA-256 of the whole sealed file as archived.
    pub sha256: String,
    pub manifest_sha256: String,
    pub etag: Option<String>,
    pub version: Option<String>,
    pub status: Archived,
    pub at: String,
    /// The Object Lock as read back, when one was asked for and kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention: Option<RetentionKept>,
    /// Why the Object Lock asked for was not kept (the record is archived without it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention_problem: Option<String>,
}

/// An open archive.
pub struct Archive {
    target: Target,
    store: Arc<dyn ObjectStore>,
    prefix: String,
    runtime: tokio::runtime::Runtime,
    /// The bucket and an SDK client for the parts of S3 that `object_store` does not speak.
    s3: Option<(aws_sdk_s3::Client, String)>,
    retention: Option<Retention>,
    /// Keys listed in the archive, per directory (listed once per run, on first use).
    listing: std::sync::Mutex<HashMap<String, Arc<HashSet<String>>>>,
    /// Keys this run has claimed, each with a lock held while one of its files is pushed (a
    /// second file of the same key waits, then finds it archived) and whether it was tried.
    claims: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<bool>>>>,
    /// Directories of a directory archive whose entry in their parent this run has fsynced.
    synced: std::sync::Mutex<HashSet<PathBuf>>,
    /// Uploads in flight at once (`-j`); read-backs and checks run beside them, as rclone's
    /// checkers run beside its transfers.
    uploads: tokio::sync::Semaphore,
}

/// Objects up to this size are sent in one request; larger ones in parts of this size.
pub const PART_SIZE: usize = 16 << 20;
/// Parts of one object in flight at once.
pub const PART_CONCURRENCY: usize = 4;

impl Archive {
    /// Open a target. For S3, endpoint, region and credentials are resolved the AWS SDK's
    /// standard way (`AWS_ENDPOINT_URL`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, `AWS_PROFILE` and the profile files), with `endpoint` overriding;
    /// requests are path-style, as on-premises stores expect.
    pub fn open(
        target: &Target,
        endpoint: Option<&str>,
        jobs: usize,
        retention: Option<Retention>,
    ) -> Result<Archive, PushError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(jobs.clamp(1, 16))
            .enable_all()
            .build()
            .map_err(|e| PushError::Setup(e.to_string()))?;
        let (store, prefix, s3): (Arc<dyn ObjectStore>, String, _) = match target {
            Target::Dir(dir) => {
                if !dir.is_dir() {
                    std::fs::create_dir_all(dir).at("cannot create", dir)?;
                    let parent = fsutil::parent_dir(dir);
                    fsutil::sync_dir(parent).at("cannot sync", parent)?;
                }
                let store = object_store::local::LocalFileSystem::new_with_prefix(dir)
                    .map_err(|e| PushError::Setup(e.to_string()))?;
                (Arc::new(store), String::new(), None)
            }
            Target::S3 { bucket, prefix } => {
                let (store, client) = runtime.block_on(open_s3(bucket, endpoint))?;
                (
                    Arc::new(store),
                    prefix.clone(),
                    Some((client, bucket.clone())),
                )
            }
        };
        let target = match target {
            Target::Dir(dir) => Target::Dir(std::path::absolute(dir).at("cannot resolve", dir)?),
            other => other.clone(),
        };
        Ok(Archive {
            target,
            store,
            prefix,
            runtime,
            s3,
            retention,
            listing: Default::default(),
            claims: Default::default(),
            synced: Default::default(),
            uploads: tokio::sync::Semaphore::new(jobs.max(1)),
        })
    }

    /// Whether the archive listed `key`: one listing per directory of keys (a day), so a
    /// batch costs one request per day instead of one per record. In a directory archive,
    /// what killed pushes left in that directory is removed first ([`remove_leftovers`]).
    async fn listed(&self, key: &str) -> Result<bool, PushError> {
        let dir = key.rsplit_once('/').map_or("", |(dir, _)| dir);
        let cached = self
            .listing
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(dir)
            .cloned();
        let keys = match cached {
            Some(keys) => keys,
            None => {
                if let Target::Dir(root) = &self.target {
                    remove_leftovers(&root.join(dir));
                }
                let prefix = object_store::path::Path::from(dir);
                let listing = self
                    .store
                    .list_with_delimiter(Some(&prefix))
                    .await
                    .map_err(|e| self.fail(e))?;
                let keys: Arc<HashSet<String>> = Arc::new(
                    listing
                        .objects
                        .into_iter()
                        .map(|meta| meta.location.to_string())
                        .collect(),
                );
                self.listing
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(dir.to_string(), keys.clone());
                keys
            }
        };
        Ok(keys.contains(key))
    }

    /// The archive's name: an absolute directory or `s3://BUCKET/PREFIX`.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// A failed `object_store` request, classed (see [`PushError::exit_code`]).
    fn fail(&self, e: object_store::Error) -> PushError {
        Failure::from_store(&e).classify(&self.target)
    }

    /// Every sealed record's object under the prefix (named `….sealed` or `….sealed.EXT`,
    /// as callrec-push and callrec-seal name them; working files passed over), sorted by key,
    /// and apart from them the keys of sealed names that are not safe archive keys
    /// ([`is_safe_key`]: a `.` or `..` segment, an empty segment, a backslash, a control
    /// character, not UTF-8), which no reader takes: one bad key does not stop a listing.
    ///
    /// Object storage is listed through the AWS SDK (`object_store` refuses a whole page
    /// over one such key), with keys URL-encoded on the wire so that any key survives XML.
    /// The ETag is kept as the store sends it (quoted), as `object_store` gave it.
    pub fn list(&self) -> Result<(Vec<Object>, Vec<String>), PushError> {
        let (mut objects, mut unsafe_keys) = (Vec::new(), Vec::new());
        // A key is read back through `object_store`, which must name the same key.
        let addressable =
            |key: &str| object_store::path::Path::from(key).as_ref() == key || self.s3.is_none();
        let mut take = |key: Result<String, String>, size: u64, etag: String| {
            let utf8 = key.is_ok();
            let (Ok(key) | Err(key)) = key;
            let path = Path::new(&key);
            if crate::cli::is_working_file(path) || !crate::cli::is_sealed_name(path) {
                return;
            }
            if utf8 && is_safe_key(&key) && addressable(&key) {
                objects.push(Object { key, size, etag });
            } else {
                unsafe_keys.push(key);
            }
        };
        match &self.s3 {
            Some((client, bucket)) => self.runtime.block_on(async {
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
            })?,
            None => self.runtime.block_on(async {
                let prefix = (!self.prefix.is_empty())
                    .then(|| object_store::path::Path::from(self.prefix.as_str()));
                let mut listing = self.store.list(prefix.as_ref());
                while let Some(meta) = listing.next().await {
                    let meta = meta.map_err(|e| self.fail(e))?;
                    let etag = meta
                        .e_tag
                        .unwrap_or_else(|| meta.last_modified.to_rfc3339());
                    take(Ok(meta.location.to_string()), meta.size, etag);
                }
                Ok::<_, PushError>(())
            })?,
        }
        objects.sort_by(|a, b| a.key.cmp(&b.key));
        unsafe_keys.sort();
        Ok((objects, unsafe_keys))
    }

    /// Random access to an archived object: the file itself in a directory archive; ranged
    /// requests to object storage, with the object's last 64 KiB (where the seal is) read
    /// once up front.
    pub fn reader(&self, object: &Object) -> Result<Box<dyn fsutil::ReadAt>, PushError> {
        if let Some(path) = self.target.local_path(&object.key)? {
            return Ok(Box::new(File::open(&path).at("cannot open", &path)?));
        }
        let location = object_store::path::Path::from(object.key.as_str());
        let tail_start = object.size.saturating_sub(TAIL_CACHE);
        let tail = self
            .runtime
            .block_on(self.store.get_range(&location, tail_start..object.size))
            .map_err(|e| self.fail(e))?;
        Ok(Box::new(ObjectReader {
            store: self.store.clone(),
            handle: self.runtime.handle().clone(),
            location,
            tail_start,
            tail,
        }))
    }

    /// Copy an archived object into `out` (which should be a new temporary file).
    pub fn fetch(&self, key: &str, mut out: impl Write) -> Result<u64, PushError> {
        if !is_safe_key(key) {
            return Err(PushError::Setup(format!("unsafe archive key {key:?}")));
        }
        let location = object_store::path::Path::from(key);
        let mut total = 0u64;
        self.runtime.block_on(self.read_all(&location, |chunk| {
            out.write_all(chunk)
                .map_err(|e| PushError::Setup(e.to_string()))?;
            total += chunk.len() as u64;
            Ok(())
        }))?;
        Ok(total)
    }

    /// Read a whole object, handing each chunk to `each` as it arrives.
    async fn read_all(
        &self,
        location: &object_store::path::Path,
        mut each: impl FnMut(&[u8]) -> Result<(), PushError>,
    ) -> Result<(), PushError> {
        let mut stream = self
            .store
            .get(location)
            .await
            .map_err(|e| self.fail(e))?
            .into_stream();
        while let Some(chunk) = stream.next().await {
            each(&chunk.map_err(|e| self.fail(e))?)?;
        }
        Ok(())
    }

    /// The archive key of a sealed file: its sealing day, record id and the first 16 hex
    /// digits of its manifest's SHA-256 (see the module documentation).
    pub fn key(&self, manifest: &Manifest, manifest_sha256: &[u8; 32], file_name: &str) -> String {
        let ext = file_name
            .rsplit_once('.')
            .map(|(_, e)| e)
            .filter(|e| {
                !e.is_empty() && e.len() <= 16 && e.bytes().all(|b| b.is_ascii_alphanumeric())
            })
            .unwrap_or("bin");
        let date = manifest.sealed_at;
        let key = format!(
            "{:04}/{:02}/{:02}/{}.{}.sealed.{ext}",
            date.year(),
            date.month(),
            date.day(),
            manifest.record_id,
            &hex::encode(manifest_sha256)[..16],
        );
        if self.prefix.is_empty() {
            key
        } else {
            format!("{}/{key}", self.prefix)
        }
    }

    /// Push one sealed file: upload unless the same seal is archived already, then read it back.
    /// With `trusted` keys the file is fully verified first; otherwise the quick checks guard
    /// against pushing something that is not a seal at all. Only a regular file is read (a
    /// named pipe is refused, not waited on), and the bytes checked are the bytes sent.
    pub fn push(
        &self,
        path: &Path,
        trusted: Option<&TrustedKeys>,
        verify_full: bool,
    ) -> Result<Receipt, PushError> {
        let file = fsutil::open_regular(path).at("cannot open", path)?;
        let size = file.metadata().at("cannot read", path)?.len();
        let source = file.try_clone().at("cannot open", path)?;
        let sealed = SealedFile::from_source(path, Box::new(source), size)?;
        let (manifest, manifest_sha256) = match trusted {
            Some(keys) => {
                let verified = verify::full(&sealed, keys, None)?;
                (verified.manifest, verified.manifest_sha256)
            }
            None => {
                let (manifest, bytes) = verify::manifest(&sealed)?;
                (manifest, Manifest::sha256(&bytes))
            }
        };
        let tail = sealed.tail()?;
        let local = Local {
            path,
            file: &file,
            size,
            tail: &tail,
        };
        self.runtime
            .block_on(self.push_async(&local, &manifest, manifest_sha256, verify_full))
    }

    /// Push a checked sealed file.
    async fn push_async(
        &self,
        local: &Local<'_>,
        manifest: &Manifest,
        manifest_sha256: [u8; 32],
        verify_full: bool,
    ) -> Result<Receipt, PushError> {
        let name = local
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let key = self.key(manifest, &manifest_sha256, &name);
        let location = object_store::path::Path::from(key.as_str());

        // A key is uploaded at most once a run, and never over what the archive listed (Garage,
        // for one, ignores If-None-Match). A second file of the same key waits for the first.
        let claim = self
            .claims
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key.clone())
            .or_default()
            .clone();
        let mut tried = claim.lock().await;
        let first_try = !std::mem::replace(&mut *tried, true);
        let uploaded = if first_try && !self.listed(&key).await? {
            let _slot = self.uploads.acquire().await.expect("never closed");
            match self.upload(local, &key, &location).await {
                Ok(uploaded) => Some(uploaded),
                // Another push (a second spool, a second process) may have stored this very
                // seal meanwhile: a directory refuses to link over it, Garage drops the
                // multipart upload it replaced (NoSuchUpload). An archive that now holds
                // exactly this seal has the record.
                Err(e) => match self.holds(&location, local).await {
                    Ok(Some(_)) => None,
                    _ => return Err(e),
                },
            }
        } else {
            None
        };
        let (status, (sha256, etag, version)) = match uploaded {
            Some(uploaded) => (Archived::Uploaded, uploaded),
            None => (Archived::AlreadyArchived, (local.sha256()?, None, None)),
        };
        // Read back, in one request: the object must be this size and end with this seal.
        let Some(meta) = self.holds(&location, local).await? else {
            return Err(if status == Archived::Uploaded {
                PushError::Mismatch { key }
            } else {
                PushError::Conflict { key }
            });
        };
        if verify_full {
            let mut hasher = Sha256::new();
            self.read_all(&location, |chunk| {
                hasher.update(chunk);
                Ok(())
            })
            .await?;
            if hex::encode(hasher.finalize()) != sha256 {
                return Err(PushError::Mismatch { key });
            }
        }
        if let Some(archived) = self.target.local_path(&key)? {
            self.make_durable(&archived)?;
        }
        let (etag, version) = (etag.or(meta.e_tag), version.or(meta.version));
        let (retention, retention_problem) = match &self.retention {
            None => (None, None),
            Some(want) => match self.lock(&key, version.as_deref(), want).await? {
                Ok(kept) => (Some(kept), None),
                Err(reason) => (None, Some(reason)),
            },
        };
        Ok(Receipt {
            key,
            record_id: manifest.record_id.to_string(),
            size: local.size,
            sha256,
            manifest_sha256: hex::encode(manifest_sha256),
            etag,
            version,
            status,
            at: Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            retention,
            retention_problem,
        })
    }

    /// The object at `location` if it is the local seal: this size, ending with this seal.
    async fn holds(
        &self,
        location: &object_store::path::Path,
        local: &Local<'_>,
    ) -> Result<Option<object_store::ObjectMeta>, PushError> {
        let options = object_store::GetOptions {
            range: Some(object_store::GetRange::Suffix(local.tail.len() as u64)),
            ..object_store::GetOptions::default()
        };
        let remote = match self.store.get_opts(location, options).await {
            Ok(remote) => remote,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(self.fail(e)),
        };
        let meta = remote.meta.clone();
        let remote_tail = remote.bytes().await.map_err(|e| self.fail(e))?;
        Ok((meta.size == local.size && remote_tail[..] == local.tail[..]).then_some(meta))
    }

    /// Make an archived file of a directory archive durable, whichever process wrote it: the
    /// file, its directory, and (once a run) each directory's entry up to the archive's root.
    fn make_durable(&self, path: &Path) -> Result<(), PathError> {
        File::open(path)
            .and_then(|f| f.sync_all())
            .at("cannot sync", path)?;
        let mut dir = fsutil::parent_dir(path);
        fsutil::sync_dir(dir).at("cannot sync", dir)?;
        let Target::Dir(root) = &self.target else {
            return Ok(());
        };
        let mut synced = self.synced.lock().unwrap_or_else(|e| e.into_inner());
        while dir.starts_with(root) && dir != root && !synced.contains(dir) {
            let parent = fsutil::parent_dir(dir);
            fsutil::sync_dir(parent).at("cannot sync", parent)?;
            synced.insert(dir.to_path_buf());
            dir = parent;
        }
        Ok(())
    }

    /// Set the Object Lock on an archived object and read it back. The outer error is a
    /// temporary failure; the inner one says why the archive did not keep the lock. A
    /// retention already at least as long (as after an earlier push) is left as it is.
    async fn lock(
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

    /// Upload a file: to a directory, through a locked temporary file linked into place only
    /// if the key is free; to object storage in one conditional request when small, in parts
    /// when large. A store that honours conditional create refuses a racing writer; the
    /// read-back catches the others.
    async fn upload(
        &self,
        local: &Local<'_>,
        key: &str,
        location: &object_store::path::Path,
    ) -> Result<(String, Option<String>, Option<String>), PushError> {
        let (path, mut file, size) = (local.path, local.file, local.size);
        file.seek(SeekFrom::Start(0)).at("cannot read", path)?;
        if let Some(dest) = self.target.local_path(key)? {
            return write_new(file, &dest, key).map(|sha256| (sha256, None, None));
        }
        let mut hasher = Sha256::new();
        if size <= PART_SIZE as u64 {
            let mut bytes = Vec::with_capacity(size as usize);
            file.read_to_end(&mut bytes).at("cannot read", path)?;
            hasher.update(&bytes);
            let options = PutOptions {
                mode: PutMode::Create,
                ..PutOptions::default()
            };
            let result = match self
                .store
                .put_opts(location, PutPayload::from(bytes), options)
                .await
            {
                Ok(result) => result,
                Err(object_store::Error::AlreadyExists { .. }) => {
                    return Err(PushError::Conflict {
                        key: key.to_string(),
                    })
                }
                Err(e) => return Err(self.fail(e)),
            };
            return Ok((hex::encode(hasher.finalize()), result.e_tag, result.version));
        }
        // Parts go up several at a time, as S3 clients do.
        let upload = self
            .store
            .put_multipart(location)
            .await
            .map_err(|e| self.fail(e))?;
        let mut writer = object_store::WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
        let mut buf = vec![0u8; PART_SIZE];
        loop {
            let n = file.read(&mut buf).at("cannot read", path)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            if let Err(e) = writer.wait_for_capacity(PART_CONCURRENCY).await {
                let _ = writer.abort().await;
                return Err(self.fail(e));
            }
            writer.write(&buf[..n]);
        }
        let result = writer.finish().await.map_err(|e| self.fail(e))?;
        Ok((hex::encode(hasher.finalize()), result.e_tag, result.version))
    }
}

/// Open an S3 bucket with both clients, configured from the one standard resolution.
async fn open_s3(
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

/// How much of an object's end [`Archive::reader`] reads up front: the text block, manifest,
/// signature and footer of any ordinary record.
const TAIL_CACHE: u64 = 64 << 10;

/// An archived object read with ranged requests, its end cached.
struct ObjectReader {
    store: Arc<dyn ObjectStore>,
    handle: tokio::runtime::Handle,
    location: object_store::path::Path,
    tail_start: u64,
    tail: bytes::Bytes,
}

impl fsutil::ReadAt for ObjectReader {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        let end = offset + buf.len() as u64;
        if offset >= self.tail_start {
            let from = (offset - self.tail_start) as usize;
            let bytes = self.tail.get(from..from + buf.len()).ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "read past the object's end",
                )
            })?;
            buf.copy_from_slice(bytes);
            return Ok(());
        }
        let bytes = self
            .handle
            .block_on(self.store.get_range(&self.location, offset..end))
            .map_err(std::io::Error::other)?;
        if bytes.len() != buf.len() {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.copy_from_slice(&bytes);
        Ok(())
    }
}

/// A checked sealed file being pushed: read through the handle it was checked through.
struct Local<'a> {
    path: &'a Path,
    file: &'a File,
    size: u64,
    /// Its manifest, signature and footer.
    tail: &'a [u8],
}

impl Local<'_> {
    /// SHA-256 of the whole file.
    fn sha256(&self) -> Result<String, PathError> {
        let mut file = self.file;
        file.seek(SeekFrom::Start(0)).at("cannot read", self.path)?;
        let (sha, _) = fsutil::copy_hashing(file, std::io::sink()).at("cannot read", self.path)?;
        Ok(hex::encode(sha))
    }
}

/// Write a new file `dest` of a directory archive from `src`, returning its SHA-256: through a
/// temporary file in its directory, locked while it is written (so a later push can tell it
/// from one a killed push left), fsynced, then linked to `dest` only if `dest` is free.
fn write_new(src: &File, dest: &Path, key: &str) -> Result<String, PushError> {
    let dir = fsutil::parent_dir(dest);
    std::fs::create_dir_all(dir).at("cannot create", dir)?;
    let mut temp = fsutil::temp_in(dir).at("cannot create a file in", dir)?;
    let (sha256, _) = fsutil::copy_hashing(src, &mut temp).at("cannot write", dest)?;
    match fsutil::persist_noclobber(temp, dest) {
        Ok(()) => Ok(hex::encode(sha256)),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(PushError::Conflict {
            key: key.to_string(),
        }),
        Err(e) => Err(PushError::Io(PathError {
            action: "cannot write",
            path: dest.to_path_buf(),
            source: e,
        })),
    }
}

/// Remove what killed pushes left in `dir`, a directory of a directory archive: callrec
/// temporary files that no live process holds ([`fsutil::remove_stale_temps`]: unlocked and
/// untouched for [`fsutil::STALE_AFTER`]), and the staging files `KEY#N` that earlier versions
/// wrote through `object_store`, untouched as long. Best effort: a leftover that cannot be
/// removed is left for the next run.
fn remove_leftovers(dir: &Path) {
    let _ = fsutil::remove_stale_temps(dir);
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let staging = name
            .to_str()
            .and_then(|n| n.rsplit_once('#'))
            .is_some_and(|(key, n)| {
                key.contains(".sealed") && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())
            });
        let stale = entry
            .metadata()
            .ok()
            .filter(|m| m.is_file())
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age >= fsutil::STALE_AFTER);
        if staging && stale {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// The journal of receipts: JSON Lines, appended and fsynced, so the terminal can prove what
/// it handed over. One receipt per archived seal: a receipt whose key and manifest hash the
/// journal already holds (a push run again after a kill, the same seal in a second spool) is
/// not appended again. Shared by concurrent pushes, in this process and others: a line is
/// checked and written under a lock (a mutex here, `flock` between processes), and the
/// fsyncs, which need no lock, overlap.
pub struct Journal {
    path: PathBuf,
    file: File,
    read: std::sync::Mutex<JournalRead>,
}

/// What this process has read of the journal.
#[derive(Default)]
struct JournalRead {
    /// Bytes read (the journal only grows).
    len: u64,
    /// Whether they end in a line torn by a crash (no newline).
    torn: bool,
    /// Key and manifest hash of each receipt read or written.
    receipts: HashSet<(String, String)>,
}

/// The fields of a journal line that say which seal it is about.
#[derive(serde::Deserialize)]
struct Journaled {
    key: String,
    manifest_sha256: String,
}

impl Journal {
    pub fn open(path: &Path) -> Result<Journal, PathError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).at("cannot create", dir)?;
        }
        let file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)
            .at("cannot open", path)?;
        Ok(Journal {
            path: path.to_path_buf(),
            file,
            read: Default::default(),
        })
    }

    /// Append a receipt, unless the journal holds one for the same seal, and return once the
    /// journal is on disk.
    pub fn append(&self, receipt: &Receipt) -> Result<(), PathError> {
        {
            let mut read = self.read.lock().unwrap_or_else(|e| e.into_inner());
            self.file.lock().at("cannot lock", &self.path)?;
            let appended = self.append_new(&mut read, receipt);
            let unlocked = self.file.unlock().at("cannot unlock", &self.path);
            appended.and(unlocked)?;
        }
        self.file.sync_data().at("cannot sync", &self.path)
    }

    /// Read what others appended since the last call, then append `receipt` if it is new.
    fn append_new(&self, read: &mut JournalRead, receipt: &Receipt) -> Result<(), PathError> {
        let mut reader = BufReader::new(&self.file);
        reader
            .seek(SeekFrom::Start(read.len))
            .at("cannot read", &self.path)?;
        let mut line = Vec::new();
        loop {
            line.clear();
            let n = reader
                .read_until(b'\n', &mut line)
                .at("cannot read", &self.path)?;
            if n == 0 {
                break;
            }
            read.len += n as u64;
            read.torn = line.last() != Some(&b'\n');
            // A line that does not parse (one torn by a crash) names no seal.
            if let Ok(j) = serde_json::from_slice::<Journaled>(&line) {
                read.receipts.insert((j.key, j.manifest_sha256));
            }
        }
        let seal = (receipt.key.clone(), receipt.manifest_sha256.clone());
        if read.receipts.contains(&seal) {
            return Ok(());
        }
        // A line torn by a crash is ended first, so this one stays whole.
        let mut line = if read.torn {
            b"\n".to_vec()
        } else {
            Vec::new()
        };
        serde_json::to_writer(&mut line, receipt).expect("receipts serialise");
        line.push(b'\n');
        (&self.file)
            .write_all(&line)
            .at("cannot write", &self.path)?;
        read.len += line.len() as u64;
        read.torn = false;
        read.receipts.insert(seal);
        Ok(())
    }
}

/// Move a pushed file from its spool into the spool's `sent/` directory (same relative path).
///
/// The move is not synced: a move lost in a crash leaves the file in the spool, and the next
/// push finds it already archived and moves it again. Sync the directories once at the end
/// ([`fsutil::sync_dir`]) to make the moves of a run durable.
pub fn move_to_sent(spool: &Path, file: &Path) -> Result<PathBuf, PathError> {
    let relative = file
        .strip_prefix(spool)
        .unwrap_or(file.file_name().map(Path::new).unwrap_or(file));
    let dest = spool.join("sent").join(relative);
    if let Some(dir) = dest.parent() {
        std::fs::create_dir_all(dir).at("cannot create", dir)?;
    }
    std::fs::rename(file, &dest).at("cannot move", file)?;
    Ok(dest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s3() -> Target {
        Target::S3 {
            bucket: "calls".into(),
            prefix: "branch".into(),
        }
    }

    fn answered(status: u16, code: &str) -> Failure {
        Failure {
            status: Some(status),
            code: Some(code.to_string()),
            message: Some("why".into()),
            detail: format!("{status} {code}"),
            ..Failure::default()
        }
    }

    #[test]
    fn only_what_may_pass_by_itself_is_temporary() {
        let code = |f: Failure| f.classify(&s3()).exit_code();
        for (status, name) in [
            (503, "SlowDown"),
            (500, "InternalError"),
            (502, ""),
            (429, "TooManyRequests"),
            (400, "RequestTimeout"),
        ] {
            assert_eq!(code(answered(status, name)), 75, "{status} {name}");
        }
        for (status, name) in [
            (403, "AccessDenied"),
            (401, ""),
            (400, "InvalidAccessKeyId"),
        ] {
            let e = answered(status, name).classify(&s3());
            assert!(matches!(e, PushError::Credentials { .. }), "{e:?}");
            assert_eq!(e.exit_code(), 2);
        }
        let e = answered(404, "NoSuchBucket").classify(&s3());
        assert!(e.to_string().contains("\"calls\" does not exist"), "{e}");
        assert_eq!(e.exit_code(), 2);
        for (status, name) in [
            (501, "NotImplemented"),
            (400, "InvalidRequest"),
            (404, "NoSuchKey"),
        ] {
            assert_eq!(code(answered(status, name)), 1, "{status} {name}");
        }
        let transport = |io| Failure {
            transport: true,
            io,
            detail: "connect".into(),
            ..Failure::default()
        };
        assert_eq!(code(transport(None)), 75);
        assert_eq!(
            code(transport(Some(std::io::ErrorKind::ConnectionRefused))),
            75
        );
        // A certificate that is not trusted does not pass by itself.
        assert_eq!(code(transport(Some(std::io::ErrorKind::InvalidData))), 1);
        let local = |kind| {
            Failure {
                io: Some(kind),
                detail: "/archive/2026: failed".into(),
                ..Failure::default()
            }
            .classify(&Target::Dir("/archive".into()))
        };
        let e = local(std::io::ErrorKind::NotADirectory);
        assert_eq!(e.exit_code(), 1);
        assert_eq!(e.to_string(), "/archive: /archive/2026: failed");
        assert_eq!(local(std::io::ErrorKind::PermissionDenied).exit_code(), 1);
        assert_eq!(local(std::io::ErrorKind::TimedOut).exit_code(), 75);
    }

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
