//! The sealed file format, version 1 (specified in `docs/FORMAT.md`; keep the two in step).
//!
//! ```text
//! MEDIA || TEXT || MANIFEST || SIGNATURE || FOOTER (40 bytes)
//! ```
//!
//! This module holds the byte-level pieces: the footer (which carries the document's trailer
//! fields `nFileSizeOld`, `lChecksum` and `nSign`), the document's quick checksum and check
//! byte, and the signed manifest. Parsers here take untrusted bytes: they never panic and never
//! allocate more than the format's fixed limits.

use std::fmt::Write as _;

use chrono::{DateTime, SecondsFormat, Timelike, Utc};
use sha2::{Digest, Sha256};

use crate::fsutil::ReadAt;
use crate::record::RecordId;

/// Size of the footer at the very end of a sealed file.
pub const FOOTER_LEN: u64 = 40;
/// The document's `nSign`: the fixed tail signature, the last 8 bytes of every sealed file.
pub const N_SIGN: [u8; 8] = *b"CRECSEAL";
/// The footer version this build writes and reads.
pub const VERSION: u16 = 1;
/// Largest text block (text info plus check byte) a reader accepts.
pub const TEXT_MAX: u32 = 1 << 20;
/// Largest manifest a reader accepts.
pub const MANIFEST_MAX: u32 = 64 << 10;
/// Largest signature block a reader accepts.
pub const SIGNATURE_MAX: u32 = 4 << 10;
/// First line of every version 1 manifest.
pub const MANIFEST_HEADER: &str = "callrec-manifest: 1";

/// How the text info is encoded in the text block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cipher {
    /// age (X25519) encryption to one or more recipients: confidential.
    Age,
    /// The document's one-to-one byte substitution table: tamper-evident, not confidential.
    Table,
}

impl Cipher {
    pub fn code(self) -> u16 {
        match self {
            Cipher::Age => 1,
            Cipher::Table => 2,
        }
    }

    pub fn from_code(code: u16) -> Option<Cipher> {
        match code {
            1 => Some(Cipher::Age),
            2 => Some(Cipher::Table),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Cipher::Age => "age",
            Cipher::Table => "table",
        }
    }

    pub fn from_name(name: &str) -> Option<Cipher> {
        [Cipher::Age, Cipher::Table]
            .into_iter()
            .find(|c| c.name() == name)
    }
}

/// The fixed-size footer. All integers little-endian.
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 8 | `nFileSizeOld`: media length |
/// | 8 | 8 | `lChecksum`: the document's quick checksum of the media |
/// | 16 | 4 | text block length (including the check byte) |
/// | 20 | 4 | manifest length |
/// | 24 | 4 | signature block length |
/// | 28 | 2 | format version (1) |
/// | 30 | 2 | cipher (1 age, 2 table) |
/// | 32 | 8 | `nSign`: `CRECSEAL` |
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Footer {
    pub media_len: u64,
    pub checksum: u64,
    pub text_len: u32,
    pub manifest_len: u32,
    pub signature_len: u32,
    pub cipher: Cipher,
}

/// What is wrong with a footer. Each names the field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FooterError {
    #[error("file is {0} bytes, shorter than a sealed file's footer")]
    TooShort(u64),
    #[error("no nSign tail signature: the file is not sealed, or its end was changed")]
    NoSign,
    #[error("unsupported format version {0}")]
    Version(u16),
    #[error("unknown cipher code {0}")]
    Cipher(u16),
    #[error("{field} is {value}, outside 1..={max}")]
    Length {
        field: &'static str,
        value: u32,
        max: u32,
    },
    #[error("the footer's lengths add up to {expected} bytes but the file has {actual}: bytes were added or removed")]
    Layout { expected: u128, actual: u64 },
}

impl Footer {
    pub fn encode(&self) -> [u8; FOOTER_LEN as usize] {
        let mut out = [0u8; FOOTER_LEN as usize];
        out[0..8].copy_from_slice(&self.media_len.to_le_bytes());
        out[8..16].copy_from_slice(&self.checksum.to_le_bytes());
        out[16..20].copy_from_slice(&self.text_len.to_le_bytes());
        out[20..24].copy_from_slice(&self.manifest_len.to_le_bytes());
        out[24..28].copy_from_slice(&self.signature_len.to_le_bytes());
        out[28..30].copy_from_slice(&VERSION.to_le_bytes());
        out[30..32].copy_from_slice(&self.cipher.code().to_le_bytes());
        out[32..40].copy_from_slice(&N_SIGN);
        out
    }

