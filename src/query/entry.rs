//! What the index knows of one archived object ([`Entry`]), filled from a record's text info,
//! and the one form a phone number is stored and searched in ([`phone_key`]).

use chrono::{DateTime, Datelike, FixedOffset};
use rusqlite::types::{FromSql, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use serde::Serialize;

use crate::record::Record;

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
    pub verdict: Verdict,
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
    /// The TSA's time of the first trusted anchor covering the record (of its key, at or above
    /// its sequence), as the index knows its anchors when read; `None`: not anchored.
    pub anchored_at: Option<String>,
    /// What the record was checked with when it was indexed.
    #[serde(skip)]
    pub checked: Checked,
    /// Its place in its key's chain, from the manifest (what `anchored_at` is found by).
    #[serde(skip)]
    pub sequence: Option<u64>,
}

/// What the checks made at indexing found of a record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Every check made passed.
    #[default]
    Ok,
    /// One failed (the entry's `problem` says which, and why).
    Failed,
}

impl Verdict {
    /// The verdict as the index stores it and the wire shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Failed => "failed",
        }
    }
}

impl ToSql for Verdict {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(self.as_str().into())
    }
}

/// As the index's SQL reads it (`verdict <> 'ok'`): anything but `ok` failed.
impl FromSql for Verdict {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Verdict> {
        Ok(match value.as_str()? {
            "ok" => Verdict::Ok,
            _ => Verdict::Failed,
        })
    }
}

/// What an indexed record was checked with, so that a run with other keys checks it again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checked {
    /// Whether its signing key was among the trusted keys; `None` when no trusted keys were
    /// given (its signature was not checked).
    pub trusted: Option<bool>,
    /// [`TextKeys::id`](super::TextKeys::id) of the keys its text info was read (or tried)
    /// with; `None` when no identity was given.
    pub text_key: Option<String>,
}

impl Entry {
    /// Take the text info of `old`, an earlier reading of the same object with the same
    /// manifest (so the same text block), whose text info was read and named the same record;
    /// this reading's verdict stands.
    pub(super) fn keep_text(&mut self, old: Entry) {
        if !old.text
            || old.manifest_sha256 != self.manifest_sha256
            || old.problem.as_deref() == Some(TEXT_NAMES_ANOTHER)
        {
            return;
        }
        let seal = std::mem::replace(self, old);
        self.size = seal.size;
        self.etag = seal.etag;
        self.problem = if seal.verdict == Verdict::Ok {
            None
        } else {
            seal.problem
        };
        self.verdict = seal.verdict;
        self.checked.trusted = seal.checked.trusted;
        self.sequence = seal.sequence;
    }

    pub(super) fn fail(&mut self, problem: String) {
        self.verdict = Verdict::Failed;
        self.problem = Some(problem);
    }

    pub(super) fn fill(&mut self, record: &Record) {
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

/// The problem of a record whose text info names another record than its manifest.
const TEXT_NAMES_ANOTHER: &str = "text-sha256: the text info names another record";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_phone_number_has_one_form_however_it_is_written() {
        for written in [
            "+86 133-2115-0748",
            "008613321150748",
            "13321150748",
            "(133) 2115 0748",
        ] {
            assert_eq!(phone_key(written), "13321150748", "{written}");
        }
        for written in ["+86 10 12345678", "010-12345678", "+86 010 12345678"] {
            assert_eq!(phone_key(written), "01012345678", "{written}");
        }
        assert_eq!(phone_key("+1 (555) 010-9999"), "+15550109999");
        assert_eq!(phone_key("+86"), "+86");
    }
}
