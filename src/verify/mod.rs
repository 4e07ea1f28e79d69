//! Checking sealed files.
//!
//! The order of checks is fixed and documented in `docs/FORMAT.md`: the document's quick
//! checks (footer and `nSign`, `lChecksum`, check byte) first, then the manifest and its
//! signature, then the hashes of the text block and of the media. Each failure names the check.
//! A verifier answers one of three things: verified, proven bad ([`VerifyError::Failed`]), or
//! could not check ([`VerifyError::Io`]).

pub mod bundle;
pub mod evidence;

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::ed25519;
use crate::format::{self, Cipher, Footer, Manifest, FOOTER_LEN, UNTRUSTED_COMMENT};
use crate::fsutil::{self, PathContext, PathError, ReadAt};
use crate::keys::{self, TextKey, TrustedKeys};
use crate::record::Record;

/// The checks, in the order they run. Their names are part of the JSON output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Check {
    /// The footer parses, ends with `nSign` and its lengths account for the whole file.
    Footer,
    /// The document's `lChecksum` over six media bytes.
    MediaChecksum,
    /// The document's check byte at the end of the text block.
    CheckByte,
    /// The manifest parses and agrees with the footer.
    Manifest,
    /// The manifest's signature is canonical, by a trusted key, and valid.
    Signature,
    /// SHA-256 of the text block equals the manifest's.
    TextSha256,
    /// The text payload is what `text-cipher` says: a binary age v1 file (its header parses),
    /// or, with the substitution table, a manifest naming the table (`table-id`). Readers of
    /// the text also check that it decodes with that table to the manifest's record.
    Text,
    /// SHA-256 of the media equals the manifest's.
    MediaSha256,
    /// An anchor file is in its canonical form and agrees with the manifest it holds.
    Anchor,
    /// An anchor's RFC 3161 token stamps its manifest hash, is signed by its TSA and, when
    /// TSA certificates are trusted, chains to one; the head was not sealed after it.
    Timestamp,
}

impl Check {
    pub fn name(self) -> &'static str {
        match self {
            Check::Footer => "footer",
            Check::MediaChecksum => "media-checksum",
            Check::CheckByte => "check-byte",
            Check::Manifest => "manifest",
            Check::Signature => "signature",
            Check::TextSha256 => "text-sha256",
            Check::Text => "text",
            Check::MediaSha256 => "media-sha256",
            Check::Anchor => "anchor",
            Check::Timestamp => "timestamp",
        }
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The file is proven not to be an intact seal.
    #[error("{check} check failed: {reason}")]
    Failed { check: Check, reason: String },
    /// The file could not be read, so nothing is proven either way.
    #[error(transparent)]
    Io(#[from] PathError),
}

impl VerifyError {
    /// 1 for proven bad, 2 for could not check.
    pub fn exit_code(&self) -> u8 {
        match self {
            VerifyError::Failed { .. } => 1,
            VerifyError::Io(_) => 2,
        }
    }
}

fn failed(check: Check, reason: impl Into<String>) -> VerifyError {
    VerifyError::Failed {
        check,
        reason: reason.into(),
    }
}

/// A sealed file (or archived object) whose footer has been read and whose layout accounts
/// for every byte.
pub struct SealedFile {
    /// The file's path, or the object's archive key: for messages.
    pub path: PathBuf,
    source: Box<dyn ReadAt>,
    pub footer: Footer,
}

impl SealedFile {
    /// Open a file and parse its footer. Anything but a regular file (a named pipe, a device)
    /// is refused at once rather than read.
    pub fn open(path: &Path) -> Result<SealedFile, VerifyError> {
        let file = fsutil::open_regular(path).at("cannot open", path)?;
        let len = file.metadata().at("cannot read", path)?.len();
        SealedFile::from_source(path, Box::new(file), len)
    }

    /// Parse the footer of `len` bytes read through `source`, named `path` in messages.
    pub fn from_source(
        path: &Path,
        source: Box<dyn ReadAt>,
        len: u64,
    ) -> Result<SealedFile, VerifyError> {
        let mut tail = [0u8; FOOTER_LEN as usize];
        if len >= FOOTER_LEN {
            source
                .read_exact_at(&mut tail, len - FOOTER_LEN)
                .at("cannot read", path)?;
        }
        let footer =
            Footer::decode(&tail, len).map_err(|e| failed(Check::Footer, e.to_string()))?;
        Ok(SealedFile {
            path: path.to_path_buf(),
            source,
            footer,
        })
    }

    fn read_at(&self, offset: u64, len: u32) -> Result<Vec<u8>, PathError> {
        let mut buf = vec![0u8; len as usize];
        self.source
            .read_exact_at(&mut buf, offset)
            .at("cannot read", &self.path)?;
        Ok(buf)
    }

    /// The text block: encoded text info followed by the check byte.
    pub fn text_block(&self) -> Result<Vec<u8>, PathError> {
        self.read_at(self.footer.text_offset(), self.footer.text_len)
    }

