//! The call record: everything the document's "text info" holds, as one JSON document.
//!
//! A record before sealing is a media file plus a JSON sidecar beside it, named by appending
//! [`SIDECAR_SUFFIX`] to the media file's name (`call.mkv` + `call.mkv.callrec.json`). Every tool
//! accepts either path. After sealing, the record's JSON is the text info inside the sealed file.
//!
//! The record also renders as, and parses from, the document's pipe-separated line (figure 3C):
//! see [`Record::to_line`] and [`Record::from_line`].

use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};

use crate::vocab::{Kind, Vocabulary};

/// Version of the record JSON schema written by this build.
pub const SCHEMA: u32 = 1;

/// Appended to a media file's name to name its sidecar.
pub const SIDECAR_SUFFIX: &str = ".callrec.json";

/// A record identifier: 1 to 80 characters from `[A-Za-z0-9_-]`, starting with a letter or
/// digit. Safe as a file name and as an object-store key on every platform we target.
///
/// Generated ids have the form `YYYYMMDDTHHMMSSZ-xxxxxxxxxxxx`: the call's start in UTC and
/// twelve hex digits (random for a capture, the start of the media's SHA-256 for a bare file).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RecordId(String);

impl RecordId {
    pub const MAX_LEN: usize = 80;

    pub fn parse(s: &str) -> Result<RecordId, InvalidRecordId> {
        let allowed = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
        let reason = if s.is_empty() {
            "it is empty".to_string()
        } else if s.chars().count() > Self::MAX_LEN {
            format!("it has {} characters", s.chars().count())
        } else if !s.bytes().all(allowed) {
            "it holds a character other than A-Z a-z 0-9 - _".to_string()
        } else if !s.as_bytes()[0].is_ascii_alphanumeric() {
            "it does not start with a letter or digit".to_string()
        } else {
            return Ok(RecordId(s.to_string()));
        };
        Err(InvalidRecordId(reason))
    }

    /// A generated id: the start time in UTC and a 12-hex-digit suffix.
    pub fn generate(start: DateTime<Utc>, suffix: [u8; 6]) -> RecordId {
        RecordId(format!(
            "{}-{}",
            start.format("%Y%m%dT%H%M%SZ"),
            hex::encode(suffix)
        ))
    }

    /// The id of a media file that has no sidecar: its modification time and the start of
    /// its SHA-256, so the same file always gets the same id.
    pub fn for_bare_media(meta: &std::fs::Metadata, media_sha256: &[u8; 32]) -> RecordId {
        let modified: DateTime<Utc> = meta
            .modified()
            .map(DateTime::from)
            .unwrap_or(DateTime::UNIX_EPOCH);
        let mut suffix = [0u8; 6];
        suffix.copy_from_slice(&media_sha256[..6]);
        RecordId::generate(modified, suffix)
    }

    /// A new id for a record made now (a capture, a correction): the time and 48 random bits.
    pub fn new_random(now: DateTime<Utc>) -> RecordId {
        RecordId::generate(now, rand::random())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for RecordId {
    type Error = InvalidRecordId;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        RecordId::parse(&s)
    }
}

impl From<RecordId> for String {
    fn from(id: RecordId) -> String {
        id.0
    }
}

/// Why a text is not a record id. The message never repeats the text: an id typed in the
/// wrong column or hand-edited into a sidecar may be a name or an ID number.
#[derive(Debug, thiserror::Error)]
#[error("invalid record id ({0}): use 1 to 80 characters from A-Z a-z 0-9 - _, starting with a letter or digit")]
pub struct InvalidRecordId(String);

/// One call record. Field order here is the order in the JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// Always [`SCHEMA`] when written by this build.
    pub schema: u32,
    pub id: RecordId,
    /// The document's collection flag (采集标志), e.g. `01`.
    #[serde(default)]
    pub collection_flag: String,
    #[serde(default)]
    pub phone: Phone,
    #[serde(default)]
    pub operator: Operator,
    #[serde(default)]
    pub call: Call,
    #[serde(default)]
    pub terminal: Terminal,
    #[serde(default)]
    pub times: Times,
    /// Facts about the media file; `None` until known.
    #[serde(default)]
    pub media: Option<MediaInfo>,
    /// For a correction: the sealed record it corrects. A correction holds the whole record as
    /// corrected and no media of its own.
    #[serde(default)]
    pub corrects: Option<Correction>,
}

