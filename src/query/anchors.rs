//! The anchors an index knows ([`AnchorEntry`], the table `anchors`): each archived anchor file,
//! checked when it is indexed ([`examine_anchor`]: its head's signature with the trusted keys,
//! its token with the trusted TSA certificates), and kept with what it was checked with, so a
//! run with other keys or other TSA certificates checks it again.
//!
//! A record's `anchored_at` is not stored with the record: the SELECT of entries computes it
//! from this table (`columns.rs`), the TSA time of the first trusted anchor of the record's key
//! at or above its sequence, as [`crate::anchor::covering`] chooses.

use chrono::SecondsFormat;
use rusqlite::{params_from_iter, types::Value, Connection, Row};
use sha2::{Digest, Sha256};

use crate::anchor::tsp::TsaTrust;
use crate::anchor::{self, Anchor};
use crate::archive::{check_anchor, Archive, Object, PushError};
use crate::format::Manifest;
use crate::keys::TrustedKeys;
use crate::verify::VerifyError;

use super::Verdict;

/// The table of anchors and its index (schema version 4).
pub(crate) const ANCHORS_SQL: &str = "
CREATE TABLE IF NOT EXISTS anchors (
    archive TEXT NOT NULL,
    key TEXT NOT NULL,
    size INTEGER NOT NULL,
    etag TEXT NOT NULL,
    verdict TEXT NOT NULL,
    problem TEXT,
    key_id TEXT,
    sequence INTEGER,
    manifest_sha256 TEXT,
    record_id TEXT,
    tsa_time TEXT,
    tsa_name TEXT,
    trusted INTEGER NOT NULL DEFAULT 0,
    key_trusted INTEGER,
    tsa_ca TEXT,
    PRIMARY KEY (archive, key)
);
CREATE INDEX IF NOT EXISTS anchors_key ON anchors (key_id, sequence);
";

/// Every column of `anchors`, for an INSERT or a SELECT.
const COLUMNS: &str = "archive, key, size, etag, verdict, problem, key_id, sequence, \
                       manifest_sha256, record_id, tsa_time, tsa_name, trusted, key_trusted, tsa_ca";

/// What the index knows of one archived anchor file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AnchorEntry {
    pub archive: String,
    pub key: String,
    pub size: u64,
    pub etag: String,
    pub verdict: Verdict,
    /// The failed check and why.
    pub problem: Option<String>,
    /// The anchored head's key id and sequence, manifest hash and record id (for an anchor
    /// that failed, what it claims as far as it can be read).
    pub key_id: Option<String>,
    pub sequence: Option<u64>,
    pub manifest_sha256: Option<String>,
    pub record_id: Option<String>,
    /// The TSA's time, RFC 3339 in UTC to the second (`2026-11-28T07:46:03+00:00`).
    pub tsa_time: Option<String>,
    /// The TSA: its certificate's subject, as RFC 4514 text.
    pub tsa_name: Option<String>,
    /// Whether the TSA chains to a trusted TSA certificate: only such an anchor dates records.
    pub trusted: bool,
    pub checked: AnchorChecked,
}

/// What an indexed anchor was checked with, so that a run with other keys checks it again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AnchorChecked {
    /// Whether its head's signing key was among the trusted keys; `None` when no trusted keys
    /// were given (the head's signature was not checked).
    pub key_trusted: Option<bool>,
    /// `tsa_id` of the TSA certificates its token was checked against; `None` without any.
    pub tsa_ca: Option<String>,
}

impl AnchorEntry {
    fn fail(&mut self, problem: String) {
        self.verdict = Verdict::Failed;
        self.problem = Some(problem);
        self.trusted = false;
    }

    /// Fill in the head an anchor names (and its record id when its manifest parses).
    fn describe(&mut self, anchor: &Anchor, head: Option<&Manifest>) {
        self.key_id = Some(anchor.key_id.clone());
        self.sequence = Some(anchor.sequence);
        self.manifest_sha256 = Some(hex::encode(anchor.manifest_sha256));
        self.record_id = head.map(|m| m.record_id.to_string());
    }

    /// Whether this run's keys check the anchor differently than it was checked: trusted keys
    /// that give another answer for its head's key (or none was checked), or TSA certificates
    /// other than those it was checked against. A run with fewer keys checks nothing again.
    pub(super) fn recheck(&self, trusted: Option<&TrustedKeys>, tsa_id: Option<&str>) -> bool {
        let trust = trusted.map(|t| self.key_id.as_deref().is_some_and(|id| t.get(id).is_some()));
        let other_trust = trust.is_some() && trust != self.checked.key_trusted;
        let other_tsa = tsa_id.is_some() && tsa_id != self.checked.tsa_ca.as_deref();
        other_trust || other_tsa
    }
}

/// Names a set of trusted TSA certificates without their content: 16 hex digits of the
/// SHA-256 of their PEM; `None` for no certificates.
pub(super) fn tsa_id(tsa: &TsaTrust) -> Option<String> {
    if tsa.is_empty() {
        return None;
    }
    Some(hex::encode(&Sha256::digest(tsa.to_pem().as_bytes())[..8]))
}

