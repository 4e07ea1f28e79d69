//! Bringing the index up to date with archives ([`index_archives`], one archive at a time with
//! [`index_archive`]): list each, read each record that is new, changed, or to be checked with
//! other keys than before ([`examine`]: the checks that need only its end, then the text info),
//! and each such anchor ([`examine_anchor`]), and store what was found.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use rayon::prelude::*;
use serde::Serialize;

use crate::anchor::tsp::TsaTrust;
use crate::archive::{Archive, Object, PushError, Skipped, Target};
use crate::cli::{EXIT_FAILED, EXIT_OK};
use crate::format::Manifest;
use crate::keys::{self, TextKey, TrustedKeys};
use crate::verify::{self, SealedFile, VerifyError};

use super::anchors::{examine_anchor, tsa_id};
use super::{AnchorEntry, Checked, Entry, Index, QueryError, Verdict};

/// The keys that read text info: one file or key directory, loaded once per cipher.
pub struct TextKeys {
    path: Option<PathBuf>,
    age: OnceLock<Result<TextKey, String>>,
    table: OnceLock<Result<TextKey, String>>,
    id: OnceLock<Option<String>>,
}

impl TextKeys {
    pub fn new(path: Option<&Path>) -> TextKeys {
        TextKeys {
            path: path.map(Path::to_path_buf),
            age: OnceLock::new(),
            table: OnceLock::new(),
            id: OnceLock::new(),
        }
    }

    /// Names the keys without revealing them: a digest of the age identities' recipients and
    /// of the table key's id (`None` without a path). Keys that cannot be loaded count as none.
    pub fn id(&self) -> Option<&str> {
        self.id.get_or_init(|| self.digest()).as_deref()
    }

    fn digest(&self) -> Option<String> {
        self.path.as_ref()?;
        let mut parts = Vec::new();
        for cipher in [crate::format::Cipher::Age, crate::format::Cipher::Table] {
            parts.push(match self.get(cipher) {
                Ok(TextKey::Age(identities)) => {
                    let mut recipients: Vec<String> = identities
                        .iter()
                        .map(|i| i.to_public().to_string())
                        .collect();
                    recipients.sort();
                    recipients.join(",")
                }
                Ok(TextKey::Table(table)) => table.id(),
                Err(_) => String::new(),
            });
        }
        let digest = <sha2::Sha256 as sha2::Digest>::digest(parts.join("\n"));
        Some(hex::encode(&digest[..8]))
    }

    fn get(&self, cipher: crate::format::Cipher) -> Result<&TextKey, String> {
        let Some(path) = &self.path else {
            return Err("no --identity given".into());
        };
        let cell = match cipher {
            crate::format::Cipher::Age => &self.age,
            crate::format::Cipher::Table => &self.table,
        };
        cell.get_or_init(|| keys::load_text_key(path, cipher).map_err(|e| e.to_string()))
            .as_ref()
            .map_err(Clone::clone)
    }
}

