//! Pushing sealed records to the archive: a directory (or mounted share) or S3-compatible
//! object storage, through one interface (`object_store`), so both behave alike.
//!
//! Archive keys are `[PREFIX/]YYYY/MM/DD/RECORD-ID.sealed.EXT`, from the signed manifest (the
//! sealing date in UTC and the record id, which is restricted to `[A-Za-z0-9_-]`), so no record
//! can name a key outside its prefix. An existing key is never overwritten: if it holds the
//! same seal the record is already archived, otherwise it is a conflict and nothing changes.
//! After an upload the object's seal is read back (a ranged read of its manifest, signature
//! and footer; all of it with full verification) before the record counts as done.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{Datelike, Utc};
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
    /// The archive could not be reached or answered with an error: try again later.
    #[error("archive unreachable: {0}")]
    Unreachable(#[from] object_store::Error),
    #[error("cannot open the archive: {0}")]
    Setup(String),
}

impl PushError {
    /// Temporary failures (exit 75) leave everything to be tried again.
    pub fn is_temporary(&self) -> bool {
        matches!(self, PushError::Unreachable(_))
    }
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
    /// `uploaded`, or `already-archived` when the same seal was there before.
    pub status: &'static str,
    pub at: String,
}

/// An open archive.
pub struct Archive {
    store: Arc<dyn ObjectStore>,
    prefix: String,
    runtime: tokio::runtime::Runtime,
}

/// Objects up to this size are sent in one request; larger ones in parts of this size.
pub const PART_SIZE: usize = 16 << 20;
/// Parts of one object in flight at once.
pub const PART_CONCURRENCY: usize = 4;

impl Archive {
    /// Open a target. For S3, endpoint, region and credentials come the standard way
    /// (`AWS_ENDPOINT_URL`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`), with
    /// `endpoint` overriding; requests are path-style, as on-premises stores expect.
    pub fn open(
        target: &Target,
        endpoint: Option<&str>,
        jobs: usize,
    ) -> Result<Archive, PushError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(jobs.clamp(1, 16))
            .enable_all()
            .build()
            .map_err(|e| PushError::Setup(e.to_string()))?;
        let (store, prefix): (Arc<dyn ObjectStore>, String) = match target {
            Target::Dir(dir) => {
                std::fs::create_dir_all(dir).at("cannot create", dir)?;
                let store = object_store::local::LocalFileSystem::new_with_prefix(dir)
                    .map_err(|e| PushError::Setup(e.to_string()))?;
                (Arc::new(store), String::new())
            }
            Target::S3 { bucket, prefix } => {
                let endpoint = endpoint
                    .map(str::to_string)
                    .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok());
                let mut builder = object_store::aws::AmazonS3Builder::from_env()
                    .with_bucket_name(bucket)
                    .with_virtual_hosted_style_request(false)
                    .with_retry(object_store::RetryConfig {
                        max_retries: 3,
                        retry_timeout: std::time::Duration::from_secs(20),
                        backoff: object_store::BackoffConfig::default(),
                    });
                if std::env::var_os("AWS_REGION").is_none()
                    && std::env::var_os("AWS_DEFAULT_REGION").is_none()
                {
                    builder = builder.with_region("us-east-1");
                }
                if let Some(endpoint) = endpoint {
                    builder = builder
                        .with_allow_http(endpoint.starts_with("http://"))
                        .with_endpoint(endpoint);
                }
                let store = builder
                    .build()
                    .map_err(|e| PushError::Setup(e.to_string()))?;
                (Arc::new(store), prefix.clone())
            }
        };
        Ok(Archive {
            store,
            prefix,
            runtime,
        })
    }

    /// The archive key of a sealed file.
    pub fn key(&self, manifest: &Manifest, file_name: &str) -> String {
        let ext = file_name
            .rsplit_once('.')
            .map(|(_, e)| e)
            .filter(|e| {
                !e.is_empty() && e.len() <= 16 && e.bytes().all(|b| b.is_ascii_alphanumeric())
            })
            .unwrap_or("bin");
        let date = manifest.sealed_at;
        let key = format!(
            "{:04}/{:02}/{:02}/{}.sealed.{ext}",
            date.year(),
            date.month(),
            date.day(),
            manifest.record_id
        );
        if self.prefix.is_empty() {
            key
        } else {
            format!("{}/{key}", self.prefix)
        }
    }

    /// Push one sealed file: upload unless the same seal is archived already, then read it back.
    /// With `trusted` keys the file is fully verified first; otherwise the quick checks guard
    /// against pushing something that is not a seal at all.
    pub fn push(
        &self,
        path: &Path,
        trusted: Option<&TrustedKeys>,
        verify_full: bool,
    ) -> Result<Receipt, PushError> {
        let sealed = SealedFile::open(path)?;
        match trusted {
            Some(keys) => verify::full(&sealed, keys, None).map(|_| ())?,
            None => verify::quick(&sealed).map(|_| ())?,
        }
        self.runtime
            .block_on(self.push_async(path, sealed, verify_full))
    }

    async fn push_async(
        &self,
        path: &Path,
        sealed: SealedFile,
        verify_full: bool,
    ) -> Result<Receipt, PushError> {
        let manifest_bytes = sealed.manifest_bytes()?;
        let manifest = Manifest::parse(&manifest_bytes).map_err(|e| VerifyError::Failed {
            check: verify::Check::Manifest,
            reason: e.to_string(),
        })?;
        let file = File::open(path).at("cannot open", path)?;
        let size = file.metadata().at("cannot read", path)?.len();
        let tail_start = sealed.footer.manifest_offset();
        let mut tail = vec![0u8; (size - tail_start) as usize];
        file.read_exact_at(&mut tail, tail_start)
            .at("cannot read", path)?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let key = self.key(&manifest, &name);
        let location = object_store::path::Path::from(key.as_str());

        let mut status = "uploaded";
        let (sha256, etag, version) = match self.store.head(&location).await {
            Ok(_) => {
                status = "already-archived";
                (file_sha256(path)?, None, None)
            }
            Err(object_store::Error::NotFound { .. }) => {
                self.upload(path, &file, size, &location).await?
            }
            Err(e) => return Err(e.into()),
        };
        // Read back: the object must end with this seal, and be this size.
        let meta = self.store.head(&location).await?;
        let remote_tail = if meta.size == size {
            Some(self.store.get_range(&location, tail_start..size).await?)
        } else {
            None
        };
        if remote_tail.as_deref() != Some(&tail[..]) {
            return Err(if status == "uploaded" {
                PushError::Mismatch { key }
            } else {
                PushError::Conflict { key }
            });
        }
        if verify_full {
            let mut stream = self.store.get(&location).await?.into_stream();
            let mut hasher = Sha256::new();
            while let Some(chunk) = stream.next().await {
                hasher.update(chunk?);
            }
            if hex::encode(hasher.finalize()) != sha256 {
                return Err(PushError::Mismatch { key });
            }
        }
        Ok(Receipt {
            key,
            record_id: manifest.record_id.to_string(),
            size,
            sha256,
            manifest_sha256: hex::encode(Manifest::sha256(&manifest_bytes)),
            etag: etag.or(meta.e_tag),
            version: version.or(meta.version),
            status,
            at: Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        })
    }

    /// Upload a file: one conditional request when small, parts when large. A store that
    /// honours conditional create refuses a racing writer; the read-back catches the others.
    async fn upload(
        &self,
        path: &Path,
        mut file: &File,
        size: u64,
        location: &object_store::path::Path,
    ) -> Result<(String, Option<String>, Option<String>), PushError> {
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
                        key: location.to_string(),
                    })
                }
                Err(e) => return Err(e.into()),
            };
            return Ok((hex::encode(hasher.finalize()), result.e_tag, result.version));
        }
        // Parts go up several at a time, as S3 clients do.
        let upload = self.store.put_multipart(location).await?;
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
                return Err(e.into());
            }
            writer.write(&buf[..n]);
        }
        let result = writer.finish().await?;
        Ok((hex::encode(hasher.finalize()), result.e_tag, result.version))
    }
}