/// Read one archived anchor whole and check it ([`check_anchor`]: with `trusted` keys its
/// head's signature, against `tsa` its token's signer). An anchor that fails is still
/// described as far as it can be read, and never dates a record.
pub(super) fn examine_anchor(
    archive: &Archive,
    object: &Object,
    trusted: Option<&TrustedKeys>,
    tsa: &TsaTrust,
) -> Result<AnchorEntry, PushError> {
    let mut entry = AnchorEntry {
        archive: archive.target().to_string(),
        key: object.key.clone(),
        size: object.size,
        etag: object.etag.clone(),
        checked: AnchorChecked {
            key_trusted: trusted.map(|_| false),
            tsa_ca: tsa_id(tsa),
        },
        ..AnchorEntry::default()
    };
    let bytes = match archive.read_small(object, anchor::MAX_LEN) {
        Ok(bytes) => bytes,
        Err(PushError::NotSealed(VerifyError::Failed { check, reason })) => {
            entry.fail(format!("{check}: {reason}"));
            return Ok(entry);
        }
        Err(e) => return Err(e),
    };
    match check_anchor(&bytes, trusted, tsa) {
        Ok(checked) => {
            entry.describe(&checked.anchor, Some(&checked.head));
            entry.tsa_time = Some(
                checked
                    .stamp
                    .time
                    .to_rfc3339_opts(SecondsFormat::Secs, false),
            );
            entry.tsa_name = Some(checked.stamp.tsa);
            entry.trusted = checked.stamp.trusted;
        }
        Err(VerifyError::Failed { check, reason }) => {
            entry.fail(format!("{check}: {reason}"));
            if let Ok(anchor) = Anchor::parse(&bytes) {
                let head = Manifest::parse(&anchor.manifest).ok();
                entry.describe(&anchor, head.as_ref());
            }
        }
        Err(VerifyError::Io(e)) => return Err(PushError::Io(e)),
    }
    entry.checked.key_trusted = trusted.map(|t| {
        entry
            .key_id
            .as_deref()
            .is_some_and(|id| t.get(id).is_some())
    });
    Ok(entry)
}

/// Anchors from `anchors`, as `WHERE …` (`clause`) selects them.
pub(super) fn select(
    conn: &Connection,
    clause: &str,
    params: &[Value],
) -> rusqlite::Result<Vec<AnchorEntry>> {
    let sql = format!("SELECT {COLUMNS} FROM anchors {clause}");
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params_from_iter(params), read)?;
    rows.collect()
}

fn read(row: &Row) -> rusqlite::Result<AnchorEntry> {
    Ok(AnchorEntry {
        archive: row.get("archive")?,
        key: row.get("key")?,
        size: row.get("size")?,
        etag: row.get("etag")?,
        verdict: row.get("verdict")?,
        problem: row.get("problem")?,
        key_id: row.get("key_id")?,
        sequence: row.get("sequence")?,
        manifest_sha256: row.get("manifest_sha256")?,
        record_id: row.get("record_id")?,
        tsa_time: row.get("tsa_time")?,
        tsa_name: row.get("tsa_name")?,
        trusted: row.get("trusted")?,
        checked: AnchorChecked {
            key_trusted: row.get("key_trusted")?,
            tsa_ca: row.get("tsa_ca")?,
        },
    })
}

/// Insert or replace anchors (by archive and key), in one transaction.
pub(super) fn put(conn: &mut Connection, anchors: &[AnchorEntry]) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    {
        let marks = vec!["?"; COLUMNS.split(',').count()].join(", ");
        let mut insert = tx.prepare_cached(&format!(
            "INSERT OR REPLACE INTO anchors ({COLUMNS}) VALUES ({marks})"
        ))?;
        for a in anchors {
            insert.execute(rusqlite::params![
                a.archive,
                a.key,
                a.size,
                a.etag,
                a.verdict,
                a.problem,
                a.key_id,
                a.sequence,
                a.manifest_sha256,
                a.record_id,
                a.tsa_time,
                a.tsa_name,
                a.trusted,
                a.checked.key_trusted,
                a.checked.tsa_ca,
            ])?;
        }
    }
    tx.commit()
}

/// The anchor that dates a record of `key_id` at `sequence`: of the intact, trusted anchors of
/// the key at or above it, the one stamped first (its time is the computed `anchored_at`), and
/// of those stamped in the same second the one nearest the record, as `anchor::covering`
/// chooses.
pub(super) fn covering(
    conn: &Connection,
    key_id: &str,
    sequence: u64,
) -> rusqlite::Result<Option<AnchorEntry>> {
    let found = select(
        conn,
        "WHERE key_id = ? AND sequence >= ? AND verdict = 'ok' AND trusted = 1
         ORDER BY tsa_time, sequence, key LIMIT 1",
        &[
            Value::Text(key_id.to_string()),
            Value::Integer(sequence.min(i64::MAX as u64) as i64),
        ],
    )?;
    Ok(found.into_iter().next())
}