    pub fn manifest_bytes(&self) -> Result<Vec<u8>, PathError> {
        self.read_at(self.footer.manifest_offset(), self.footer.manifest_len)
    }

    /// The seal at the end of the file: manifest, signature and footer.
    pub fn tail(&self) -> Result<Vec<u8>, PathError> {
        let f = &self.footer;
        self.read_at(
            f.manifest_offset(),
            f.manifest_len + f.signature_len + FOOTER_LEN as u32,
        )
    }

    pub fn signature_bytes(&self) -> Result<Vec<u8>, PathError> {
        self.read_at(self.footer.signature_offset(), self.footer.signature_len)
    }

    /// Stream the media bytes through SHA-256, copying them to `sink` if given.
    pub fn hash_media(&self, mut sink: Option<&mut dyn Write>) -> Result<[u8; 32], PathError> {
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; fsutil::IO_BUFFER];
        let mut offset = 0u64;
        while offset < self.footer.media_len {
            let n = buf.len().min((self.footer.media_len - offset) as usize);
            self.source
                .read_exact_at(&mut buf[..n], offset)
                .at("cannot read", &self.path)?;
            hasher.update(&buf[..n]);
            if let Some(sink) = sink.as_mut() {
                sink.write_all(&buf[..n])
                    .at("cannot write media from", &self.path)?;
            }
            offset += n as u64;
        }
        Ok(hasher.finalize().into())
    }
}

/// What the document's quick check establishes.
#[derive(Debug, Clone)]
pub struct QuickVerified {
    pub footer: Footer,
}

/// The document's checks only: footer and `nSign`, `lChecksum`, check byte. Reads the footer,
/// six media bytes and the text block, whatever the media's size.
pub fn quick(sealed: &SealedFile) -> Result<QuickVerified, VerifyError> {
    let footer = sealed.footer;
    let checksum = format::quick_checksum(sealed.source.as_ref(), footer.media_len)
        .at("cannot read", &sealed.path)?;
    if checksum != footer.checksum {
        return Err(failed(
            Check::MediaChecksum,
            format!(
                "lChecksum is {} but the media bytes sum to {checksum}: the media was changed",
                footer.checksum
            ),
        ));
    }
    let text = sealed.text_block()?;
    let (payload, check) = text.split_at(text.len() - 1);
    if format::check_byte(payload) != check[0] {
        return Err(failed(
            Check::CheckByte,
            "the text block's check byte does not match its content: the text info was changed",
        ));
    }
    Ok(QuickVerified { footer })
}

/// What a full verification establishes: the signed manifest, and its hash for the chain.
#[derive(Debug, Clone)]
pub struct Verified {
    pub manifest: Manifest,
    pub manifest_sha256: [u8; 32],
}

/// Every check. `media_sink`, if given, receives the media bytes as they are hashed; use its
/// content only if this returns `Ok`.
pub fn full(
    sealed: &SealedFile,
    trusted: &TrustedKeys,
    media_sink: Option<&mut dyn Write>,
) -> Result<Verified, VerifyError> {
    let verified = seal(sealed, trusted)?;
    if sealed.hash_media(media_sink)? != verified.manifest.media_sha256 {
        return Err(failed(
            Check::MediaSha256,
            "the media does not match the signed SHA-256: the media was changed",
        ));
    }
    Ok(verified)
}

/// Every check but the media's SHA-256: what can be proven from the end of the file alone
/// (the footer, text block, manifest and signature, and six media bytes).
pub fn seal(sealed: &SealedFile, trusted: &TrustedKeys) -> Result<Verified, VerifyError> {
    let (manifest, manifest_bytes) = manifest(sealed)?;
    check_signature(
        &sealed.signature_bytes()?,
        &manifest,
        &manifest_bytes,
        trusted,
    )?;
    check_text(sealed, &manifest)?;
    Ok(Verified {
        manifest_sha256: Manifest::sha256(&manifest_bytes),
        manifest,
    })
}

/// The quick checks, then the manifest: it parses and agrees with the footer. Says nothing of
/// who signed it.
pub fn manifest(sealed: &SealedFile) -> Result<(Manifest, Vec<u8>), VerifyError> {
    let QuickVerified { footer } = quick(sealed)?;
    let manifest_bytes = sealed.manifest_bytes()?;
    let manifest =
        Manifest::parse(&manifest_bytes).map_err(|e| failed(Check::Manifest, e.to_string()))?;
    for (field, in_manifest, in_footer) in [
        ("media-size", manifest.media_size, footer.media_len),
        ("media-checksum", manifest.media_checksum, footer.checksum),
        (
            "text-size",
            u64::from(manifest.text_size),
            u64::from(footer.text_len),
        ),
    ] {
        if in_manifest != in_footer {
            return Err(failed(
                Check::Manifest,
                format!("{field} is {in_manifest} in the manifest but {in_footer} in the footer"),
            ));
        }
    }
    if manifest.text_cipher != footer.cipher {
        return Err(failed(
            Check::Manifest,
            "text-cipher differs between the manifest and the footer",
        ));
    }
    Ok((manifest, manifest_bytes))
}