/// The sealed record a correction corrects, named so that no other seal can stand in for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Correction {
    pub record_id: RecordId,
    /// SHA-256 of the original's manifest, 64 hex digits.
    pub manifest_sha256: String,
}

/// The phone's remark (first remark info): the call's number and the phone's identity.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Phone {
    /// The other party's phone number.
    pub number: String,
    pub device: PhoneDevice,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PhoneDevice {
    /// The local device number (本机设备号) shown in the watermark and the figure 3C line.
    pub number: String,
    pub vendor: String,
    pub model: String,
    pub serial: String,
    pub usb_vendor_id: Option<u16>,
    pub usb_product_id: Option<u16>,
}

/// The operator's remark (second remark info), part one: who made the call.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Operator {
    /// Operator (teller) number.
    pub id: String,
    pub name: String,
    pub institution_code: String,
    pub institution_name: String,
}

/// The operator's remark, part two: what the call was about.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Call {
    pub customer_name: String,
    /// Role label of the person called (see [`Vocabulary`]).
    pub role: String,
    /// Business type label (see [`Vocabulary`]).
    pub business_type: String,
    /// Account or card number.
    pub account: String,
    /// Unified social credit code of the company.
    pub credit_code: String,
    /// Personal ID number.
    pub id_number: String,
    /// Verification result code 1-7 (see [`Vocabulary`]).
    pub result: Option<u8>,
    pub remark: String,
}

/// The terminal (operator's PC) that built the record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Terminal {
    pub host_name: String,
    pub machine_id: String,
    pub user: String,
}

/// Times as RFC 3339 with the terminal's UTC offset.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Times {
    pub call_start: Option<DateTime<FixedOffset>>,
    pub call_end: Option<DateTime<FixedOffset>>,
    /// When the text info was made (the terminal's system time).
    pub annotated_at: Option<DateTime<FixedOffset>>,
}

/// Facts about the media file as it was before sealing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MediaInfo {
    pub file_name: String,
    pub size: u64,
    /// Container format as FFmpeg names it (`matroska,webm`, `wav`), empty if unrecognised.
    pub format: String,
    pub duration_ms: Option<u64>,
    pub streams: Vec<Stream>,
    /// What callrec-capture found wrong with the recording (`silent-audio`,
    /// `silent-channel-N`, `missing-audio`, `missing-video`, `duration-drift`); empty if it
    /// found nothing; `None` if the recording was not checked.
    pub health: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Stream {
    pub index: u32,
    /// `audio`, `video`, `subtitle`, `data` or `other`.
    pub kind: String,
    pub codec: String,
    pub sample_rate: Option<u32>,
    pub channels: Option<u32>,
    pub width: Option<u32>,
    pub height: Option<u32>,
}

/// Why a record could not be read or rendered.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("cannot read {path:?}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The message names the field and position but never the offending value, which may be
    /// personal data.
    #[error("{path:?} is not a valid call record: {message}")]
    Json { path: PathBuf, message: String },
    #[error("{path:?} has record schema {found}; this build reads schema {SCHEMA}")]
    Schema { path: PathBuf, found: u32 },
}

