//! `get`: hand out one archived record, verified.
//!
//! The index is taken only as a location. The archived file is opened (a directory archive's
//! file in place, never through a symbolic link; an object fetched into a private temporary
//! file), verified fully and checked to be the record asked for before anything is written.
//! A correction holds no media of its own: its audio and video are its original's, found by
//! the seal the correction's signed manifest names, and verified in turn. A printed page shows
//! the record's trusted time from the anchor the index names as covering it, fetched and
//! checked in turn (its head signed by a trusted key, its token with the TSA certificates
//! given), never from the index alone.

use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::anchor;
use crate::anchor::tsp::TsaTrust;
use crate::archive::{check_anchor, open_archived, Archive, PushError, Target};
use crate::cli::escape_control;
use crate::format::Manifest;
use crate::fsutil::{self, PathContext, PathError};
use crate::keys::TrustedKeys;
use crate::media::StreamKind;
use crate::verify::{self, ExtractError, SealedFile, ShowError, VerifyError};
use crate::vocab::Vocabulary;

use super::page::{print_page, TrustedTime};
use super::{Entry, Index, QueryError};

/// What `get` hands out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// The audio or the video, to a new file in the format its name asks for.
    Media(StreamKind, PathBuf),
    /// The sealed file itself, copied to a new file.
    Sealed(PathBuf),
    /// The text info, read with `identity`: as JSON, or (`page`) as a printable page; to a new
    /// file, or to the caller's writer.
    Text {
        identity: PathBuf,
        page: bool,
        output: Option<PathBuf>,
    },
}

impl Part {
    /// The new file this part is written to, if any.
    fn output(&self) -> Option<&Path> {
        match self {
            Part::Media(_, out) | Part::Sealed(out) => Some(out),
            Part::Text { output, .. } => output.as_deref(),
        }
    }
}

/// One `get`: the record asked for, what of it, and what it is checked and shown with.
pub struct GetRequest<'a> {
    pub id: &'a str,
    pub part: Part,
    /// Nothing is handed out that is not sealed by one of these keys.
    pub trusted: &'a TrustedKeys,
    /// The trusted TSA certificates a printed page's trusted time is checked against (none:
    /// the TSA as trusted when the anchor was indexed, and the page says so).
    pub tsa: &'a TsaTrust,
    /// Names the result codes on a printed page.
    pub vocab: &'a Vocabulary,
    /// The S3 endpoint, for records in object storage.
    pub endpoint: Option<&'a str>,
}

/// How a `get` ended, when it could check what it was asked for.
#[derive(Debug)]
pub enum Got {
    /// The index holds no record of that id.
    NotIndexed,
    /// Handed out: to `written`, or to the writer when `None`. `corrected_by` names the
    /// record's latest correction (the current version) when this version was corrected.
    Handed {
        written: Option<PathBuf>,
        corrected_by: Option<String>,
    },
    /// The archived file at `key` is proven not to be the intact record asked for: nothing
    /// was handed out.
    Refused { key: String, failure: VerifyError },
}

