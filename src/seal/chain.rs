//! The hash chain of one sealing key.
//!
//! Every seal made with a key takes the next sequence number and names the SHA-256 of the
//! previous manifest made with that key, so a set of records shows a deleted record (a gap) or
//! two records claiming one place (a fork). The key directory keeps the chain's head in
//! `chain.state` (JSON), changed only while holding an exclusive lock on `chain.lock`, and
//! always replaced atomically.
//!
//! Crash safety: a sealed file is first written in full and fsynced under a hidden *stage*
//! name in the output directory (`.callrec-<hash>.pending`). The state then records the seal
//! as *pending* (sequence, manifest hash, final path, stage path), the stage is linked to the
//! final name, the state is committed, and the stage is removed. Whoever takes the lock next
//! settles a pending entry from the stage, not from the final name, which may since have been
//! moved away (`callrec-push` moves sealed files to `sent/`): a complete stage is linked to the
//! final name if it is not there (roll forward), and the sequence counts as used. Only when
//! neither the stage nor the final file holds that manifest is the sequence given again. So a
//! crash at any moment leaves neither a gap nor a reused sequence.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::format::Manifest;
use crate::fsutil::{self, PathContext, PathError};
use crate::verify::SealedFile;

pub const CHAIN_STATE: &str = "chain.state";
pub const CHAIN_LOCK: &str = "chain.lock";

#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    #[error(transparent)]
    Io(#[from] PathError),
    #[error(
        "chain state {path:?} is damaged: {reason}; restore it from backup (never edit it by hand)"
    )]
    Damaged { path: PathBuf, reason: String },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct State {
    next_sequence: u64,
    previous: String,
    pending: Option<Pending>,
    /// The last seal that landed, for anchoring (absent in states written before anchors).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    head: Option<Head>,
    /// The highest sequence anchored so far (0: none).
    #[serde(default)]
    anchored: u64,
}

/// The last seal of a chain: its MANIFEST and SIGNATURE, as in its sealed file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Head {
    #[serde(with = "text_bytes")]
    pub manifest: Vec<u8>,
    #[serde(with = "text_bytes")]
    pub signature: Vec<u8>,
}

/// Manifests and signatures are text: kept as JSON strings.
mod text_bytes {
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(std::str::from_utf8(bytes).map_err(serde::ser::Error::custom)?)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        String::deserialize(d)
            .map(String::into_bytes)
            .map_err(D::Error::custom)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Pending {
    sequence: u64,
    manifest_sha256: String,
    path: PathBuf,
    /// The complete sealed file under its stage name (absent in states written before it).
    #[serde(default)]
    stage: Option<PathBuf>,
}

/// The place the next seal takes in the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link {
    pub sequence: u64,
    pub previous: [u8; 32],
}

/// An exclusive hold on a key's chain; released when dropped.
pub struct Chain {
    state_path: PathBuf,
    _lock: File,
}

