//! The index of an archive, for the document's figure 7: search by every condition, the
//! operators' workload, and the location of each record for fetching it.
//!
//! [`index_archive`] lists an archive, reads the seal and text block of each record it has not
//! seen (ranged reads on object storage), checks them, decrypts the text info with the
//! server's identity and stores one [`Entry`] per object. An object whose key and ETag are
//! already in the index is not read again.
//!
//! Storage is behind the [`Index`] trait; [`SqliteIndex`] is the embedded default (schema in
//! `docs/QUERY.md`). Every value a user gives reaches SQL as a bound parameter; substrings are
//! matched with `instr`, so `%`, `_` and quotes mean themselves.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate};
use rayon::prelude::*;
use rusqlite::{params_from_iter, types::Value, Connection, OptionalExtension};
use serde::Serialize;

use crate::archive::{Archive, Object, PushError, Skipped, Target};
use crate::format::Manifest;
use crate::fsutil::{PathContext, PathError};
use crate::keys::{self, TextKey, TrustedKeys};
use crate::record::Record;
use crate::verify::{self, SealedFile, VerifyError};

mod get;

pub use get::{get, GetError, GetRequest, Got, Part};

/// Version of the index schema this build writes (SQLite `user_version`). Older versions are
/// upgraded in place (version 2 added `key_trusted` and `text_key`; version 3 stores phone
/// numbers in the form of [`phone_key`]).
pub const INDEX_SCHEMA: i64 = 3;

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("index {path:?}: {source}")]
    Db {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("index {path:?} has schema {found}; this build reads schema {INDEX_SCHEMA}: rebuild it with a new --db")]
    Schema { path: PathBuf, found: i64 },
    #[error(transparent)]
    Archive(#[from] PushError),
    #[error(transparent)]
    Io(#[from] PathError),
    #[error("{0}")]
    Invalid(String),
    /// A mistake in what was asked: a usage error.
    #[error("{0}")]
    Usage(String),
    #[error("no index at {0:?}: build one with `callrec-query index ARCHIVE` (or name another with --db)")]
    NoIndex(PathBuf),
}

impl From<crate::vocab::UnknownTerm> for QueryError {
    fn from(e: crate::vocab::UnknownTerm) -> QueryError {
        QueryError::Usage(e.message)
    }
}

/// The one form a phone number is stored and searched in: spaces, hyphens and brackets
/// removed, and a mainland number's country code (`+86`, `0086`) dropped, so that
/// `+86 133-2115-0748`, `008613321150748` and `13321150748` are one number, as are
/// `+86 10 12345678` and `010-12345678`. Other numbers keep their form.
pub fn phone_key(value: &str) -> String {
    let v: String = value
        .chars()
        .filter(|c| !c.is_whitespace() && !matches!(c, '-' | '(' | ')'))
        .collect();
    let national = v.strip_prefix("+86").or_else(|| v.strip_prefix("0086"));
    match national {
        Some(rest) if !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()) => {
            let mobile = rest.len() == 11 && rest.starts_with('1');
            if mobile || rest.starts_with('0') {
                rest.to_string()
            } else {
                // A landline's area code is dialled with a leading 0 within the country.
                format!("0{rest}")
            }
        }
        _ => v,
    }
}

/// What the index knows of one archived object.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Entry {
    pub archive: String,
    pub key: String,
    pub size: u64,
    pub etag: String,
    /// From the manifest; for a record whose seal cannot be read, the key's file name.
    pub record_id: String,
    /// `ok`: the checks made at indexing passed; `failed`: one did (see `problem`).
    pub verdict: String,
    /// The failed check and why, or why the text info could not be read.
    pub problem: Option<String>,
    pub sealed_at: Option<String>,
    pub key_id: Option<String>,
    pub manifest_sha256: Option<String>,
    /// Whether the text info was decrypted (the fields below are empty otherwise).
    pub text: bool,
    pub collection_flag: String,
    /// The call's start, RFC 3339 in the terminal's offset.
    pub call_start: Option<String>,
    /// The call's start as Unix seconds, and its day and ISO week in the terminal's offset.
    pub call_time: Option<i64>,
    pub call_day: Option<String>,
    pub call_week: Option<String>,
    pub institution_code: String,
    pub institution_name: String,
    pub phone: String,
    pub customer_name: String,
    pub role: String,
    pub business_type: String,
    pub account: String,
    pub credit_code: String,
    pub id_number: String,
    pub result: Option<u8>,
    pub remark: String,
    pub device: String,
    pub operator_id: String,
    pub operator_name: String,
    /// For a correction: the id of the record it corrects.
    pub corrects: Option<String>,
    /// For a record that was corrected: the id of the latest correction.
    pub corrected_by: Option<String>,
    /// What the record was checked with when it was indexed.
    #[serde(skip)]
    pub checked: Checked,
}

/// What an indexed record was checked with, so that a run with other keys checks it again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checked {
    /// Whether its signing key was among the trusted keys; `None` when no trusted keys were
    /// given (its signature was not checked).
    pub trusted: Option<bool>,
    /// [`TextKeys::id`] of the keys its text info was read (or tried) with; `None` when no
    /// identity was given.
    pub text_key: Option<String>,
}

impl Entry {
    /// Take the text info of `old`, an earlier reading of the same object with the same
    /// manifest (so the same text block), whose text info was read and named the same record;
    /// this reading's verdict stands.
    fn keep_text(&mut self, old: Entry) {
        if !old.text
            || old.manifest_sha256 != self.manifest_sha256
            || old.problem.as_deref() == Some(TEXT_NAMES_ANOTHER)
        {
            return;
        }
        let seal = std::mem::replace(self, old);
        self.size = seal.size;
        self.etag = seal.etag;
        self.problem = if seal.verdict == "ok" {
            None
        } else {
            seal.problem
        };
        self.verdict = seal.verdict;
        self.checked.trusted = seal.checked.trusted;
    }

    fn fail(&mut self, problem: String) {
        self.verdict = "failed".into();
        self.problem = Some(problem);
    }

