//! `callrec-push`: its options and its manual's sections.

use std::path::PathBuf;

use clap::{Parser, ValueEnum};

use super::{after_help, Section, SEE_ALSO};

pub const PUSH_SECTIONS: &[Section] = &[
    Section {
        title: "ARCHIVE",
        lines: &[
            "TARGET is a directory or mounted share (PATH or file://PATH), or s3://BUCKET/PREFIX for",
            "S3-compatible storage: endpoint, region and credentials from AWS_ENDPOINT_URL, AWS_REGION,",
            "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_PROFILE and the AWS profile files, as the AWS",
            "SDK resolves them (--endpoint overrides); path-style requests.",
            "Keys are [PREFIX/]YYYY/MM/DD/RECORD-ID.HASH.sealed.EXT, from the signed manifest (sealing",
            "date, UTC; HASH: the first 16 hex digits of the manifest's SHA-256, so two seals of a record",
            "never share a key). An existing key is never overwritten: the same seal there means already",
            "archived, other bytes are a conflict. After upload the seal is read back (--verify full:",
            "all of it); a directory archive is fsynced with its directories before the record is done.",
            "Done records are moved to SPOOL/sent/ (or removed with --remove-source), and a receipt is",
            "appended (and fsynced) to the journal: --journal, else $XDG_STATE_HOME/callrec/push-journal.jsonl,",
            "else ~/.local/state/callrec/push-journal.jsonl.",
        ],
    },
    Section {
        title: "RETENTION",
        lines: &[
            "--retain-days/--retain-until (with --lock-mode) and --legal-hold set S3 Object Lock on each",
            "object right after its upload, before it counts as done; the bucket must have Object Lock",
            "enabled. The lock is read back and recorded in the receipt. If the archive did not keep it",
            "(a directory, a store without Object Lock, a bucket without it) the push says so and the",
            "record is archived without it; --require-retention makes that a failure (exit 1) and the",
            "record stays in the spool. An existing longer retention is left as it is.",
        ],
    },
    Section {
        title: "EXIT STATUS",
        lines: &[
            "0   every record archived (or already archived)",
            "1   some record failed: not sealed, a conflict, a mismatch after upload, or (with",
            "    --require-retention) a lock the archive did not keep",
            "2   usage error, or the archive cannot be used: it cannot be opened or created, the store",
            "    refused the credentials (HTTP 401/403), or the bucket does not exist",
            "75  the archive could not be reached or is failing or busy (connection refused or reset,",
            "    timeout, HTTP 5xx, 429/SlowDown), or another push holds the spool: nothing was lost;",
            "    try again",
        ],
    },
    Section {
        title: "EXAMPLES",
        lines: &[
            "callrec-push --pubkey seal.pub --to /mnt/archive spool/",
            "AWS_ENDPOINT_URL=http://127.0.0.1:3900 callrec-push --to s3://calls/branch-0068 spool/",
            "callrec-push --to s3://calls --retain-days 2557 --require-retention spool/   # 7 years, WORM",
            "callrec-seal -o spool spool-in/ && callrec-push --to s3://calls spool/ || [ $? -eq 75 ]",
        ],
    },
    Section {
        title: "SEE ALSO",
        lines: &[SEE_ALSO],
    },
];

/// A retention date: `YYYY-MM-DD` (midnight UTC) or RFC 3339, in the future.
fn parse_until(s: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    let until = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map(|d| d.and_time(chrono::NaiveTime::MIN).and_utc())
        .or_else(|_| chrono::DateTime::parse_from_rfc3339(s).map(|d| d.to_utc()))
        .map_err(|_| format!("{s:?} is not a date: use YYYY-MM-DD or RFC 3339"))?;
    if until <= chrono::Utc::now() {
        return Err(format!("{s:?} is not in the future"));
    }
    Ok(until)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum VerifyDepth {
    /// Read back the object's size, manifest, signature and footer (ranged read)
    Seal,
    /// Read back the whole object and compare its SHA-256
    Full,
}

/// Send sealed records and their anchors to the archive: a directory or S3-compatible object
/// storage. Never overwrites, verifies after upload, loses nothing.
///
/// Each INPUT is a sealed file, an anchor file, or a spool directory (walked for both, except
/// its sent/ directory; records first, then anchors). With
/// no INPUT and stdin not a terminal, paths are read from stdin. Archive keys are printed on
/// stdout.
#[derive(Debug, Parser)]
#[command(name = "callrec-push", version, after_help = after_help(PUSH_SECTIONS))]
pub struct PushArgs {
    /// Sealed files or spool directories
    #[arg(value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,
    /// The archive: a directory, file://PATH, or s3://BUCKET/PREFIX
    #[arg(long, value_name = "TARGET")]
    pub to: String,
    /// S3 endpoint URL [default: $AWS_ENDPOINT_URL]
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,
    /// Fully verify each record against this trusted public key (seal.pub or a key directory)
    /// before pushing it; repeatable. Without it only the document's quick checks guard the push
    #[arg(short, long, value_name = "PUB")]
    pub pubkey: Vec<PathBuf>,
    /// How much of each object to read back after upload
    #[arg(long, value_enum, default_value_t = VerifyDepth::Seal)]
    pub verify: VerifyDepth,
    /// Remove each input once archived and verified, instead of moving it to SPOOL/sent/
    #[arg(long)]
    pub remove_source: bool,
    /// Journal of receipts (JSON Lines)
    #[arg(long, value_name = "FILE")]
    pub journal: Option<PathBuf>,
    /// Lock each object (S3 Object Lock) for N days from now
    #[arg(long, value_name = "N", conflicts_with = "retain_until")]
    pub retain_days: Option<u32>,
    /// Lock each object until DATE (YYYY-MM-DD, midnight UTC, or RFC 3339)
    #[arg(long, value_name = "DATE", value_parser = parse_until)]
    pub retain_until: Option<chrono::DateTime<chrono::Utc>>,
    /// Object Lock mode for --retain-days and --retain-until
    #[arg(long, value_enum, value_name = "MODE", default_value_t = crate::archive::LockMode::Compliance)]
    pub lock_mode: crate::archive::LockMode,
    /// Place a legal hold on each object
    #[arg(long)]
    pub legal_hold: bool,
    /// Fail a record whose Object Lock the archive did not keep (by default: a warning)
    #[arg(long)]
    pub require_retention: bool,
    /// Upload this many records at once (as many more are checked and read back meanwhile)
    #[arg(short, long, value_name = "N", default_value_t = 4)]
    pub jobs: usize,
    /// Read and write path lists NUL-separated instead of one per line
    #[arg(short = '0', long = "null")]
    pub null: bool,
    /// Print one receipt per line as JSON (JSON Lines) instead of keys
    #[arg(long)]
    pub json: bool,
}
