//! Sealing: media file + record → one self-contained sealed file.
//!
//! The media is copied into a temporary file in the output directory while it is hashed; the
//! text block, manifest, signature and footer follow; the file is fsynced and linked to its
//! final name only if no file has that name. Inputs are never changed, and are removed (with
//! `remove_source`) only after the output has passed a full verification.

pub mod chain;
pub mod watermark;

use std::fs::{self, File};
use std::io::{self, Seek, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::capture::{self, CaptureError, Captured};
use crate::cli;
use crate::format::{self, Cipher, Footer, Manifest};
use crate::fsutil::{self, PathContext, PathError};
use crate::keys::{self, KeyError, SealKey, SubstitutionTable, TextKey};
use crate::media;
use crate::record::{sidecar_path, Correction, Record, RecordError, RecordFiles, RecordId};
use crate::verify::{self, SealedFile, VerifyError};
use chain::{Chain, ChainError};
use watermark::{WatermarkError, WatermarkOptions};

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

impl SealOptions {
    /// The options for sealing with the key directory `key_dir`: the text is encoded with
    /// `cipher`, with the key directory's substitution table, or for its age recipients
    /// (`age-recipients.txt`) and `recipients`. The output directory is created; the
    /// watermark's font must exist.
    pub fn new(
        key_dir: &Path,
        cipher: Cipher,
        recipients: &[String],
        out_dir: Option<PathBuf>,
        remove_source: bool,
        watermark: Option<WatermarkOptions>,
    ) -> Result<SealOptions, SealError> {
        if let Some(wm) = &watermark {
            if !wm.font.is_file() {
                return Err(SealError::NoFont(wm.font.clone()));
            }
        }
        if let Some(dir) = &out_dir {
            fs::create_dir_all(dir).at("cannot create output directory", dir)?;
        }
        let mut options = SealOptions {
            out_dir,
            cipher,
            recipients: Vec::new(),
            table: None,
            remove_source,
            watermark,
        };
        match cipher {
            Cipher::Table => match keys::load_text_key(key_dir, Cipher::Table)? {
                TextKey::Table(table) => options.table = Some(*table),
                TextKey::Age(_) => unreachable!("asked for a table"),
            },
            Cipher::Age => {
                let file = key_dir.join(keys::AGE_RECIPIENTS);
                if file.exists() {
                    options.recipients = keys::read_recipients(&file)?;
                }
                for r in recipients {
                    let recipient = keys::parse_recipient(r)
                        .map_err(|e| SealError::BadRecipient(r.clone(), e))?;
                    options.recipients.push(recipient);
                }
                if options.recipients.is_empty() {
                    return Err(SealError::NoRecipient(file));
                }
            }
        }
        Ok(options)
    }
}

/// What a run does before it seals: work killed runs left, and the inputs.
pub struct RunStart {
    /// The recordings to seal, directories walked.
    pub inputs: Vec<PathBuf>,
    /// Sources whose removal a killed run began, now removed.
    pub finished_removals: Vec<PathBuf>,
    /// Recordings a killed capture left, completed (or why not).
    pub recovered: Vec<Result<Captured, CaptureError>>,
    /// Temporary files and settled stages removed, and the bytes freed.
    pub removed: Vec<PathBuf>,
    pub freed: u64,
}

/// Start a run over `given` (files and directories): finish what killed runs left in the
/// directories given (removals of sealed sources, recordings of a killed capture), walk them
/// for recordings, settle the chain and clean the output and input directories.
pub fn start_run(
    given: &[PathBuf],
    key: &SealKey,
    opts: &SealOptions,
) -> Result<RunStart, SealError> {
    let mut finished_removals = Vec::new();
    let mut recovered = Vec::new();
    for dir in given.iter().filter(|p| p.is_dir()) {
        finished_removals.extend(finish_removals(dir)?);
        recovered.extend(capture::recover_all(dir));
    }
    let inputs = cli::expand_dirs(given.to_vec(), cli::Walk::Recordings)?;
    let mut dirs: std::collections::BTreeSet<PathBuf> = match &opts.out_dir {
        Some(dir) => [dir.clone()].into(),
        None => inputs
            .iter()
            .map(|p| fsutil::parent_dir(p).to_path_buf())
            .collect(),
    };
    dirs.extend(given.iter().filter(|p| p.is_dir()).cloned());
    let (removed, freed) = prepare(key, dirs.iter())?;
    Ok(RunStart {
        inputs,
        finished_removals,
        recovered,
        removed,
        freed,
    })
}

/// What sealing one input did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SealOutcome {
    Sealed {
        output: PathBuf,
        record_id: RecordId,
        sequence: u64,
        /// For a correction sealed because the sidecar changed after the record was sealed:
        /// the earlier sealed file, which still holds the media.
        corrects: Option<PathBuf>,
    },
    /// The input is itself a sealed file, and verified; nothing was done.
    InputSealed { path: PathBuf },
    /// The output already exists and seals this same record, media and text; nothing was done.
    OutputExists {
        output: PathBuf,
        /// As for `Sealed`: the earlier seal a correction corrects.
        corrects: Option<PathBuf>,
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

    /// The earlier sealed file a correction made by this outcome corrects.
    pub fn corrects(&self) -> Option<&Path> {
        match self {
            SealOutcome::Sealed { corrects, .. } | SealOutcome::OutputExists { corrects, .. } => {
                corrects.as_deref()
            }
            SealOutcome::InputSealed { .. } => None,
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
    #[error("{path:?} ends like a sealed file but does not verify, so it was not taken as sealed")]
    NotSealed {
        path: PathBuf,
        #[source]
        source: VerifyError,
    },
    #[error("{path:?} is a recording still in progress (callrec-capture holds it)")]
    InProgress { path: PathBuf },
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
    #[error(transparent)]
    Capture(#[from] CaptureError),
    #[error("cannot encrypt the text info: {0}")]
    Encrypt(String),
    #[error("no age recipient: give --recipient or list recipients in {0:?}")]
    NoRecipient(PathBuf),
    #[error("age recipient {0:?} cannot be used: {1}")]
    BadRecipient(String, String),
    #[error("watermark font {0:?} not found: install fonts-dejavu-core, or give --watermark-font")]
    NoFont(PathBuf),
    #[error("cannot walk the inputs: {0}")]
    Walk(#[from] walkdir::Error),
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

/// How an existing sealed file compares with the input about to be sealed.
enum Sameness {
    /// Same record, same media, same text: nothing to do.
    Same,
    /// Same record and media, but the sidecar's text changed since: the earlier seal's
    /// manifest hash, for a correction.
    TextChanged { manifest_sha256: [u8; 32] },
    /// Another record or other media.
    Different,
}

/// Compare the sealed file at `output` with a record, its media's hash and its sidecar's MAC
/// (`None` for bare media, which has no text to change). The media hash matches the sealed
/// media's, or, for watermarked video, the manifest's `source-sha256`. A seal without a
/// `sidecar-mac` (made before it existed) cannot show its text is the same, so it counts as
/// changed: a needless correction is harmless, a dropped annotation is not.
fn compare(
    output: &Path,
    record_id: &RecordId,
    source_sha256: &[u8; 32],
    mac: Option<&[u8; 32]>,
) -> Sameness {
    let Some((manifest, bytes)) = readable_manifest(output) else {
        return Sameness::Different;
    };
    let same_media = &manifest.media_sha256 == source_sha256
        || manifest.extra(SOURCE_SHA256) == Some(hex::encode(source_sha256).as_str());
    if &manifest.record_id != record_id || !same_media {
        return Sameness::Different;
    }
    match mac {
        Some(mac) if manifest.extra(SIDECAR_MAC) != Some(hex::encode(mac).as_str()) => {
            Sameness::TextChanged {
                manifest_sha256: Manifest::sha256(&bytes),
            }
        }
        _ => Sameness::Same,
    }
}

/// The manifest of the sealed file at `path`, if it passes the quick checks and parses.
fn readable_manifest(path: &Path) -> Option<(Manifest, Vec<u8>)> {
    verify::manifest(&SealedFile::open(path).ok()?).ok()
}

/// Manifest fact: HMAC-SHA256 of the sidecar's record under a key derived from the sealing
/// key ([`SealKey::mac`]), so a later run knows whether the sidecar changed.
pub const SIDECAR_MAC: &str = "sidecar-mac";

/// Manifest fact naming the SHA-256 of the media a watermarked copy was made from.
pub const SOURCE_SHA256: &str = "source-sha256";

/// Seal one record, named by its media file or its sidecar.
pub fn seal(input: &Path, key: &SealKey, opts: &SealOptions) -> Result<SealOutcome, SealError> {
    let files = recording(RecordFiles::resolve(input))?;
    let media_path = &files.media;
    if let Some(marker) = removal_started(media_path)? {
        // An earlier run verified the seal and was removing this source when it stopped; a
        // file that took the name since is a new recording and is sealed as usual.
        if finish_removal(media_path, &marker)? {
            return Ok(SealOutcome::OutputExists {
                output: PathBuf::from(marker.sealed),
                corrects: None,
            });
        }
    }
    let source = fsutil::open_regular(media_path).map_err(|e| match e.kind() {
        io::ErrorKind::InvalidInput => SealError::NotAFile(media_path.clone()),
        _ => PathError {
            action: "cannot open",
            path: media_path.clone(),
            source: e,
        }
        .into(),
    })?;
    let meta = source.metadata().at("cannot read", media_path)?;
    if let Ok(sealed) = SealedFile::open(media_path) {
        // Ending like a sealed file is not enough: it must verify.
        check_sealed(&sealed, key).map_err(|source| SealError::NotSealed {
            path: media_path.clone(),
            source,
        })?;
        return Ok(SealOutcome::InputSealed {
            path: media_path.clone(),
        });
    }
    let sidecar_record = files.sidecar.as_deref().map(Record::load).transpose()?;
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
    let mac = sidecar_record.as_ref().map(|r| key.mac(&r.to_json()));
    let source = Source {
        path: media_path,
        file: source,
        meta,
        record: sidecar_record,
        mac,
    };
    let outcome = if output.exists() {
        already_sealed(source, output, key, opts)?
    } else {
        write_sealed(source, output, key, opts)?
    };
    if opts.remove_source {
        remove_source(&files, &outcome, key)?;
    }
    Ok(outcome)
}

/// A recording named by its `.part` (or by the media or sidecar of a recording still under
/// that name): completed first if its capture was killed, refused if one is still recording.
fn recording(files: RecordFiles) -> Result<RecordFiles, SealError> {
    let part = if files
        .media
        .as_os_str()
        .as_encoded_bytes()
        .ends_with(b".part")
    {
        files.media.clone()
    } else {
        let mut part = files.media.clone().into_os_string();
        part.push(".part");
        let part = PathBuf::from(part);
        if files.media.exists() || !part.exists() {
            return Ok(files);
        }
        part
    };
    match capture::recover(&part)? {
        Some(captured) => Ok(RecordFiles::resolve(&captured.media)),
        None => Err(SealError::InProgress { path: part }),
    }
}

/// An input that ends like a sealed file: the quick checks and the manifest, and the
/// signature and media hash too when it was sealed with this key.
fn check_sealed(sealed: &SealedFile, key: &SealKey) -> Result<(), VerifyError> {
    let (manifest, _) = verify::manifest(sealed)?;
    if manifest.key_id == key.key_id {
        verify::full(sealed, &key.trusted(), None)?;
    }
    Ok(())
}

/// Before a run (see [`start_run`]): settle the key's chain (a seal a crash left pending is rolled forward or
/// freed; a damaged state stops the run) and remove the temporary files killed runs left in
/// `dirs` (the output and input directories). Returns the files removed and the bytes freed.
fn prepare<'a>(
    key: &SealKey,
    dirs: impl IntoIterator<Item = &'a PathBuf>,
) -> Result<(Vec<PathBuf>, u64), SealError> {
    let chain = Chain::lock(&key.dir)?;
    let next = chain.next()?;
    let (mut removed, mut freed) = (Vec::new(), 0);
    for dir in dirs.into_iter().filter(|d| d.is_dir()) {
        let (paths, bytes) = fsutil::remove_stale_temps(dir).at("cannot clean up", dir)?;
        removed.extend(paths);
        freed += bytes;
        // Stages of this key's chain that it has settled past (a kill between the commit and
        // the stage's removal leaves one): the seal landed or was given up, so the copy goes.
        for entry in fs::read_dir(dir).at("cannot read", dir)?.flatten() {
            let name = entry.file_name();
            let name = name.as_encoded_bytes();
            if !(name.starts_with(fsutil::TEMP_PREFIX.as_bytes())
                && name.ends_with(chain::STAGE_SUFFIX.as_bytes()))
            {
                continue;
            }
            let path = entry.path();
            let settled = readable_manifest(&path)
                .is_some_and(|(m, _)| m.key_id == key.key_id && m.sequence < next.sequence);
            if settled {
                freed += entry.metadata().map(|m| m.len()).unwrap_or(0);
                fs::remove_file(&path).at("cannot remove", &path)?;
                removed.push(path);
            }
        }
    }
    drop(chain);
    Ok((removed, freed))
}

/// The input being sealed.
struct Source<'a> {
    path: &'a Path,
    file: File,
    meta: fs::Metadata,
    /// From the sidecar, if there is one.
    record: Option<Record>,
    /// [`SealKey::mac`] of the sidecar's record, if there is one.
    mac: Option<[u8; 32]>,
}

/// The output exists: it is this record already sealed (a re-run), the same record whose
/// sidecar changed since (sealed again as a correction of the earlier seal), or a conflict.
fn already_sealed(
    source: Source,
    output: PathBuf,
    key: &SealKey,
    opts: &SealOptions,
) -> Result<SealOutcome, SealError> {
    let (media_sha256, _) =
        fsutil::copy_hashing(&source.file, io::sink()).at("cannot read", source.path)?;
    let record_id = match &source.record {
        Some(record) => record.id.clone(),
        None => RecordId::for_bare_media(&source.meta, &media_sha256),
    };
    let manifest_sha256 = match compare(&output, &record_id, &media_sha256, source.mac.as_ref()) {
        Sameness::Same => {
            return Ok(SealOutcome::OutputExists {
                output,
                corrects: None,
            })
        }
        Sameness::Different => return Err(SealError::Conflict { output }),
        Sameness::TextChanged { manifest_sha256 } => manifest_sha256,
    };
    // The correction's name comes from the new text's MAC, so a re-run finds it.
    let (Some(mut record), Some(mac)) = (source.record, source.mac) else {
        unreachable!("a text change needs a sidecar");
    };
    let correction = correction_path(&output, &mac);
    if correction.exists() {
        let same = readable_manifest(&correction)
            .is_some_and(|(m, _)| m.extra(SIDECAR_MAC) == Some(hex::encode(mac).as_str()));
        return match same {
            true => Ok(SealOutcome::OutputExists {
                output: correction,
                corrects: Some(output),
            }),
            false => Err(SealError::Conflict { output: correction }),
        };
    }
    record.corrects = Some(Correction {
        record_id,
        manifest_sha256: hex::encode(manifest_sha256),
    });
    record.id = RecordId::new_random(Utc::now());
    record.media = None;
    let source = Source {
        record: Some(record),
        ..source
    };
    match write_sealed(source, correction, key, opts)? {
        SealOutcome::Sealed {
            output: sealed,
            record_id,
            sequence,
            ..
        } => Ok(SealOutcome::Sealed {
            output: sealed,
            record_id,
            sequence,
            corrects: Some(output),
        }),
        other => Ok(other),
    }
}

/// `DIR/STEM.MAC16.sealed.correction` beside the sealed file `DIR/STEM.sealed[.EXT]`.
fn correction_path(sealed: &Path, mac: &[u8; 32]) -> PathBuf {
    let name = sealed.file_name().unwrap_or_default().to_string_lossy();
    let stem = name.split(".sealed").next().unwrap_or(&name);
    sealed.with_file_name(format!(
        "{stem}.{}.sealed.correction",
        hex::encode(&mac[..8])
    ))
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
    // A correction holds no media of its own: the record it corrects holds it.
    let correction = record.corrects.is_some();
    if record.media.is_none() && !correction {
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
        None if correction => {
            let (sha, len) =
                fsutil::copy_hashing(io::empty(), &mut temp).at("cannot write", temp.path())?;
            (sha, len, None)
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
        extra.push((verify::TABLE_ID.to_string(), table.id()));
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
    if let Some(mac) = source.mac {
        extra.push((SIDECAR_MAC.to_string(), hex::encode(mac)));
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
    // Complete and durable under the stage name first, so a crash from here on can be rolled
    // forward by the chain whatever happens to the final name later (see `chain`).
    let stage = chain::stage_path(out_dir, &manifest_sha256);
    fsutil::persist(temp, &stage).at("cannot write", &stage)?;
    chain.begin(link, manifest_sha256, &output, &stage)?;
    let linked = std::fs::hard_link(&stage, &output).and_then(|()| fsutil::sync_dir(out_dir));
    match linked {
        Ok(()) => {
            let head = chain::Head {
                manifest: manifest_bytes,
                signature: signature.into_bytes(),
            };
            chain.commit(link, head, &stage)?
        }
        Err(e) => {
            chain.abandon(link, &stage)?;
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
        corrects: None,
    })
}

/// Remove the media and sidecar, but only once every sealed file holding them (the seal, and
/// for a correction also the earlier seal holding the media) passes a full verification.
fn remove_source(
    files: &RecordFiles,
    outcome: &SealOutcome,
    key: &SealKey,
) -> Result<(), SealError> {
    let sealed = outcome.sealed_path();
    if sealed == files.media {
        return Ok(()); // the input was the sealed file itself
    }
    // The seal holding the media: the earlier one for a correction.
    let mut media_sha256 = [0u8; 32];
    for path in std::iter::once(sealed).chain(outcome.corrects()) {
        let unverified = |source| SealError::Unverified {
            output: path.to_path_buf(),
            source,
        };
        let file = SealedFile::open(path).map_err(unverified)?;
        let verified = verify::full(&file, &key.trusted(), None).map_err(unverified)?;
        let manifest = verified.manifest;
        media_sha256 = manifest
            .extra(SOURCE_SHA256)
            .and_then(|h| hex::decode(h).ok())
            .and_then(|h| h.try_into().ok())
            .unwrap_or(manifest.media_sha256);
    }
    let sidecar = files
        .sidecar
        .clone()
        .unwrap_or_else(|| sidecar_path(&files.media));
    let marker = Removal {
        sealed: sealed.to_string_lossy().into_owned(),
        media_sha256: hex::encode(media_sha256),
        sidecar_sha256: match fs::read(&sidecar) {
            Ok(bytes) => Some(hex::encode(Sha256::digest(&bytes))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => {
                return Err(PathError {
                    action: "cannot read",
                    path: sidecar,
                    source: e,
                }
                .into())
            }
        },
    };
    let path = removal_marker(&files.media);
    let bytes = serde_json::to_vec(&marker).expect("a marker serialises");
    fsutil::write_atomic(&path, &bytes, false).at("cannot write", &path)?;
    finish_removal(&files.media, &marker)?;
    Ok(())
}

/// A removal under way, kept in `.callrec-NAME.removing` beside the media while it lasts: the
/// sealed file that verified, and the SHA-256 of the exact media and sidecar it holds. A run
/// killed half-way leaves it, and whoever finds it finishes the removal, removing only files
/// that still hold those bytes: never media without its sidecar for a later run to seal
/// again as a bare record, never a sidecar without media for ever, never a new recording
/// that took the same name.
#[derive(serde::Serialize, serde::Deserialize)]
struct Removal {
    sealed: String,
    media_sha256: String,
    sidecar_sha256: Option<String>,
}

/// Remove the media and sidecar `marker` names if they still hold its bytes, then the marker.
/// Returns whether the media was removed (it held the sealed bytes).
fn finish_removal(media: &Path, marker: &Removal) -> Result<bool, SealError> {
    let holds = |path: &Path, sha256: Option<&str>| -> Result<bool, SealError> {
        let Some(want) = sha256 else { return Ok(false) };
        match fs::File::open(path) {
            Ok(file) => {
                let (got, _) = fsutil::copy_hashing(file, io::sink()).at("cannot read", path)?;
                Ok(hex::encode(got) == want)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(PathError {
                action: "cannot read",
                path: path.to_path_buf(),
                source: e,
            }
            .into()),
        }
    };
    let sidecar = sidecar_path(media);
    let remove_sidecar = holds(&sidecar, marker.sidecar_sha256.as_deref())?;
    let remove_media = holds(media, Some(&marker.media_sha256))?;
    let marker_path = removal_marker(media);
    let doomed = [
        (remove_sidecar, sidecar.as_path()),
        (remove_media, media),
        (true, marker_path.as_path()),
    ];
    for (remove, path) in doomed {
        if !remove {
            continue;
        }
        match fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(PathError {
                    action: "cannot remove",
                    path: path.to_path_buf(),
                    source: e,
                }
                .into())
            }
        }
    }
    let dir = fsutil::parent_dir(media);
    fsutil::sync_dir(dir).at("cannot sync", dir)?;
    Ok(remove_media)
}

/// The removal marker of a media file: `DIR/.callrec-NAME.removing`.
fn removal_marker(media: &Path) -> PathBuf {
    let mut name = std::ffi::OsString::from(fsutil::TEMP_PREFIX);
    name.push(media.file_name().unwrap_or_default());
    name.push(REMOVING_SUFFIX);
    media.with_file_name(name)
}

const REMOVING_SUFFIX: &str = ".removing";

/// The removal a killed run left under way for `media`, if any.
fn removal_started(media: &Path) -> Result<Option<Removal>, SealError> {
    let path = removal_marker(media);
    match fs::read(&path) {
        // A marker that does not parse was cut short before its removal began: none is due.
        Ok(bytes) => Ok(serde_json::from_slice(&bytes).ok()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(PathError {
            action: "cannot read",
            path,
            source: e,
        }
        .into()),
    }
}

/// Finish the removals killed runs left under `dir` (their markers, `.callrec-NAME.removing`,
/// say what to remove: see `docs/FORMAT.md` §9). Returns the media
/// paths whose removal was finished.
pub fn finish_removals(dir: &Path) -> Result<Vec<PathBuf>, SealError> {
    let mut finished = Vec::new();
    for entry in walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
    {
        let name = entry.file_name().as_encoded_bytes();
        let Some(media_name) = name
            .strip_prefix(fsutil::TEMP_PREFIX.as_bytes())
            .and_then(|n| n.strip_suffix(REMOVING_SUFFIX.as_bytes()))
        else {
            continue;
        };
        let media = entry
            .path()
            .with_file_name(std::ffi::OsStr::from_bytes(media_name));
        match removal_started(&media)? {
            Some(marker) => {
                if finish_removal(&media, &marker)? {
                    finished.push(media);
                }
            }
            None => {
                let path = removal_marker(&media);
                let _ = fs::remove_file(&path);
            }
        }
    }
    Ok(finished)
}

fn truncate_to_seconds(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp(), 0).expect("in range")
}