/// The text block's SHA-256 equals the manifest's.
pub fn check_text(sealed: &SealedFile, manifest: &Manifest) -> Result<(), VerifyError> {
    let text = sealed.text_block()?;
    if Sha256::digest(&text).as_slice() != manifest.text_sha256 {
        return Err(failed(
            Check::TextSha256,
            "the text block does not match the signed SHA-256: the text info was replaced",
        ));
    }
    let payload = &text[..text.len() - 1];
    match manifest.text_cipher {
        Cipher::Age => {
            age::Decryptor::new_buffered(payload).map_err(|e| {
                failed(
                    Check::Text,
                    format!(
                        "text-cipher is age but the text payload is not a binary age v1 file: {e}"
                    ),
                )
            })?;
        }
        Cipher::Table => {
            if manifest.extra(TABLE_ID).is_none() {
                return Err(failed(
                    Check::Text,
                    "text-cipher is table but the manifest names no table-id",
                ));
            }
        }
    }
    Ok(())
}

/// SIGNATURE (`signature`) is canonical and a strict, valid signature of `manifest_bytes` by
/// a trusted key, naming this record (FORMAT.md section 6).
pub fn check_signature(
    signature: &[u8],
    manifest: &Manifest,
    manifest_bytes: &[u8],
    trusted: &TrustedKeys,
) -> Result<(), VerifyError> {
    let bad = |reason: &str| failed(Check::Signature, reason);
    let text =
        std::str::from_utf8(signature).map_err(|_| bad("the signature block is not text"))?;
    let signature = minisign::SignatureBox::from_string(text)
        .map_err(|e| bad(&format!("not a minisign signature: {e}")))?;
    // One byte form only: minisign ignores the untrusted comment and some encoding slack, the
    // seal does not.
    if signature.to_string() != text {
        return Err(bad("the signature block is not in canonical form"));
    }
    if signature.untrusted_comment().ok().as_deref() != Some(UNTRUSTED_COMMENT) {
        return Err(bad("the untrusted comment was changed"));
    }
    // RFC 8032's strict checks, on both signatures (the signature line holds the algorithm,
    // the key number and the signature; the global signature line only a signature).
    for (line, what) in [(1, "signature"), (3, "global signature")] {
        use base64::Engine;
        let raw = text
            .lines()
            .nth(line)
            .and_then(|l| base64::engine::general_purpose::STANDARD.decode(l).ok())
            .filter(|raw| raw.len() >= 64)
            .ok_or_else(|| bad(&format!("the {what} line is not base64 of a signature")))?;
        let sig: [u8; 64] = raw[raw.len() - 64..].try_into().expect("64 bytes");
        ed25519::check_signature(&sig)
            .map_err(|w| bad(&format!("the {what} is not strict: {w}")))?;
    }
    let signer = keys::key_id(signature.keynum());
    if signer != manifest.key_id {
        return Err(bad(&format!(
            "signed by key {signer} but the manifest names key {}",
            manifest.key_id
        )));
    }
    let pk = trusted.get(&signer).ok_or_else(|| {
        bad(&format!(
            "signed by key {signer}, which is not among the trusted public keys"
        ))
    })?;
    minisign::verify(
        pk,
        &signature,
        io::Cursor::new(manifest_bytes),
        true,
        false,
        false,
    )
    .map_err(|e| bad(&format!("{e}: the manifest or its signature was changed")))?;
    if signature.trusted_comment().ok() != Some(format::trusted_comment(manifest)) {
        return Err(bad("the trusted comment does not name this record"));
    }
    Ok(())
}

/// A problem in the hash chain of a set of verified records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainIssue {
    /// Sequences `first..=last` of this key are missing: between records of the set, or after
    /// the last one up to a head an anchor holds.
    Gap {
        key_id: String,
        first: u64,
        last: u64,
    },
    /// Different records claim the same sequence.
    Fork {
        key_id: String,
        sequence: u64,
        paths: Vec<PathBuf>,
    },
    /// The record's `previous` is not the hash of the record before it in the set.
    BrokenLink {
        key_id: String,
        sequence: u64,
        path: PathBuf,
    },
}

impl fmt::Display for ChainIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChainIssue::Gap { key_id, first, last } if first == last => {
                write!(f, "key {key_id}: gap: sequence {first} is missing (a record was removed)")
            }
            ChainIssue::Gap { key_id, first, last } => write!(
                f,
                "key {key_id}: gap: sequences {first} to {last} are missing (records were removed)"
            ),
            ChainIssue::Fork {
                key_id,
                sequence,
                paths,
            } => write!(
                f,
                "key {key_id}: fork: {} different records claim sequence {sequence}: {paths:?}",
                paths.len()
            ),
            ChainIssue::BrokenLink {
                key_id,
                sequence,
                path,
            } => write!(
                f,
                "key {key_id}: fork: record {path:?} at sequence {sequence} does not follow the record before it"
            ),
        }
    }
}

