//! The JSON Lines every tool writes with `--json`: one object per line, its kind in `type`,
//! and a last line of `"type": "summary"`. These types are only ever serialised, kept apart
//! from the domain types so the wire format changes only on purpose; `docs/JSON.md` lists
//! every type and field per tool, and a test holds each tool's real output to that list.

use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use serde::Serialize;

use crate::archive::Receipt;
use crate::capture::usb::Phone;
use crate::query::{Entry, IndexSummary, Workload};
use crate::record::Record;
use crate::verify::Check;

/// A path in JSON output: a string when it is UTF-8, else `{"bytes": "<base64>"}`, so no
/// path is mangled.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum WirePath {
    Text(String),
    Bytes { bytes: String },
}

impl From<&Path> for WirePath {
    fn from(path: &Path) -> WirePath {
        match path.to_str() {
            Some(s) => WirePath::Text(s.to_string()),
            None => {
                use base64::Engine;
                WirePath::Bytes {
                    bytes: base64::engine::general_purpose::STANDARD
                        .encode(path.as_os_str().as_bytes()),
                }
            }
        }
    }
}

/// One JSON Lines object as bytes, newline-terminated.
pub fn json_line(value: &impl Serialize) -> Vec<u8> {
    let mut line = serde_json::to_vec(value).expect("wire types serialise");
    line.push(b'\n');
    line
}

/// `callrec-capture --json`.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Capture<'a> {
    /// The recording made, and its record.
    Record {
        path: WirePath,
        record: &'a Record,
    },
    /// With `--list`: one attached phone.
    Phone(&'a Phone),
    Summary {
        records: usize,
        phones: usize,
    },
}

/// `callrec-annotate --json`.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Annotate<'a> {
    /// A record annotated, or (`correction: true`) a correction written.
    Record {
        path: WirePath,
        correction: bool,
        record: &'a Record,
    },
    /// A record or batch row that could not be annotated; nothing changed for it.
    Error { message: String },
    Summary {
        annotated: usize,
        corrections: usize,
        failed: usize,
    },
}

/// `callrec-seal --json`.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Seal<'a> {
    Sealed {
        input: WirePath,
        output: WirePath,
        record_id: &'a str,
        sequence: u64,
        /// A correction sealed because the sidecar changed: the earlier seal.
        #[serde(skip_serializing_if = "Option::is_none")]
        corrects: Option<WirePath>,
    },
    AlreadySealed {
        input: WirePath,
        output: WirePath,
    },
    Error {
        input: WirePath,
        message: String,
    },
    /// An anchor file written: a TSA's token over the key's chain head.
    Anchored {
        path: WirePath,
        key_id: &'a str,
        sequence: u64,
        tsa: &'a str,
        time: String,
        tsa_name: &'a str,
    },
    /// A TSA gave no token for the head: it stays unanchored until a later run.
    NotAnchored {
        key_id: &'a str,
        sequence: u64,
        tsa: &'a str,
        message: String,
    },
    Summary {
        sealed: usize,
        already_sealed: usize,
        failed: usize,
        /// Anchor files written.
        anchored: usize,
    },
}