/// A JSON error as the field it is about, what is wrong and where, never the value: serde
/// quotes the value it found (``invalid type: integer `110108...` ``), which may be personal
/// data.
fn json_error(path: &Path, bytes: &[u8], e: &serde_json::Error) -> RecordError {
    let full = e.to_string();
    let position = format!(" at line {} column {}", e.line(), e.column());
    let text = full.strip_suffix(&position).unwrap_or(&full);
    // A syntax error names tokens, never a value. In a data error what serde found comes
    // first, what it expected (our types' names) after the last ", expected "; missing and
    // duplicate fields name our fields.
    let what = match text.rsplit_once(", expected ") {
        _ if e.classify() != serde_json::error::Category::Data => text.to_string(),
        Some((found, expected)) => format!("{}, expected {expected}", before_value(found)),
        None if text.starts_with("missing field") || text.starts_with("duplicate field") => {
            text.to_string()
        }
        None => before_value(text).to_string(),
    };
    let message = match (e.line(), field_at(bytes, e.line(), e.column())) {
        (0, _) => what,
        (line, field) if field.is_empty() => format!("{what} (line {line} column {})", e.column()),
        (line, field) => format!("{field}: {what} (line {line} column {})", e.column()),
    };
    RecordError::Json {
        path: path.to_path_buf(),
        message,
    }
}

/// A serde message up to the value it quotes (`` ` `` or `"`): `invalid type: integer`.
fn before_value(text: &str) -> &str {
    text.split(['`', '"']).next().unwrap_or_default().trim_end()
}

/// The field at a position serde_json reports (1-based line, byte column) in `bytes`: the
/// keys of the objects open there, joined by dots, with array indices (`media.streams[0]`).
/// After an object closes, its key still names it, so a missing field names its object.
fn field_at(bytes: &[u8], line: usize, column: usize) -> String {
    enum Frame {
        Object(Option<String>),
        Array(usize),
    }
    let line_start = match line {
        0 | 1 => 0,
        _ => bytes
            .iter()
            .enumerate()
            .filter(|(_, b)| **b == b'\n')
            .nth(line - 2)
            .map_or(bytes.len(), |(i, _)| i + 1),
    };
    let end = (line_start + column).min(bytes.len());
    let mut stack: Vec<Frame> = Vec::new();
    let mut expect_key = false;
    let mut i = 0;
    while i < end {
        match bytes[i] {
            b'{' => {
                stack.push(Frame::Object(None));
                expect_key = true;
            }
            b'[' => stack.push(Frame::Array(0)),
            b'}' | b']' => {
                stack.pop();
                expect_key = false;
            }
            b',' => match stack.last_mut() {
                Some(Frame::Object(key)) => {
                    *key = None;
                    expect_key = true;
                }
                Some(Frame::Array(index)) => *index += 1,
                None => {}
            },
            b'"' => {
                let begin = i + 1;
                i += 1;
                while i < end && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                if expect_key && i < end {
                    if let Some(Frame::Object(key)) = stack.last_mut() {
                        let name = String::from_utf8_lossy(&bytes[begin..i]);
                        *key = Some(name.escape_debug().to_string());
                    }
                    expect_key = false;
                }
            }
            _ => {}
        }
        i += 1;
    }
    let mut field = String::new();
    for frame in &stack {
        match frame {
            Frame::Object(Some(key)) => {
                if !field.is_empty() {
                    field.push('.');
                }
                field.push_str(key);
            }
            Frame::Object(None) => break,
            Frame::Array(index) => field.push_str(&format!("[{index}]")),
        }
    }
    field
}

/// Why a figure 3C line could not be made or read.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum LineError {
    #[error("field {field} contains '|', a line break or a control character, which the figure 3C line cannot carry")]
    Unrepresentable { field: &'static str },
    #[error("a figure 3C line has 16 fields separated by '|'; found {0}")]
    FieldCount(usize),
    /// Names the field, never its value: in a line with a field too many or too few, a
    /// name or an ID number lands in the date's place.
    #[error("field {field} is not {expected}")]
    Field {
        field: &'static str,
        expected: &'static str,
    },
}

/// The names of the 16 fields of the figure 3C line, in order.
pub const LINE_FIELDS: [&str; 16] = [
    "collection_flag",
    "annotated_at",
    "business_type",
    "institution_code",
    "institution_name",
    "phone_number",
    "customer_name",
    "role",
    "call_date",
    "call_time",
    "device_number",
    "credit_code",
    "id_number",
    "account",
    "operator_id",
    "result",
];

/// Separates the result label from the free remark in the line's last field.
const RESULT_SEPARATOR: char = '。';

