//! The strictness RFC 8032 §5.1.7 asks of an Ed25519 verifier, which the minisign crate's own
//! check lacks: a signature's `S` must be below the group order `L` (else `S + L` verifies too:
//! a second, "malleated" signature for the same message), and `R` and the public key `A` must
//! be canonical encodings of points not of small order. callrec applies these before minisign
//! verifies the signature itself, so a signature that `minisign -V` rejects is rejected here too.

use curve25519_dalek::edwards::CompressedEdwardsY;
use curve25519_dalek::scalar::Scalar;

/// Why a signature or key is not strict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Weakness {
    #[error("its S is not below the group order (a malleated copy of a signature)")]
    ScalarNotReduced,
    #[error("its {0} is not a curve point")]
    NotAPoint(&'static str),
    #[error("its {0} is not the canonical encoding of its point")]
    NonCanonical(&'static str),
    #[error("its {0} is a point of small order")]
    SmallOrder(&'static str),
}

/// Check a 64-byte signature `R || S`.
pub fn check_signature(signature: &[u8; 64]) -> Result<(), Weakness> {
    let (r, s) = signature.split_at(32);
    let s: [u8; 32] = s.try_into().expect("32 bytes");
    if Option::<Scalar>::from(Scalar::from_canonical_bytes(s)).is_none() {
        return Err(Weakness::ScalarNotReduced);
    }
    check_point(r.try_into().expect("32 bytes"), "R")
}

/// Check a 32-byte public key.
pub fn check_public_key(key: &[u8; 32]) -> Result<(), Weakness> {
    check_point(key, "public key")
}

fn check_point(bytes: &[u8; 32], what: &'static str) -> Result<(), Weakness> {
    let compressed = CompressedEdwardsY(*bytes);
    let point = compressed.decompress().ok_or(Weakness::NotAPoint(what))?;
    if point.compress() != compressed {
        return Err(Weakness::NonCanonical(what));
    }
    if point.is_small_order() {
        return Err(Weakness::SmallOrder(what));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// L, the order of the Ed25519 base point, little-endian.
    const L: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];

    fn add(a: &[u8], b: &[u8; 32]) -> [u8; 32] {
        let mut out = [0u8; 32];
        let mut carry = 0u16;
        for i in 0..32 {
            let sum = a[i] as u16 + b[i] as u16 + carry;
            out[i] = sum as u8;
            carry = sum >> 8;
        }
        out
    }

    #[test]
    fn s_plus_l_is_refused() {
        // R: the base point (canonical, full order); S: small.
        let base = curve25519_dalek::constants::ED25519_BASEPOINT_COMPRESSED.to_bytes();
        let mut sig = [0u8; 64];
        sig[..32].copy_from_slice(&base);
        sig[32] = 7;
        assert_eq!(check_signature(&sig), Ok(()));
        let s_plus_l = add(&sig[32..], &L);
        sig[32..].copy_from_slice(&s_plus_l);
        assert_eq!(check_signature(&sig), Err(Weakness::ScalarNotReduced));
    }

    #[test]
    fn small_order_and_non_canonical_points_are_refused() {
        // The identity (y = 1) has order 1.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert_eq!(
            check_public_key(&identity),
            Err(Weakness::SmallOrder("public key"))
        );
        // y = p + 1 encodes the identity non-canonically (p = 2^255 - 19).
        let mut p_plus_1 = [0xffu8; 32];
        p_plus_1[0] = 0xee;
        p_plus_1[31] = 0x7f;
        assert!(check_public_key(&p_plus_1).is_err());
    }
}
