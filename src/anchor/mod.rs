//! Anchors: RFC 3161 time stamps over a key's chain head, so a record's time and the end of
//! its chain rest on a witness outside the sealer.
//!
//! An anchor file holds the head's signed manifest and signature (so it proves, with the seal
//! key alone, that the chain reached that sequence: removing the last records leaves a gap)
//! and a TSA's token over the head's manifest hash (so, with the TSA trusted, that the head,
//! and through `previous` every earlier record of the key, existed at the TSA's time). The
//! byte format is in docs/FORMAT.md section 11.

pub mod tsp;

use std::fmt;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::format::Manifest;
use crate::fsutil::{self, PathContext, PathError};
use crate::keys::TrustedKeys;
use crate::seal::chain::{Chain, ChainError};
use crate::verify::{self, Check, Verified, VerifyError};
use tsp::{FetchError, Stamp, TsaTrust, TsaUrl};

/// The first line of an anchor file.
pub const MAGIC: &str = "callrec-anchor: 1";
/// How an anchor file's name ends.
pub const SUFFIX: &str = ".anchor";
/// The largest anchor file a reader accepts.
pub const MAX_LEN: u64 = 256 * 1024;

/// One anchor file's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchor {
    pub key_id: String,
    pub sequence: u64,
    pub manifest_sha256: [u8; 32],
    /// The URL the token was asked from (informative: the token names its signer).
    pub tsa: String,
    /// The DER `TimeStampToken`.
    pub token: Vec<u8>,
    /// The head's MANIFEST and SIGNATURE, byte for byte as in its sealed file.
    pub manifest: Vec<u8>,
    pub signature: Vec<u8>,
}

/// The fields of an anchor file, in order.
const FIELDS: [&str; 7] = [
    "key-id",
    "sequence",
    "manifest-sha256",
    "tsa",
    "token",
    "manifest",
    "signature",
];

impl Anchor {
    /// The file's bytes: the magic line, then one `NAME: VALUE` line per field, in order.
    pub fn to_bytes(&self) -> Vec<u8> {
        let values = [
            self.key_id.clone(),
            self.sequence.to_string(),
            hex::encode(self.manifest_sha256),
            self.tsa.clone(),
            BASE64.encode(&self.token),
            BASE64.encode(&self.manifest),
            BASE64.encode(&self.signature),
        ];
        let mut out = format!("{MAGIC}\n");
        for (name, value) in FIELDS.iter().zip(values) {
            out.push_str(&format!("{name}: {value}\n"));
        }
        out.into_bytes()
    }

    /// Parse an anchor file; only its canonical form is accepted.
    pub fn parse(bytes: &[u8]) -> Result<Anchor, String> {
        let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8 text".to_string())?;
        let mut lines = text.split_terminator('\n');
        if lines.next() != Some(MAGIC) {
            return Err(format!("the first line is not {MAGIC:?}"));
        }
        let mut values = Vec::with_capacity(FIELDS.len());
        for name in FIELDS {
            let line = lines.next().ok_or_else(|| format!("{name} is missing"))?;
            let value = line
                .strip_prefix(name)
                .and_then(|l| l.strip_prefix(": "))
                .ok_or_else(|| format!("expected {name} in its place"))?;
            values.push(value);
        }
        if lines.next().is_some() {
            return Err("lines after signature".into());
        }
        let b64 = |name: &str, v: &str| {
            BASE64
                .decode(v)
                .map_err(|_| format!("{name} is not base64"))
                .and_then(|b| {
                    if b.is_empty() {
                        Err(format!("{name} is empty"))
                    } else {
                        Ok(b)
                    }
                })
        };
        let mut manifest_sha256 = [0u8; 32];
        hex::decode_to_slice(values[2], &mut manifest_sha256)
            .map_err(|_| "manifest-sha256 is not 64 hex digits".to_string())?;
        let tsa = values[3];
        if tsa.is_empty() || tsa.len() > tsp::MAX_URL || !tsa.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err("tsa is not a URL of printable characters".into());
        }
        let anchor = Anchor {
            key_id: values[0].to_string(),
            sequence: values[1]
                .parse()
                .map_err(|_| "sequence is not a decimal number".to_string())?,
            manifest_sha256,
            tsa: tsa.to_string(),
            token: b64("token", values[4])?,
            manifest: b64("manifest", values[5])?,
            signature: b64("signature", values[6])?,
        };
        if anchor.to_bytes() != bytes {
            return Err("not in canonical form".into());
        }
        Ok(anchor)
    }

    /// `KEYID.SEQUENCE.T.anchor`, T the first 16 hex digits of the token's SHA-256: one name
    /// per token, so anchors from several TSAs sit side by side.
    pub fn file_name(&self) -> String {
        let t = Sha256::digest(&self.token);
        format!(
            "{}.{}.{}{SUFFIX}",
            self.key_id,
            self.sequence,
            hex::encode(&t[..8])
        )
    }
}

