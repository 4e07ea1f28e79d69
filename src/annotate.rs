//! Annotation: the operator's remarks (the document's second remark info), validated, plus the
//! terminal's identity and the time, written into a record's sidecar.
//!
//! A record's sidecar is replaced atomically or not at all: every field is validated before
//! anything is written. A record that is already sealed is never touched: annotating it makes
//! a *correction*, a new record holding the whole record as corrected, naming the original by
//! record id and manifest hash, with an empty media file of its own, ready to be sealed.

use std::fs;
use std::path::{Path, PathBuf};

use chrono::{DateTime, FixedOffset, NaiveDate};

use crate::format::Manifest;
use crate::fsutil::{self, PathContext, PathError};
use crate::record::{
    sidecar_path, Correction, Record, RecordError, RecordFiles, RecordId, Terminal,
};
use crate::validate;
use crate::verify::{self, SealedFile, ShowError, VerifyError};
use crate::vocab::{Kind, Vocabulary};

/// The fields an operator can set, by the names used for flags (with `-` for `_`), CSV
/// columns and JSON keys.
pub const FIELD_NAMES: [&str; 15] = [
    "operator",
    "operator_name",
    "institution",
    "institution_name",
    "customer",
    "role",
    "business",
    "account",
    "card",
    "credit_code",
    "id_number",
    "result",
    "remark",
    "flag",
    "phone",
];

/// Raw field values as typed; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fields {
    values: [Option<String>; FIELD_NAMES.len()],
}

/// A field that cannot be set, and why. The reason never repeats the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: &'static str,
    pub reason: String,
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

impl Fields {
    /// Set a field by name; unknown names are an error naming the accepted ones.
    pub fn set(&mut self, name: &str, value: impl Into<String>) -> Result<(), String> {
        let i = FIELD_NAMES.iter().position(|n| *n == name).ok_or_else(|| {
            format!(
                "unknown field {name:?}; fields are {}",
                FIELD_NAMES.join(", ")
            )
        })?;
        self.values[i] = Some(value.into());
        Ok(())
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        let i = FIELD_NAMES.iter().position(|n| *n == name)?;
        self.values[i].as_deref()
    }

    pub fn is_empty(&self) -> bool {
        self.values.iter().all(Option::is_none)
    }

    /// Fields from `other` override these.
    pub fn merged(&self, other: &Fields) -> Fields {
        let mut out = self.clone();
        for (mine, theirs) in out.values.iter_mut().zip(&other.values) {
            if theirs.is_some() {
                mine.clone_from(theirs);
            }
        }
        out
    }
}

/// Validate one field's value and store it in `record`.
pub fn apply_field(
    record: &mut Record,
    name: &'static str,
    value: &str,
    vocab: &Vocabulary,
    today: NaiveDate,
) -> Result<(), FieldError> {
    let err = |reason: String| FieldError {
        field: name,
        reason,
    };
    let term = |kind: Kind| {
        vocab.find(kind, value).cloned().ok_or_else(|| {
            let choices: Vec<String> = vocab
                .list(kind)
                .iter()
                .map(|t| format!("{} {}", t.code, t.label))
                .collect();
            err(format!("not one of: {}", choices.join("; ")))
        })
    };
    match name {
        "operator" => record.operator.id = validate::code(value, 32).map_err(err)?,
        "operator_name" => record.operator.name = validate::text(value, 64).map_err(err)?,
        "institution" => {
            record.operator.institution_code = validate::code(value, 16).map_err(err)?
        }
        "institution_name" => {
            record.operator.institution_name = validate::text(value, 128).map_err(err)?
        }
        "customer" => record.call.customer_name = validate::text(value, 64).map_err(err)?,
        "role" => record.call.role = term(Kind::Role)?.label,
        "business" => record.call.business_type = term(Kind::BusinessType)?.label,
        "account" => record.call.account = validate::account(value).map_err(err)?,
        "card" => record.call.account = validate::card(value).map_err(err)?,
        "credit_code" => record.call.credit_code = validate::credit_code(value).map_err(err)?,
        "id_number" => record.call.id_number = validate::id_number(value, today).map_err(err)?,
        "result" => record.call.result = Some(term(Kind::Result)?.code),
        "remark" => record.call.remark = validate::text(value, 500).map_err(err)?,
        "flag" => record.collection_flag = validate::code(value, 8).map_err(err)?,
        "phone" => record.phone.number = validate::phone(value).map_err(err)?,
        other => unreachable!("unknown field {other}"),
    }
    Ok(())
}

