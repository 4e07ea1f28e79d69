//! Reading an archive back: every sealed record listed (one bad key set apart, not failing the
//! listing), random access to an object through ranged requests with its end (where the seal
//! is) read once, and whole objects fetched or streamed.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use object_store::ObjectStore;

use crate::fsutil::{self, PathContext};

use super::s3::url_decode;
use super::{is_safe_key, Archive, Failure, Object, PushError};

impl Archive {
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
    pub(super) async fn read_all(
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