    fn fill(&mut self, record: &Record) {
        let start: Option<DateTime<FixedOffset>> = record.times.call_start;
        self.text = true;
        self.collection_flag = record.collection_flag.clone();
        self.call_start = start.map(|s| s.to_rfc3339());
        self.call_time = start.map(|s| s.timestamp());
        self.call_day = start.map(|s| s.format("%Y-%m-%d").to_string());
        self.call_week = start.map(|s| {
            let week = s.iso_week();
            format!("{}-W{:02}", week.year(), week.week())
        });
        self.institution_code = record.operator.institution_code.clone();
        self.institution_name = record.operator.institution_name.clone();
        self.phone = phone_key(&record.phone.number);
        self.customer_name = record.call.customer_name.clone();
        self.role = record.call.role.clone();
        self.business_type = record.call.business_type.clone();
        self.account = record.call.account.clone();
        self.credit_code = record.call.credit_code.clone();
        self.id_number = record.call.id_number.clone();
        self.result = record.call.result;
        self.remark = record.call.remark.clone();
        self.device = record.phone.device.number.clone();
        self.operator_id = record.operator.id.clone();
        self.operator_name = record.operator.name.clone();
        self.corrects = record.corrects.as_ref().map(|c| c.record_id.to_string());
    }
}

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

/// The problem of a record whose text info names another record than its manifest.
const TEXT_NAMES_ANOTHER: &str = "text-sha256: the text info names another record";

/// Read one archived object's seal and text info: the checks that need only its end (the
/// document's quick checks, the manifest, the text's SHA-256 and, with trusted keys, the
/// signature), then the text info. A directory archive's file is opened without following a
/// symbolic link ([`Archive::reader`]).
pub fn examine(
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
        verdict: "ok".into(),
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
        entry.manifest_sha256 = Some(hex::encode(sha256));
        entry.checked.trusted = trusted.map(|t| t.get(&manifest.key_id).is_some());
    }
    match text_keys.get(sealed.footer.cipher) {
        Ok(key) => match verify::decode_text(&sealed, key) {
            Ok(record) => entry.fill(&record),
            // The text is not the manifest's record, or not what the manifest says it is: a
            // failed check, like any other.
            Err(verify::ShowError::Verify(VerifyError::Failed { check, reason }))
                if entry.verdict == "ok" =>
            {
                entry.fail(format!("{check}: {reason}"))
            }
            Err(e) if entry.verdict == "ok" => {
                entry.problem = Some(format!("text info not read: {e}"))
            }
            Err(_) => {}
        },
        Err(reason) if entry.verdict == "ok" => {
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
}

/// What indexing one archive found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Indexed {
    pub summary: IndexSummary,
    /// Every entry of the archive in the index that failed a check.
    pub flagged: Vec<Entry>,
    /// Entries of this run that could not be taken; they are tried again next run.
    pub skipped: Vec<Skipped>,
}

/// What the index holds of an archived object: enough to decide whether to read it again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Known {
    pub etag: String,
    pub key_id: Option<String>,
    pub text: bool,
    pub checked: Checked,
}

impl Known {
    /// Whether this run's keys check the record differently than it was checked: trusted keys
    /// that give another answer for its signing key (or none was checked), or an identity
    /// other than the one its unread text info was tried with.
    fn recheck(&self, trusted: Option<&TrustedKeys>, text_keys: &TextKeys) -> bool {
        let trust = trusted.map(|t| self.key_id.as_deref().is_some_and(|id| t.get(id).is_some()));
        let other_trust = trust.is_some() && trust != self.checked.trusted;
        let other_text_key = !self.text
            && text_keys.id().is_some()
            && text_keys.id() != self.checked.text_key.as_deref();
        other_trust || other_text_key
    }
}

/// Bring the index up to date with one archive. `progress` is called once per record read.
///
/// A record is read when it is new, its ETag changed, or this run's keys check it
/// differently ([`Known`]). A record read again without the keys to its text info keeps the
/// text info read before, when its manifest is the same and it passed then.
pub fn index_archive(
    index: &mut dyn Index,
    archive: &Archive,
    trusted: Option<&TrustedKeys>,
    text_keys: &TextKeys,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<Indexed, QueryError> {
    let name = archive.target().to_string();
    let known = index.known(&name)?;
    let (objects, mut skipped) = archive.list()?;
    let changed: Vec<&Object> = objects
        .iter()
        .filter(|o| {
            known
                .get(&o.key)
                .is_none_or(|k| k.etag != o.etag || k.recheck(trusted, text_keys))
        })
        .collect();
    let mut summary = IndexSummary {
        archive: name,
        listed: objects.len(),
        unchanged: objects.len() - changed.len(),
        ..IndexSummary::default()
    };
    let done = std::sync::atomic::AtomicUsize::new(0);
    let total = changed.len();
    // Object storage is read with many requests in flight; a directory with one per core.
    let (threads, local) = match archive.target() {
        Target::Dir(_) => (0, true),
        Target::S3 { .. } => (16, false),
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| QueryError::Invalid(e.to_string()))?;
    for batch in changed.chunks(2000) {
        let results: Vec<Result<Entry, PushError>> = pool.install(|| {
            batch
                .par_iter()
                .map(|object| {
                    let entry = examine(archive, object, trusted, text_keys);
                    progress(
                        done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1,
                        total,
                    );
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
                // A file of a directory archive that cannot be read, or an object the store
                // will not give (gone since the listing, refused), is one bad entry; object
                // storage that fails to answer (or cannot be used at all) fails the run.
                Err(e) if local || e.exit_code() == crate::cli::EXIT_FAILED => {
                    skipped.push(Skipped {
                        path: PathBuf::from(&object.key),
                        reason: crate::cli::error_chain(&e),
                    })
                }
                Err(e) => return Err(e.into()),
            }
        }
        index.put(&entries)?;
        summary.read += entries.len();
        summary.failed += entries.iter().filter(|e| e.verdict != "ok").count();
        summary.text_unread += entries
            .iter()
            .filter(|e| e.verdict == "ok" && !e.text)
            .count();
    }
    summary.skipped = skipped.len();
    let flagged = index.flagged(&summary.archive)?;
    Ok(Indexed {
        summary,
        flagged,
        skipped,
    })
}

/// How search results are ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum SortKey {
    #[default]
    Time,
    Operator,
    Phone,
    Result,
    Institution,
    Record,
}

impl SortKey {
    fn column(self) -> &'static str {
        match self {
            SortKey::Time => "call_time",
            SortKey::Operator => "operator_id",
            SortKey::Phone => "phone",
            SortKey::Result => "result",
            SortKey::Institution => "institution_code",
            SortKey::Record => "record_id",
        }
    }
}

/// A time bound: a whole day (in each call's own offset) or an instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bound {
    Day(NaiveDate),
    Instant(i64),
}