/// Validate every given field and apply them all, or none: on any error the record is as it
/// was and every bad field is reported.
pub fn apply(
    record: &mut Record,
    fields: &Fields,
    vocab: &Vocabulary,
    today: NaiveDate,
) -> Result<(), Vec<FieldError>> {
    let mut changed = record.clone();
    let errors: Vec<FieldError> = FIELD_NAMES
        .iter()
        .zip(&fields.values)
        .filter_map(|(name, value)| {
            let value = value.as_deref()?;
            apply_field(&mut changed, name, value, vocab, today).err()
        })
        .collect();
    if !errors.is_empty() {
        return Err(errors);
    }
    *record = changed;
    Ok(())
}

/// The terminal's identity: host name, machine id and the OS user the process runs as.
pub fn terminal_identity() -> Terminal {
    let read = |path: &str| {
        fs::read_to_string(path)
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    };
    Terminal {
        host_name: read("/proc/sys/kernel/hostname"),
        machine_id: read("/etc/machine-id"),
        user: process_user(),
    }
}

/// The name of the user this process runs as (its real uid, from the password database), or
/// the uid in decimal if it has no name. Not `$USER`: cron leaves it empty, and anyone can set
/// it to another name.
pub fn process_user() -> String {
    // SAFETY: getuid cannot fail; getpwuid_r writes only into `pwd` and `buf`, which outlive
    // the call, and `pw_name` points into `buf` when `result` is non-null.
    unsafe {
        let uid = libc::getuid();
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut buf = vec![0 as libc::c_char; 4096];
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let rc = libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut result);
        if rc == 0 && !result.is_null() && !pwd.pw_name.is_null() {
            return std::ffi::CStr::from_ptr(pwd.pw_name)
                .to_string_lossy()
                .into_owned();
        }
        uid.to_string()
    }
}

/// Who annotates, and when.
#[derive(Debug, Clone)]
pub struct Context {
    pub terminal: Terminal,
    pub now: DateTime<FixedOffset>,
    pub vocab: Vocabulary,
    /// Reads the text info of sealed records, to correct them.
    pub identity: Option<PathBuf>,
    /// Where corrections are written (an archive of sealed files may be read-only).
    pub correction_dir: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum AnnotateError {
    #[error(transparent)]
    Io(#[from] PathError),
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error("{path:?}: {}", errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Invalid {
        path: PathBuf,
        errors: Vec<FieldError>,
    },
    #[error("{0:?} has neither media nor a sidecar")]
    Missing(PathBuf),
    #[error(
        "{path:?} is sealed: correcting it needs the key that reads its text info (--identity)"
    )]
    NoIdentity { path: PathBuf },
    #[error("cannot read the sealed record {path:?}")]
    Sealed {
        path: PathBuf,
        #[source]
        source: ShowError,
    },
}

/// What annotating one record did.
#[derive(Debug, Clone, PartialEq)]
pub enum Annotated {
    /// The sidecar beside `media` was written (or, with no fields, left as it was).
    Record { media: PathBuf, record: Record },
    /// A correction of a sealed record: a new record (empty media and sidecar) to seal.
    Correction { media: PathBuf, record: Record },
}

impl Annotated {
    pub fn media(&self) -> &Path {
        match self {
            Annotated::Record { media, .. } | Annotated::Correction { media, .. } => media,
        }
    }

