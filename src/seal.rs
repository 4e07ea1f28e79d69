//! Sealing: media file + record → one self-contained sealed file.
//!
//! The media is copied into a temporary file in the output directory while it is hashed; the
//! text block, manifest, signature and footer follow; the file is fsynced and linked to its
//! final name only if no file has that name. Inputs are never changed, and are removed (with
//! `remove_source`) only after the output has passed a full verification.

use std::fs::{self, File};
use std::io::{self, Seek, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::chain::{Chain, ChainError};
use crate::format::{self, Cipher, Footer, Manifest};
use crate::fsutil::{self, PathContext, PathError};
use crate::keys::{KeyError, SealKey, SubstitutionTable};
use crate::media;
use crate::record::{Record, RecordError, RecordFiles, RecordId};
use crate::verify::{self, SealedFile, VerifyError};
use crate::watermark::{self, WatermarkError, WatermarkOptions};

/// How to seal.
pub struct SealOptions {
    /// Where sealed files go; `None` puts each beside its input.
    pub out_dir: Option<PathBuf>,
    pub cipher: Cipher,
    /// Recipients of the text info when `cipher` is age.
    pub recipients: Vec<age::x25519::Recipient>,
    /// The substitution table when `cipher` is table.
    pub table: Option<SubstitutionTable>,
    /// Remove the media and sidecar once the sealed file has verified.
    pub remove_source: bool,
    /// Burn the visible watermark into video; `None` seals the media as it is.
    pub watermark: Option<WatermarkOptions>,
}

/// What sealing one input did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SealOutcome {
    Sealed {
        output: PathBuf,
        record_id: RecordId,
        sequence: u64,
    },
    /// The input is itself a sealed file; nothing was done.
    InputSealed { path: PathBuf },
    /// The output already exists and seals this same record and media; nothing was done.
    OutputExists {
        output: PathBuf,
        record_id: RecordId,
    },
}