impl std::str::FromStr for Bound {
    type Err = String;
    fn from_str(s: &str) -> Result<Bound, String> {
        if let Ok(day) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
            return Ok(Bound::Day(day));
        }
        DateTime::parse_from_rfc3339(s)
            .map(|t| Bound::Instant(t.timestamp()))
            .map_err(|_| format!("{s:?} is not a date (YYYY-MM-DD) or a time (RFC 3339)"))
    }
}

/// The conditions of a search (figure 7); all given ones must hold.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub from: Option<Bound>,
    pub to: Option<Bound>,
    pub collection_flag: Option<String>,
    /// An institution's code, or else a part of institutions' names.
    pub institution: Option<String>,
    pub phone: Option<String>,
    /// Part of the customer's name.
    pub customer: Option<String>,
    /// An account or card number.
    pub account: Option<String>,
    pub role: Option<String>,
    pub business_type: Option<String>,
    pub results: Vec<u8>,
    pub device: Option<String>,
    pub operator: Option<String>,
    /// Only records that failed a check.
    pub failed: bool,
    /// Every version of corrected records, not only the latest.
    pub all_versions: bool,
    pub sort: SortKey,
    pub descending: bool,
    pub limit: Option<u64>,
}

impl Filter {
    /// Check a filter made from what a user typed, and put its values in the index's forms:
    /// the role and business type (a code, label or English name) become the vocabulary's
    /// label, each result code must be in the vocabulary, the phone number must be one and is
    /// normalised ([`phone_key`]), and `--from` may not be after `--to`. A mistake is a
    /// [`QueryError::Usage`] that names the valid values, never a search that finds nothing.
    pub fn resolve(mut self, vocab: &crate::vocab::Vocabulary) -> Result<Filter, QueryError> {
        use crate::vocab::Kind;
        check_range(&self.from, &self.to)?;
        for (kind, value) in [
            (Kind::Role, &mut self.role),
            (Kind::BusinessType, &mut self.business_type),
        ] {
            if let Some(v) = value {
                *v = vocab.resolve(kind, v)?.label.clone();
            }
        }
        for &code in &self.results {
            vocab.resolve_code(Kind::Result, code)?;
        }
        if let Some(phone) = &mut self.phone {
            let key = phone_key(phone);
            // The message never repeats the value: a phone number is personal data.
            crate::validate::phone(&key)
                .map_err(|reason| QueryError::Usage(format!("--phone: {reason}")))?;
            *phone = key;
        }
        Ok(self)
    }
}

/// Refuse a time range that is empty whatever the calls' offsets: `--from` after `--to`.
pub fn check_range(from: &Option<Bound>, to: &Option<Bound>) -> Result<(), QueryError> {
    // A day is in each call's own offset: it may begin as early as 14 hours before its UTC
    // midnight and end as late as 12 hours after its UTC end.
    let earliest = |b: &Bound| match b {
        Bound::Day(d) => {
            d.and_hms_opt(0, 0, 0)
                .expect("midnight")
                .and_utc()
                .timestamp()
                - 14 * 3600
        }
        Bound::Instant(t) => *t,
    };
    let latest = |b: &Bound| match b {
        Bound::Day(d) => {
            d.and_hms_opt(23, 59, 59)
                .expect("a time")
                .and_utc()
                .timestamp()
                + 12 * 3600
        }
        Bound::Instant(t) => *t,
    };
    let empty = match (from, to) {
        (Some(Bound::Day(f)), Some(Bound::Day(t))) => f > t,
        (Some(f), Some(t)) => earliest(f) > latest(t),
        _ => false,
    };
    if empty {
        return Err(QueryError::Usage(
            "--from is after --to: no call can be in that range (swap them)".into(),
        ));
    }
    Ok(())
}

/// SQL conditions and their parameters, built from a filter: values are always parameters.
struct Where {
    sql: Vec<String>,
    params: Vec<Value>,
}

impl Where {
    fn push(&mut self, sql: &str, values: impl IntoIterator<Item = Value>) {
        self.sql.push(sql.to_string());
        self.params.extend(values);
    }

    fn text(&mut self, sql: &str, value: &Option<String>) {
        if let Some(v) = value {
            let n = sql.matches('?').count();
            self.push(sql, std::iter::repeat_n(Value::Text(v.clone()), n));
        }
    }

    fn time(&mut self, bound: &Option<Bound>, upper: bool) {
        match (bound, upper) {
            (None, _) => {}
            (Some(Bound::Day(d)), false) => {
                self.push("call_day >= ?", [Value::Text(d.to_string())])
            }
            (Some(Bound::Day(d)), true) => self.push("call_day <= ?", [Value::Text(d.to_string())]),
            (Some(Bound::Instant(t)), false) => self.push("call_time >= ?", [Value::Integer(*t)]),
            (Some(Bound::Instant(t)), true) => self.push("call_time <= ?", [Value::Integer(*t)]),
        }
    }

    fn clause(&self) -> String {
        if self.sql.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", self.sql.join(" AND "))
        }
    }
}

/// A correction supersedes the record it names; only the latest version is current.
const LATEST: &str = "corrected_by IS NULL";