/// Check the chain continuity of verified records: per key, every sequence between the lowest
/// present and the highest present or anchored exactly once, each linked to the one before.
/// Identical copies of one record count once. `heads` are the heads verified anchors hold:
/// each must be the record present at its sequence, and every sequence up to it must be
/// present, so removing the last records of a chain leaves a gap.
pub fn check_chain(
    records: &[(PathBuf, Verified)],
    heads: &[(PathBuf, Verified)],
) -> Vec<ChainIssue> {
    /// One manifest claiming a place: its `previous`, where it was found, whether a sealed
    /// file holds it (not only an anchor).
    struct Claim<'a> {
        previous: [u8; 32],
        paths: Vec<&'a Path>,
        sealed: bool,
    }
    // key id -> sequence -> manifest hash -> claim
    type Places<'a> = BTreeMap<u64, BTreeMap<[u8; 32], Claim<'a>>>;
    let mut keys: BTreeMap<&str, Places> = BTreeMap::new();
    let all = records
        .iter()
        .map(|r| (r, true))
        .chain(heads.iter().map(|h| (h, false)));
    for ((path, v), sealed) in all {
        let claim = keys
            .entry(&v.manifest.key_id)
            .or_default()
            .entry(v.manifest.sequence)
            .or_default()
            .entry(v.manifest_sha256)
            .or_insert(Claim {
                previous: v.manifest.previous,
                paths: Vec::new(),
                sealed: false,
            });
        claim.paths.push(path);
        claim.sealed |= sealed;
    }
    let mut issues = Vec::new();
    for (key_id, places) in keys {
        // Forks and links, over every manifest known: sealed files and anchored heads.
        let mut before: Option<(u64, Option<[u8; 32]>)> = None;
        for (&sequence, claims) in &places {
            let single = (claims.len() == 1).then(|| *claims.keys().next().expect("one claim"));
            if claims.len() > 1 {
                issues.push(ChainIssue::Fork {
                    key_id: key_id.to_string(),
                    sequence,
                    paths: claims.values().map(|c| c.paths[0].to_path_buf()).collect(),
                });
            }
            if let (Some((prev_seq, Some(prev_hash))), Some(hash)) = (before, single) {
                let claim = &claims[&hash];
                if prev_seq + 1 == sequence && claim.previous != prev_hash {
                    issues.push(ChainIssue::BrokenLink {
                        key_id: key_id.to_string(),
                        sequence,
                        path: claim.paths[0].to_path_buf(),
                    });
                }
            }
            before = Some((sequence, single));
        }
        // Gaps: every sequence from the lowest sealed file to the highest sealed or anchored
        // must be held by a sealed file. A key known only from anchors has no lowest.
        let held: Vec<u64> = places
            .iter()
            .filter(|(_, claims)| claims.values().any(|c| c.sealed))
            .map(|(&sequence, _)| sequence)
            .collect();
        let Some(&top) = held.last() else {
            continue;
        };
        let last = *places.keys().next_back().expect("a place");
        // Missing: between two sealed files, and after the last up to the highest anchored.
        let between = held
            .windows(2)
            .filter(|w| w[1] > w[0] + 1)
            .map(|w| (w[0] + 1, w[1] - 1));
        let after = (last > top).then_some((top + 1, last));
        for (first, last) in between.chain(after) {
            issues.push(ChainIssue::Gap {
                key_id: key_id.to_string(),
                first,
                last,
            });
        }
    }
    issues
}