/// Why a `get` could not be done. Each wrapped error shows as itself and stays in the chain of
/// causes, so the exit policy (the mains' `exit_code`) finds it.
#[derive(Debug, thiserror::Error)]
pub enum GetError {
    #[error("{0}")]
    Index(#[from] QueryError),
    #[error("{0}")]
    Archive(#[from] PushError),
    #[error("{0}")]
    Verify(#[from] VerifyError),
    #[error("{0}")]
    Extract(#[from] ExtractError),
    #[error("{0}")]
    Text(#[from] ShowError),
    #[error("{0}")]
    Io(#[from] PathError),
    /// The caller's writer failed.
    #[error("{0}")]
    Write(#[from] std::io::Error),
    /// The file to write exists: it is never overwritten.
    #[error("{0:?} exists; not overwritten")]
    Exists(PathBuf),
    /// The index names an archive that is not one.
    #[error("{0}")]
    Target(String),
    /// A temporary file for an object could not be made.
    #[error("cannot create a temporary file")]
    Temp(#[source] std::io::Error),
    /// The record is a correction whose original (which holds the media) is not indexed.
    #[error(
        "{} is a correction of {}, whose media is not in the index: index the archive that holds it (callrec-query index)",
        escape_control(.id),
        escape_control(.original)
    )]
    OriginalNotIndexed { id: String, original: String },
    /// Corrections of corrections that do not end (an edited index).
    #[error("too many corrections of corrections")]
    TooManyCorrections,
}

/// Hand out `part` of the record `request.id`: locate it in `index`, open the archived file,
/// verify it fully and check that it is the record asked for, then write the part to its new
/// file or to `out`. A file to write that exists is refused before anything is fetched.
pub fn get(index: &dyn Index, request: &GetRequest, out: &mut dyn Write) -> Result<Got, GetError> {
    let Some(entry) = index.locate(request.id)? else {
        return Ok(Got::NotIndexed);
    };
    if let Some(output) = request.part.output() {
        if output.exists() {
            return Err(GetError::Exists(output.to_path_buf()));
        }
    }
    let file = fetch(&entry, request.endpoint)?;
    let get = Get { index, request };
    match get.hand_out(file, &entry, out) {
        Ok(()) => Ok(Got::Handed {
            written: request.part.output().map(Path::to_path_buf),
            corrected_by: entry.corrected_by,
        }),
        Err(
            GetError::Verify(failure @ VerifyError::Failed { .. })
            | GetError::Extract(ExtractError::Verify(failure @ VerifyError::Failed { .. }))
            | GetError::Text(ShowError::Verify(failure @ VerifyError::Failed { .. })),
        ) => Ok(Got::Refused {
            key: entry.key,
            failure,
        }),
        Err(e) => Err(e),
    }
}

/// The archived file of an index entry: a directory archive's file is read in place, never
/// through a symbolic link; an object is fetched into a private temporary file.
fn fetch(entry: &Entry, endpoint: Option<&str>) -> Result<File, GetError> {
    fetch_key(&entry.archive, &entry.key, endpoint)
}

/// The file at `key` of the archive named `archive` (see [`fetch`]).
fn fetch_key(archive: &str, key: &str, endpoint: Option<&str>) -> Result<File, GetError> {
    let target: Target = archive.parse().map_err(GetError::Target)?;
    Ok(match &target {
        Target::Dir(root) => open_archived(root, key)?,
        Target::S3 { .. } => {
            let archive = Archive::open(&target, endpoint, 4, None)?;
            let mut temp = tempfile::tempfile().map_err(GetError::Temp)?;
            archive.fetch(key, &mut temp)?;
            temp
        }
    })
}

/// Refuse a record that is not the one asked for (an index row edited to point elsewhere).
fn same_record(asked: &str, found: &str, what: &str) -> Result<(), VerifyError> {
    if asked == found {
        return Ok(());
    }
    Err(VerifyError::Failed {
        check: verify::Check::Manifest,
        reason: format!(
            "{what} names record {}, not {}",
            escape_control(found),
            escape_control(asked)
        ),
    })
}

/// The sealed file `file` (named `name` in messages) opened for verification.
fn open_sealed(file: &File, name: &Path) -> Result<SealedFile, GetError> {
    let len = file.metadata().at("cannot read", name)?.len();
    let source = file.try_clone().at("cannot read", name)?;
    Ok(SealedFile::from_source(name, Box::new(source), len)?)
}

/// The record a correction's signed manifest names as the one it corrects: its id and the
/// SHA-256 of its manifest.
fn corrected_seal(manifest: &Manifest) -> Option<(String, String)> {
    let (id, sha) = manifest.extra("corrects")?.split_once(' ')?;
    Some((id.to_string(), sha.to_string()))
}

/// One `get` under way.
struct Get<'a> {
    index: &'a dyn Index,
    request: &'a GetRequest<'a>,
}

impl Get<'_> {
    /// Verify the archived file of `entry` fully and check that it is the record asked for,
    /// then hand out the part asked for.
    fn hand_out(&self, mut file: File, entry: &Entry, out: &mut dyn Write) -> Result<(), GetError> {
        let request = self.request;
        let name = Path::new(&entry.key);
        let sealed = open_sealed(&file, name)?;
        // The signed manifest says which record this is, before anything is written.
        let signed = verify::seal(&sealed, request.trusted)?;
        same_record(
            request.id,
            signed.manifest.record_id.as_str(),
            "the archived manifest",
        )?;
        let (identity, page, output) = match &request.part {
            Part::Media(kind, output) => {
                let holder = self.media_holder(sealed, &signed.manifest)?;
                verify::extract(&holder, request.trusted, Some(*kind), output)?;
                return Ok(());
            }
            Part::Sealed(output) => {
                verify::full(&sealed, request.trusted, None)?;
                // The very file verified, from its start (verification reads at offsets only).
                file.seek(SeekFrom::Start(0)).at("cannot read", name)?;
                fsutil::copy_new(file, output).at("cannot write", output)?;
                return Ok(());
            }
            Part::Text {
                identity,
                page,
                output,
            } => (identity, *page, output.as_deref()),
        };
        let verified = verify::full(&sealed, request.trusted, None)?;
        let record = verify::read_text(&sealed, identity)?;
        same_record(request.id, record.id.as_str(), "the archived text info")?;
        let bytes = if page {
            let time = self.trusted_time(&verified)?;
            print_page(
                &record,
                &verified,
                &time,
                request.vocab,
                entry.corrected_by.as_deref(),
            )
            .into_bytes()
        } else {
            record.to_json()
        };
        match output {
            None => out.write_all(&bytes)?,
            Some(output) => fsutil::copy_new(&bytes[..], output).at("cannot write", output)?,
        }
        Ok(())
    }

    /// The trusted time of a verified record: the anchor the index names as covering it,
    /// fetched and checked now ([`check_anchor`]: its head signed by a trusted key, its token
    /// against the request's TSA certificates when there are any) and found to cover it (its
    /// key, a sequence at or above it). A record that claims to be sealed after the TSA's time
    /// is refused: its date is false. An anchor that does not pass now leaves the record not
    /// anchored, and the page says why.
    fn trusted_time(&self, verified: &verify::Verified) -> Result<TrustedTime, GetError> {
        let manifest = &verified.manifest;
        let Some(found) = self
            .index
            .covering_anchor(&manifest.key_id, manifest.sequence)?
        else {
            return Ok(TrustedTime::NotAnchored(None));
        };
        if found.size > anchor::MAX_LEN {
            return Ok(TrustedTime::NotAnchored(Some(format!(
                "its anchor {} is larger than an anchor can be",
                escape_control(&found.key)
            ))));
        }
        let file = fetch_key(&found.archive, &found.key, self.request.endpoint)?;
        let name = Path::new(&found.key);
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(
            &mut std::io::Read::take(file, anchor::MAX_LEN + 1),
            &mut bytes,
        )
        .at("cannot read", name)?;
        let tsa = self.request.tsa;
        let checked = match check_anchor(&bytes, Some(self.request.trusted), tsa) {
            Ok(checked) => checked,
            Err(e) => {
                return Ok(TrustedTime::NotAnchored(Some(format!(
                    "its anchor {} does not pass now: {e}",
                    escape_control(&found.key)
                ))))
            }
        };
        if checked.anchor.key_id != manifest.key_id || checked.anchor.sequence < manifest.sequence {
            return Ok(TrustedTime::NotAnchored(Some(format!(
                "the anchor the index names, {}, is not of this record's chain",
                escape_control(&found.key)
            ))));
        }
        if !tsa.is_empty() && !checked.stamp.trusted {
            return Ok(TrustedTime::NotAnchored(Some(
                "its anchor's TSA is not among the trusted TSA certificates".into(),
            )));
        }
        if manifest.sealed_at > checked.stamp.time {
            return Err(VerifyError::Failed {
                check: verify::Check::Timestamp,
                reason: format!(
                    "sealed at {} but its chain was anchored earlier, at {} ({}): its time is false",
                    manifest.sealed_at,
                    checked.stamp.time,
                    escape_control(&found.key)
                ),
            }
            .into());
        }
        Ok(TrustedTime::Anchored {
            time: checked.stamp.time,
            tsa: checked.stamp.tsa,
            anchor: found.key,
            tsa_checked: !tsa.is_empty(),
        })
    }

    /// The sealed file that holds the media of `sealed`: itself, or for a correction the seal
    /// it corrects (following corrections of corrections), each fetched from the archive and
    /// its seal verified, and refused unless it is the very seal named.
    fn media_holder(
        &self,
        sealed: SealedFile,
        manifest: &Manifest,
    ) -> Result<SealedFile, GetError> {
        let mut sealed = sealed;
        let mut named = corrected_seal(manifest);
        // A chain of corrections is short; a loop in an edited index must still end.
        for _ in 0..64 {
            let Some((id, sha)) = named else {
                return Ok(sealed);
            };
            let Some(original) = self.index.seal_of(&id, &sha)? else {
                return Err(GetError::OriginalNotIndexed {
                    id: self.request.id.to_string(),
                    original: id,
                });
            };
            let file = fetch(&original, self.request.endpoint)?;
            sealed = open_sealed(&file, Path::new(&original.key))?;
            let signed = verify::seal(&sealed, self.request.trusted).map_err(|e| match e {
                VerifyError::Failed { check, reason } => VerifyError::Failed {
                    check,
                    reason: format!(
                        "the original {} ({}) it corrects: {reason}",
                        escape_control(&id),
                        escape_control(&original.key)
                    ),
                },
                e => e,
            })?;
            same_record(
                &id,
                signed.manifest.record_id.as_str(),
                "the archived original",
            )?;
            if hex::encode(signed.manifest_sha256) != sha.to_ascii_lowercase() {
                return Err(VerifyError::Failed {
                    check: verify::Check::Manifest,
                    reason: format!(
                        "the archived original {} is not the seal the correction names",
                        escape_control(&id)
                    ),
                }
                .into());
            }
            named = corrected_seal(&signed.manifest);
        }
        Err(GetError::TooManyCorrections)
    }
}
