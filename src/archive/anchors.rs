//! Anchor files in the archive: the checks of an anchor's bytes ([`check_anchor`]), shared by a
//! push (before the anchor leaves the spool), the index (each archived anchor) and `get` (the
//! anchor a printed page relies on), and the archive key of an anchor.
//!
//! An anchor is archived like a record: under a key made from its content, never from its file
//! name (`[PREFIX/]YYYY/MM/DD/KEYID.SEQUENCE.T.anchor`, the date the anchored head's `sealed-at`
//! in UTC and the name [`Anchor::file_name`]), checked first, and the bytes checked are the
//! bytes sent and read back.

use chrono::Datelike;

use crate::anchor::{self, Anchor};
use crate::format::Manifest;
use crate::keys::TrustedKeys;
use crate::tsp::{self, Stamp, TsaTrust};
use crate::verify::{self, Check, VerifyError};

use super::Archive;

/// An anchor whose bytes passed [`check_anchor`]: the anchor, its head's manifest and the
/// TSA's stamp.
#[derive(Debug, Clone)]
pub struct CheckedAnchor {
    pub anchor: Anchor,
    pub head: Manifest,
    pub stamp: Stamp,
    /// Whether the head's signature was checked, by one of the trusted keys given.
    pub signed: bool,
}

fn failed(check: Check, reason: impl Into<String>) -> VerifyError {
    VerifyError::Failed {
        check,
        reason: reason.into(),
    }
}

/// Check an anchor file's bytes in the order of `docs/FORMAT.md` section 11, as
/// [`anchor::verify`] checks a file: its size and form (`anchor`), the head's manifest
/// (`manifest`), with `trusted` keys the head's signature (`signature`), and the token over
/// the head's manifest hash (`timestamp`: against `tsa` when it holds certificates, else
/// every check but the chain to a trusted TSA, and the stamp is not trusted); the head may not
/// claim to be sealed after the TSA's time. Only [`VerifyError::Failed`] is returned: the
/// bytes are in hand.
pub fn check_anchor(
    bytes: &[u8],
    trusted: Option<&TrustedKeys>,
    tsa: &TsaTrust,
) -> Result<CheckedAnchor, VerifyError> {
    if bytes.len() as u64 > anchor::MAX_LEN {
        return Err(failed(
            Check::Anchor,
            format!("larger than {} bytes", anchor::MAX_LEN),
        ));
    }
    let anchor = Anchor::parse(bytes).map_err(|e| failed(Check::Anchor, e))?;
    let head = Manifest::parse(&anchor.manifest)
        .map_err(|e| failed(Check::Manifest, format!("the anchored manifest: {e}")))?;
    if Manifest::sha256(&anchor.manifest) != anchor.manifest_sha256
        || head.key_id != anchor.key_id
        || head.sequence != anchor.sequence
    {
        return Err(failed(
            Check::Anchor,
            "key-id, sequence or manifest-sha256 differ from the anchored manifest",
        ));
    }
    if let Some(keys) = trusted {
        verify::check_signature(&anchor.signature, &head, &anchor.manifest, keys)?;
    }
    let stamp = tsp::check_token(&anchor.token, &anchor.manifest_sha256, tsa)
        .map_err(|e| failed(Check::Timestamp, e.to_string()))?;
    if head.sealed_at > stamp.time {
        return Err(failed(
            Check::Timestamp,
            format!(
                "the head claims to be sealed at {} but was stamped earlier, at {}",
                head.sealed_at, stamp.time
            ),
        ));
    }
    Ok(CheckedAnchor {
        anchor,
        head,
        stamp,
        signed: trusted.is_some(),
    })
}

impl Archive {
    /// The archive key of a checked anchor: the head's sealing day (UTC) and the anchor's
    /// canonical name, `KEYID.SEQUENCE.T.anchor` (the head's key id, which a manifest keeps to
    /// 16 hex digits, its sequence, and 16 hex digits of the token's SHA-256), so no anchor can
    /// name a key outside the prefix, and two tokens over one head never share a key.
    pub(super) fn anchor_key(&self, checked: &CheckedAnchor) -> String {
        let date = checked.head.sealed_at;
        let key = format!(
            "{:04}/{:02}/{:02}/{}",
            date.year(),
            date.month(),
            date.day(),
            checked.anchor.file_name(),
        );
        if self.prefix.is_empty() {
            key
        } else {
            format!("{}/{key}", self.prefix)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};

    fn vectors() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/format-v1")
    }

    fn trust() -> TsaTrust {
        TsaTrust::from_pem(&std::fs::read(vectors().join("tsa-ca.pem")).unwrap()).unwrap()
    }

    /// The anchor test vectors get the same verdict, at the same check, from the bytes as
    /// from the file ([`anchor::verify`]).
    #[test]
    fn the_bytes_are_judged_as_the_file_is() {
        let keys = TrustedKeys::load(&[vectors().join("seal.pub")]).unwrap();
        let mut names: Vec<PathBuf> = std::fs::read_dir(vectors())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| anchor::is_anchor_name(p))
            .collect();
        names.sort();
        assert!(names.len() >= 5, "{names:?}");
        for path in names {
            let bytes = std::fs::read(&path).unwrap();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let from_file = anchor::verify(&path, &keys, &trust());
            let from_bytes = check_anchor(&bytes, Some(&keys), &trust());
            match (&from_file, &from_bytes) {
                (Ok(file), Ok(checked)) => {
                    assert!(name.starts_with("good-"), "{name}");
                    assert_eq!(file.anchor, checked.anchor);
                    assert_eq!(file.stamp.time, checked.stamp.time);
                    assert!(checked.stamp.trusted && checked.signed);
                }
                (
                    Err(VerifyError::Failed { check: a, .. }),
                    Err(VerifyError::Failed { check: b, .. }),
                ) => {
                    assert_eq!(a, b, "{name}");
                    assert!(name.starts_with(&format!("bad-{a}-")), "{name}: {a}");
                }
                other => panic!("{name}: {other:?}"),
            }
        }
        // Without keys the head's signature is not checked (a swapped one passes), without
        // TSA certificates the stamp is not trusted, and everything else still is checked.
        let good = std::fs::read(vectors().join("good-head.anchor")).unwrap();
        let checked = check_anchor(&good, None, &TsaTrust::default()).unwrap();
        assert!(!checked.stamp.trusted && !checked.signed);
        let swapped = std::fs::read(vectors().join("bad-signature-swapped.anchor")).unwrap();
        assert!(check_anchor(&swapped, None, &trust()).is_ok());
        let other = std::fs::read(vectors().join("bad-timestamp-other-hash.anchor")).unwrap();
        assert!(check_anchor(&other, None, &TsaTrust::default()).is_err());
        let mut big = good.clone();
        big.resize(anchor::MAX_LEN as usize + 1, b'\n');
        assert!(matches!(
            check_anchor(&big, None, &TsaTrust::default()),
            Err(VerifyError::Failed {
                check: Check::Anchor,
                ..
            })
        ));
    }
}
