//! The operators' workload (calls per operator and period against a quota, and per result),
//! and `daily`, its summary per day, operator and result code, rebuilt in the same transaction
//! as every write to `records` that touches a day.

use rusqlite::{params_from_iter, Connection};
use serde::Serialize;

use super::filter::{Where, LATEST};
use super::Bound;

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

/// The workload summary: one row per day, operator and result code.
pub(super) const DAILY_TABLE_SQL: &str = "
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

/// Rebuild the workload summary of `days` from `records`.
pub(super) fn rebuild_daily(conn: &Connection, days: &[String]) -> rusqlite::Result<()> {
    let days = serde_json::to_string(days).expect("days serialise");
    for statement in DAILY_SQL.split(';').filter(|s| !s.trim().is_empty()) {
        conn.execute(statement, [&days])?;
    }
    Ok(())
}

/// The workload report (see [`super::Index::stats`]; its range already checked): whole days
/// are answered from the summary `daily`, a range with a time of day from `records`.
pub(super) fn workload(conn: &Connection, query: &StatsQuery) -> rusqlite::Result<Stats> {
    let mut w = Where::default();
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
    let mut stmt = conn.prepare_cached(&sql)?;
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
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT result, sum(calls) FROM {source} {filter}
             GROUP BY result HAVING sum(calls) > 0 ORDER BY result"
    ))?;
    let results = stmt
        .query_map(params_from_iter(&w.params), |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    let flagged: u64 = conn.query_row(
        &format!("SELECT coalesce(sum(flagged), 0) FROM {source} {filter}"),
        params_from_iter(&w.params),
        |r| r.get(0),
    )?;
    Ok(Stats {
        rows,
        results,
        flagged,
    })
}