impl Chain {
    /// Wait for and take the lock on the chain kept in `key_dir`.
    pub fn lock(key_dir: &Path) -> Result<Chain, ChainError> {
        let lock_path = key_dir.join(CHAIN_LOCK);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&lock_path)
            .at("cannot open", &lock_path)?;
        lock.lock().at("cannot lock", &lock_path)?;
        Ok(Chain {
            state_path: key_dir.join(CHAIN_STATE),
            _lock: lock,
        })
    }

    fn damaged(&self, reason: impl Into<String>) -> ChainError {
        ChainError::Damaged {
            path: self.state_path.clone(),
            reason: reason.into(),
        }
    }

    fn read(&self) -> Result<State, ChainError> {
        let bytes = match std::fs::read(&self.state_path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(State {
                    next_sequence: 1,
                    previous: hex::encode([0u8; 32]),
                    pending: None,
                    head: None,
                    anchored: 0,
                })
            }
            Err(source) => {
                return Err(PathError {
                    action: "cannot read",
                    path: self.state_path.clone(),
                    source,
                }
                .into())
            }
        };
        let state: State =
            serde_json::from_slice(&bytes).map_err(|e| self.damaged(e.to_string()))?;
        if state.next_sequence == 0 {
            return Err(self.damaged("next_sequence is 0"));
        }
        Ok(state)
    }

    fn write(&self, state: &State) -> Result<(), ChainError> {
        let mut bytes = serde_json::to_vec_pretty(state).expect("state serialises");
        bytes.push(b'\n');
        fsutil::write_atomic(&self.state_path, &bytes, false)
            .at("cannot write", &self.state_path)?;
        Ok(())
    }

    fn decode_hash(&self, text: &str) -> Result<[u8; 32], ChainError> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(text, &mut out).map_err(|_| self.damaged("bad hash"))?;
        Ok(out)
    }

    /// The next place in the chain, after settling any seal a crash left pending.
    pub fn next(&self) -> Result<Link, ChainError> {
        let mut state = self.read()?;
        if let Some(pending) = state.pending.take() {
            if let Some(head) = self.settle(&pending)? {
                state.next_sequence = pending.sequence + 1;
                state.previous = pending.manifest_sha256;
                state.head = Some(head);
            }
            self.write(&state)?;
            if let Some(stage) = &pending.stage {
                remove_stage(stage)?;
            }
        }
        Ok(Link {
            sequence: state.next_sequence,
            previous: self.decode_hash(&state.previous)?,
        })
    }

    /// The last seal that landed and the highest sequence anchored, once settled ([`next`]
    /// first). `None` before the first seal, and for chains last sealed before anchors
    /// existed (their next seal records a head).
    ///
    /// [`next`]: Chain::next
    pub fn head(&self) -> Result<Option<(Head, u64)>, ChainError> {
        let state = self.read()?;
        Ok(state.head.map(|h| (h, state.anchored)))
    }

    /// Record that the chain is anchored up to `sequence`.
    pub fn set_anchored(&self, sequence: u64) -> Result<(), ChainError> {
        let mut state = self.read()?;
        state.anchored = state.anchored.max(sequence);
        self.write(&state)
    }

    /// Did the pending seal land? Rolls a complete stage forward to its final name. The head
    /// it makes if it did.
    fn settle(&self, pending: &Pending) -> Result<Option<Head>, ChainError> {
        let holds_it = |path: &Path| {
            let file = SealedFile::open(path).ok()?;
            let manifest = file.manifest_bytes().ok()?;
            (hex::encode(Manifest::sha256(&manifest)) == pending.manifest_sha256).then(|| Head {
                manifest,
                signature: file.signature_bytes().unwrap_or_default(),
            })
        };
        if let Some(head) = holds_it(&pending.path) {
            return Ok(Some(head));
        }
        let Some((stage, head)) = pending
            .stage
            .as_deref()
            .and_then(|s| holds_it(s).map(|h| (s, h)))
        else {
            return Ok(None);
        };
        // The stage is complete and durable. If it was linked before the crash its final name
        // may have been moved or pushed since; link it again only if no other link remains
        // (a copy already in `sent/` shares the inode).
        let links = std::fs::metadata(stage).at("cannot read", stage)?.nlink();
        if links > 1 {
            return Ok(Some(head));
        }
        match std::fs::hard_link(stage, &pending.path) {
            Ok(()) => {
                fsutil::sync_dir(fsutil::parent_dir(&pending.path))
                    .at("cannot sync", &pending.path)?;
                Ok(Some(head))
            }
            // Another file took the name: this seal never landed.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(None),
            Err(source) => Err(PathError {
                action: "cannot link",
                path: pending.path.clone(),
                source,
            }
            .into()),
        }
    }

    /// Record that the seal taking `link`, complete at `stage`, is about to land at `path`.
    pub fn begin(
        &self,
        link: Link,
        manifest_sha256: [u8; 32],
        path: &Path,
        stage: &Path,
    ) -> Result<(), ChainError> {
        let path = std::path::absolute(path).at("cannot resolve", path)?;
        let stage = std::path::absolute(stage).at("cannot resolve", stage)?;
        let mut state = self.read()?;
        state.next_sequence = link.sequence;
        state.previous = hex::encode(link.previous);
        state.pending = Some(Pending {
            sequence: link.sequence,
            manifest_sha256: hex::encode(manifest_sha256),
            path,
            stage: Some(stage),
        });
        self.write(&state)
    }

    /// Record that the seal taking `link` landed: the chain moves on, `head` is its last
    /// seal. The stage is removed.
    pub fn commit(&self, link: Link, head: Head, stage: &Path) -> Result<(), ChainError> {
        let mut state = self.read()?;
        state.next_sequence = link.sequence + 1;
        state.previous = hex::encode(Manifest::sha256(&head.manifest));
        state.pending = None;
        state.head = Some(head);
        self.write(&state)?;
        remove_stage(stage)
    }

    /// Record that the seal taking `link` did not land: the place is free again.
    pub fn abandon(&self, link: Link, stage: &Path) -> Result<(), ChainError> {
        let mut state = self.read()?;
        state.next_sequence = link.sequence;
        state.previous = hex::encode(link.previous);
        state.pending = None;
        self.write(&state)?;
        remove_stage(stage)
    }
}

/// The stage name of a sealed file about to land in `dir`: hidden, so no walk takes it, and
/// not a temporary name, so no clean-up removes it; only the chain does.
pub fn stage_path(dir: &Path, manifest_sha256: &[u8; 32]) -> PathBuf {
    dir.join(format!(
        "{}{}{STAGE_SUFFIX}",
        fsutil::TEMP_PREFIX,
        hex::encode(&manifest_sha256[..16])
    ))
}

/// Suffix of a stage name.
pub const STAGE_SUFFIX: &str = ".pending";

/// Remove a stage and make the removal durable, so it cannot reappear after a power cut.
fn remove_stage(stage: &Path) -> Result<(), ChainError> {
    match std::fs::remove_file(stage) {
        Ok(()) => fsutil::sync_dir(fsutil::parent_dir(stage)).at("cannot sync", stage)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(PathError {
                action: "cannot remove",
                path: stage.to_path_buf(),
                source,
            }
            .into())
        }
    }
    Ok(())
}