/// `callrec-verify --json`.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Verify<'a> {
    Verdict {
        path: WirePath,
        status: VerdictStatus,
        quick: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        check: Option<Check>,
        #[serde(skip_serializing_if = "Option::is_none")]
        message: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        record_id: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        key_id: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        sequence: Option<u64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        sealed_at: Option<String>,
        /// For a correction: the id of the record it corrects.
        #[serde(skip_serializing_if = "Option::is_none")]
        corrects: Option<&'a str>,
        /// The trusted TSA time of the first anchor covering the record (absent: not anchored,
        /// or no `--tsa-ca`).
        #[serde(skip_serializing_if = "Option::is_none")]
        anchored_at: Option<String>,
        /// That anchor's file.
        #[serde(skip_serializing_if = "Option::is_none")]
        anchor: Option<WirePath>,
    },
    /// An anchor file's verdict.
    Anchor {
        path: WirePath,
        status: VerdictStatus,
        #[serde(skip_serializing_if = "Option::is_none")]
        check: Option<Check>,
        #[serde(skip_serializing_if = "Option::is_none")]
        message: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        key_id: Option<&'a str>,
        /// The head it anchors.
        #[serde(skip_serializing_if = "Option::is_none")]
        sequence: Option<u64>,
        /// The TSA's time.
        #[serde(skip_serializing_if = "Option::is_none")]
        time: Option<String>,
        /// The TSA: its certificate's subject.
        #[serde(skip_serializing_if = "Option::is_none")]
        tsa: Option<&'a str>,
        /// Whether the TSA chains to a `--tsa-ca` certificate.
        #[serde(skip_serializing_if = "Option::is_none")]
        trusted: Option<bool>,
    },
    /// `--bundle`: the court bundle written, and how many evidence files it holds.
    Bundle { path: WirePath, files: usize },
    /// Something to look at that proves nothing bad: a record anchored long after sealing.
    Warning {
        message: String,
        paths: Vec<WirePath>,
    },
    /// A record and its corrections, oldest first.
    History {
        record_id: &'a str,
        versions: Vec<VerifyVersion<'a>>,
    },
    Chain {
        status: ChainStatus,
        key_id: &'a str,
        message: String,
        paths: Vec<WirePath>,
    },
    Text {
        path: WirePath,
        record: &'a Record,
        line: Option<String>,
    },
    Summary {
        verified: usize,
        failed: usize,
        errors: usize,
        chain_issues: usize,
        /// Sealed files covered by a trusted anchor.
        anchored: usize,
    },
}

/// What `callrec-verify` found of one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum VerdictStatus {
    Verified,
    /// Proven not to be an intact seal by a trusted key.
    Failed,
    /// Could not be checked (unreadable).
    Error,
}

/// What is wrong with a key's chain across a set of files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChainStatus {
    /// A sequence is missing: a record was removed.
    Gap,
    /// Two records claim one place, or a record names another predecessor.
    Fork,
    /// A record says it was sealed after a trusted anchor of its chain was stamped.
    Time,
}

/// One version in a `history` line of `callrec-verify`.
#[derive(Serialize)]
pub struct VerifyVersion<'a> {
    pub path: WirePath,
    pub record_id: &'a str,
    pub sealed_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub corrects: Option<&'a str>,
}

/// `callrec-push --json`.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Push<'a> {
    /// A record archived by this run (`status: uploaded`) or found archived already.
    Archived {
        #[serde(flatten)]
        receipt: &'a Receipt,
    },
    Error {
        input: WirePath,
        message: String,
        /// The archive could not be reached: the record stays for the next run.
        temporary: bool,
    },
    Summary {
        uploaded: usize,
        already_archived: usize,
        failed: usize,
        /// Records not tried because the archive was unreachable.
        not_tried: usize,
    },
}

/// `callrec-query --json`. The summary's fields depend on the command: `records` for
/// `search` and `history`; `archives`, `records`, `read`, `failed` and `skipped` for `index`;
/// `rows` and `flagged` for `stats`.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Query<'a> {
    /// `search`, `history`: one record as the index knows it.
    Record {
        #[serde(flatten)]
        entry: &'a Entry,
    },
    /// `index`: one archive indexed, with its counts.
    Indexed {
        #[serde(flatten)]
        summary: &'a IndexSummary,
    },
    /// `index`: a record that failed a check (kept in the index, flagged).
    Flagged {
        archive: &'a str,
        key: &'a str,
        record_id: &'a str,
        problem: Option<&'a str>,
    },
    /// `index`: an entry that could not be taken, left out and tried again next run.
    Skipped {
        archive: &'a str,
        path: WirePath,
        reason: &'a str,
    },
    /// `stats`: one operator's calls in one period.
    Workload {
        #[serde(flatten)]
        workload: &'a Workload,
    },
    /// `stats`: the calls with one result code (`null`: no result recorded).
    Result {
        result: Option<u8>,
        calls: u64,
    },
    Summary(QuerySummary),
}

/// The counts of a `callrec-query` summary line; each command fills in its own.
#[derive(Default, Serialize)]
pub struct QuerySummary {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub archives: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub records: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows: Option<usize>,
    /// `stats`: records in range that failed a check, never counted as work.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flagged: Option<u64>,
}