impl Filter {
    /// The conditions. `institution_is_code`: the institution given is some institution's
    /// code (it then matches that code; otherwise a part of institution names).
    fn to_where(&self, institution_is_code: bool) -> Where {
        let mut w = Where {
            sql: Vec::new(),
            params: Vec::new(),
        };
        w.time(&self.from, false);
        w.time(&self.to, true);
        w.text("collection_flag = ?", &self.collection_flag);
        w.text(
            if institution_is_code {
                "institution_code = ?"
            } else {
                "instr(institution_name, ?) > 0"
            },
            &self.institution,
        );
        w.text("phone = ?", &self.phone.as_deref().map(phone_key));
        w.text("instr(customer_name, ?) > 0", &self.customer);
        w.text("account = ?", &self.account);
        w.text("role = ?", &self.role);
        w.text("business_type = ?", &self.business_type);
        if !self.results.is_empty() {
            let marks = vec!["?"; self.results.len()].join(", ");
            w.push(
                &format!("result IN ({marks})"),
                self.results.iter().map(|&r| Value::Integer(r.into())),
            );
        }
        w.text("device = ?", &self.device);
        w.text("operator_id = ?", &self.operator);
        if self.failed {
            w.push("verdict <> 'ok'", []);
        }
        if !self.all_versions {
            w.push(LATEST, []);
        }
        w
    }
}

/// A workload period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Period {
    #[default]
    Day,
    Week,
    Month,
    /// The whole range given
    All,
}

impl Period {
    fn sql(self) -> &'static str {
        match self {
            Period::Day => "call_day",
            Period::Week => "call_week",
            Period::Month => "substr(call_day, 1, 7)",
            Period::All => "'all'",
        }
    }
}

/// One operator's calls in one period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Workload {
    pub operator_id: String,
    pub operator_name: String,
    pub period: String,
    pub calls: u64,
    /// Calls whose result is 1: the customer confirmed (核实成功). A call's result, not its
    /// seal: records that failed a check are never counted here.
    pub confirmed: u64,
    /// Calls with any other result (2 and up: not confirmed, for the reason the code names).
    pub not_confirmed: u64,
    /// No result recorded.
    pub no_result: u64,
    /// not_confirmed / (confirmed + not_confirmed), 0 when there are none.
    pub not_confirmed_rate: f64,
    pub quota: Option<u64>,
    /// Fewer calls than the quota.
    pub behind: bool,
}

/// The workload report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stats {
    pub rows: Vec<Workload>,
    /// Calls per result code (`None`: no result recorded).
    pub results: Vec<(Option<u8>, u64)>,
    /// Records in range that failed a check at indexing: not counted above.
    pub flagged: u64,
}

/// What the workload report covers.
#[derive(Debug, Clone, Default)]
pub struct StatsQuery {
    pub from: Option<Bound>,
    pub to: Option<Bound>,
    pub operator: Option<String>,
    pub period: Period,
    pub quota: Option<u64>,
}

/// Storage for the index. The embedded default is [`SqliteIndex`]; a shared server database
/// would implement the same.
pub trait Index {
    /// Key → what the index holds of every object of `archive`.
    fn known(&self, archive: &str) -> Result<HashMap<String, Known>, QueryError>;
    /// The entry of one object.
    fn entry(&self, archive: &str, key: &str) -> Result<Option<Entry>, QueryError>;
    /// Insert or replace entries (by archive and key), and settle which records corrections
    /// supersede.
    fn put(&mut self, entries: &[Entry]) -> Result<(), QueryError>;
    /// Every entry of `archive` that failed a check.
    fn flagged(&self, archive: &str) -> Result<Vec<Entry>, QueryError>;
    fn search(&self, filter: &Filter) -> Result<Vec<Entry>, QueryError>;
    fn stats(&self, query: &StatsQuery) -> Result<Stats, QueryError>;
    /// Every version of a record: the record itself and the corrections of it, oldest first.
    fn history(&self, record_id: &str) -> Result<Vec<Entry>, QueryError>;
    /// Where a record is archived: an intact copy if there is one, and of several seals of
    /// the record (keys name the manifest hash) the newest, so the answer does not depend on
    /// the order of rows.
    fn locate(&self, record_id: &str) -> Result<Option<Entry>, QueryError>;
    /// Where one seal of a record is archived: the copy whose manifest has this SHA-256 (hex),
    /// as a correction names the seal it corrects.
    fn seal_of(&self, record_id: &str, manifest_sha256: &str) -> Result<Option<Entry>, QueryError>;
}

/// The index in an SQLite file.
pub struct SqliteIndex {
    path: PathBuf,
    conn: Connection,
}

/// The fields of an [`Entry`] as output (JSON and CSV), in order: the first columns of
/// `records`.
pub const FIELDS: [&str; 32] = [
    "archive",
    "key",
    "size",
    "etag",
    "record_id",
    "verdict",
    "problem",
    "sealed_at",
    "key_id",
    "manifest_sha256",
    "text",
    "collection_flag",
    "call_start",
    "call_time",
    "call_day",
    "call_week",
    "institution_code",
    "institution_name",
    "phone",
    "customer_name",
    "role",
    "business_type",
    "account",
    "credit_code",
    "id_number",
    "result",
    "remark",
    "device",
    "operator_id",
    "operator_name",
    "corrects",
    "corrected_by",
];

/// The columns of `records` after [`FIELDS`]: what a record was checked with ([`Checked`]).
const CHECKED_COLUMNS: [&str; 2] = ["key_trusted", "text_key"];

/// Every column of `records`, in [`Entry`]'s order, comma-separated.
fn columns() -> String {
    FIELDS
        .iter()
        .chain(&CHECKED_COLUMNS)
        .copied()
        .collect::<Vec<_>>()
        .join(", ")
}