#[derive(Debug, thiserror::Error)]
pub enum ShowError {
    #[error(transparent)]
    Verify(#[from] VerifyError),
    #[error(transparent)]
    Key(#[from] keys::KeyError),
    #[error("cannot decrypt the text info of {path:?}: {reason}")]
    Decrypt { path: PathBuf, reason: String },
    #[error(transparent)]
    Record(#[from] crate::record::RecordError),
}

/// Decode a sealed file's text info with the key for its cipher (a key file or key
/// directory). The caller verifies the file first.
pub fn read_text(sealed: &SealedFile, key_path: &Path) -> Result<Record, ShowError> {
    let key = keys::load_text_key(key_path, sealed.footer.cipher)?;
    decode_text(sealed, &key)
}

/// Decode a sealed file's text info with a loaded key, which must suit its cipher.
pub fn decode_text(sealed: &SealedFile, key: &TextKey) -> Result<Record, ShowError> {
    // The manifest names the record and the table; whether the rest of the file is intact is
    // the callers' check, made before or beside this one.
    let manifest = Manifest::parse(&sealed.manifest_bytes().map_err(VerifyError::from)?)
        .map_err(|e| failed(Check::Manifest, e.to_string()))?;
    let block = sealed.text_block().map_err(VerifyError::from)?;
    let payload = &block[..block.len() - 1];
    let decrypt_error = |reason: String| ShowError::Decrypt {
        path: sealed.path.clone(),
        reason,
    };
    let plain = match key {
        TextKey::Table(table) => {
            let id = table.id();
            if manifest.extra(TABLE_ID) != Some(id.as_str()) {
                return Err(failed(
                    Check::Text,
                    format!(
                        "the manifest names table {} but the table given is {id}",
                        manifest.extra(TABLE_ID).unwrap_or("none")
                    ),
                )
                .into());
            }
            table.decode(payload)
        }
        TextKey::Age(identities) => {
            let decryptor =
                age::Decryptor::new_buffered(payload).map_err(|e| decrypt_error(e.to_string()))?;
            let mut reader = decryptor
                .decrypt(identities.iter().map(|i| i as &dyn age::Identity))
                .map_err(|e| decrypt_error(e.to_string()))?;
            let mut plain = Vec::new();
            reader
                .read_to_end(&mut plain)
                .map_err(|e| decrypt_error(e.to_string()))?;
            plain
        }
    };
    let record = Record::from_json(&plain, &sealed.path)?;
    // The text must be the manifest's record: a text info moved from another seal is not.
    if record.id != manifest.record_id {
        return Err(failed(
            Check::Text,
            format!(
                "the text info is record {} but the manifest names record {}",
                record.id, manifest.record_id
            ),
        )
        .into());
    }
    Ok(record)
}

/// Manifest fact naming the substitution table's id.
pub const TABLE_ID: &str = "table-id";

/// Quote a string for a POSIX shell.
pub(crate) fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The by-hand checks of FORMAT.md section 8 as POSIX shell lines, one generator for
/// `--explain` and the court bundle's `verify.sh`. They check the sealed file named by `$F`
/// with coreutils and minisign, and run under `set -eu`: every check is a command that fails,
/// so the first failure stops them, and `STEP` names the check under way (its name in
/// [`Check`]). They use the scratch directory `$D` and leave in it the file's text block,
/// manifest and signature (`text`, `manifest`, `manifest.minisig`), read at the offsets the
/// footer gives, and they define `field NAME`, a fact of that manifest.
///
/// `pick_key` runs once the manifest is out, before the signature is checked; it may set
/// `PUB`, the trusted public key file (empty: `PUB` is set already). `notes`, when the lines
/// are for one file, puts its values beside them as comments.
pub(crate) fn shell_checks(pick_key: &str, notes: Option<&SealedFile>) -> String {
    let note = |value: &dyn Fn(&SealedFile) -> String| {
        notes.map_or_else(String::new, |s| format!("  # {}", value(s)))
    };
    let key = notes
        .and_then(|s| s.manifest_bytes().ok())
        .and_then(|m| Manifest::parse(&m).ok())
        .map(|m| format!(" ({})", m.key_id))
        .unwrap_or_default();
    format!(
        r#"u() {{ od -An -v --endian=little -t "u$1" -j "$2" -N "$1" "$F" | tr -d ' '; }}

# 1. footer: the last 40 bytes end with nSign "CRECSEAL", version 1; the lengths add up.
STEP=footer
SIZE=$(stat -c %s "$F"){size}
test "$SIZE" -ge 40
test "$(tail -c 8 "$F")" = CRECSEAL
test "$(u 2 $((SIZE - 12)))" -eq 1
C=$(u 2 $((SIZE - 10))){cipher}
M=$(u 8 $((SIZE - 40))){m}
CHK=$(u 8 $((SIZE - 32))){chk}
T=$(u 4 $((SIZE - 24))){t}
ML=$(u 4 $((SIZE - 20))){ml}
SL=$(u 4 $((SIZE - 16))){sl}
test $((M + T + ML + SL + 40)) -eq "$SIZE"

# 2. media-checksum: the document's lChecksum, the media bytes at i*(M/7), i = 1..6, summed.
STEP=media-checksum
S=0
if [ "$M" -gt 0 ]; then for i in 1 2 3 4 5 6; do S=$((S + $(u 1 $((i * (M / 7)))))); done; fi
test "$S" -eq "$CHK"

# 3. check-byte: the document's check byte, the text bytes before it summed modulo 256.
STEP=check-byte
tail -c +$((M + 1)) "$F" | head -c "$T" > "$D/text"
test "$(head -c $((T - 1)) "$D/text" | od -An -v -t u1 | awk '{{for (i = 1; i <= NF; i++) s += $i}} END {{print s % 256}}')" \
  -eq "$(tail -c 1 "$D/text" | od -An -t u1 | tr -d ' ')"

# 4. manifest: each fact read here appears exactly once (the manifest is canonical); record-id,
# sealed-at (a UTC time to the second, no leap second), sequence and previous have their
# forms; the signed facts agree with the footer.
STEP=manifest
tail -c +$((M + T + 1)) "$F" | head -c "$ML" > "$D/manifest"
field() {{ sed -n "s/^$1: //p" "$D/manifest"; }}
test "$(head -n 1 "$D/manifest")" = "{manifest_header}"
for name in record-id key-id sealed-at sequence previous media-size media-checksum media-sha256 text-cipher text-size text-sha256; do
  test "$(grep -c "^$name: " "$D/manifest")" -eq 1
done
field record-id | grep -Eqx '[A-Za-z0-9][A-Za-z0-9_-]{{0,79}}'
field sealed-at | grep -Eqx '[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}T[0-9]{{2}}:[0-9]{{2}}:[0-5][0-9]Z'
date -u -d "$(field sealed-at)" +%s > /dev/null
field sequence | grep -Eqx '[1-9][0-9]*'
field previous | grep -Eqx '[0-9a-f]{{64}}'
test "$(field media-size)" -eq "$M"
test "$(field media-checksum)" -eq "$CHK"
test "$(field text-size)" -eq "$T"
case "$C $(field text-cipher)" in "1 age" | "2 table") ;; *) false ;; esac

# 5. signature: by the trusted key the manifest names{key}, naming this record.
STEP=signature
tail -c +$((M + T + ML + 1)) "$F" | head -c "$SL" > "$D/manifest.minisig"
test "$(head -n 1 "$D/manifest.minisig")" = "untrusted comment: {untrusted}"
test "$(sed -n 2p "$D/manifest.minisig" | base64 -d | od -An -v -t x8 --endian=little -j 2 -N 8 | tr -d ' ' | tr a-f A-F)" = "$(field key-id)"
{pick_key}minisign -V -p "$PUB" -m "$D/manifest"
test "$(sed -n 's/^trusted comment: //p' "$D/manifest.minisig")" = "record:$(field record-id) sequence:$(field sequence)"

# 6. text-sha256: the text block's SHA-256 is the signed one.
STEP=text-sha256
test "$(sha256sum < "$D/text" | cut -d ' ' -f 1)" = "$(field text-sha256)"

# 7. text: the payload is what text-cipher says: a binary age v1 file, or a named table.
STEP=text
if [ "$(field text-cipher)" = age ]; then
  test "$(head -c 22 "$D/text" | tr '\n' '|')" = 'age-encryption.org/v1|'
else
  test "$(grep -c '^table-id: ' "$D/manifest")" -eq 1
  test -n "$(field table-id)"
fi

# 8. media-sha256: the media's SHA-256 is the signed one.
STEP=media-sha256
test "$(head -c "$M" "$F" | sha256sum | cut -d ' ' -f 1)" = "$(field media-sha256)"
"#,
        size = note(&|s| format!("{} for this file", s.footer.footer_offset() + FOOTER_LEN)),
        cipher = note(&|s| format!(
            "cipher: {} ({})",
            s.footer.cipher.code(),
            s.footer.cipher.name()
        )),
        m = note(&|s| format!("nFileSizeOld (media length): {}", s.footer.media_len)),
        chk = note(&|s| format!("lChecksum: {}", s.footer.checksum)),
        t = note(&|s| format!("text block length: {}", s.footer.text_len)),
        ml = note(&|s| format!("manifest length: {}", s.footer.manifest_len)),
        sl = note(&|s| format!("signature length: {}", s.footer.signature_len)),
        manifest_header = format::MANIFEST_HEADER,
        untrusted = UNTRUSTED_COMMENT,
    )
}

/// A shell script that verifies `sealed` by hand with coreutils and minisign (`shell_checks`).
/// It reads every offset from the file itself, stops at the first failed check and names it;
/// the comments give this file's values.
pub fn explain(sealed: &SealedFile) -> String {
    let identity_hint = match sealed.footer.cipher {
        Cipher::Age => "age -d -i KEYDIR/age-identity.txt",
        Cipher::Table => "callrec-verify --show --identity KEYDIR",
    };
    format!(
        r#"#!/bin/sh
# Verify a callrec sealed file by hand (format: docs/FORMAT.md section 8). Needs GNU coreutils
# and minisign. Set PUB to the sealer's trusted public key (seal.pub). Stops at the first
# failure and names its check.
set -eu
F={file}
PUB=${{PUB:-seal.pub}}
D=$(mktemp -d)
STEP=start
trap 'rc=$?; rm -rf "$D"; if [ "$rc" -ne 0 ]; then echo "FAILED: the $STEP check" >&2; fi' EXIT
{checks}
echo "verified: record $(field record-id), sequence $(field sequence), key $(field key-id)"
# To read the text info: head -c $((T - 1)) "$D/text" | {identity_hint}
"#,
        file = shell_quote(&sealed.path.to_string_lossy()),
        checks = shell_checks("", Some(sealed)),
    )
}

/// One seal in a record's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    pub path: PathBuf,
    pub manifest: Manifest,
}

