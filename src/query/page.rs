//! The printable page of a verified record: every field of its text info with its Chinese and
//! English label, its trusted time (or that it has none), then the verdict and the facts of the
//! seal.

use chrono::{DateTime, Utc};

use crate::record::Record;
use crate::verify;

use super::Entry;

/// The labels of a printed page, in order: field name, Chinese label, English label.
const PRINT_FIELDS: [(&str, &str, &str); 20] = [
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

/// The label of a page's trusted time.
const TRUSTED_TIME: (&str, &str) = ("可信时间", "Trusted time");

/// A record's trusted time, as `get` found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum TrustedTime {
    /// A trusted anchor of its chain at or above it, checked just now: the TSA's time, the
    /// TSA, the anchor's archive key, and whether its TSA was checked against trusted
    /// certificates now (else it was trusted when the anchor was indexed).
    Anchored {
        time: DateTime<Utc>,
        tsa: String,
        anchor: String,
        tsa_checked: bool,
    },
    /// No trusted anchor covers it; or the one the index names did not pass now (why).
    NotAnchored(Option<String>),
}

impl TrustedTime {
    /// The value of the page's trusted-time line.
    fn value(&self) -> String {
        match self {
            TrustedTime::Anchored {
                time,
                tsa,
                anchor,
                tsa_checked,
            } => {
                let trust = if *tsa_checked {
                    ""
                } else {
                    "; the TSA as trusted when indexed, not checked now: set CALLREC_TSA_CA"
                };
                format!(
                    "{} (TSA {tsa}, anchor {anchor}{trust})",
                    page_time(&time.with_timezone(&chrono::Local))
                )
            }
            TrustedTime::NotAnchored(None) => "未锚定 (not anchored)".into(),
            TrustedTime::NotAnchored(Some(why)) => format!("未锚定 (not anchored: {why})"),
        }
    }
}

/// A time on a printed page: to the second, with its UTC offset, as the watermark shows it
/// (`2026-11-28 15:46:03 +08:00`).
fn page_time<Tz: chrono::TimeZone>(time: &DateTime<Tz>) -> String
where
    Tz::Offset: std::fmt::Display,
{
    time.format("%Y-%m-%d %H:%M:%S %:z").to_string()
}

/// A printable page of a verified record: every field of the text info with its Chinese and
/// English label (control characters escaped), its trusted time, then the verdict and the
/// facts of the seal. The call's time is shown in the call's own offset, the seal's and the
/// trusted time in the local one. `superseded_by`: the latest correction of this record the
/// index knows, which the page names.
pub(super) fn print_page(
    record: &Record,
    verified: &verify::Verified,
    trusted_time: &TrustedTime,
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
        .map(|(_, zh, en)| (*zh, *en))
        .chain([TRUSTED_TIME])
        .map(|(zh, en)| unicode_width::UnicodeWidthStr::width(format!("{zh} / {en}").as_str()))
        .max()
        .unwrap_or(0);
    let line = |zh: &str, en: &str, value: &str| {
        let label = format!("{zh} / {en}");
        let pad = width - unicode_width::UnicodeWidthStr::width(label.as_str());
        // Values are shown with their control characters escaped: a page goes to a terminal
        // or a printer, and neither may be driven by a value.
        let value = crate::cli::escape_control(value);
        format!("{label}{}  {value}\n", " ".repeat(pad))
    };
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
        page.push_str(&line(zh, en, &value));
    }
    let (zh, en) = TRUSTED_TIME;
    page.push_str(&line(zh, en, &trusted_time.value()));
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