const SCHEMA_SQL: &str = "
CREATE TABLE IF NOT EXISTS records (
    archive TEXT NOT NULL,
    key TEXT NOT NULL,
    size INTEGER NOT NULL,
    etag TEXT NOT NULL,
    record_id TEXT NOT NULL,
    verdict TEXT NOT NULL,
    problem TEXT,
    sealed_at TEXT,
    key_id TEXT,
    manifest_sha256 TEXT,
    text INTEGER NOT NULL,
    collection_flag TEXT NOT NULL,
    call_start TEXT,
    call_time INTEGER,
    call_day TEXT,
    call_week TEXT,
    institution_code TEXT NOT NULL,
    institution_name TEXT NOT NULL,
    phone TEXT NOT NULL,
    customer_name TEXT NOT NULL,
    role TEXT NOT NULL,
    business_type TEXT NOT NULL,
    account TEXT NOT NULL,
    credit_code TEXT NOT NULL,
    id_number TEXT NOT NULL,
    result INTEGER,
    remark TEXT NOT NULL,
    device TEXT NOT NULL,
    operator_id TEXT NOT NULL,
    operator_name TEXT NOT NULL,
    corrects TEXT,
    corrected_by TEXT,
    key_trusted INTEGER,
    text_key TEXT,
    PRIMARY KEY (archive, key)
);
CREATE INDEX IF NOT EXISTS records_time ON records (call_time);
-- Wide, so that the conditions of a search within a date range are tested on the index
-- entries and only matching records are read.
CREATE INDEX IF NOT EXISTS records_day ON records (call_day, corrected_by, verdict, result,
    collection_flag, institution_code, institution_name, customer_name, role, business_type);
CREATE INDEX IF NOT EXISTS records_phone ON records (phone);
CREATE INDEX IF NOT EXISTS records_account ON records (account);
CREATE INDEX IF NOT EXISTS records_device ON records (device);
CREATE INDEX IF NOT EXISTS records_operator ON records (operator_id, call_day);
CREATE INDEX IF NOT EXISTS records_institution ON records (institution_code, call_day);
CREATE INDEX IF NOT EXISTS records_record_id ON records (record_id);
CREATE INDEX IF NOT EXISTS records_corrects ON records (corrects);
CREATE TABLE IF NOT EXISTS daily (
    call_day TEXT NOT NULL,
    call_week TEXT NOT NULL,
    operator_id TEXT NOT NULL,
    operator_name TEXT NOT NULL,
    result INTEGER,
    calls INTEGER NOT NULL,
    flagged INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS daily_day ON daily (call_day);
CREATE INDEX IF NOT EXISTS daily_operator ON daily (operator_id, call_day);
";

/// Version 1 to 2: what each record was checked with (NULL: unknown, so a run with keys
/// checks it again).
const UPGRADE_1_SQL: &str = "
ALTER TABLE records ADD COLUMN key_trusted INTEGER;
ALTER TABLE records ADD COLUMN text_key TEXT;
";

/// Version 2 to 3: phone numbers in the form of [`phone_key`], so that one number is one
/// value however it was typed.
fn upgrade_phones(conn: &Connection) -> rusqlite::Result<()> {
    let phones: Vec<String> = conn
        .prepare("SELECT DISTINCT phone FROM records")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut update = conn.prepare("UPDATE records SET phone = ?2 WHERE phone = ?1")?;
    for phone in phones {
        let key = phone_key(&phone);
        if key != phone {
            update.execute([&phone, &key])?;
        }
    }
    Ok(())
}

/// The workload summary of the given days (`?1`: a JSON array of days), rebuilt from
/// `records`: current versions only, intact records in `calls`, the others in `flagged`.
const DAILY_SQL: &str = "
DELETE FROM daily WHERE call_day IN (SELECT value FROM json_each(?1));
INSERT INTO daily
SELECT call_day, max(call_week), operator_id, max(operator_name), result,
       sum(verdict = 'ok'), sum(verdict <> 'ok')
FROM records
WHERE call_day IN (SELECT value FROM json_each(?1)) AND corrected_by IS NULL
GROUP BY call_day, operator_id, result;
";

impl SqliteIndex {
    /// Open (creating if need be) the index at `path`. A new index file is readable by its
    /// owner only: it holds decrypted personal data.
    pub fn open(path: &Path) -> Result<SqliteIndex, QueryError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).at("cannot create", dir)?;
        }
        if !path.exists() {
            crate::fsutil::create_secret(path, b"")
                .at("cannot create", path)
                .map(drop)?;
        }
        let db = |source| QueryError::Db {
            path: path.to_path_buf(),
            source,
        };
        let conn = Connection::open(path).map_err(db)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(db)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(db)?;
        SqliteIndex::settle_schema(path, conn)
    }

    /// Open the existing index at `path` for reading: the read-only commands (search, history,
    /// stats, get) never create one, nor a directory for it. An index of an older schema is
    /// upgraded in place first; the connection then refuses writes (`query_only`).
    pub fn open_existing(path: &Path) -> Result<SqliteIndex, QueryError> {
        use rusqlite::OpenFlags;
        match std::fs::metadata(path) {
            Ok(meta) if meta.is_file() => {}
            Ok(_) => {
                return Err(QueryError::Usage(format!(
                    "{path:?} is not an index file (give --db the index's SQLite file)"
                )))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(QueryError::NoIndex(path.to_path_buf()))
            }
            Err(e) => {
                return Err(QueryError::Io(PathError {
                    action: "cannot read",
                    path: path.to_path_buf(),
                    source: e,
                }))
            }
        }
        let db = |source| QueryError::Db {
            path: path.to_path_buf(),
            source,
        };
        // Read-write without create: SQLite itself opens a write-protected file read-only.
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(|source| match source {
            rusqlite::Error::SqliteFailure(e, _) if e.code == rusqlite::ErrorCode::CannotOpen => {
                QueryError::NoIndex(path.to_path_buf())
            }
            source => db(source),
        })?;
        let index = SqliteIndex::settle_schema(path, conn)?;
        index
            .conn
            .pragma_update(None, "query_only", true)
            .map_err(db)?;
        Ok(index)
    }

    /// Check the schema version of an opened index, creating or upgrading it as needed.
    fn settle_schema(path: &Path, conn: Connection) -> Result<SqliteIndex, QueryError> {
        let db = |source| QueryError::Db {
            path: path.to_path_buf(),
            source,
        };
        let found: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(db)?;
        match found {
            0 => conn.execute_batch(SCHEMA_SQL).map_err(db)?,
            1 | 2 => {
                if found == 1 {
                    conn.execute_batch(UPGRADE_1_SQL).map_err(db)?;
                }
                upgrade_phones(&conn).map_err(db)?;
            }
            INDEX_SCHEMA => {}
            found => {
                return Err(QueryError::Schema {
                    path: path.to_path_buf(),
                    found,
                })
            }
        }
        if found != INDEX_SCHEMA {
            conn.pragma_update(None, "user_version", INDEX_SCHEMA)
                .map_err(db)?;
        }
        Ok(SqliteIndex {
            path: path.to_path_buf(),
            conn,
        })
    }

    fn db(&self) -> impl Fn(rusqlite::Error) -> QueryError + '_ {
        |source| QueryError::Db {
            path: self.path.clone(),
            source,
        }
    }

    fn select(&self, clause: &str, params: &[Value]) -> Result<Vec<Entry>, QueryError> {
        let sql = format!("SELECT {} FROM records {clause}", columns());
        let mut stmt = self.conn.prepare_cached(&sql).map_err(self.db())?;
        let rows = stmt
            .query_map(params_from_iter(params), |r| {
                Ok(Entry {
                    archive: r.get(0)?,
                    key: r.get(1)?,
                    size: r.get(2)?,
                    etag: r.get(3)?,
                    record_id: r.get(4)?,
                    verdict: r.get(5)?,
                    problem: r.get(6)?,
                    sealed_at: r.get(7)?,
                    key_id: r.get(8)?,
                    manifest_sha256: r.get(9)?,
                    text: r.get(10)?,
                    collection_flag: r.get(11)?,
                    call_start: r.get(12)?,
                    call_time: r.get(13)?,
                    call_day: r.get(14)?,
                    call_week: r.get(15)?,
                    institution_code: r.get(16)?,
                    institution_name: r.get(17)?,
                    phone: r.get(18)?,
                    customer_name: r.get(19)?,
                    role: r.get(20)?,
                    business_type: r.get(21)?,
                    account: r.get(22)?,
                    credit_code: r.get(23)?,
                    id_number: r.get(24)?,
                    result: r.get(25)?,
                    remark: r.get(26)?,
                    device: r.get(27)?,
                    operator_id: r.get(28)?,
                    operator_name: r.get(29)?,
                    corrects: r.get(30)?,
                    corrected_by: r.get(31)?,
                    checked: Checked {
                        trusted: r.get(32)?,
                        text_key: r.get(33)?,
                    },
                })
            })
            .map_err(self.db())?;
        rows.collect::<Result<_, _>>().map_err(self.db())
    }
}