    /// Parse the last [`FOOTER_LEN`] bytes of a file of `file_len` bytes, checking that the
    /// lengths it records account for the whole file exactly.
    pub fn decode(bytes: &[u8], file_len: u64) -> Result<Footer, FooterError> {
        if file_len < FOOTER_LEN || bytes.len() != FOOTER_LEN as usize {
            return Err(FooterError::TooShort(file_len));
        }
        let u64_at = |i: usize| u64::from_le_bytes(bytes[i..i + 8].try_into().expect("8 bytes"));
        let u32_at = |i: usize| u32::from_le_bytes(bytes[i..i + 4].try_into().expect("4 bytes"));
        let u16_at = |i: usize| u16::from_le_bytes(bytes[i..i + 2].try_into().expect("2 bytes"));
        if bytes[32..40] != N_SIGN {
            return Err(FooterError::NoSign);
        }
        let version = u16_at(28);
        if version != VERSION {
            return Err(FooterError::Version(version));
        }
        let cipher = Cipher::from_code(u16_at(30)).ok_or(FooterError::Cipher(u16_at(30)))?;
        let footer = Footer {
            media_len: u64_at(0),
            checksum: u64_at(8),
            text_len: u32_at(16),
            manifest_len: u32_at(20),
            signature_len: u32_at(24),
            cipher,
        };
        for (field, value, max) in [
            ("text length", footer.text_len, TEXT_MAX),
            ("manifest length", footer.manifest_len, MANIFEST_MAX),
            ("signature length", footer.signature_len, SIGNATURE_MAX),
        ] {
            if value == 0 || value > max {
                return Err(FooterError::Length { field, value, max });
            }
        }
        let expected = u128::from(footer.media_len)
            + u128::from(footer.text_len)
            + u128::from(footer.manifest_len)
            + u128::from(footer.signature_len)
            + u128::from(FOOTER_LEN);
        if expected != u128::from(file_len) {
            return Err(FooterError::Layout {
                expected,
                actual: file_len,
            });
        }
        Ok(footer)
    }

    pub fn text_offset(&self) -> u64 {
        self.media_len
    }

    pub fn manifest_offset(&self) -> u64 {
        self.text_offset() + u64::from(self.text_len)
    }

    pub fn signature_offset(&self) -> u64 {
        self.manifest_offset() + u64::from(self.manifest_len)
    }

    pub fn footer_offset(&self) -> u64 {
        self.signature_offset() + u64::from(self.signature_len)
    }
}

/// The six media offsets the document's `lChecksum` sums: `i * (nFileSizeOld / 7)` for
/// i = 1..6. Empty for empty media (whose checksum is 0).
pub fn checksum_offsets(media_len: u64) -> Vec<u64> {
    if media_len == 0 {
        return Vec::new();
    }
    (1..=6).map(|i| i * (media_len / 7)).collect()
}

/// The document's `lChecksum`, read from the first `media_len` bytes of `source`.
pub fn quick_checksum(source: &dyn ReadAt, media_len: u64) -> std::io::Result<u64> {
    let mut sum = 0u64;
    for offset in checksum_offsets(media_len) {
        let mut byte = [0u8; 1];
        source.read_exact_at(&mut byte, offset)?;
        sum += u64::from(byte[0]);
    }
    Ok(sum)
}

/// The document's check byte appended to the text: the sum of the stored (encoded) text bytes
/// modulo 256.
pub fn check_byte(encoded_text: &[u8]) -> u8 {
    encoded_text
        .iter()
        .fold(0u8, |sum, &byte| sum.wrapping_add(byte))
}

