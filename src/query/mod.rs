//! The index of an archive, for the document's figure 7: search by every condition, the
//! operators' workload, and the location of each record for fetching it.
//!
//! [`index_archives`] lists each archive, reads the seal and text block of each record it has
//! not seen (ranged reads on object storage), checks them, decrypts the text info with the
//! server's identity and stores one [`Entry`] per object; and reads and checks each anchor file
//! it has not seen, one [`AnchorEntry`] each, from which a record's `anchored_at` is found. An
//! object whose key and ETag are already in the index is not read again.
//!
//! Storage is behind the [`Index`] trait; [`SqliteIndex`] is the embedded default (schema in
//! `docs/QUERY.md`). Every value a user gives reaches SQL as a bound parameter; substrings are
//! matched with `instr`, so `%`, `_` and quotes mean themselves.
//!
//! This file holds the [`Index`] trait and [`QueryError`]; the rest lives beside it:
//! - `entry.rs`: what the index knows of one archived object ([`Entry`]);
//! - `columns.rs`: the one list of the index's columns, from which its SQL is made;
//! - `indexing.rs`: bringing the index up to date with archives;
//! - `anchors.rs`: the anchors the index knows, and a record's trusted time;
//! - `sqlite.rs`: the index in an SQLite file: its schema, reads and writes;
//! - `filter.rs`: the conditions of a search, checked and turned into SQL;
//! - `stats.rs`: the operators' workload and its daily summary;
//! - `export.rs`: entries and workloads as CSV for spreadsheets;
//! - `page.rs`: the printable page of a verified record;
//! - `get.rs`: handing out one archived record, verified.

use std::collections::HashMap;
use std::path::PathBuf;

use crate::archive::PushError;
use crate::fsutil::PathError;

mod anchors;
mod columns;
mod entry;
mod export;
mod filter;
mod get;
mod indexing;
mod page;
mod sqlite;
mod stats;

pub use anchors::{AnchorChecked, AnchorEntry};
pub use columns::FIELDS;
pub use entry::{phone_key, Checked, Entry, Verdict};
pub use export::{write_entries_csv, write_workload_csv};
pub use filter::{Bound, Filter, SortKey};
pub use get::{get, GetError, GetRequest, Got, Part};
pub use indexing::{
    index_archive, index_archives, IndexOptions, IndexSummary, IndexTotals, Indexed, Known,
    TextKeys,
};
pub use sqlite::{SqliteIndex, INDEX_SCHEMA};
pub use stats::{Period, Stats, StatsQuery, Workload};

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
    /// Every anchor of `archive` the index holds, by key.
    fn anchors(&self, archive: &str) -> Result<Vec<AnchorEntry>, QueryError>;
    /// Insert or replace anchors (by archive and key).
    fn put_anchors(&mut self, anchors: &[AnchorEntry]) -> Result<(), QueryError>;
    /// The anchor that dates a record of `key_id` at `sequence`, in any archive: of the intact
    /// trusted anchors of the key at or above it, the one stamped first (the record's
    /// `anchored_at`).
    fn covering_anchor(
        &self,
        key_id: &str,
        sequence: u64,
    ) -> Result<Option<AnchorEntry>, QueryError>;
}