/// The offset the line's date and time are read in when parsing: China Standard Time.
pub fn china_standard_time() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).expect("valid offset")
}

impl Record {
    /// A record holding only an id: the start for the other constructors.
    pub fn new(id: RecordId) -> Record {
        Record {
            schema: SCHEMA,
            id,
            collection_flag: String::new(),
            phone: Phone::default(),
            operator: Operator::default(),
            call: Call::default(),
            terminal: Terminal::default(),
            times: Times::default(),
            media: None,
            corrects: None,
        }
    }

    /// Parse a record from JSON bytes; `path` names the source in errors.
    pub fn from_json(bytes: &[u8], path: &Path) -> Result<Record, RecordError> {
        // Read the schema first so that a newer file is reported as such, not as unknown fields.
        #[derive(Deserialize)]
        struct Version {
            schema: u32,
        }
        let version: Version =
            serde_json::from_slice(bytes).map_err(|e| json_error(path, bytes, &e))?;
        if version.schema != SCHEMA {
            return Err(RecordError::Schema {
                path: path.to_path_buf(),
                found: version.schema,
            });
        }
        serde_json::from_slice(bytes).map_err(|e| json_error(path, bytes, &e))
    }

    /// Read a record from a JSON file (a regular file: a named pipe is refused, not waited on).
    pub fn load(path: &Path) -> Result<Record, RecordError> {
        let bytes = crate::fsutil::read_regular(path).map_err(|source| RecordError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Record::from_json(&bytes, path)
    }

    /// The record as pretty JSON with a final newline: the sidecar and text-info encoding.
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec_pretty(self).expect("records always serialise");
        out.push(b'\n');
        out
    }

    /// Render the document's figure 3C line (no line terminator).
    ///
    /// Field 2 is `annotated_at` as Unix seconds; fields 9 and 10 are the call's start date and
    /// time in the call's own UTC offset, zero-padded (`2018年12月25日`, `10时12分20秒`); field
    /// 16 is the result's label, then `。` and the remark when there is one. A value holding
    /// `|` or a control character is refused, never escaped, so a line always parses back.
    pub fn to_line(&self, vocab: &Vocabulary) -> Result<String, LineError> {
        let result = match self
            .call
            .result
            .and_then(|c| vocab.by_code(Kind::Result, c))
        {
            Some(term) if self.call.remark.is_empty() => term.label.clone(),
            Some(term) => format!("{}{RESULT_SEPARATOR}{}", term.label, self.call.remark),
            None => self.call.remark.clone(),
        };
        let start = self.times.call_start;
        let values: [String; 16] = [
            self.collection_flag.clone(),
            self.times
                .annotated_at
                .map(|t| t.timestamp().to_string())
                .unwrap_or_default(),
            self.call.business_type.clone(),
            self.operator.institution_code.clone(),
            self.operator.institution_name.clone(),
            self.phone.number.clone(),
            self.call.customer_name.clone(),
            self.call.role.clone(),
            start
                .map(|t| t.format("%Y年%m月%d日").to_string())
                .unwrap_or_default(),
            start
                .map(|t| t.format("%H时%M分%S秒").to_string())
                .unwrap_or_default(),
            self.phone.device.number.clone(),
            self.call.credit_code.clone(),
            self.call.id_number.clone(),
            self.call.account.clone(),
            self.operator.id.clone(),
            result,
        ];
        for (value, field) in values.iter().zip(LINE_FIELDS) {
            if value.contains('|') || value.chars().any(char::is_control) {
                return Err(LineError::Unrepresentable { field });
            }
        }
        Ok(values.join("|"))
    }