    pub fn record(&self) -> &Record {
        match self {
            Annotated::Record { record, .. } | Annotated::Correction { record, .. } => record,
        }
    }
}

/// Read the record a path names: its sidecar, or a new record for bare media.
pub fn load(path: &Path) -> Result<(RecordFiles, Record), AnnotateError> {
    let files = RecordFiles::resolve(path);
    if let Some(sidecar) = &files.sidecar {
        let record = Record::load(sidecar)?;
        return Ok((files, record));
    }
    let meta =
        fs::metadata(&files.media).map_err(|_| AnnotateError::Missing(path.to_path_buf()))?;
    let file = fsutil::open_regular(&files.media).at("cannot open", &files.media)?;
    let (sha, _) = fsutil::copy_hashing(file, std::io::sink()).at("cannot read", &files.media)?;
    Ok((files, Record::new(RecordId::for_bare_media(&meta, &sha))))
}

/// Is this path a sealed file (so annotating it makes a correction)? Only a regular file can
/// be: a named pipe is not waited on.
pub fn is_sealed(path: &Path) -> bool {
    fsutil::open_regular(path).is_ok() && SealedFile::open(path).is_ok()
}

/// Annotate one record with `fields`: writes its sidecar atomically, or, for a sealed record,
/// writes a correction beside it. With no fields, nothing is written. Sidecars hold personal
/// data: they are written 0600 whatever the umask.
pub fn annotate(path: &Path, fields: &Fields, ctx: &Context) -> Result<Annotated, AnnotateError> {
    if is_sealed(path) {
        return correct(path, fields, ctx);
    }
    let (files, mut record) = load(path)?;
    if fields.is_empty() {
        return Ok(Annotated::Record {
            media: files.media,
            record,
        });
    }
    apply(&mut record, fields, &ctx.vocab, ctx.now.date_naive()).map_err(|errors| {
        AnnotateError::Invalid {
            path: path.to_path_buf(),
            errors,
        }
    })?;
    record.terminal = ctx.terminal.clone();
    record.times.annotated_at = Some(ctx.now);
    let sidecar = files
        .sidecar
        .clone()
        .unwrap_or_else(|| sidecar_path(&files.media));
    fsutil::write_atomic(&sidecar, &record.to_json(), true).at("cannot write", &sidecar)?;
    Ok(Annotated::Record {
        media: files.media,
        record,
    })
}

/// Make a correction of a sealed record: the original as decrypted, with `fields` applied, a
/// new id, and `corrects` naming the original. Written as an empty media file
/// `<new id>.correction` and its sidecar in the correction directory; the original is not
/// touched. Both files are written 0600: the sidecar is the decrypted record.
fn correct(path: &Path, fields: &Fields, ctx: &Context) -> Result<Annotated, AnnotateError> {
    let sealed_error = |source: ShowError| AnnotateError::Sealed {
        path: path.to_path_buf(),
        source,
    };
    let identity = ctx
        .identity
        .as_deref()
        .ok_or_else(|| AnnotateError::NoIdentity {
            path: path.to_path_buf(),
        })?;
    let sealed = SealedFile::open(path).map_err(|e| sealed_error(e.into()))?;
    verify::quick(&sealed).map_err(|e| sealed_error(e.into()))?;
    let manifest_bytes = sealed
        .manifest_bytes()
        .map_err(|e| sealed_error(VerifyError::from(e).into()))?;
    let manifest = Manifest::parse(&manifest_bytes).map_err(|e| {
        sealed_error(
            VerifyError::Failed {
                check: verify::Check::Manifest,
                reason: e.to_string(),
            }
            .into(),
        )
    })?;
    let original = verify::read_text(&sealed, identity).map_err(sealed_error)?;

    let mut record = original.clone();
    apply(&mut record, fields, &ctx.vocab, ctx.now.date_naive()).map_err(|errors| {
        AnnotateError::Invalid {
            path: path.to_path_buf(),
            errors,
        }
    })?;
    record.id = RecordId::new_random(ctx.now.to_utc());
    record.terminal = ctx.terminal.clone();
    record.times.annotated_at = Some(ctx.now);
    record.media = None;
    record.corrects = Some(Correction {
        record_id: manifest.record_id,
        manifest_sha256: hex::encode(Manifest::sha256(&manifest_bytes)),
    });
    let media = ctx.correction_dir.join(format!("{}.correction", record.id));
    fsutil::write_atomic(&media, b"", true).at("cannot write", &media)?;
    let sidecar = sidecar_path(&media);
    fsutil::write_atomic(&sidecar, &record.to_json(), true).at("cannot write", &sidecar)?;
    Ok(Annotated::Correction { media, record })
}

/// How a batch row names its record.
#[derive(Debug, Clone, PartialEq)]
pub enum RowKey {
    Id(RecordId),
    /// The phone number and the call's start, matched within a minute.
    PhoneAndTime {
        phone: String,
        time: chrono::NaiveDateTime,
    },
}

/// One row of a batch file: its line number, the record it names, the fields to set.
#[derive(Debug, Clone)]
pub struct Row {
    /// The batch file and line, for messages: `today.csv:12`.
    pub place: String,
    pub key: RowKey,
    pub fields: Fields,
}

/// A row that cannot be used, or a batch file that cannot (line 0), and why. The reason never
/// repeats a value from the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    pub file: String,
    pub line: u64,
    pub reason: String,
}

impl std::fmt::Display for RowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            0 => write!(f, "{}: {}", self.file, self.reason),
            line => write!(f, "{}:{line}: {}", self.file, self.reason),
        }
    }
}