/// The signed manifest: one fact a line, `name: value`, in a fixed order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub record_id: RecordId,
    /// The signing key's id as minisign prints it: 16 upper-case hex digits.
    pub key_id: String,
    pub sealed_at: DateTime<Utc>,
    pub sequence: u64,
    /// SHA-256 of the previous manifest sealed with this key; zeros for sequence 1.
    pub previous: [u8; 32],
    pub media_size: u64,
    pub media_checksum: u64,
    pub media_sha256: [u8; 32],
    pub text_cipher: Cipher,
    pub text_size: u32,
    pub text_sha256: [u8; 32],
    /// Optional facts after the required ones (e.g. `table-id`), in file order.
    pub extra: Vec<(String, String)>,
}

/// The required manifest names, in order.
pub const MANIFEST_NAMES: [&str; 11] = [
    "record-id",
    "key-id",
    "sealed-at",
    "sequence",
    "previous",
    "media-size",
    "media-checksum",
    "media-sha256",
    "text-cipher",
    "text-size",
    "text-sha256",
];

/// What is wrong with a manifest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error("manifest is not UTF-8 text")]
    NotText,
    #[error("manifest does not start with \"{MANIFEST_HEADER}\"")]
    Header,
    #[error("manifest line {line}: expected \"{expected}: ...\"")]
    Missing { line: usize, expected: &'static str },
    #[error("manifest line {line}: bad {name} value")]
    Value { line: usize, name: &'static str },
    #[error("manifest line {line}: not a \"name: value\" line")]
    Syntax { line: usize },
    #[error("manifest line {line}: the {name} fact does not have its defined form")]
    Fact { line: usize, name: String },
    #[error(
        "manifest is not in canonical form (line endings, spacing, hex case or leading zeros)"
    )]
    NotCanonical,
}

impl Manifest {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut s = String::new();
        let mut line = |name: &str, value: &str| {
            writeln!(s, "{name}: {value}").expect("write to String");
        };
        line("callrec-manifest", "1");
        line("record-id", self.record_id.as_str());
        line("key-id", &self.key_id);
        line(
            "sealed-at",
            &self.sealed_at.to_rfc3339_opts(SecondsFormat::Secs, true),
        );
        line("sequence", &self.sequence.to_string());
        line("previous", &hex::encode(self.previous));
        line("media-size", &self.media_size.to_string());
        line("media-checksum", &self.media_checksum.to_string());
        line("media-sha256", &hex::encode(self.media_sha256));
        line("text-cipher", self.text_cipher.name());
        line("text-size", &self.text_size.to_string());
        line("text-sha256", &hex::encode(self.text_sha256));
        for (name, value) in &self.extra {
            line(name, value);
        }
        s.into_bytes()
    }

    /// SHA-256 of the manifest's bytes: its identity in the hash chain.
    pub fn sha256(bytes: &[u8]) -> [u8; 32] {
        Sha256::digest(bytes).into()
    }

    /// The value of an optional fact.
    pub fn extra(&self, name: &str) -> Option<&str> {
        self.extra
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Parse a manifest. Only the canonical encoding is accepted, so that a manifest has
    /// exactly one byte form.
    pub fn parse(bytes: &[u8]) -> Result<Manifest, ManifestError> {
        let text = std::str::from_utf8(bytes).map_err(|_| ManifestError::NotText)?;
        let body = text.strip_suffix('\n').ok_or(ManifestError::NotCanonical)?;
        let mut lines = body.split('\n').enumerate().map(|(i, l)| (i + 1, l));
        match lines.next() {
            Some((_, l)) if l == MANIFEST_HEADER => {}
            _ => return Err(ManifestError::Header),
        }
        let mut values = Vec::with_capacity(MANIFEST_NAMES.len());
        for expected in MANIFEST_NAMES {
            let (line, value) = match lines.next() {
                Some((line, l)) => match l.split_once(": ") {
                    Some((name, value)) if name == expected => (line, value),
                    _ => return Err(ManifestError::Missing { line, expected }),
                },
                None => {
                    return Err(ManifestError::Missing {
                        line: MANIFEST_NAMES.len() + 2,
                        expected,
                    })
                }
            };
            values.push((line, expected, value));
        }
        let get = |i: usize| values[i].2;
        let bad = |i: usize| ManifestError::Value {
            line: values[i].0,
            name: values[i].1,
        };
        let hash = |i: usize| -> Result<[u8; 32], ManifestError> {
            let mut out = [0u8; 32];
            hex::decode_to_slice(get(i), &mut out).map_err(|_| bad(i))?;
            Ok(out)
        };
        let number = |i: usize| get(i).parse::<u64>().map_err(|_| bad(i));
        let key_id = get(1);
        if key_id.len() != 16
            || !key_id
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'A'..=b'F'))
        {
            return Err(bad(1));
        }
        let mut extra = Vec::new();
        for (line, l) in lines {
            let (name, value) = l.split_once(": ").ok_or(ManifestError::Syntax { line })?;
            let name_ok = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !MANIFEST_NAMES.contains(&name)
                && !extra.iter().any(|(n, _): &(String, String)| n == name);
            if !name_ok || value.chars().any(char::is_control) {
                return Err(ManifestError::Syntax { line });
            }
            if !known_fact_ok(name, value) {
                return Err(ManifestError::Fact {
                    line,
                    name: name.to_string(),
                });
            }
            extra.push((name.to_string(), value.to_string()));
        }
        let manifest = Manifest {
            record_id: RecordId::parse(get(0)).map_err(|_| bad(0))?,
            key_id: key_id.to_string(),
            sealed_at: DateTime::parse_from_rfc3339(get(2))
                .map_err(|_| bad(2))?
                .with_timezone(&Utc),
            sequence: number(3).and_then(|n| if n == 0 { Err(bad(3)) } else { Ok(n) })?,
            previous: hash(4)?,
            media_size: number(5)?,
            media_checksum: number(6)?,
            media_sha256: hash(7)?,
            text_cipher: Cipher::from_name(get(8)).ok_or_else(|| bad(8))?,
            text_size: get(9).parse().map_err(|_| bad(9))?,
            text_sha256: hash(10)?,
            extra,
        };
        if manifest.to_bytes() != bytes {
            return Err(ManifestError::NotCanonical);
        }
        // A leap second (`:60`) is no time a seal can be made at.
        if manifest.sealed_at.nanosecond() >= 1_000_000_000 {
            return Err(bad(2));
        }
        // The first seal of a chain has no previous one.
        if manifest.sequence == 1 && manifest.previous != [0; 32] {
            return Err(bad(4));
        }
        Ok(manifest)
    }
}