/// Read one archived object's seal and text info: the checks that need only its end (the
/// document's quick checks, the manifest, the text's SHA-256 and, with trusted keys, the
/// signature), then the text info. A directory archive's file is opened without following a
/// symbolic link ([`Archive::reader`]).
fn examine(
    archive: &Archive,
    object: &Object,
    trusted: Option<&TrustedKeys>,
    text_keys: &TextKeys,
) -> Result<Entry, PushError> {
    let mut entry = Entry {
        archive: archive.target().to_string(),
        key: object.key.clone(),
        size: object.size,
        etag: object.etag.clone(),
        record_id: object
            .key
            .rsplit('/')
            .next()
            .and_then(|n| n.split('.').next())
            .unwrap_or_default()
            .to_string(),
        verdict: Verdict::Ok,
        checked: Checked {
            trusted: trusted.map(|_| false),
            text_key: text_keys.id().map(str::to_string),
        },
        ..Entry::default()
    };
    let source = archive.reader(object)?;
    let sealed = match SealedFile::from_source(Path::new(&object.key), source, object.size) {
        Ok(sealed) => sealed,
        Err(VerifyError::Failed { check, reason }) => {
            entry.fail(format!("{check}: {reason}"));
            return Ok(entry);
        }
        Err(VerifyError::Io(e)) => return Err(PushError::Io(e)),
    };
    let checked = match trusted {
        Some(trusted) => verify::seal(&sealed, trusted).map(|v| (v.manifest, v.manifest_sha256)),
        None => verify::manifest(&sealed).and_then(|(manifest, bytes)| {
            verify::check_text(&sealed, &manifest)?;
            Ok((manifest, Manifest::sha256(&bytes)))
        }),
    };
    let manifest = match checked {
        Ok(checked) => Some(checked),
        // A record that failed is still described as far as it can be read, so that it can
        // be found; its fields are what it claims, unproven.
        Err(VerifyError::Failed { check, reason }) => {
            entry.fail(format!("{check}: {reason}"));
            let bytes = sealed.manifest_bytes().ok();
            bytes.and_then(|b| Some((Manifest::parse(&b).ok()?, Manifest::sha256(&b))))
        }
        Err(VerifyError::Io(e)) => return Err(PushError::Io(e)),
    };
    if let Some((manifest, sha256)) = &manifest {
        entry.record_id = manifest.record_id.to_string();
        entry.sealed_at = Some(manifest.sealed_at.to_rfc3339());
        entry.key_id = Some(manifest.key_id.clone());
        entry.sequence = Some(manifest.sequence);
        entry.manifest_sha256 = Some(hex::encode(sha256));
        entry.checked.trusted = trusted.map(|t| t.get(&manifest.key_id).is_some());
    }
    match text_keys.get(sealed.footer.cipher) {
        Ok(key) => match verify::decode_text(&sealed, key) {
            Ok(record) => entry.fill(&record),
            // The text is not the manifest's record, or not what the manifest says it is: a
            // failed check, like any other.
            Err(verify::ShowError::Verify(VerifyError::Failed { check, reason }))
                if entry.verdict == Verdict::Ok =>
            {
                entry.fail(format!("{check}: {reason}"))
            }
            Err(e) if entry.verdict == Verdict::Ok => {
                entry.problem = Some(format!("text info not read: {e}"))
            }
            Err(_) => {}
        },
        Err(reason) if entry.verdict == Verdict::Ok => {
            entry.problem = Some(format!("text info not read: {reason}"))
        }
        Err(_) => {}
    }
    Ok(entry)
}

/// What one indexing run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct IndexSummary {
    pub archive: String,
    /// Sealed records listed in the archive.
    pub listed: usize,
    /// Records read: new, changed, or to be checked with other keys than before; the others
    /// were not touched.
    pub read: usize,
    pub unchanged: usize,
    /// Records read that failed a check.
    pub failed: usize,
    /// Records read whose text info could not be decrypted.
    pub text_unread: usize,
    /// Entries that could not be taken (see [`Skipped`]).
    pub skipped: usize,
    /// Anchor files listed in the archive.
    pub anchors: usize,
    /// Anchors read: new, changed, or to be checked with other keys or TSA certificates.
    pub anchors_read: usize,
    /// Anchors read that failed a check (they date no record).
    pub anchors_failed: usize,
}

/// What indexing one archive found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Indexed {
    pub summary: IndexSummary,
    /// Every entry of the archive in the index that failed a check.
    pub flagged: Vec<Entry>,
    /// Every anchor of the archive in the index that failed a check.
    pub flagged_anchors: Vec<AnchorEntry>,
    /// Entries of this run that could not be taken; they are tried again next run.
    pub skipped: Vec<Skipped>,
}

/// What the index holds of an archived object: enough to decide whether to read it again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Known {
    pub etag: String,
    pub key_id: Option<String>,
    /// The record's sequence; `None` for a record indexed before the index kept it.
    pub sequence: Option<u64>,
    pub text: bool,
    pub checked: Checked,
}