impl Version {
    /// The record this seal corrects, from its manifest's `corrects` fact.
    pub fn corrects(&self) -> Option<&str> {
        self.manifest
            .extra("corrects")
            .and_then(|v| v.split_once(' '))
            .map(|(id, _)| id)
    }
}

/// A record and its corrections, oldest first: the original (if in the set), then each
/// correction in the order sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct History {
    /// The id of the original record.
    pub record_id: String,
    pub versions: Vec<Version>,
}

/// The histories of the records in a verified set that have corrections. A correction of a
/// correction belongs to the same history.
pub fn histories(records: &[(PathBuf, Verified)]) -> Vec<History> {
    let versions: Vec<Version> = records
        .iter()
        .map(|(path, v)| Version {
            path: path.clone(),
            manifest: v.manifest.clone(),
        })
        .collect();
    let corrects: BTreeMap<&str, &str> = versions
        .iter()
        .filter_map(|v| Some((v.manifest.record_id.as_str(), v.corrects()?)))
        .collect();
    let root = |start: &str| -> String {
        let mut id = start.to_string();
        // Bounded: a cycle of ids cannot be sealed, but a hostile set must not hang us.
        for _ in 0..=corrects.len() {
            match corrects.get(id.as_str()) {
                Some(parent) => id = parent.to_string(),
                None => break,
            }
        }
        id
    };
    let mut by_root: BTreeMap<String, Vec<Version>> = BTreeMap::new();
    for version in &versions {
        by_root
            .entry(root(version.manifest.record_id.as_str()))
            .or_default()
            .push(version.clone());
    }
    by_root
        .into_iter()
        .filter(|(_, versions)| versions.len() > 1 || versions[0].corrects().is_some())
        .map(|(record_id, mut versions)| {
            versions.sort_by_key(|v| (v.corrects().is_some(), v.manifest.sealed_at));
            History {
                record_id,
                versions,
            }
        })
        .collect()
}

