//! The server archive: a directory (or mounted share) or S3-compatible object storage, through
//! one interface (`object_store`), so both behave alike. Records and their anchors are pushed
//! to it and read back from it (listed, ranged reads of their seals, fetched whole).
//!
//! This file holds the open [`Archive`]; its parts live beside it, each an `impl Archive` of
//! its own concern:
//! - `target.rs`: where records go ([`Target`]) and what they are called there (archive keys);
//! - `error.rs`: why a push or a read failed, classed by what the store answered
//!   ([`PushError`]);
//! - `read.rs`: reading an archive back: listing, ranged reads, fetching whole;
//! - `push.rs`: pushing one sealed file or anchor: uploaded at most once, read back, a
//!   [`Receipt`];
//! - `anchors.rs`: anchor files in the archive: their checks ([`check_anchor`]) and keys;
//! - `dir.rs`: a directory archive, written by callrec itself and made durable, and read
//!   without following symbolic links;
//! - `s3.rs`: object storage: both clients from one configuration, and S3 Object Lock;
//! - `journal.rs`: the terminal's journal of receipts.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use object_store::ObjectStore;

use crate::fsutil::{self, PathContext};

mod anchors;
mod dir;
mod error;
mod journal;
mod push;
mod read;
mod s3;
pub mod spool;
mod target;

pub use anchors::{check_anchor, CheckedAnchor};
pub use dir::open_archived;
pub use error::{PushError, EXIT_TEMPORARY};
pub use journal::Journal;
pub use push::{Archived, ObjectKind, Receipt};
pub use read::Skipped;
pub use s3::{LockMode, Retention, RetentionKept};
pub use target::{Object, Target};

use target::is_safe_key;

use error::Failure;
use s3::open_s3;

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

    /// The archive's name: an absolute directory or `s3://BUCKET/PREFIX`.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// A failed `object_store` request, classed (see [`PushError::exit_code`]).
    fn fail(&self, e: object_store::Error) -> PushError {
        Failure::from_store(&e).classify(&self.target)
    }
}