/// Does an optional fact this version defines have its defined syntax? Facts it does not
/// define are shown, not interpreted, so any value passes.
fn known_fact_ok(name: &str, value: &str) -> bool {
    let lower_hex = |v: &str, len: usize| {
        v.len() == len && v.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    };
    match name {
        "table-id" => lower_hex(value, 16),
        "source-sha256" | "sidecar-mac" => lower_hex(value, 64),
        "corrects" => value
            .split_once(' ')
            .is_some_and(|(id, sha)| RecordId::parse(id).is_ok() && lower_hex(sha, 64)),
        "watermark" => {
            value == "none"
                || value
                    .strip_prefix("drawtext libx264 preset=")
                    .and_then(|rest| rest.split_once(" crf="))
                    .is_some_and(|(preset, crf)| {
                        !preset.is_empty()
                            && preset.bytes().all(|b| b.is_ascii_lowercase())
                            && !crf.is_empty()
                            && crf.bytes().all(|b| b.is_ascii_digit())
                            && (crf == "0" || !crf.starts_with('0'))
                    })
        }
        "health" => {
            value == "ok"
                || (!value.is_empty()
                    && value.split(' ').all(|flag| {
                        matches!(
                            flag,
                            "silent-audio"
                                | "missing-audio"
                                | "missing-video"
                                | "duration-drift"
                                | "interrupted"
                        ) || flag.strip_prefix("silent-channel-").is_some_and(|n| {
                            !n.is_empty()
                                && n.bytes().all(|b| b.is_ascii_digit())
                                && !n.starts_with('0')
                        })
                    }))
        }
        _ => true,
    }
}

/// The fixed untrusted comment of every seal signature.
pub const UNTRUSTED_COMMENT: &str = "callrec seal manifest";

/// The trusted comment signed with a manifest: names the record and its place in the chain,
/// so `minisign -V` shows them.
pub fn trusted_comment(manifest: &Manifest) -> String {
    format!(
        "record:{} sequence:{}",
        manifest.record_id, manifest.sequence
    )
}