impl std::error::Error for RowError {}

/// A batch file's bytes, without a leading UTF-8 byte order mark. Only a regular file is read:
/// a named pipe is refused at once, not waited on.
fn read_batch(path: &Path, file: &str) -> Result<Vec<u8>, RowError> {
    let mut bytes = fsutil::read_regular(path).map_err(|e| RowError {
        file: file.to_string(),
        line: 0,
        reason: e.to_string(),
    })?;
    if bytes.starts_with(BOM) {
        bytes.drain(..BOM.len());
    }
    Ok(bytes)
}

/// The UTF-8 byte order mark some spreadsheet programs start a file with.
const BOM: &[u8] = b"\xef\xbb\xbf";

/// Column names that name the record rather than set a field.
const KEY_COLUMNS: [&str; 2] = ["record_id", "call_time"];

fn parse_time(text: &str) -> Option<chrono::NaiveDateTime> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.naive_local())
        .ok()
        .or_else(|| chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S").ok())
        .or_else(|| chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M").ok())
}

/// Turn one row's `(column, value)` pairs into a [`Row`]. Empty values are ignored.
fn row_from_pairs<'a>(
    place: String,
    pairs: impl Iterator<Item = (&'a str, &'a str)>,
) -> Result<Row, String> {
    let mut fields = Fields::default();
    let (mut id, mut time) = (None, None);
    for (column, value) in pairs {
        let value = value.trim();
        if value.is_empty() {
            continue;
        }
        match column {
            "record_id" => id = Some(RecordId::parse(value).map_err(|e| e.to_string())?),
            "call_time" => {
                time = Some(parse_time(value).ok_or(
                    "call_time: use RFC 3339 or YYYY-MM-DD HH:MM:SS in the call's local time",
                )?)
            }
            name => fields.set(name, value)?,
        }
    }
    let key = match (id, time, fields.get("phone")) {
        (Some(id), _, _) => RowKey::Id(id),
        (None, Some(time), Some(phone)) => {
            let phone = validate::phone(phone).map_err(|e| format!("phone: {e}"))?;
            fields.values[FIELD_NAMES
                .iter()
                .position(|n| *n == "phone")
                .expect("known")] = None;
            RowKey::PhoneAndTime { phone, time }
        }
        _ => return Err("a row names its record by record_id, or by phone and call_time".into()),
    };
    Ok(Row { place, key, fields })
}

/// Read a CSV batch file: a header row naming the columns ([`FIELD_NAMES`], `record_id`,
/// `call_time`), each once, then one row per record. Bad rows (a bad UTF-8 byte included) are
/// returned as errors with their line numbers; the file as a whole fails if it cannot be read,
/// its header is wrong or it has no rows. A header cell that is not a column name is reported
/// by position, never echoed: a file without its header row starts with a customer's data.
pub fn read_csv(path: &Path) -> Result<Vec<Result<Row, RowError>>, RowError> {
    let file_name = path.display().to_string();
    let error = |line: u64, reason: String| RowError {
        file: file_name.clone(),
        line,
        reason,
    };
    let bytes = read_batch(path, &file_name)?;
    let mut reader = csv::ReaderBuilder::new()
        .flexible(false)
        .from_reader(bytes.as_slice());
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| error(1, e.to_string()))?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    for (i, column) in header.iter().enumerate() {
        if !FIELD_NAMES.contains(&column.as_str()) && !KEY_COLUMNS.contains(&column.as_str()) {
            return Err(error(
                1,
                format!(
                    "column {} of the header is not a column name (is the header row missing?); columns are record_id, call_time, {}",
                    i + 1,
                    FIELD_NAMES.join(", ")
                ),
            ));
        }
        if header[..i].contains(column) {
            return Err(error(1, format!("column {column:?} is named twice")));
        }
    }
    let mut rows = Vec::new();
    for result in reader.records() {
        rows.push(match result {
            Ok(record) => {
                let line = record.position().map_or(0, |p| p.line());
                row_from_pairs(
                    format!("{file_name}:{line}"),
                    header.iter().map(String::as_str).zip(record.iter()),
                )
                .map_err(|reason| error(line, reason))
            }
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                let reason = match e.kind() {
                    csv::ErrorKind::Utf8 { .. } => "not valid UTF-8".to_string(),
                    _ => e.to_string(),
                };
                Err(error(line, reason))
            }
        });
    }
    if rows.is_empty() {
        return Err(error(0, "the batch has no rows".into()));
    }
    Ok(rows)
}