    /// Parse the document's figure 3C line into a record with the given id. The line's date
    /// and time are read in `offset` (the document's are China Standard Time, UTC+8).
    pub fn from_line(
        id: RecordId,
        line: &str,
        offset: FixedOffset,
        vocab: &Vocabulary,
    ) -> Result<Record, LineError> {
        let fields: Vec<&str> = line.split('|').collect();
        if fields.len() != LINE_FIELDS.len() {
            return Err(LineError::FieldCount(fields.len()));
        }
        let bad = |i: usize, expected: &'static str| LineError::Field {
            field: LINE_FIELDS[i],
            expected,
        };
        let annotated_at = match fields[1] {
            "" => None,
            s => {
                let secs: i64 = s.parse().map_err(|_| bad(1, "Unix seconds"))?;
                let utc =
                    DateTime::from_timestamp(secs, 0).ok_or_else(|| bad(1, "Unix seconds"))?;
                Some(utc.with_timezone(&offset))
            }
        };
        let call_start = match (fields[8], fields[9]) {
            ("", "") => None,
            (d, t) => {
                let date = NaiveDate::parse_from_str(d, "%Y年%m月%d日")
                    .map_err(|_| bad(8, "a date like 2018年12月25日"))?;
                let time = NaiveTime::parse_from_str(t, "%H时%M分%S秒")
                    .map_err(|_| bad(9, "a time like 10时12分20秒"))?;
                let local = NaiveDateTime::new(date, time);
                Some(
                    offset
                        .from_local_datetime(&local)
                        .single()
                        .ok_or_else(|| bad(9, "a time that exists"))?,
                )
            }
        };
        let (result, remark) = split_result(fields[15], vocab);
        let mut record = Record::new(id);
        record.collection_flag = fields[0].to_string();
        record.call.business_type = fields[2].to_string();
        record.operator.institution_code = fields[3].to_string();
        record.operator.institution_name = fields[4].to_string();
        record.phone.number = fields[5].to_string();
        record.call.customer_name = fields[6].to_string();
        record.call.role = fields[7].to_string();
        record.phone.device.number = fields[10].to_string();
        record.call.credit_code = fields[11].to_string();
        record.call.id_number = fields[12].to_string();
        record.call.account = fields[13].to_string();
        record.operator.id = fields[14].to_string();
        record.call.result = result;
        record.call.remark = remark;
        record.times.annotated_at = annotated_at;
        record.times.call_start = call_start;
        Ok(record)
    }
}

/// Split the line's last field into a result code and the remark. A field that does not start
/// with a known result label is all remark.
fn split_result(field: &str, vocab: &Vocabulary) -> (Option<u8>, String) {
    let (label, remark) = match field.split_once(RESULT_SEPARATOR) {
        Some((label, remark)) => (label, remark),
        None => (field, ""),
    };
    match vocab.by_label(Kind::Result, label) {
        // "核实成功。" with an empty remark would render back without the separator.
        Some(term) if !(remark.is_empty() && field.ends_with(RESULT_SEPARATOR)) => {
            (Some(term.code), remark.to_string())
        }
        _ => (None, field.to_string()),
    }
}

/// The sidecar path for a media file: its name with [`SIDECAR_SUFFIX`] appended.
pub fn sidecar_path(media: &Path) -> PathBuf {
    let mut name = media.as_os_str().to_owned();
    name.push(SIDECAR_SUFFIX);
    PathBuf::from(name)
}

/// A record on disk before sealing: the media file and, if it exists, its sidecar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordFiles {
    pub media: PathBuf,
    pub sidecar: Option<PathBuf>,
}

impl RecordFiles {
    /// Resolve a path naming either the media file or its sidecar.
    pub fn resolve(path: &Path) -> RecordFiles {
        let text = path.as_os_str().as_bytes();
        if let Some(stem) = text.strip_suffix(SIDECAR_SUFFIX.as_bytes()) {
            return RecordFiles {
                media: PathBuf::from(std::ffi::OsStr::from_bytes(stem)),
                sidecar: Some(path.to_path_buf()),
            };
        }
        let sidecar = sidecar_path(path);
        RecordFiles {
            media: path.to_path_buf(),
            sidecar: sidecar.is_file().then_some(sidecar),
        }
    }

    /// Is this path a sidecar (so a directory walk should not treat it as media)?
    pub fn is_sidecar(path: &Path) -> bool {
        path.as_os_str()
            .as_bytes()
            .ends_with(SIDECAR_SUFFIX.as_bytes())
    }
}