impl Index for SqliteIndex {
    fn known(&self, archive: &str) -> Result<HashMap<String, Known>, QueryError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT key, etag, key_id, text, key_trusted, text_key
                 FROM records WHERE archive = ?1",
            )
            .map_err(self.db())?;
        let rows = stmt
            .query_map([archive], |r| {
                Ok((
                    r.get(0)?,
                    Known {
                        etag: r.get(1)?,
                        key_id: r.get(2)?,
                        text: r.get(3)?,
                        checked: Checked {
                            trusted: r.get(4)?,
                            text_key: r.get(5)?,
                        },
                    },
                ))
            })
            .map_err(self.db())?;
        rows.collect::<Result<_, _>>().map_err(self.db())
    }

    fn entry(&self, archive: &str, key: &str) -> Result<Option<Entry>, QueryError> {
        Ok(self
            .select(
                "WHERE archive = ? AND key = ?",
                &[
                    Value::Text(archive.to_string()),
                    Value::Text(key.to_string()),
                ],
            )?
            .pop())
    }

    fn put(&mut self, entries: &[Entry]) -> Result<(), QueryError> {
        let path = self.path.clone();
        let db = |source| QueryError::Db {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(db)?;
        // Days whose workload summary must be rebuilt: those of the entries, before and
        // after, and those of the records they correct.
        let mut days_touched: Vec<String> = Vec::new();
        {
            let mut before = tx
                .prepare_cached("SELECT call_day FROM records WHERE archive = ?1 AND key = ?2")
                .map_err(db)?;
            for e in entries {
                let day: Option<Option<String>> = before
                    .query_row([&e.archive, &e.key], |r| r.get(0))
                    .optional()
                    .map_err(db)?;
                days_touched.extend(day.flatten());
            }
            let marks = vec!["?"; FIELDS.len() + CHECKED_COLUMNS.len()].join(", ");
            let mut insert = tx
                .prepare_cached(&format!(
                    "INSERT OR REPLACE INTO records ({}) VALUES ({marks})",
                    columns()
                ))
                .map_err(db)?;
            for e in entries {
                insert
                    .execute(rusqlite::params![
                        e.archive,
                        e.key,
                        e.size,
                        e.etag,
                        e.record_id,
                        e.verdict,
                        e.problem,
                        e.sealed_at,
                        e.key_id,
                        e.manifest_sha256,
                        e.text,
                        e.collection_flag,
                        e.call_start,
                        e.call_time,
                        e.call_day,
                        e.call_week,
                        e.institution_code,
                        e.institution_name,
                        e.phone,
                        e.customer_name,
                        e.role,
                        e.business_type,
                        e.account,
                        e.credit_code,
                        e.id_number,
                        e.result,
                        e.remark,
                        e.device,
                        e.operator_id,
                        e.operator_name,
                        e.corrects,
                        e.corrected_by,
                        e.checked.trusted,
                        e.checked.text_key,
                    ])
                    .map_err(db)?;
            }
            // A record is superseded by the latest intact correction of it: settled for the
            // records corrected and for the entries themselves (a record read again keeps
            // its correction).
            let mut supersede = tx
                .prepare_cached(
                    "UPDATE records SET corrected_by = (
                         SELECT c.record_id FROM records c
                         WHERE c.corrects = ?1 AND c.verdict = 'ok'
                         ORDER BY c.sealed_at DESC, c.record_id DESC LIMIT 1)
                     WHERE record_id = ?1
                     RETURNING call_day",
                )
                .map_err(db)?;
            let mut corrected: Vec<&str> = entries
                .iter()
                .flat_map(|e| [e.corrects.as_deref(), Some(e.record_id.as_str())])
                .flatten()
                .collect();
            corrected.sort_unstable();
            corrected.dedup();
            for id in corrected {
                let days = supersede
                    .query_map([id], |r| r.get::<_, Option<String>>(0))
                    .map_err(db)?;
                for day in days {
                    days_touched.extend(day.map_err(db)?);
                }
            }
            days_touched.extend(entries.iter().filter_map(|e| e.call_day.clone()));
            days_touched.sort_unstable();
            days_touched.dedup();
            let days = serde_json::to_string(&days_touched).expect("days serialise");
            for statement in DAILY_SQL.split(';').filter(|s| !s.trim().is_empty()) {
                tx.execute(statement, [&days]).map_err(db)?;
            }
        }
        tx.commit().map_err(db)
    }

    fn flagged(&self, archive: &str) -> Result<Vec<Entry>, QueryError> {
        self.select(
            "WHERE archive = ? AND verdict <> 'ok' ORDER BY key",
            &[Value::Text(archive.to_string())],
        )
    }

    fn search(&self, filter: &Filter) -> Result<Vec<Entry>, QueryError> {
        let institution_is_code = match &filter.institution {
            Some(value) => self
                .conn
                .query_row(
                    "SELECT EXISTS (SELECT 1 FROM records WHERE institution_code = ?1)",
                    [value],
                    |r| r.get(0),
                )
                .map_err(self.db())?,
            None => false,
        };
        let mut w = filter.to_where(institution_is_code);
        let order = if filter.descending { "DESC" } else { "ASC" };
        let mut clause = format!(
            "{} ORDER BY {} {order}, record_id {order}",
            w.clause(),
            filter.sort.column()
        );
        if let Some(limit) = filter.limit {
            clause.push_str(" LIMIT ?");
            w.params
                .push(Value::Integer(limit.min(i64::MAX as u64) as i64));
        }
        self.select(&clause, &w.params)
    }

    fn stats(&self, query: &StatsQuery) -> Result<Stats, QueryError> {
        check_range(&query.from, &query.to)?;
        let mut w = Where {
            sql: Vec::new(),
            params: Vec::new(),
        };
        w.time(&query.from, false);
        w.time(&query.to, true);
        w.text("operator_id = ?", &query.operator);
        // Whole days are answered from the summary; a time of day needs the records.
        let instant = [&query.from, &query.to]
            .iter()
            .any(|b| matches!(b, Some(Bound::Instant(_))));
        let source = if instant {
            format!(
                "(SELECT call_time, call_day, call_week, operator_id, operator_name, result,
                         verdict = 'ok' AS calls, verdict <> 'ok' AS flagged
                  FROM records WHERE {LATEST})"
            )
        } else {
            "daily".to_string()
        };
        let filter = w.clause();
        let period = query.period.sql();
        let sql = format!(
            "SELECT operator_id, max(operator_name), {period} AS period, sum(calls),
                    coalesce(sum(calls * (result = 1)), 0), coalesce(sum(calls * (result > 1)), 0),
                    coalesce(sum(calls * (result IS NULL)), 0)
             FROM {source} {filter}
             GROUP BY operator_id, period HAVING sum(calls) > 0
             ORDER BY operator_id, period"
        );
        let mut stmt = self.conn.prepare_cached(&sql).map_err(self.db())?;
        let rows = stmt
            .query_map(params_from_iter(&w.params), |r| {
                let (calls, confirmed, not_confirmed, no_result): (u64, u64, u64, u64) =
                    (r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?);
                Ok(Workload {
                    operator_id: r.get(0)?,
                    operator_name: r.get(1)?,
                    period: r.get::<_, Option<String>>(2)?.unwrap_or_default(),
                    calls,
                    confirmed,
                    not_confirmed,
                    no_result,
                    not_confirmed_rate: if confirmed + not_confirmed == 0 {
                        0.0
                    } else {
                        not_confirmed as f64 / (confirmed + not_confirmed) as f64
                    },
                    quota: query.quota,
                    behind: query.quota.is_some_and(|q| calls < q),
                })
            })
            .map_err(self.db())?
            .collect::<Result<Vec<_>, _>>()
            .map_err(self.db())?;
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT result, sum(calls) FROM {source} {filter}
                 GROUP BY result HAVING sum(calls) > 0 ORDER BY result"
            ))
            .map_err(self.db())?;
        let results = stmt
            .query_map(params_from_iter(&w.params), |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(self.db())?
            .collect::<Result<Vec<_>, _>>()
            .map_err(self.db())?;
        let flagged: u64 = self
            .conn
            .query_row(
                &format!("SELECT coalesce(sum(flagged), 0) FROM {source} {filter}"),
                params_from_iter(&w.params),
                |r| r.get(0),
            )
            .map_err(self.db())?;
        Ok(Stats {
            rows,
            results,
            flagged,
        })
    }

    fn locate(&self, record_id: &str) -> Result<Option<Entry>, QueryError> {
        Ok(self
            .select(
                "WHERE record_id = ? ORDER BY verdict = 'ok' DESC, sealed_at DESC, key DESC LIMIT 1",
                &[Value::Text(record_id.to_string())],
            )?
            .into_iter()
            .next())
    }

    fn seal_of(&self, record_id: &str, manifest_sha256: &str) -> Result<Option<Entry>, QueryError> {
        Ok(self
            .select(
                "WHERE record_id = ? AND manifest_sha256 = ? ORDER BY verdict = 'ok' DESC LIMIT 1",
                &[
                    Value::Text(record_id.to_string()),
                    Value::Text(manifest_sha256.to_ascii_lowercase()),
                ],
            )?
            .into_iter()
            .next())
    }

    fn history(&self, record_id: &str) -> Result<Vec<Entry>, QueryError> {
        // The record and every correction that names it, or names a correction of it.
        let sql = "WITH RECURSIVE chain(id) AS (
                       SELECT ?1
                       UNION SELECT r.record_id FROM records r JOIN chain ON r.corrects = chain.id)
                   SELECT id FROM chain";
        let mut stmt = self.conn.prepare_cached(sql).map_err(self.db())?;
        let ids: Vec<String> = stmt
            .query_map([record_id], |r| r.get(0))
            .map_err(self.db())?
            .collect::<Result<_, _>>()
            .map_err(self.db())?;
        let mut out = Vec::new();
        for id in ids {
            out.extend(self.select("WHERE record_id = ?", &[Value::Text(id)])?);
        }
        out.sort_by(|a, b| a.sealed_at.cmp(&b.sealed_at));
        Ok(out)
    }
}

