//! The one list of the columns of `records`, the index's table of entries: each column's name,
//! its SQL type, and the field of [`Entry`] it holds. The CREATE TABLE, the INSERT of an entry,
//! the SELECT of entries and [`FIELDS`] (the fields output) are all made from it, and rows are
//! read by column name (each name looked up once a statement), so a new column is one line
//! here (and its field in [`Entry`]).
//!
//! The list is in the order on disk, which older indexes keep: a new column goes last, with an
//! upgrade of the schema (`sqlite.rs`) that adds it to existing indexes.
//!
//! Some fields are not stored but computed by the SELECT from other tables, as of the moment
//! of the query (`computed`): `anchored_at` comes from the `anchors` table, so an anchor
//! indexed after its records (pushed the next night, or from another archive) dates them
//! without any of their rows being written again.

use rusqlite::{Row, Statement, ToSql};

use super::Entry;

/// Makes the column list's items from its rows, `name: "SQL TYPE" => field of Entry`: the
/// columns output as fields first, then those the index keeps for itself; then the fields
/// computed when read, `name: "SQL EXPRESSION" => field of Entry`, output after the columns.
macro_rules! columns {
    (
        output { $($name:ident: $sql:literal => $($field:ident).+,)* }
        kept { $($kept:ident: $kept_sql:literal => $($kept_field:ident).+,)* }
        computed { $($computed:ident: $expr:literal => $($computed_field:ident).+,)* }
    ) => {
        /// The fields of an [`Entry`] as output (JSON and CSV), in order: the first columns of
        /// `records`, then the computed fields.
        pub const FIELDS: &[&str] = &[$(stringify!($name),)* $(stringify!($computed),)*];

        /// Every column of `records`, in order on disk: its name and SQL type.
        const COLUMNS: &[(&str, &str)] = &[
            $((stringify!($name), $sql),)*
            $((stringify!($kept), $kept_sql),)*
        ];

        /// Every computed field: its name and the SQL expression a SELECT of `records` gives
        /// it by.
        const COMPUTED: &[(&str, &str)] = &[$((stringify!($computed), $expr),)*];

        /// An entry's values, in the order of the columns.
        pub(super) fn values(entry: &Entry) -> Vec<&dyn ToSql> {
            vec![$(&entry.$($field).+,)* $(&entry.$($kept_field).+,)*]
        }

        /// An entry from a row that holds every column and computed field, each where
        /// [`positions`] found it.
        pub(super) fn read(row: &Row, positions: &[usize]) -> rusqlite::Result<Entry> {
            let mut entry = Entry::default();
            let mut at = positions.iter().copied();
            let mut next = || at.next().expect("a position for every column");
            $(entry.$($field).+ = row.get(next())?;)*
            $(entry.$($kept_field).+ = row.get(next())?;)*
            $(entry.$($computed_field).+ = row.get(next())?;)*
            Ok(entry)
        }
    };
}

columns! {
    output {
        archive: "TEXT NOT NULL" => archive,
        key: "TEXT NOT NULL" => key,
        size: "INTEGER NOT NULL" => size,
        etag: "TEXT NOT NULL" => etag,
        record_id: "TEXT NOT NULL" => record_id,
        verdict: "TEXT NOT NULL" => verdict,
        problem: "TEXT" => problem,
        sealed_at: "TEXT" => sealed_at,
        key_id: "TEXT" => key_id,
        manifest_sha256: "TEXT" => manifest_sha256,
        text: "INTEGER NOT NULL" => text,
        collection_flag: "TEXT NOT NULL" => collection_flag,
        call_start: "TEXT" => call_start,
        call_time: "INTEGER" => call_time,
        call_day: "TEXT" => call_day,
        call_week: "TEXT" => call_week,
        institution_code: "TEXT NOT NULL" => institution_code,
        institution_name: "TEXT NOT NULL" => institution_name,
        phone: "TEXT NOT NULL" => phone,
        customer_name: "TEXT NOT NULL" => customer_name,
        role: "TEXT NOT NULL" => role,
        business_type: "TEXT NOT NULL" => business_type,
        account: "TEXT NOT NULL" => account,
        credit_code: "TEXT NOT NULL" => credit_code,
        id_number: "TEXT NOT NULL" => id_number,
        result: "INTEGER" => result,
        remark: "TEXT NOT NULL" => remark,
        device: "TEXT NOT NULL" => device,
        operator_id: "TEXT NOT NULL" => operator_id,
        operator_name: "TEXT NOT NULL" => operator_name,
        corrects: "TEXT" => corrects,
        corrected_by: "TEXT" => corrected_by,
    }
    kept {
        key_trusted: "INTEGER" => checked.trusted,
        text_key: "TEXT" => checked.text_key,
        sequence: "INTEGER" => sequence,
    }
    computed {
        // The TSA time of the first trusted anchor of the record's key at or above its
        // sequence, as `anchor::covering` chooses it (times are stored in one form, so the
        // least is the earliest).
        anchored_at: "(SELECT min(a.tsa_time) FROM anchors a
            WHERE a.key_id = records.key_id AND a.sequence >= records.sequence
              AND a.verdict = 'ok' AND a.trusted = 1)" => anchored_at,
    }
}