impl SealOutcome {
    /// The sealed file this outcome points at.
    pub fn sealed_path(&self) -> &Path {
        match self {
            SealOutcome::Sealed { output, .. } | SealOutcome::OutputExists { output, .. } => output,
            SealOutcome::InputSealed { path } => path,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error(transparent)]
    Io(#[from] PathError),
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Chain(#[from] ChainError),
    #[error("{0:?} is not a regular file")]
    NotAFile(PathBuf),
    #[error("{path:?} changed while it was being sealed; nothing was written")]
    MediaChanged { path: PathBuf },
    #[error("sidecar {sidecar:?} describes a media file of {expected} bytes, but {media:?} has {actual}")]
    SizeMismatch {
        sidecar: PathBuf,
        media: PathBuf,
        expected: u64,
        actual: u64,
    },
    #[error("{output:?} already exists and is not a seal of this record; it was left as it is (choose another --output-dir)")]
    Conflict { output: PathBuf },
    #[error("text info of {path:?} is {size} bytes encoded, over the format's limit of {max}")]
    TextTooLarge {
        path: PathBuf,
        size: usize,
        max: u32,
    },
    #[error(transparent)]
    Watermark(#[from] WatermarkError),
    #[error("cannot encrypt the text info: {0}")]
    Encrypt(String),
    #[error("the sealed file {output:?} did not verify, so the source was kept")]
    Unverified {
        output: PathBuf,
        #[source]
        source: VerifyError,
    },
}

/// The sealed file's name: `<stem>.sealed.<ext>` (`<name>.sealed` without an extension), so
/// players still recognise the type.
pub fn sealed_name(media: &Path) -> PathBuf {
    let stem = media.file_stem().unwrap_or_default();
    let mut name = stem.to_owned();
    name.push(".sealed");
    if let Some(ext) = media.extension() {
        name.push(".");
        name.push(ext);
    }
    PathBuf::from(name)
}

fn encode_text(plain: &[u8], opts: &SealOptions) -> Result<Vec<u8>, SealError> {
    match opts.cipher {
        Cipher::Table => Ok(opts
            .table
            .as_ref()
            .ok_or_else(|| SealError::Encrypt("no substitution table".into()))?
            .encode(plain)),
        Cipher::Age => {
            let encryptor = age::Encryptor::with_recipients(
                opts.recipients.iter().map(|r| r as &dyn age::Recipient),
            )
            .map_err(|e| {
                SealError::Encrypt(format!("{e} (give --recipient or fill age-recipients.txt)"))
            })?;
            let mut out = Vec::with_capacity(plain.len() + 256);
            let mut writer = encryptor
                .wrap_output(&mut out)
                .map_err(|e| SealError::Encrypt(e.to_string()))?;
            writer
                .write_all(plain)
                .and_then(|_| writer.finish().map(|_| ()))
                .map_err(|e| SealError::Encrypt(e.to_string()))?;
            Ok(out)
        }
    }
}

/// Does the sealed file at `output` seal this record with this media?
/// The input's hash is the sealed media's, or, for watermarked video, the manifest's
/// `source-sha256`.
fn seals_same(output: &Path, record_id: &RecordId, source_sha256: &[u8; 32]) -> bool {
    SealedFile::open(output)
        .ok()
        .and_then(|f| f.manifest_bytes().ok())
        .and_then(|m| Manifest::parse(&m).ok())
        .is_some_and(|m| {
            &m.record_id == record_id
                && (&m.media_sha256 == source_sha256
                    || m.extra(SOURCE_SHA256) == Some(hex::encode(source_sha256).as_str()))
        })
}

/// Manifest fact naming the SHA-256 of the media a watermarked copy was made from.
pub const SOURCE_SHA256: &str = "source-sha256";

/// Seal one record, named by its media file or its sidecar.
pub fn seal(input: &Path, key: &SealKey, opts: &SealOptions) -> Result<SealOutcome, SealError> {
    let files = RecordFiles::resolve(input);
    let media_path = &files.media;
    if SealedFile::open(media_path).is_ok() {
        return Ok(SealOutcome::InputSealed {
            path: media_path.clone(),
        });
    }
    let sidecar_record = files.sidecar.as_deref().map(Record::load).transpose()?;
    let source = File::open(media_path).at("cannot open", media_path)?;
    let meta = source.metadata().at("cannot read", media_path)?;
    if !meta.is_file() {
        return Err(SealError::NotAFile(media_path.clone()));
    }
    if let (Some(record), Some(sidecar)) = (&sidecar_record, &files.sidecar) {
        if let Some(info) = record.media.as_ref().filter(|m| m.size != meta.len()) {
            return Err(SealError::SizeMismatch {
                sidecar: sidecar.clone(),
                media: media_path.clone(),
                expected: info.size,
                actual: meta.len(),
            });
        }
    }

    let output = match &opts.out_dir {
        Some(dir) => dir.join(sealed_name(media_path)),
        None => media_path.with_file_name(sealed_name(media_path)),
    };
    let source = Source {
        path: media_path,
        file: source,
        meta,
        record: sidecar_record,
    };
    let outcome = if output.exists() {
        already_sealed(source, output)?
    } else {
        write_sealed(source, output, key, opts)?
    };
    if opts.remove_source {
        remove_source(&files, outcome.sealed_path(), key)?;
    }
    Ok(outcome)
}

/// The input being sealed.
struct Source<'a> {
    path: &'a Path,
    file: File,
    meta: fs::Metadata,
    /// From the sidecar, if there is one.
    record: Option<Record>,
}

/// The output exists: it is this record already sealed (a re-run), or a conflict.
fn already_sealed(source: Source, output: PathBuf) -> Result<SealOutcome, SealError> {
    let (media_sha256, _) =
        fsutil::copy_hashing(&source.file, io::sink()).at("cannot read", source.path)?;
    let record_id = match source.record {
        Some(record) => record.id,
        None => RecordId::for_bare_media(&source.meta, &media_sha256),
    };
    if seals_same(&output, &record_id, &media_sha256) {
        Ok(SealOutcome::OutputExists { output, record_id })
    } else {
        Err(SealError::Conflict { output })
    }
}

fn write_sealed(
    source: Source,
    output: PathBuf,
    key: &SealKey,
    opts: &SealOptions,
) -> Result<SealOutcome, SealError> {
    let media_path = source.path;
    let out_dir = fsutil::parent_dir(&output);
    let mut temp = fsutil::temp_in(out_dir).at("cannot create a file in", out_dir)?;
    // The sealed file is as readable as its source was.
    temp.as_file()
        .set_permissions(source.meta.permissions())
        .at("cannot set permissions on", temp.path())?;
    // The source's hash, read at most once: for a bare file's id, and beside a watermark.
    let mut source_sha256 = None;
    let mut hash_source = || -> Result<[u8; 32], SealError> {
        if let Some(sha) = source_sha256 {
            return Ok(sha);
        }
        (&source.file)
            .seek(io::SeekFrom::Start(0))
            .at("cannot read", media_path)?;
        let (sha, _) =
            fsutil::copy_hashing(&source.file, io::sink()).at("cannot read", media_path)?;
        source_sha256 = Some(sha);
        Ok(sha)
    };
    let mut record = match source.record {
        Some(record) => record,
        None => Record::new(RecordId::for_bare_media(&source.meta, &hash_source()?)),
    };
    if record.media.is_none() {
        record.media = Some(media::probe(media_path, source.meta.len()));
    }
    // The media part: the watermarked video, or the media exactly as it is.
    let watermark = opts
        .watermark
        .as_ref()
        .filter(|_| watermark::has_video(&record));
    let (media_sha256, media_len, source_sha256) = match watermark {
        Some(wm) => {
            let source_sha256 = hash_source()?;
            watermark::watermark(media_path, temp.path(), &record, wm)?;
            let written = File::open(temp.path()).at("cannot read back", temp.path())?;
            let (sha, len) =
                fsutil::copy_hashing(written, io::sink()).at("cannot read back", temp.path())?;
            temp.as_file_mut()
                .seek(io::SeekFrom::End(0))
                .at("cannot write", temp.path())?;
            (sha, len, Some(source_sha256))
        }
        None => {
            let (source_file, expected) = (&source.file, source.meta.len());
            (&*source_file)
                .seek(io::SeekFrom::Start(0))
                .at("cannot read", media_path)?;
            let (sha, len) =
                fsutil::copy_hashing(source_file, &mut temp).at("cannot copy", media_path)?;
            if len != expected {
                return Err(SealError::MediaChanged {
                    path: media_path.to_path_buf(),
                });
            }
            (sha, len, None)
        }
    };
    let checksum =
        format::quick_checksum(temp.as_file(), media_len).at("cannot read back", temp.path())?;

    let mut text = encode_text(&record.to_json(), opts)?;
    text.push(format::check_byte(&text));
    let text_len = u32::try_from(text.len())
        .ok()
        .filter(|&n| n <= format::TEXT_MAX)
        .ok_or(SealError::TextTooLarge {
            path: media_path.to_path_buf(),
            size: text.len(),
            max: format::TEXT_MAX,
        })?;
    temp.write_all(&text).at("cannot write", temp.path())?;

    let mut extra = Vec::new();
    if let (Cipher::Table, Some(table)) = (opts.cipher, &opts.table) {
        extra.push(("table-id".to_string(), table.id()));
    }
    extra.push((
        "watermark".to_string(),
        watermark.map_or_else(|| "none".to_string(), WatermarkOptions::describe),
    ));
    if let Some(sha) = source_sha256 {
        extra.push((SOURCE_SHA256.to_string(), hex::encode(sha)));
    }
    if let Some(health) = record.media.as_ref().and_then(|m| m.health.as_ref()) {
        let flags = if health.is_empty() {
            "ok".to_string()
        } else {
            health.join(" ")
        };
        extra.push(("health".to_string(), flags));
    }
    if let Some(original) = &record.corrects {
        extra.push((
            "corrects".to_string(),
            format!("{} {}", original.record_id, original.manifest_sha256),
        ));
    }

    // The chain is held only for the small tail of the file.
    let chain = Chain::lock(&key.dir)?;
    let link = chain.next()?;
    let manifest = Manifest {
        record_id: record.id.clone(),
        key_id: key.key_id.clone(),
        sealed_at: truncate_to_seconds(Utc::now()),
        sequence: link.sequence,
        previous: link.previous,
        media_size: media_len,
        media_checksum: checksum,
        media_sha256,
        text_cipher: opts.cipher,
        text_size: text_len,
        text_sha256: Sha256::digest(&text).into(),
        extra,
    };
    let manifest_bytes = manifest.to_bytes();
    let signature = key.sign(&manifest, &manifest_bytes)?;
    let footer = Footer {
        media_len,
        checksum,
        text_len,
        manifest_len: manifest_bytes.len() as u32,
        signature_len: signature.len() as u32,
        cipher: opts.cipher,
    };
    for part in [&manifest_bytes[..], signature.as_bytes(), &footer.encode()] {
        temp.write_all(part).at("cannot write", temp.path())?;
    }
    let manifest_sha256 = Manifest::sha256(&manifest_bytes);
    chain.begin(link, manifest_sha256, &output)?;
    match fsutil::persist_noclobber(temp, &output) {
        Ok(()) => chain.commit(link, manifest_sha256)?,
        Err(e) => {
            chain.abandon(link)?;
            return Err(match e.kind() {
                io::ErrorKind::AlreadyExists => SealError::Conflict { output },
                _ => PathError {
                    action: "cannot write",
                    path: output,
                    source: e,
                }
                .into(),
            });
        }
    }
    Ok(SealOutcome::Sealed {
        output,
        record_id: record.id,
        sequence: link.sequence,
    })
}

/// Remove the media and sidecar, but only once `sealed` passes a full verification.
fn remove_source(files: &RecordFiles, sealed: &Path, key: &SealKey) -> Result<(), SealError> {
    if sealed == files.media {
        return Ok(()); // the input was the sealed file itself
    }
    let unverified = |source| SealError::Unverified {
        output: sealed.to_path_buf(),
        source,
    };
    let file = SealedFile::open(sealed).map_err(unverified)?;
    verify::full(&file, &key.trusted(), None).map_err(unverified)?;
    // Media first: a crash in between leaves a sidecar without media, never media that a
    // later run would seal again under a bare-media record.
    fs::remove_file(&files.media).at("cannot remove", &files.media)?;
    if let Some(sidecar) = &files.sidecar {
        fs::remove_file(sidecar).at("cannot remove", sidecar)?;
    }
    Ok(())
}

fn truncate_to_seconds(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp(), 0).expect("in range")
}