/// Read a JSON Lines batch file: one object per line with the same keys as the CSV columns
/// (string values; `result` may be a number). Blank lines are skipped; a line that is not
/// UTF-8 or not an object is reported by its number and the others are read. A file with no
/// rows is an error.
pub fn read_json_lines(path: &Path) -> Result<Vec<Result<Row, RowError>>, RowError> {
    let file_name = path.display().to_string();
    let bytes = read_batch(path, &file_name)?;
    let mut rows = Vec::new();
    for (i, line_bytes) in bytes.split(|&b| b == b'\n').enumerate() {
        let line = i as u64 + 1;
        let parsed = std::str::from_utf8(line_bytes)
            .map_err(|_| "not valid UTF-8".to_string())
            .and_then(|line_text| {
                if line_text.trim().is_empty() {
                    return Ok(None);
                }
                let object =
                    serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(line_text)
                        .map_err(|e| format!("not a JSON object ({})", json_error_kind(&e)))?;
                let mut pairs = Vec::new();
                for (key, value) in &object {
                    let text = match value {
                        serde_json::Value::String(s) => s.clone(),
                        serde_json::Value::Number(n) => n.to_string(),
                        serde_json::Value::Null => continue,
                        _ => return Err(format!("{key}: give a string")),
                    };
                    pairs.push((key.clone(), text));
                }
                row_from_pairs(
                    format!("{file_name}:{line}"),
                    pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                )
                .map(Some)
            });
        let row = match parsed {
            Ok(None) => continue,
            Ok(Some(row)) => Ok(row),
            Err(reason) => Err(RowError {
                file: file_name.clone(),
                line,
                reason,
            }),
        };
        rows.push(row);
    }
    if rows.is_empty() {
        return Err(RowError {
            file: file_name,
            line: 0,
            reason: "the batch has no rows".into(),
        });
    }
    Ok(rows)
}

/// What kind of JSON error, without the value it was about (which may be personal data).
fn json_error_kind(e: &serde_json::Error) -> &'static str {
    match e.classify() {
        serde_json::error::Category::Io => "I/O error",
        serde_json::error::Category::Syntax => "syntax error",
        serde_json::error::Category::Data => "wrong type",
        serde_json::error::Category::Eof => "unexpected end",
    }
}

/// Find the record a row names among `records` (path, record): by id, or by phone and a call
/// start within 60 seconds of the row's time (in the call's local time). Exactly one must match.
pub fn find_record<'a>(key: &RowKey, records: &'a [(PathBuf, Record)]) -> Result<&'a Path, String> {
    let matches: Vec<&Path> = records
        .iter()
        .filter(|(_, r)| match key {
            RowKey::Id(id) => &r.id == id,
            RowKey::PhoneAndTime { phone, time } => {
                r.phone.number == *phone
                    && r.times.call_start.is_some_and(|start| {
                        (start.naive_local() - *time).num_seconds().abs() <= 60
                    })
            }
        })
        .map(|(p, _)| p.as_path())
        .collect();
    match matches.as_slice() {
        [one] => Ok(one),
        [] => Err("no record among the inputs matches this row".into()),
        _ => Err(format!(
            "{} records match this row; name it by record_id",
            matches.len()
        )),
    }
}

/// The current value of a field in a record, as text (empty if unset).
pub fn current(record: &Record, name: &str) -> String {
    match name {
        "operator" => record.operator.id.clone(),
        "operator_name" => record.operator.name.clone(),
        "institution" => record.operator.institution_code.clone(),
        "institution_name" => record.operator.institution_name.clone(),
        "customer" => record.call.customer_name.clone(),
        "role" => record.call.role.clone(),
        "business" => record.call.business_type.clone(),
        "account" | "card" => record.call.account.clone(),
        "credit_code" => record.call.credit_code.clone(),
        "id_number" => record.call.id_number.clone(),
        "result" => record
            .call
            .result
            .map(|r| r.to_string())
            .unwrap_or_default(),
        "remark" => record.call.remark.clone(),
        "flag" => record.collection_flag.clone(),
        "phone" => record.phone.number.clone(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_user_is_the_process_uid_not_the_environment() {
        let expected = std::process::Command::new("id")
            .arg("-un")
            .output()
            .unwrap();
        let expected = String::from_utf8(expected.stdout).unwrap();
        assert_eq!(super::process_user(), expected.trim());
    }
}