/// The labels of a printed page, in order: field name, Chinese label, English label.
pub const PRINT_FIELDS: [(&str, &str, &str); 20] = [
    ("record_id", "记录编号", "Record id"),
    ("collection_flag", "采集标志", "Collection flag"),
    ("call_start", "通话时间", "Call time"),
    ("business_type", "业务类型", "Business type"),
    ("institution_code", "机构代码", "Institution code"),
    ("institution_name", "机构名称", "Institution name"),
    ("phone", "电话号码", "Phone number"),
    ("customer_name", "客户名称", "Customer name"),
    ("role", "角色", "Role"),
    ("device", "本机设备号", "Device number"),
    ("credit_code", "统一社会信用代码", "Credit code"),
    ("id_number", "身份证号", "ID number"),
    ("account", "账号", "Account"),
    ("operator_id", "柜员号", "Operator"),
    ("operator_name", "柜员姓名", "Operator name"),
    ("result", "核实结果", "Result"),
    ("remark", "备注", "Remark"),
    ("sealed_at", "封存时间", "Sealed at"),
    ("key_id", "签名密钥", "Signing key"),
    ("manifest_sha256", "清单 SHA-256", "Manifest SHA-256"),
];

/// A time on a printed page: to the second, with its UTC offset, as the watermark shows it
/// (`2026-11-28 15:46:03 +08:00`).
pub fn page_time<Tz: chrono::TimeZone>(time: &DateTime<Tz>) -> String
where
    Tz::Offset: std::fmt::Display,
{
    time.format("%Y-%m-%d %H:%M:%S %:z").to_string()
}