/// The CREATE TABLE of `records`, keyed by archive and key.
pub(super) fn create_table() -> String {
    let columns: String = COLUMNS
        .iter()
        .map(|(name, sql)| format!("    {name} {sql},\n"))
        .collect();
    format!("CREATE TABLE IF NOT EXISTS records (\n{columns}    PRIMARY KEY (archive, key)\n);\n")
}

/// Every column, comma-separated, for an INSERT.
pub(super) fn names() -> String {
    let names: Vec<&str> = COLUMNS.iter().map(|(name, _)| *name).collect();
    names.join(", ")
}

/// Every column and computed field, comma-separated, for a SELECT of `records` (not aliased:
/// the computed fields name it).
pub(super) fn select_list() -> String {
    let mut items: Vec<String> = COLUMNS.iter().map(|(name, _)| name.to_string()).collect();
    items.extend(
        COMPUTED
            .iter()
            .map(|(name, expr)| format!("{expr} AS {name}")),
    );
    items.join(", ")
}

/// Where each column and computed field is in the rows of `statement`, found by its name
/// (once, not per row).
pub(super) fn positions(statement: &Statement) -> rusqlite::Result<Vec<usize>> {
    COLUMNS
        .iter()
        .chain(COMPUTED)
        .map(|(name, _)| statement.column_index(name))
        .collect()
}

/// `?, ?, …`: a parameter for every column.
pub(super) fn marks() -> String {
    vec!["?"; COLUMNS.len()].join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::Verdict;

    /// Every field of an entry goes in and comes back out under its own column's name.
    #[test]
    fn an_entry_written_is_read_back_whole() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch(&create_table()).unwrap();
        conn.execute_batch(crate::query::anchors::ANCHORS_SQL)
            .unwrap();
        let mut entry = Entry {
            archive: "/srv/archive".into(),
            key: "2026/11/28/r.0123456789abcdef.sealed.mkv".into(),
            size: 7,
            etag: "e".into(),
            record_id: "r".into(),
            verdict: Verdict::Failed,
            problem: Some("media-sha256: changed".into()),
            sealed_at: Some("2026-11-28T07:46:03+00:00".into()),
            key_id: Some("ABCDEF0123456789".into()),
            manifest_sha256: Some("ab".repeat(32)),
            text: true,
            collection_flag: "01".into(),
            call_start: Some("2026-11-28T15:40:00+08:00".into()),
            call_time: Some(1_795_851_600),
            call_day: Some("2026-11-28".into()),
            call_week: Some("2026-W48".into()),
            institution_code: "0068".into(),
            institution_name: "大旺路分理处".into(),
            phone: "13321150748".into(),
            customer_name: "李霞".into(),
            role: "财务人员".into(),
            business_type: "大额支付".into(),
            account: "32150100100065711".into(),
            credit_code: "91110108MA01ABCD2X".into(),
            id_number: "110108197712281810".into(),
            result: Some(3),
            remark: "备注".into(),
            device: "8803800077".into(),
            operator_id: "130002".into(),
            operator_name: "王柜员".into(),
            corrects: Some("q".into()),
            corrected_by: Some("s".into()),
            sequence: Some(7),
            ..Entry::default()
        };
        entry.checked.trusted = Some(true);
        entry.checked.text_key = Some("0011223344556677".into());
        conn.execute(
            &format!("INSERT INTO records ({}) VALUES ({})", names(), marks()),
            &*values(&entry),
        )
        .unwrap();
        // Anchors of its key: below its sequence, untrusted, failed, and two that cover it.
        for (sequence, time, verdict, trusted) in [
            (6, "2026-11-28T07:50:00+00:00", "ok", 1),
            (9, "2026-11-28T07:47:00+00:00", "ok", 0),
            (9, "2026-11-28T07:46:30+00:00", "failed", 1),
            (8, "2026-11-28T09:00:00+00:00", "ok", 1),
            (7, "2026-11-28T08:00:00+00:00", "ok", 1),
        ] {
            conn.execute(
                "INSERT INTO anchors (archive, key, size, etag, verdict, key_id, sequence,
                     tsa_time, trusted)
                 VALUES ('a', ?1, 1, 'e', ?2, 'ABCDEF0123456789', ?3, ?4, ?5)",
                rusqlite::params![
                    format!("{sequence}.{time}"),
                    verdict,
                    sequence,
                    time,
                    trusted
                ],
            )
            .unwrap();
        }
        entry.anchored_at = Some("2026-11-28T08:00:00+00:00".into());
        // Selected in another order than the table's: each column is read by its name.
        let mut reversed: Vec<String> = select_list().split(", ").map(str::to_string).collect();
        reversed.reverse();
        let mut select = conn
            .prepare(&format!("SELECT {} FROM records", reversed.join(", ")))
            .unwrap();
        let at = positions(&select).unwrap();
        let read_back = select.query_row([], |row| read(row, &at)).unwrap();
        assert_eq!(read_back, entry);
        let json = serde_json::to_value(&entry).unwrap();
        let mut output: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut fields = FIELDS.to_vec();
        output.sort_unstable();
        fields.sort_unstable();
        assert_eq!(output, fields, "FIELDS are the fields an entry outputs");
    }
}
