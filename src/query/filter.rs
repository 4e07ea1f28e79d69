//! The conditions of a search (figure 7): what a user typed is checked and put in the index's
//! forms ([`Filter::resolve`]), then turned into SQL conditions whose values are always bound
//! parameters.

use chrono::{DateTime, NaiveDate};
use rusqlite::types::Value;

use super::{phone_key, QueryError};

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
    pub(super) fn column(self) -> &'static str {
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

impl Filter {
    /// The conditions. `institution_is_code`: the institution given is some institution's
    /// code (it then matches that code; otherwise a part of institution names).
    pub(super) fn to_where(&self, institution_is_code: bool) -> Where {
        let mut w = Where::default();
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

/// Refuse a time range that is empty whatever the calls' offsets: `--from` after `--to`.
pub(super) fn check_range(from: &Option<Bound>, to: &Option<Bound>) -> Result<(), QueryError> {
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
#[derive(Default)]
pub(super) struct Where {
    pub(super) sql: Vec<String>,
    pub(super) params: Vec<Value>,
}

impl Where {
    pub(super) fn push(&mut self, sql: &str, values: impl IntoIterator<Item = Value>) {
        self.sql.push(sql.to_string());
        self.params.extend(values);
    }

    pub(super) fn text(&mut self, sql: &str, value: &Option<String>) {
        if let Some(v) = value {
            let n = sql.matches('?').count();
            self.push(sql, std::iter::repeat_n(Value::Text(v.clone()), n));
        }
    }

    pub(super) fn time(&mut self, bound: &Option<Bound>, upper: bool) {
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

    pub(super) fn clause(&self) -> String {
        if self.sql.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", self.sql.join(" AND "))
        }
    }
}

/// A correction supersedes the record it names; only the latest version is current.
pub(super) const LATEST: &str = "corrected_by IS NULL";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_is_a_parameter_never_sql() {
        let hostile = "x' OR 1=1; DROP TABLE records; --".to_string();
        let filter = Filter {
            from: Some("2026-11-01".parse().unwrap()),
            to: Some("2026-11-30T18:00:00+08:00".parse().unwrap()),
            institution: Some(hostile.clone()),
            phone: Some("+86 133-2115-0748".into()),
            customer: Some(hostile.clone()),
            results: vec![2, 3],
            operator: Some(hostile.clone()),
            ..Filter::default()
        };
        let w = filter.to_where(false);
        let clause = w.clause();
        assert!(!clause.contains("DROP"), "{clause}");
        assert_eq!(
            clause,
            "WHERE call_day >= ? AND call_time <= ? AND instr(institution_name, ?) > 0 \
             AND phone = ? AND instr(customer_name, ?) > 0 AND result IN (?, ?) \
             AND operator_id = ? AND corrected_by IS NULL"
        );
        assert_eq!(clause.matches('?').count(), w.params.len());
        assert_eq!(w.params[3], Value::Text("13321150748".into()));
        assert_eq!(w.params[2], Value::Text(hostile));
        // An institution that is some institution's code is matched as a code.
        let w = filter.to_where(true);
        assert!(w.clause().contains("institution_code = ?"));
    }

    #[test]
    fn a_range_is_refused_only_when_no_call_can_be_in_it() {
        let range = |from: &str, to: &str| {
            check_range(&Some(from.parse().unwrap()), &Some(to.parse().unwrap()))
        };
        assert!(range("2026-11-02", "2026-11-01").is_err());
        assert!(range("2026-11-01", "2026-11-01").is_ok());
        // A day runs in each call's own offset: 2026-11-01 may end at 11:59:59 UTC the next day.
        assert!(range("2026-11-02T11:00:00Z", "2026-11-01").is_ok());
        assert!(range("2026-11-02T12:00:00Z", "2026-11-01").is_err());
        assert!(range("2026-11-01T10:00:00Z", "2026-11-01T09:00:00Z").is_err());
    }

    #[test]
    fn a_bound_is_a_day_or_a_time() {
        assert_eq!(
            "2026-11-28".parse::<Bound>(),
            Ok(Bound::Day(NaiveDate::from_ymd_opt(2026, 11, 28).unwrap()))
        );
        assert_eq!(
            "2026-11-28T15:46:03+08:00".parse::<Bound>(),
            Ok(Bound::Instant(1_795_851_963))
        );
        assert!("28/11/2026".parse::<Bound>().is_err());
    }
}
