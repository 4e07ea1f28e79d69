//! Reading an archive back: every sealed record listed (one bad entry set apart, not failing
//! the listing), random access to an object through ranged requests with its end (where the seal
//! is) read once, and whole objects fetched or streamed.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use futures::StreamExt;
use object_store::ObjectStore;

use crate::fsutil;

use super::dir::{list_dir, open_archived};
use super::{is_safe_key, Archive, Object, PushError, Target};

/// An archived entry that a listing could not take, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// Its path in the archive (relative), as found.
    pub path: PathBuf,
    pub reason: String,
}

impl Archive {
    /// Every sealed record's object (named `….sealed` or `….sealed.EXT`, as callrec-push and
    /// callrec-seal name them) and every anchor's (`….anchor`, [`Object::is_anchor`]), working
    /// files passed over, sorted by key, and apart from them
    /// the entries no reader takes ([`Skipped`]): one bad entry does not stop a listing. A
    /// directory archive is walked without following symbolic links; a bucket is listed
    /// through the AWS SDK.
    pub fn list(&self) -> Result<(Vec<Object>, Vec<Skipped>), PushError> {
        match (&self.target, &self.s3) {
            (Target::Dir(root), _) => Ok(list_dir(root)),
            (Target::S3 { .. }, Some((client, bucket))) => self.list_bucket(client, bucket),
            (Target::S3 { .. }, None) => unreachable!("a bucket is opened with an SDK client"),
        }
    }

    /// Random access to an archived object: the file itself in a directory archive, opened
    /// without following a symbolic link ([`open_archived`]); ranged requests to object
    /// storage, with the object's last 64 KiB (where the seal is) read once up front.
    pub fn reader(&self, object: &Object) -> Result<Box<dyn fsutil::ReadAt>, PushError> {
        if let Target::Dir(root) = &self.target {
            return Ok(Box::new(open_archived(root, &object.key)?));
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

    /// A small archived object whole (an anchor), refused when it is larger than `max` bytes:
    /// read in place in a directory archive (without following a symbolic link), in one ranged
    /// request of its listed size from object storage.
    pub fn read_small(&self, object: &Object, max: u64) -> Result<Vec<u8>, PushError> {
        let too_large = || {
            PushError::NotSealed(crate::verify::VerifyError::Failed {
                check: crate::verify::Check::Anchor,
                reason: format!("larger than {max} bytes"),
            })
        };
        if object.size > max {
            return Err(too_large());
        }
        let bytes = match &self.target {
            Target::Dir(root) => {
                let file = open_archived(root, &object.key)?;
                let mut bytes = Vec::new();
                std::io::Read::read_to_end(&mut std::io::Read::take(file, max + 1), &mut bytes)
                    .map_err(|e| {
                        PushError::Io(crate::fsutil::PathError {
                            action: "cannot read",
                            path: root.join(&object.key),
                            source: e,
                        })
                    })?;
                bytes
            }
            Target::S3 { .. } => {
                if !is_safe_key(&object.key) {
                    return Err(PushError::Setup(format!(
                        "unsafe archive key {:?}",
                        object.key
                    )));
                }
                if object.size == 0 {
                    return Ok(Vec::new());
                }
                // The size listed, which is at most `max`: an object grown since is not read
                // past it (and what was read is not the whole of it, which its checks find).
                let location = object_store::path::Path::from(object.key.as_str());
                self.runtime
                    .block_on(self.store.get_range(&location, 0..object.size))
                    .map_err(|e| self.fail(e))?
                    .to_vec()
            }
        };
        if bytes.len() as u64 > max {
            return Err(too_large());
        }
        Ok(bytes)
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
