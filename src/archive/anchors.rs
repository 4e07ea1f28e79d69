//! Anchor files in the archive: the checks of an anchor's bytes ([`check_anchor`]), shared by a
//! push (before the anchor leaves the spool), the index (each archived anchor) and `get` (the
//! anchor a printed page relies on), and the archive key of an anchor.
//!
//! An anchor is archived like a record: under a key made from its content, never from its file
//! name (`[PREFIX/]YYYY/MM/DD/KEYID.SEQUENCE.T.anchor`, the date the anchored head's `sealed-at`
//! in UTC and the name [`Anchor::file_name`]), checked first, and the bytes checked are the
//! bytes sent and read back.

use chrono::Datelike;

use crate::anchor::tsp::{Stamp, TsaTrust};
use crate::anchor::{self, Anchor};
use crate::format::Manifest;
use crate::keys::TrustedKeys;
use crate::verify::VerifyError;

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

/// Check an anchor file's bytes as [`anchor::verify`] checks a file ([`anchor::check_bytes`]:
/// without `trusted` keys the head's signature is not checked, and without certificates in
/// `tsa` the stamp is not trusted). Only [`VerifyError::Failed`] is returned: the bytes are in
/// hand.
pub fn check_anchor(
    bytes: &[u8],
    trusted: Option<&TrustedKeys>,
    tsa: &TsaTrust,
) -> Result<CheckedAnchor, VerifyError> {
    let (anchor, head, stamp) = anchor::check_bytes(bytes, trusted, tsa)?;
    Ok(CheckedAnchor {
        anchor,
        head: head.manifest,
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
    use crate::verify::Check;
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