fn file_sha256(path: &Path) -> Result<String, PathError> {
    let file = File::open(path).at("cannot open", path)?;
    let (sha, _) = fsutil::copy_hashing(file, std::io::sink()).at("cannot read", path)?;
    Ok(hex::encode(sha))
}

/// The journal of receipts: JSON Lines, appended and fsynced, so the terminal can prove what
/// it handed over. Shared by concurrent pushes: lines are written whole under a lock, and the
/// fsyncs, which need no lock, overlap.
pub struct Journal {
    path: PathBuf,
    file: File,
    lock: std::sync::Mutex<()>,
}

impl Journal {
    pub fn open(path: &Path) -> Result<Journal, PathError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).at("cannot create", dir)?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .at("cannot open", path)?;
        Ok(Journal {
            path: path.to_path_buf(),
            file,
            lock: std::sync::Mutex::new(()),
        })
    }

    /// Append a receipt and return once it is on disk.
    pub fn append(&self, receipt: &Receipt) -> Result<(), PathError> {
        let mut line = serde_json::to_vec(receipt).expect("receipts serialise");
        line.push(b'\n');
        {
            let _whole_line = self.lock.lock().unwrap_or_else(|e| e.into_inner());
            (&self.file)
                .write_all(&line)
                .at("cannot write", &self.path)?;
        }
        self.file.sync_data().at("cannot sync", &self.path)
    }
}

/// Move a pushed file from its spool into the spool's `sent/` directory (same relative path).
pub fn move_to_sent(spool: &Path, file: &Path) -> Result<PathBuf, PathError> {
    let relative = file
        .strip_prefix(spool)
        .unwrap_or(file.file_name().map(Path::new).unwrap_or(file));
    let dest = spool.join("sent").join(relative);
    if let Some(dir) = dest.parent() {
        std::fs::create_dir_all(dir).at("cannot create", dir)?;
    }
    std::fs::rename(file, &dest).at("cannot move", file)?;
    File::open(fsutil::parent_dir(&dest))
        .and_then(|d| d.sync_all())
        .at("cannot sync", &dest)?;
    Ok(dest)
}