/// A printable page of a verified record: every field of the text info with its Chinese and
/// English label (control characters escaped), then the verdict and the facts of the seal.
/// The call's time is shown in the call's own offset, the seal's time in the local one.
/// `superseded_by`: the latest correction of this record the index knows, which the page
/// names.
pub fn print_page(
    record: &Record,
    verified: &verify::Verified,
    vocab: &crate::vocab::Vocabulary,
    superseded_by: Option<&str>,
) -> String {
    let manifest = &verified.manifest;
    let sealed_at = page_time(&manifest.sealed_at.with_timezone(&chrono::Local));
    let mut entry = Entry {
        record_id: record.id.to_string(),
        sealed_at: Some(sealed_at.clone()),
        key_id: Some(manifest.key_id.clone()),
        manifest_sha256: Some(hex::encode(verified.manifest_sha256)),
        ..Entry::default()
    };
    entry.fill(record);
    // The number as recorded, not the index's search form.
    entry.phone = record.phone.number.clone();
    entry.call_start = record.times.call_start.map(|t| page_time(&t));
    let fields = serde_json::to_value(&entry).expect("entries serialise");
    let mut page = String::from("通话核实记录 / Call verification record\n\n");
    if let Some(correction) = superseded_by {
        page.push_str(&format!(
            "已被更正 / SUPERSEDED: this version was corrected by {correction}; the current \
             version is `callrec-query get {correction} --print`.\n\n",
            correction = crate::cli::escape_control(correction),
        ));
    }
    let width = PRINT_FIELDS
        .iter()
        .map(|(_, zh, en)| unicode_width::UnicodeWidthStr::width(format!("{zh} / {en}").as_str()))
        .max()
        .unwrap_or(0);
    for (name, zh, en) in PRINT_FIELDS {
        let value = match (name, &fields[name]) {
            ("result", _) => match record.call.result {
                Some(code) => match vocab.by_code(crate::vocab::Kind::Result, code) {
                    Some(term) => format!("{code} {}", term.label),
                    None => code.to_string(),
                },
                None => String::new(),
            },
            (_, serde_json::Value::String(s)) => s.clone(),
            (_, serde_json::Value::Null) => String::new(),
            (_, other) => other.to_string(),
        };
        let label = format!("{zh} / {en}");
        let pad = width - unicode_width::UnicodeWidthStr::width(label.as_str());
        // Values are shown with their control characters escaped: a page goes to a terminal
        // or a printer, and neither may be driven by a value.
        let value = crate::cli::escape_control(&value);
        page.push_str(&format!("{label}{}  {value}\n", " ".repeat(pad)));
    }
    if let Some(correction) = &record.corrects {
        page.push_str(&format!(
            "\nThis record corrects {} (manifest SHA-256 {}).\n",
            correction.record_id, correction.manifest_sha256
        ));
    }
    page.push_str(&format!(
        "\n核验结果 / Verification: VERIFIED\nEvery check passed: footer and nSign, lChecksum, check byte, \
         manifest, signature by key {}, text SHA-256, media SHA-256 ({} bytes).\nSequence {} of this key, \
         sealed at {sealed_at}.\n",
        manifest.key_id, manifest.media_size, manifest.sequence,
    ));
    page
}