impl Known {
    /// Whether this run's keys check the record differently than it was checked: trusted keys
    /// that give another answer for its signing key (or none was checked), or an identity
    /// other than the one its unread text info was tried with. A record indexed before the
    /// index kept sequences (its manifest known, its sequence not) is read again once, so that
    /// its anchors can date it.
    fn recheck(&self, trusted: Option<&TrustedKeys>, text_keys: &TextKeys) -> bool {
        if self.key_id.is_some() && self.sequence.is_none() {
            return true;
        }
        let trust = trusted.map(|t| self.key_id.as_deref().is_some_and(|id| t.get(id).is_some()));
        let other_trust = trust.is_some() && trust != self.checked.trusted;
        let other_text_key = !self.text
            && text_keys.id().is_some()
            && text_keys.id() != self.checked.text_key.as_deref();
        other_trust || other_text_key
    }
}

/// Bring the index up to date with one archive. `progress` is called once per record or
/// anchor read, with the number read so far and the number to read.
///
/// A record is read when it is new, its ETag changed, or this run's keys check it
/// differently ([`Known`]). A record read again without the keys to its text info keeps the
/// text info read before, when its manifest is the same and it passed then. An anchor is read
/// when it is new, its ETag changed, or this run's keys or TSA certificates (`tsa`) check it
/// differently ([`AnchorEntry`]).
pub fn index_archive(
    index: &mut dyn Index,
    archive: &Archive,
    trusted: Option<&TrustedKeys>,
    text_keys: &TextKeys,
    tsa: &TsaTrust,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<Indexed, QueryError> {
    let name = archive.target().to_string();
    let known = index.known(&name)?;
    let known_anchors: HashMap<String, AnchorEntry> = index
        .anchors(&name)?
        .into_iter()
        .map(|a| (a.key.clone(), a))
        .collect();
    let (listed, mut skipped) = archive.list()?;
    let (anchors, objects): (Vec<Object>, Vec<Object>) =
        listed.into_iter().partition(Object::is_anchor);
    let changed: Vec<&Object> = objects
        .iter()
        .filter(|o| {
            known
                .get(&o.key)
                .is_none_or(|k| k.etag != o.etag || k.recheck(trusted, text_keys))
        })
        .collect();
    let tsa_checked = tsa_id(tsa);
    let changed_anchors: Vec<&Object> = anchors
        .iter()
        .filter(|o| {
            known_anchors
                .get(&o.key)
                .is_none_or(|a| a.etag != o.etag || a.recheck(trusted, tsa_checked.as_deref()))
        })
        .collect();
    let mut summary = IndexSummary {
        archive: name,
        listed: objects.len(),
        unchanged: objects.len() - changed.len(),
        anchors: anchors.len(),
        ..IndexSummary::default()
    };
    let done = std::sync::atomic::AtomicUsize::new(0);
    let total = changed.len() + changed_anchors.len();
    let tick = || {
        progress(
            done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1,
            total,
        )
    };
    // Object storage is read with many requests in flight; a directory with one per core.
    let (threads, local) = match archive.target() {
        Target::Dir(_) => (0, true),
        Target::S3 { .. } => (16, false),
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| QueryError::Invalid(e.to_string()))?;
    // A file of a directory archive that cannot be read, or an object the store will not give
    // (gone since the listing, refused), is one bad entry; object storage that fails to answer
    // (or cannot be used at all) fails the run.
    let mut skip = |object: &Object, e: PushError| {
        if local || e.exit_code() == EXIT_FAILED {
            skipped.push(Skipped {
                path: PathBuf::from(&object.key),
                reason: crate::cli::error_chain(&e),
            });
            Ok(())
        } else {
            Err(QueryError::from(e))
        }
    };
    for batch in changed.chunks(2000) {
        let results: Vec<Result<Entry, PushError>> = pool.install(|| {
            batch
                .par_iter()
                .map(|object| {
                    let entry = examine(archive, object, trusted, text_keys);
                    tick();
                    entry
                })
                .collect()
        });
        let mut entries = Vec::with_capacity(results.len());
        for (object, result) in batch.iter().zip(results) {
            match result {
                Ok(mut entry) => {
                    let before = known.get(&entry.key);
                    if !entry.text && before.is_some_and(|k| k.text && k.etag == entry.etag) {
                        if let Some(old) = index.entry(&summary.archive, &entry.key)? {
                            entry.keep_text(old);
                        }
                    }
                    entries.push(entry);
                }
                Err(e) => skip(object, e)?,
            }
        }
        index.put(&entries)?;
        summary.read += entries.len();
        summary.failed += entries.iter().filter(|e| e.verdict != Verdict::Ok).count();
        summary.text_unread += entries
            .iter()
            .filter(|e| e.verdict == Verdict::Ok && !e.text)
            .count();
    }
    let results: Vec<Result<AnchorEntry, PushError>> = pool.install(|| {
        changed_anchors
            .par_iter()
            .map(|object| {
                let entry = examine_anchor(archive, object, trusted, tsa);
                tick();
                entry
            })
            .collect()
    });
    let mut read_anchors = Vec::with_capacity(results.len());
    for (object, result) in changed_anchors.iter().zip(results) {
        match result {
            Ok(entry) => read_anchors.push(entry),
            Err(e) => skip(object, e)?,
        }
    }
    index.put_anchors(&read_anchors)?;
    summary.anchors_read = read_anchors.len();
    summary.anchors_failed = read_anchors
        .iter()
        .filter(|a| a.verdict != Verdict::Ok)
        .count();
    summary.skipped = skipped.len();
    let flagged = index.flagged(&summary.archive)?;
    let flagged_anchors = index
        .anchors(&summary.archive)?
        .into_iter()
        .filter(|a| a.verdict != Verdict::Ok)
        .collect();
    Ok(Indexed {
        summary,
        flagged,
        flagged_anchors,
        skipped,
    })
}

/// How to index: the archives, in order, and what to check their records and anchors with.
pub struct IndexOptions {
    pub archives: Vec<Target>,
    /// The S3 endpoint, for archives in object storage.
    pub endpoint: Option<String>,
    /// Check each record's and anchor's signature against these keys.
    pub trusted: Option<TrustedKeys>,
    /// Read the text info with these.
    pub text_keys: TextKeys,
    /// The trusted TSA certificates: only anchors whose TSA chains to one date records.
    pub tsa: TsaTrust,
}

/// What an indexing run did, over every archive.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexTotals {
    pub archives: usize,
    /// Sealed records listed.
    pub listed: usize,
    /// Records read.
    pub read: usize,
    /// Records read that failed a check.
    pub failed: usize,
    /// Entries that could not be taken.
    pub skipped: usize,
    /// Anchors listed.
    pub anchors: usize,
    /// Anchors read that failed a check.
    pub anchors_failed: usize,
}