/// Whether a path is named like an anchor file.
pub fn is_anchor_name(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.ends_with(SUFFIX) && !n.starts_with('.') && n.len() > SUFFIX.len())
}

/// An anchor that passed [`verify()`]: its head (signed by a trusted key) and its stamp.
#[derive(Debug, Clone)]
pub struct VerifiedAnchor {
    pub path: PathBuf,
    pub anchor: Anchor,
    pub head: Verified,
    pub stamp: Stamp,
}

fn failed(check: Check, reason: impl Into<String>) -> VerifyError {
    VerifyError::Failed {
        check,
        reason: reason.into(),
    }
}

/// Check an anchor file: its form (`anchor`), the head's manifest (`manifest`) and signature
/// by a trusted key (`signature`), and the token over the head's manifest hash (`timestamp`),
/// against the trusted TSA certificates when any are given.
pub fn verify(
    path: &Path,
    trusted: &TrustedKeys,
    tsa: &TsaTrust,
) -> Result<VerifiedAnchor, VerifyError> {
    let file = fsutil::open_regular(path).at("cannot open", path)?;
    let len = file.metadata().at("cannot read", path)?.len();
    if len > MAX_LEN {
        return Err(failed(
            Check::Anchor,
            format!("larger than {MAX_LEN} bytes"),
        ));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    std::io::Read::read_to_end(&mut std::io::Read::take(file, MAX_LEN + 1), &mut bytes)
        .at("cannot read", path)?;
    let (anchor, head, stamp) = check_bytes(&bytes, Some(trusted), tsa)?;
    Ok(VerifiedAnchor {
        path: path.to_path_buf(),
        anchor,
        head,
        stamp,
    })
}

/// The checks of [`verify()`] on an anchor file's bytes in hand: its form, the head's manifest,
/// its signature by a trusted key (not checked when `trusted` is `None`: a push without
/// `--pubkey`), and the token. Returns the anchor, its head and the stamp.
pub fn check_bytes(
    bytes: &[u8],
    trusted: Option<&TrustedKeys>,
    tsa: &TsaTrust,
) -> Result<(Anchor, Verified, Stamp), VerifyError> {
    if bytes.len() as u64 > MAX_LEN {
        return Err(failed(
            Check::Anchor,
            format!("larger than {MAX_LEN} bytes"),
        ));
    }
    let anchor = Anchor::parse(bytes).map_err(|e| failed(Check::Anchor, e))?;
    let manifest = Manifest::parse(&anchor.manifest)
        .map_err(|e| failed(Check::Manifest, format!("the anchored manifest: {e}")))?;
    let manifest_sha256 = Manifest::sha256(&anchor.manifest);
    if manifest_sha256 != anchor.manifest_sha256
        || manifest.key_id != anchor.key_id
        || manifest.sequence != anchor.sequence
    {
        return Err(failed(
            Check::Anchor,
            "key-id, sequence or manifest-sha256 differ from the anchored manifest",
        ));
    }
    if let Some(trusted) = trusted {
        verify::check_signature(&anchor.signature, &manifest, &anchor.manifest, trusted)?;
    }
    let stamp = tsp::check_token(&anchor.token, &anchor.manifest_sha256, tsa)
        .map_err(|e| failed(Check::Timestamp, e.to_string()))?;
    if manifest.sealed_at > stamp.time {
        return Err(failed(
            Check::Timestamp,
            format!(
                "the head claims to be sealed at {} but was stamped earlier, at {}",
                manifest.sealed_at, stamp.time
            ),
        ));
    }
    let head = Verified {
        manifest,
        manifest_sha256,
    };
    Ok((anchor, head, stamp))
}

/// What asking one TSA gave.
#[derive(Debug)]
pub enum Outcome {
    Anchored {
        path: PathBuf,
        tsa: String,
        stamp: Stamp,
    },
    Failed {
        tsa: String,
        error: FetchError,
    },
}

/// The result of anchoring a key's head.
#[derive(Debug)]
pub struct Anchoring {
    pub key_id: String,
    pub sequence: u64,
    /// One per TSA asked; empty when the head was anchored already.
    pub outcomes: Vec<Outcome>,
}

impl Anchoring {
    pub fn anchored(&self) -> bool {
        self.outcomes
            .iter()
            .any(|o| matches!(o, Outcome::Anchored { .. }))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AnchorError {
    #[error(transparent)]
    Chain(#[from] ChainError),
    #[error(transparent)]
    Io(#[from] PathError),
    #[error(
        "the key has sealed nothing yet (or its chain state predates anchors): nothing to anchor"
    )]
    NoHead,
}

/// Anchor the head of the chain kept in `key_dir` with every TSA in `tsas` (at once, each at
/// most [`tsp::TIMEOUT`]), writing one anchor file per token into `out_dir`. With trusted TSA
/// certificates in `trust`, a token must chain to one (a token from whoever else answers at a
/// TSA's address is refused); without, it is checked in every other way. Unless `again`, a head that is
/// anchored already is left alone. The chain's lock is not held while the TSAs are asked, so
/// sealing goes on meanwhile; a TSA that does not answer is an outcome, not an error.
pub fn anchor_head(
    key_dir: &Path,
    tsas: &[TsaUrl],
    trust: &TsaTrust,
    out_dir: &Path,
    again: bool,
) -> Result<Anchoring, AnchorError> {
    let (head, anchored) = {
        let chain = Chain::lock(key_dir)?;
        chain.next()?;
        chain.head()?.ok_or(AnchorError::NoHead)?
    };
    let manifest = Manifest::parse(&head.manifest).map_err(|_| AnchorError::NoHead)?;
    let mut anchoring = Anchoring {
        key_id: manifest.key_id.clone(),
        sequence: manifest.sequence,
        outcomes: Vec::new(),
    };
    if (anchored >= manifest.sequence && !again) || tsas.is_empty() {
        return Ok(anchoring);
    }
    let digest = Manifest::sha256(&head.manifest);
    let answers = ask_all(tsas, &digest, trust);
    std::fs::create_dir_all(out_dir).at("cannot create", out_dir)?;
    for (tsa, answer) in tsas.iter().zip(answers) {
        let (token, stamp) = match answer {
            Ok(checked) => checked,
            Err(error) => {
                anchoring.outcomes.push(Outcome::Failed {
                    tsa: tsa.shown().to_string(),
                    error,
                });
                continue;
            }
        };
        let anchor = Anchor {
            key_id: manifest.key_id.clone(),
            sequence: manifest.sequence,
            manifest_sha256: digest,
            tsa: tsa.shown().to_string(),
            token,
            manifest: head.manifest.clone(),
            signature: head.signature.clone(),
        };
        let path = out_dir.join(anchor.file_name());
        fsutil::write_atomic(&path, &anchor.to_bytes(), false).at("cannot write", &path)?;
        anchoring.outcomes.push(Outcome::Anchored {
            path,
            tsa: tsa.shown().to_string(),
            stamp,
        });
    }
    if anchoring.anchored() {
        Chain::lock(key_dir)?.set_anchored(manifest.sequence)?;
    }
    Ok(anchoring)
}

/// Ask every TSA at once; one answer per TSA, in order: a token checked against `trust` and
/// its stamp.
fn ask_all(
    tsas: &[TsaUrl],
    digest: &[u8; 32],
    trust: &TsaTrust,
) -> Vec<Result<(Vec<u8>, Stamp), FetchError>> {
    let failed = |e: &dyn std::fmt::Display| {
        tsas.iter()
            .map(|_| Err(FetchError::Unreachable(e.to_string())))
            .collect()
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return failed(&e),
    };
    let client = match reqwest::Client::builder()
        .connect_timeout(tsp::TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("callrec/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(c) => c,
        Err(e) => return failed(&e),
    };
    runtime.block_on(futures::future::join_all(
        tsas.iter()
            .map(|tsa| tsp::fetch(&client, tsa, digest, trust)),
    ))
}

/// The trusted anchor covering a record, if any: among the trusted anchors of its key whose
/// head is at or after it, the one stamped first (of those stamped in the same second, the one
/// nearest the record).
pub fn covering<'a>(
    anchors: impl IntoIterator<Item = &'a VerifiedAnchor>,
    key_id: &str,
    sequence: u64,
) -> Option<&'a VerifiedAnchor> {
    anchors
        .into_iter()
        .filter(|a| a.stamp.trusted && a.anchor.key_id == key_id && a.anchor.sequence >= sequence)
        .min_by_key(|a| (a.stamp.time, a.anchor.sequence))
}

/// A record anchored more than this after it was sealed draws a warning.
pub const MAX_DELAY: chrono::TimeDelta = chrono::TimeDelta::hours(24);

/// A record whose time contradicts, or is loosely bound by, the anchors covering it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeFinding {
    pub path: PathBuf,
    pub key_id: String,
    pub sequence: u64,
    pub sealed_at: DateTime<Utc>,
    pub anchored_at: DateTime<Utc>,
    /// `true`: sealed-at is after a trusted anchor's time (a failure); `false`: anchored more
    /// than [`MAX_DELAY`] after sealing (a warning).
    pub contradiction: bool,
}

impl fmt::Display for TimeFinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.contradiction {
            write!(
                f,
                "key {}: sequence {} ({:?}) says it was sealed at {}, after an anchor of its chain stamped at {}: its time is false",
                self.key_id, self.sequence, self.path, self.sealed_at, self.anchored_at
            )
        } else {
            write!(
                f,
                "key {}: sequence {} ({:?}) was sealed at {} but first anchored at {}, more than {} hours later",
                self.key_id,
                self.sequence,
                self.path,
                self.sealed_at,
                self.anchored_at,
                MAX_DELAY.num_hours()
            )
        }
    }
}

