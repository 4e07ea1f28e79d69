//! Where records go ([`Target`]: a directory or a bucket and prefix) and what they are called
//! there.
//!
//! Archive keys are `[PREFIX/]YYYY/MM/DD/RECORD-ID.HASH.sealed.EXT` (an anchor's
//! `[PREFIX/]YYYY/MM/DD/KEYID.SEQUENCE.T.anchor`, see `anchors.rs`), from the signed manifest
//! (the sealing date in UTC and the record id, which is restricted to `[A-Za-z0-9_-]`, so no
//! record can name a key outside its prefix) and `HASH`, the first 16 hex digits of the
//! manifest's SHA-256. Two different seals of one record (a correction, a record sealed again)
//! therefore never share a key, and two pushes racing for one key can only be pushing the same
//! seal: no store has to honour conditional writes (Garage ignores `If-None-Match`). Only safe
//! keys ([`is_safe_key`]) are read, so no key can name a file outside a directory archive.

use std::path::PathBuf;

use chrono::Datelike;

use crate::format::Manifest;

use super::{Archive, PushError};

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

impl Object {
    /// Whether the object is an anchor file (`….anchor`) rather than a sealed record.
    pub fn is_anchor(&self) -> bool {
        crate::anchor::is_anchor_name(std::path::Path::new(&self.key))
    }
}

/// Is `key` a safe archive key: relative, `/`-separated, no empty, `.` or `..` segment, no
/// control characters? Only such keys are read, so none can name a file outside a directory
/// archive.
pub(super) fn is_safe_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .split('/')
            .all(|s| !s.is_empty() && s != "." && s != ".." && !s.contains('\\'))
        && !key.chars().any(char::is_control)
}

impl Target {
    /// The file holding `key` in a directory archive (`None` for object storage). A key that
    /// is not safe is refused, so no key can name a file outside the archive.
    pub(super) fn local_path(&self, key: &str) -> Result<Option<PathBuf>, PushError> {
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

impl Archive {
    /// The archive key of a sealed file: its sealing day, record id and the first 16 hex
    /// digits of its manifest's SHA-256 (see the module documentation).
    pub(super) fn key(
        &self,
        manifest: &Manifest,
        manifest_sha256: &[u8; 32],
        file_name: &str,
    ) -> String {
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
}