impl IndexTotals {
    /// The run's exit status: [`EXIT_FAILED`] when a record or anchor read failed a check or
    /// an entry could not be taken, else [`EXIT_OK`].
    pub fn exit_code(&self) -> u8 {
        if self.failed + self.anchors_failed + self.skipped > 0 {
            EXIT_FAILED
        } else {
            EXIT_OK
        }
    }
}

/// Bring the index up to date with every archive of `opts`, one after the other
/// ([`index_archive`]). A directory archive that is not a directory is a usage error, found
/// before any archive is read. `progress` hears of each record or anchor read (the archive's
/// name, the number read so far and the number to read), from worker threads; `each` of each
/// archive done, with what it found.
pub fn index_archives(
    index: &mut dyn Index,
    opts: &IndexOptions,
    progress: &(dyn Fn(&str, usize, usize) + Sync),
    each: &mut dyn FnMut(&Indexed),
) -> Result<IndexTotals, QueryError> {
    for target in &opts.archives {
        if let Target::Dir(dir) = target {
            if !dir.is_dir() {
                return Err(QueryError::Usage(format!(
                    "archive {dir:?} is not a directory"
                )));
            }
        }
    }
    let mut totals = IndexTotals::default();
    for target in &opts.archives {
        let archive = Archive::open(target, opts.endpoint.as_deref(), 4, None)?;
        let name = archive.target().to_string();
        let indexed = index_archive(
            index,
            &archive,
            opts.trusted.as_ref(),
            &opts.text_keys,
            &opts.tsa,
            &|done, total| progress(&name, done, total),
        )?;
        let summary = &indexed.summary;
        totals.archives += 1;
        totals.listed += summary.listed;
        totals.read += summary.read;
        totals.failed += summary.failed;
        totals.skipped += summary.skipped;
        totals.anchors += summary.anchors;
        totals.anchors_failed += summary.anchors_failed;
        each(&indexed);
    }
    Ok(totals)
}