/// The verification failure inside an error from this module, if there is one: what decides
/// exit status 1 (proven bad) against 2 (could not check).
pub fn verify_error<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a VerifyError> {
    if let Some(e) = err.downcast_ref::<VerifyError>() {
        return Some(e);
    }
    if let Some(ExtractError::Verify(e)) = err.downcast_ref::<ExtractError>() {
        return Some(e);
    }
    match err.downcast_ref::<ShowError>() {
        Some(ShowError::Verify(e)) => Some(e),
        _ => None,
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    #[error(transparent)]
    Verify(#[from] VerifyError),
    #[error(transparent)]
    Io(#[from] PathError),
    #[error("{0:?} exists; not overwritten")]
    Exists(PathBuf),
    /// The name asks for a container this export does not write.
    #[error("cannot tell a format from the name {0:?}: name it .mka, .opus, .ogg, .wav, .flac, .mp3 or .m4a for audio, .mkv, .mp4 or .webm for video")]
    Format(PathBuf),
    /// The container named cannot hold this kind of stream at all.
    #[error("a .{ext} file cannot hold video: name it .mkv, .mp4 or .webm")]
    NoVideoIn { ext: String },
    #[error("this record has no {0}")]
    NoStream(&'static str),
    /// The media holds nothing to export: a correction, whose media is its original's.
    #[error("this record holds no media of its own")]
    NoMedia,
    #[error("cannot run {program} (install FFmpeg: scripts/setup): {source}")]
    Spawn {
        program: &'static str,
        #[source]
        source: io::Error,
    },
    /// FFmpeg failed; its own message is not shown (it names temporary files and internals).
    #[error("FFmpeg could not {what} (exit status {status})")]
    Ffmpeg { what: String, status: String },
}

/// How one kind of stream goes into one container: the codecs it takes as they are, and the
/// encoder (with its options) for any other.
struct Plan {
    muxer: &'static str,
    copies: &'static [&'static str],
    encoder: &'static [&'static str],
}

/// The export plan for the file name `out` and the stream kind: by the name's extension.
fn plan(out: &Path, kind: crate::media::StreamKind) -> Result<Plan, ExtractError> {
    use crate::media::StreamKind::{Audio, Video};
    const ANY: &[&str] = &["*"];
    let ext = out
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let p = |muxer, copies, encoder| {
        Ok(Plan {
            muxer,
            copies,
            encoder,
        })
    };
    match (ext.as_str(), kind) {
        ("mka" | "mkv", _) => p("matroska", ANY, &[]),
        ("opus", Audio) => p("opus", &["opus"], &["-c:a", "libopus", "-b:a", "64k"]),
        ("ogg" | "oga", Audio) => p(
            "ogg",
            &["opus", "vorbis", "flac", "speex"],
            &["-c:a", "libopus", "-b:a", "64k"],
        ),
        ("webm", Audio) => p(
            "webm",
            &["opus", "vorbis"],
            &["-c:a", "libopus", "-b:a", "64k"],
        ),
        ("wav", Audio) => p("wav", &["pcm_"], &["-c:a", "pcm_s16le"]),
        ("flac", Audio) => p("flac", &["flac"], &["-c:a", "flac"]),
        ("mp3", Audio) => p("mp3", &["mp3"], &["-c:a", "libmp3lame", "-q:a", "2"]),
        ("m4a" | "mp4" | "mov", Audio) => p(
            "mp4",
            &["aac", "alac", "mp3"],
            &["-c:a", "aac", "-b:a", "128k"],
        ),
        ("mp4" | "m4v" | "mov", Video) => p(
            "mp4",
            &["h264", "hevc", "av1", "mpeg4", "vp9"],
            &[
                "-c:v", "libx264", "-pix_fmt", "yuv420p", "-preset", "veryfast",
            ],
        ),
        ("webm", Video) => p(
            "webm",
            &["vp8", "vp9", "av1"],
            &[
                "-c:v",
                "libvpx-vp9",
                "-deadline",
                "realtime",
                "-cpu-used",
                "8",
            ],
        ),
        ("opus" | "ogg" | "oga" | "wav" | "flac" | "mp3" | "m4a", Video) => {
            Err(ExtractError::NoVideoIn { ext })
        }
        _ => Err(ExtractError::Format(out.to_path_buf())),
    }
}

/// The codec names of the streams of `kind` in the media file `path`, read with `ffprobe`.
fn stream_codecs(path: &Path, kind: crate::media::StreamKind) -> Result<Vec<String>, ExtractError> {
    let selector = match kind {
        crate::media::StreamKind::Audio => "a",
        crate::media::StreamKind::Video => "v",
    };
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            selector,
            "-show_entries",
            "stream=codec_name",
            "-of",
            "json",
        ])
        .arg(path)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|source| ExtractError::Spawn {
            program: "ffprobe",
            source,
        })?;
    let failed = |status: String| ExtractError::Ffmpeg {
        what: "read the streams of the verified media".into(),
        status,
    };
    if !out.status.success() {
        return Err(failed(out.status.to_string()));
    }
    let probed: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|_| failed("unreadable answer".into()))?;
    Ok(probed["streams"]
        .as_array()
        .map(|streams| {
            streams
                .iter()
                .map(|s| s["codec_name"].as_str().unwrap_or("unknown").to_string())
                .collect()
        })
        .unwrap_or_default())
}