/// Check the records' times against the trusted anchors: a record sealed after any anchor
/// covering it is a contradiction; one anchored first more than [`MAX_DELAY`] later a warning.
pub fn check_times(
    records: &[(PathBuf, Verified)],
    anchors: &[VerifiedAnchor],
) -> Vec<TimeFinding> {
    let mut findings = Vec::new();
    for (path, v) in records {
        let m = &v.manifest;
        let finding = |anchored_at, contradiction| TimeFinding {
            path: path.clone(),
            key_id: m.key_id.clone(),
            sequence: m.sequence,
            sealed_at: m.sealed_at,
            anchored_at,
            contradiction,
        };
        let later = anchors.iter().find(|a| {
            a.stamp.trusted
                && a.anchor.key_id == m.key_id
                && a.anchor.sequence >= m.sequence
                && a.stamp.time < m.sealed_at
        });
        if let Some(a) = later {
            findings.push(finding(a.stamp.time, true));
        } else if let Some(a) = covering(anchors, &m.key_id, m.sequence) {
            if a.stamp.time - m.sealed_at > MAX_DELAY {
                findings.push(finding(a.stamp.time, false));
            }
        }
    }
    findings
}

/// The by-hand checks of an anchor (FORMAT.md section 11) as POSIX shell lines, one generator
/// for `--explain` and the court bundle's `verify.sh`. They check the anchor file named by
/// `$A` with coreutils, minisign and OpenSSL (`openssl ts`) against the TSA certificates in
/// `$TSA_CA`, and run under `set -eu`: the first failure stops them, and `STEP` names the check
/// under way. They use the scratch directory `$D`, leave the head's manifest there
/// (`manifest`), and set `H` (the head's manifest hash), `T` (the TSA's time, as OpenSSL
/// prints it) and `TS` (that time in Unix seconds). `pick_key` runs before the head's
/// signature is checked; it may set `PUB`, the trusted public key file, and can read the
/// head's facts with `m NAME`.
pub(crate) fn shell_checks(pick_key: &str) -> String {
    format!(
        r#"field() {{ sed -n "s/^$1: //p" "$A"; }}

# 1. anchor: the first line, then each field exactly once; the head's manifest hash; the
# head's manifest, each fact read here once, sealed-at a UTC time to the second (no leap
# second), its key and sequence the anchor's.
STEP=anchor
test "$(head -n 1 "$A")" = "{magic}"
for name in key-id sequence manifest-sha256 tsa token manifest signature; do
  test "$(grep -c "^$name: " "$A")" -eq 1
done
field token | base64 -d > "$D/token.der"
field manifest | base64 -d > "$D/manifest"
field signature | base64 -d > "$D/manifest.minisig"
H=$(field manifest-sha256)
test "$(sha256sum < "$D/manifest" | cut -d ' ' -f 1)" = "$H"
m() {{ sed -n "s/^$1: //p" "$D/manifest"; }}
test "$(head -n 1 "$D/manifest")" = "{manifest_header}"
for name in record-id key-id sealed-at sequence previous; do
  test "$(grep -c "^$name: " "$D/manifest")" -eq 1
done
m sealed-at | grep -Eqx '[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}T[0-9]{{2}}:[0-9]{{2}}:[0-5][0-9]Z'
test "$(m key-id)" = "$(field key-id)"
test "$(m sequence)" = "$(field sequence)"

# 2. signature: the head's, by the trusted key it names, naming the head.
STEP=signature
test "$(sed -n 2p "$D/manifest.minisig" | base64 -d | od -An -v -t x8 --endian=little -j 2 -N 8 | tr -d ' ' | tr a-f A-F)" = "$(m key-id)"
{pick_key}minisign -V -p "$PUB" -m "$D/manifest"
test "$(sed -n 's/^trusted comment: //p' "$D/manifest.minisig")" = "record:$(m record-id) sequence:$(m sequence)"

# 3. timestamp: the token's time T first (printed once, "Mon DD hh:mm:ss[.fff] YYYY GMT"; TS
# its Unix seconds, fractions dropped). The token stamps that hash, signed by a certificate
# that is one of TSA_CA or chains to one (-partial_chain: a trusted TSA certificate need not
# be a root; -untrusted only offers TSA_CA's certificates as the signer or issuers, trusting
# nothing more), every certificate valid at T (-attime), not today: a TSA certificate expires
# long before the evidence does. The head was not sealed after T.
STEP=timestamp
openssl ts -reply -in "$D/token.der" -token_in -text > "$D/token.txt"
test "$(grep -c '^Time stamp: ' "$D/token.txt")" -eq 1
T=$(sed -n 's/^Time stamp: //p' "$D/token.txt")
printf '%s\n' "$T" | grep -Eqx '(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ 1-3][0-9] [0-9]{{2}}:[0-9]{{2}}:[0-5][0-9](\.[0-9]+)? [0-9]{{4}} GMT'
TS=$(date -u -d "$T" +%s)
openssl ts -verify -digest "$H" -in "$D/token.der" -token_in -CAfile "$TSA_CA" -untrusted "$TSA_CA" -partial_chain -attime "$TS"
test "$(date -u -d "$(m sealed-at)" +%s)" -le "$TS"
"#,
        magic = MAGIC,
        manifest_header = crate::format::MANIFEST_HEADER,
    )
}

