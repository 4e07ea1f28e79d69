//! The index in an SQLite file ([`SqliteIndex`]): its schema (version [`INDEX_SCHEMA`], created
//! or upgraded in place when opened), and every read and write of the [`Index`] trait.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rusqlite::{params_from_iter, types::Value, Connection, OptionalExtension};

use crate::fsutil::{PathContext, PathError};

use super::filter::check_range;
use super::{
    anchors, columns, phone_key, stats, AnchorEntry, Checked, Entry, Filter, Index, Known,
    QueryError, Stats, StatsQuery,
};

/// Version of the index schema this build writes (SQLite `user_version`). Older versions are
/// upgraded in place (version 2 added `key_trusted` and `text_key`; version 3 stores phone
/// numbers in the form of [`phone_key`]; version 4 added the records' `sequence` and the table
/// `anchors`).
pub const INDEX_SCHEMA: i64 = 4;

/// The index in an SQLite file.
pub struct SqliteIndex {
    path: PathBuf,
    conn: Connection,
}

/// The indexes of `records`.
const INDEXES_SQL: &str = "
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
";

/// Version 1 to 2: what each record was checked with (NULL: unknown, so a run with keys
/// checks it again).
const UPGRADE_1_SQL: &str = "
ALTER TABLE records ADD COLUMN key_trusted INTEGER;
ALTER TABLE records ADD COLUMN text_key TEXT;
";

/// Version 3 to 4: each record's sequence (NULL until the record is read again: the next
/// `index` reads every record whose manifest it knows but not its sequence) and the anchors.
const UPGRADE_3_SQL: &str = "
ALTER TABLE records ADD COLUMN sequence INTEGER;
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
            0 => {
                let schema = [
                    &columns::create_table(),
                    INDEXES_SQL,
                    stats::DAILY_TABLE_SQL,
                    anchors::ANCHORS_SQL,
                ];
                conn.execute_batch(&schema.concat()).map_err(db)?
            }
            1..=3 => {
                if found == 1 {
                    conn.execute_batch(UPGRADE_1_SQL).map_err(db)?;
                }
                if found < 3 {
                    upgrade_phones(&conn).map_err(db)?;
                }
                conn.execute_batch(&[UPGRADE_3_SQL, anchors::ANCHORS_SQL].concat())
                    .map_err(db)?;
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
        let sql = format!("SELECT {} FROM records {clause}", columns::select_list());
        let mut stmt = self.conn.prepare_cached(&sql).map_err(self.db())?;
        let at = columns::positions(&stmt).map_err(self.db())?;
        let rows = stmt
            .query_map(params_from_iter(params), |row| columns::read(row, &at))
            .map_err(self.db())?;
        rows.collect::<Result<_, _>>().map_err(self.db())
    }
}

impl Index for SqliteIndex {
    fn known(&self, archive: &str) -> Result<HashMap<String, Known>, QueryError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT key, etag, key_id, sequence, text, key_trusted, text_key
                 FROM records WHERE archive = ?1",
            )
            .map_err(self.db())?;
        let rows = stmt
            .query_map([archive], |r| {
                Ok((
                    r.get("key")?,
                    Known {
                        etag: r.get("etag")?,
                        key_id: r.get("key_id")?,
                        sequence: r.get("sequence")?,
                        text: r.get("text")?,
                        checked: Checked {
                            trusted: r.get("key_trusted")?,
                            text_key: r.get("text_key")?,
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
            let mut insert = tx
                .prepare_cached(&format!(
                    "INSERT OR REPLACE INTO records ({}) VALUES ({})",
                    columns::names(),
                    columns::marks()
                ))
                .map_err(db)?;
            for e in entries {
                insert.execute(&*columns::values(e)).map_err(db)?;
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
            stats::rebuild_daily(&tx, &days_touched).map_err(db)?;
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
        stats::workload(&self.conn, query).map_err(self.db())
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

    fn anchors(&self, archive: &str) -> Result<Vec<AnchorEntry>, QueryError> {
        anchors::select(
            &self.conn,
            "WHERE archive = ? ORDER BY key",
            &[Value::Text(archive.to_string())],
        )
        .map_err(self.db())
    }

    fn put_anchors(&mut self, entries: &[AnchorEntry]) -> Result<(), QueryError> {
        let path = self.path.clone();
        anchors::put(&mut self.conn, entries).map_err(|source| QueryError::Db { path, source })
    }

    fn covering_anchor(
        &self,
        key_id: &str,
        sequence: u64,
    ) -> Result<Option<AnchorEntry>, QueryError> {
        anchors::covering(&self.conn, key_id, sequence).map_err(self.db())
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