/// Write the streams of `kind` of the media file `input` into `output` in the format of
/// `out`'s name: copied when the container takes their codec, else transcoded.
fn export_streams(
    input: &Path,
    output: &Path,
    out: &Path,
    kind: crate::media::StreamKind,
) -> Result<(), ExtractError> {
    let plan = plan(out, kind)?;
    let name = match kind {
        crate::media::StreamKind::Audio => "audio",
        crate::media::StreamKind::Video => "video",
    };
    let codecs = stream_codecs(input, kind)?;
    if codecs.is_empty() {
        return Err(ExtractError::NoStream(name));
    }
    let fits = |codec: &String| {
        plan.copies
            .iter()
            .any(|c| *c == "*" || codec == c || (c.ends_with('_') && codec.starts_with(c)))
    };
    let copy = codecs.iter().all(fits);
    let map = match kind {
        crate::media::StreamKind::Audio => "0:a",
        crate::media::StreamKind::Video => "0:v",
    };
    let mut cmd = std::process::Command::new("ffmpeg");
    cmd.args(["-nostdin", "-hide_banner", "-v", "error", "-i"])
        .arg(input)
        .args(["-map", map]);
    if copy {
        cmd.args(["-c", "copy"]);
    } else {
        cmd.args(plan.encoder);
    }
    cmd.args(["-f", plan.muxer, "-y"]).arg(output);
    let status = cmd
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .map_err(|source| ExtractError::Spawn {
            program: "ffmpeg",
            source,
        })?;
    if !status.success() {
        let how = if copy { "copy" } else { "convert" };
        let codecs = codecs.join(", ");
        return Err(ExtractError::Ffmpeg {
            what: format!("{how} the {name} ({codecs}) into a {} file", plan.muxer),
            status: status
                .code()
                .map_or_else(|| "killed".into(), |c| c.to_string()),
        });
    }
    Ok(())
}

/// Verify `sealed` fully and write its media, or only its audio or video streams as a
/// playable file in the format of `out`'s name, to the new file `out`. Streams are copied
/// when the container can hold their codec (`.mka`/`.mkv` hold any), and transcoded when it
/// cannot (Opus audio into `.wav` becomes 16-bit PCM, into `.mp3` MP3, into `.flac` FLAC,
/// into `.m4a` AAC). Nothing appears under `out` unless every check passed and the export
/// succeeded; FFmpeg's own messages are never passed on.
pub fn extract(
    sealed: &SealedFile,
    trusted: &TrustedKeys,
    streams: Option<crate::media::StreamKind>,
    out: &Path,
) -> Result<Verified, ExtractError> {
    if out.exists() {
        return Err(ExtractError::Exists(out.to_path_buf()));
    }
    if let Some(kind) = streams {
        // A name that cannot work is refused before anything is read.
        plan(out, kind)?;
    }
    let dir = fsutil::parent_dir(out);
    let mut media = fsutil::temp_in(dir).at("cannot create a file beside", out)?;
    let verified = full(sealed, trusted, Some(&mut media))?;
    let result = match streams {
        Some(_) if verified.manifest.media_size == 0 => return Err(ExtractError::NoMedia),
        Some(kind) => {
            let exported = fsutil::temp_in(dir).at("cannot create a file beside", out)?;
            export_streams(media.path(), exported.path(), out, kind)?;
            exported
        }
        None => media,
    };
    fsutil::persist_noclobber(result, out).at("cannot write", out)?;
    Ok(verified)
}
