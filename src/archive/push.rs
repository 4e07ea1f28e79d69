//! Pushing one sealed file or anchor file. It is checked first (a sealed file fully with trusted
//! keys, else the quick checks and manifest; an anchor with [`check_anchor`]), and the bytes
//! checked are the bytes sent. A key is uploaded at most once a run and never over what the
//! archive listed: an existing key is never overwritten; if it holds the same seal (or the same
//! anchor) the file is already archived, otherwise it is a conflict and nothing changes. After
//! an upload the object is read back (a sealed file's manifest, signature and footer in one
//! ranged read, all of it with full verification; an anchor whole), a directory archive's file
//! made durable and any Object Lock set and read back, before the file counts as done.

use std::collections::HashSet;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;

use chrono::Utc;
use object_store::{PutMode, PutOptions, PutPayload};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::anchor;
use crate::anchor::tsp::TsaTrust;
use crate::format::Manifest;
use crate::fsutil::{self, PathContext, PathError};
use crate::keys::TrustedKeys;
use crate::verify::{self, Check, SealedFile, VerifyError};

use super::anchors::check_anchor;
use super::dir::{remove_leftovers, write_new};
use super::s3::RetentionKept;
use super::{Archive, PushError, Target};

/// How a record came to be in the archive.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Archived {
    /// By this push.
    Uploaded,
    /// The same seal was there before.
    AlreadyArchived,
}

/// What an archived object is.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ObjectKind {
    /// A sealed file.
    Record,
    /// An anchor file: a TSA's token over a key's chain head (docs/FORMAT.md section 11).
    Anchor,
}

/// The proof that a record (or an anchor) was handed over, appended to the journal.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Receipt {
    pub key: String,
    pub kind: ObjectKind,
    /// The record's id; for an anchor, the id of the head it anchors.
    pub record_id: String,
    pub size: u64,
    /// SHA-256 of the whole file as archived.
    pub sha256: String,
    /// The record's manifest hash; for an anchor, its head's (the hash the TSA stamped).
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

/// Objects up to this size are sent in one request; larger ones in parts of this size.
const PART_SIZE: usize = 16 << 20;
/// Parts of one object in flight at once.
const PART_CONCURRENCY: usize = 4;

impl Archive {
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

    /// Push one sealed file, or an anchor file (named `*.anchor`, see [`Archive::push_anchor`]):
    /// upload unless the same seal is archived already, then read it back. With `trusted` keys
    /// the file is fully verified first; otherwise the quick checks guard against pushing
    /// something that is not a seal at all. Only a regular file is read (a named pipe is
    /// refused, not waited on), and the bytes checked are the bytes sent.
    pub fn push(
        &self,
        path: &Path,
        trusted: Option<&TrustedKeys>,
        verify_full: bool,
    ) -> Result<Receipt, PushError> {
        if anchor::is_anchor_name(path) {
            return self.push_anchor(path, trusted, verify_full);
        }
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
            whole: false,
        };
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let pushed = Pushed {
            key: self.key(&manifest, &manifest_sha256, &name),
            kind: ObjectKind::Record,
            record_id: manifest.record_id.to_string(),
            manifest_sha256,
        };
        self.runtime
            .block_on(self.push_async(&local, pushed, verify_full))
    }

    /// Push one anchor file: read whole (it is small: at most [`anchor::MAX_LEN`] bytes),
    /// checked ([`check_anchor`]: with `trusted` keys its head's signature too; its token
    /// without a trusted TSA, which a push is not given), and archived under the key its
    /// content gives (`Archive::anchor_key`), never the one its file name suggests. The bytes
    /// checked are the bytes sent, and all of them are read back.
    pub fn push_anchor(
        &self,
        path: &Path,
        trusted: Option<&TrustedKeys>,
        verify_full: bool,
    ) -> Result<Receipt, PushError> {
        let file = fsutil::open_regular(path).at("cannot open", path)?;
        let mut bytes = Vec::new();
        (&file)
            .take(anchor::MAX_LEN + 1)
            .read_to_end(&mut bytes)
            .at("cannot read", path)?;
        if bytes.len() as u64 > anchor::MAX_LEN {
            return Err(PushError::NotSealed(VerifyError::Failed {
                check: Check::Anchor,
                reason: format!("larger than {} bytes", anchor::MAX_LEN),
            }));
        }
        let checked = check_anchor(&bytes, trusted, &TsaTrust::default())?;
        let local = Local {
            path,
            file: &file,
            size: bytes.len() as u64,
            tail: &bytes,
            whole: true,
        };
        let pushed = Pushed {
            key: self.anchor_key(&checked),
            kind: ObjectKind::Anchor,
            record_id: checked.head.record_id.to_string(),
            manifest_sha256: checked.anchor.manifest_sha256,
        };
        self.runtime
            .block_on(self.push_async(&local, pushed, verify_full))
    }

    /// Push a checked file under its key.
    async fn push_async(
        &self,
        local: &Local<'_>,
        pushed: Pushed,
        verify_full: bool,
    ) -> Result<Receipt, PushError> {
        let key = pushed.key;
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
            kind: pushed.kind,
            record_id: pushed.record_id,
            size: local.size,
            sha256,
            manifest_sha256: hex::encode(pushed.manifest_sha256),
            etag,
            version,
            status,
            at: Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            retention,
            retention_problem,
        })
    }

    /// The object at `location` if it is the local file: this size, ending with this seal (an
    /// anchor: these very bytes, all of them).
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
            let written = if local.whole {
                write_new(local.tail, &dest, key)
            } else {
                write_new(file, &dest, key)
            };
            return written.map(|sha256| (sha256, None, None));
        }
        let mut hasher = Sha256::new();
        if size <= PART_SIZE as u64 {
            let bytes = if local.whole {
                local.tail.to_vec()
            } else {
                let mut bytes = Vec::with_capacity(size as usize);
                file.read_to_end(&mut bytes).at("cannot read", path)?;
                bytes
            };
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

/// Where a checked file goes, and what its receipt says it is.
struct Pushed {
    key: String,
    kind: ObjectKind,
    record_id: String,
    manifest_sha256: [u8; 32],
}

/// A checked file being pushed: read through the handle it was checked through, or (`whole`)
/// sent from the very bytes checked.
struct Local<'a> {
    path: &'a Path,
    file: &'a File,
    size: u64,
    /// A sealed file's manifest, signature and footer; with `whole`, every byte of the file.
    tail: &'a [u8],
    /// `tail` is the whole file, read and checked in memory: those bytes are sent.
    whole: bool,
}

impl Local<'_> {
    /// SHA-256 of the whole file.
    fn sha256(&self) -> Result<String, PathError> {
        if self.whole {
            return Ok(hex::encode(Sha256::digest(self.tail)));
        }
        let mut file = self.file;
        file.seek(SeekFrom::Start(0)).at("cannot read", self.path)?;
        let (sha, _) = fsutil::copy_hashing(file, std::io::sink()).at("cannot read", self.path)?;
        Ok(hex::encode(sha))
    }
}