/// A shell script that checks the anchor file at `path` by hand with coreutils, minisign and
/// OpenSSL (`shell_checks`); it stops at the first failure and names its check.
pub fn explain(path: &Path) -> String {
    format!(
        r#"#!/bin/sh
# Check a callrec anchor by hand (format: docs/FORMAT.md section 11). Needs GNU coreutils,
# minisign and openssl. PUB: the sealer's trusted public key (seal.pub); TSA_CA: the TSA
# certificates you trust (PEM). Stops at the first failure and names its check.
set -eu
A={file}
PUB=${{PUB:-seal.pub}}
TSA_CA=${{TSA_CA:-tsa-ca.pem}}
D=$(mktemp -d)
STEP=start
trap 'rc=$?; rm -rf "$D"; if [ "$rc" -ne 0 ]; then echo "FAILED: the $STEP check" >&2; fi' EXIT
{checks}
echo "anchored: key $(m key-id), sequence $(m sequence) and every earlier seal of the key existed at $T"
"#,
        file = crate::verify::shell_quote(&path.to_string_lossy()),
        checks = shell_checks(""),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Anchor {
        Anchor {
            key_id: "0123456789ABCDEF".into(),
            sequence: 7,
            manifest_sha256: [0xab; 32],
            tsa: "http://127.0.0.1:1/tsa".into(),
            token: vec![0x30, 1, 2],
            manifest: b"callrec-manifest: 1\n".to_vec(),
            signature: b"untrusted comment: x\n".to_vec(),
        }
    }

    fn verified(key_id: &str, sequence: u64, sealed_at: &str) -> Verified {
        let text = format!(
            "callrec-manifest: 1\nrecord-id: r{sequence}\nkey-id: {key_id}\nsealed-at: {sealed_at}\nsequence: {sequence}\nprevious: {zeros}\nmedia-size: 0\nmedia-checksum: 0\nmedia-sha256: {zeros}\ntext-cipher: age\ntext-size: 1\ntext-sha256: {zeros}\n",
            zeros = "0".repeat(64)
        );
        let bytes = if sequence == 1 {
            text.into_bytes()
        } else {
            text.replacen(
                &format!("previous: {}", "0".repeat(64)),
                &format!("previous: {}", "1".repeat(64)),
                1,
            )
            .into_bytes()
        };
        Verified {
            manifest: Manifest::parse(&bytes).unwrap(),
            manifest_sha256: Manifest::sha256(&bytes),
        }
    }

    fn anchored(head: Verified, time: &str, trusted: bool) -> VerifiedAnchor {
        VerifiedAnchor {
            path: PathBuf::from("a.anchor"),
            anchor: Anchor {
                key_id: head.manifest.key_id.clone(),
                sequence: head.manifest.sequence,
                ..sample()
            },
            head,
            stamp: Stamp {
                time: time.parse().unwrap(),
                tsa: "CN=TSA".into(),
                serial: "01".into(),
                policy: "1.2".into(),
                trusted,
            },
        }
    }

    #[test]
    fn records_are_judged_by_the_trusted_anchors_at_or_above_them() {
        let key = "0123456789ABCDEF";
        let records: Vec<(PathBuf, Verified)> = [
            (1, "2026-11-01T10:00:00Z"),
            (2, "2026-11-01T11:00:00Z"),
            (3, "2026-11-03T10:00:00Z"),
        ]
        .into_iter()
        .map(|(n, at)| (PathBuf::from(format!("r{n}")), verified(key, n, at)))
        .collect();
        // Sequence 2 anchored an hour after it was sealed: 1 and 2 covered, 3 not.
        let anchors = vec![anchored(records[1].1.clone(), "2026-11-01T12:00:00Z", true)];
        assert_eq!(
            covering(&anchors, key, 1).unwrap().stamp.time,
            anchors[0].stamp.time
        );
        assert!(covering(&anchors, key, 3).is_none());
        assert!(covering(&anchors, "FEDCBA9876543210", 1).is_none());
        assert_eq!(check_times(&records, &anchors), vec![]);

        // Record 3 anchored by the same head? No: an anchor of head 2 stamped before 3 was
        // sealed says nothing of 3. But an anchor of head 3 stamped before 3's sealed-at means
        // 3's date is false; one of head 3 two days later is only a warning.
        for (time, contradiction) in [
            ("2026-11-02T00:00:00Z", true),
            ("2026-11-05T10:00:01Z", false),
        ] {
            let anchors = vec![anchored(records[2].1.clone(), time, true)];
            let findings = check_times(&records, &anchors);
            let on_three: Vec<_> = findings.iter().filter(|f| f.sequence == 3).collect();
            assert_eq!(on_three.len(), 1, "{time}: {findings:?}");
            assert_eq!(on_three[0].contradiction, contradiction, "{time}");
        }
        // Untrusted anchors judge nothing.
        let anchors = vec![anchored(
            records[2].1.clone(),
            "2026-11-02T00:00:00Z",
            false,
        )];
        assert_eq!(check_times(&records, &anchors), vec![]);
        assert!(covering(&anchors, key, 1).is_none());
    }

    #[test]
    fn round_trips_and_only_canonically() {
        let a = sample();
        let bytes = a.to_bytes();
        assert_eq!(Anchor::parse(&bytes).unwrap(), a);
        let text = String::from_utf8(bytes).unwrap();
        for bad in [
            text.replace('\n', "\r\n"),
            text.replace("sequence: 7", "sequence: 07"),
            text.replace("manifest-sha256: ab", "manifest-sha256: AB"),
            format!("{text}extra: 1\n"),
            text.trim_end().to_string(),
            text.replace("tsa: http", "tsa: ht tp"),
        ] {
            assert!(Anchor::parse(bad.as_bytes()).is_err(), "{bad}");
        }
        assert!(a.file_name().starts_with("0123456789ABCDEF.7."));
        assert!(is_anchor_name(Path::new(&a.file_name())));
    }
}
