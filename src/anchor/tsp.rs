//! RFC 3161 time-stamp protocol: the request callrec sends, the reply it takes a token from,
//! and the strict check of a token (what was stamped, when, and by whom).
//!
//! A token is a CMS `SignedData` (RFC 5652) whose content is a `TSTInfo`. Checking one means:
//! the `TSTInfo` stamps the expected SHA-256; the one signer's signed attributes name the
//! `TSTInfo` content type, carry its digest and an ESS signing-certificate reference to the
//! signer's certificate; the signature over those attributes verifies with that certificate;
//! the certificate may be used only for time stamping (extended key usage `timeStamping`,
//! critical) and was valid at the stamped time; and, given trusted TSA certificates, it is one
//! of them or chains up to one (each issuer a CA, valid at that time, its signature good).
//!
//! Signatures: RSA PKCS #1 v1.5 (SHA-256, -384, -512), ECDSA P-256 and P-384, Ed25519 (ring).

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};
use cms::content_info::ContentInfo;
use cms::signed_data::{EncapsulatedContentInfo, SignerIdentifier, SignerInfo};
use der::asn1::{Any, Int, ObjectIdentifier, OctetString, OctetStringRef};
use der::{Decode, Encode, Sequence, Tagged};
use sha2::{Digest, Sha256, Sha384, Sha512};
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, SubjectKeyIdentifier};
use x509_cert::spki::AlgorithmIdentifierOwned;
use x509_cert::Certificate;

const ID_SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
const ID_CT_TST_INFO: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.1.4");
const ID_CONTENT_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.3");
const ID_MESSAGE_DIGEST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");
const ID_SIGNING_CERTIFICATE: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.12");
const ID_SIGNING_CERTIFICATE_V2: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.47");
const ID_KP_TIME_STAMPING: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.8");
const ID_CE_EXT_KEY_USAGE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.37");
const ID_CE_BASIC_CONSTRAINTS: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.19");
const ID_CE_SUBJECT_KEY_ID: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.14");
const ID_CE_KEY_USAGE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.15");
const ID_SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.26");
const ID_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const ID_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");
const ID_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.3");
const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const SHA256_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
const SHA384_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.12");
const SHA512_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.13");
const ECDSA_WITH_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const ECDSA_WITH_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
const ID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const SECP256R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const SECP384R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const ID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");

/// How long one TSA may take to answer, connection included.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// The largest reply read from a TSA.
const MAX_REPLY: usize = 64 * 1024;

/// The longest chain from a TSA's certificate to a trusted one.
const MAX_CHAIN: usize = 8;

// RFC 3161's structures, as far as callrec reads them. Times stay raw (`Any`) because
// GeneralizedTime in a TSTInfo may carry fractions of a second, which `der` does not take.

#[derive(Clone, Debug, Sequence)]
struct MessageImprint {
    hash_algorithm: AlgorithmIdentifierOwned,
    hashed_message: OctetString,
}

#[derive(Clone, Debug, Sequence)]
struct TimeStampReq {
    version: u8,
    message_imprint: MessageImprint,
    #[asn1(optional = "true")]
    nonce: Option<Int>,
    #[asn1(default = "Default::default")]
    cert_req: bool,
}

#[derive(Clone, Debug, Sequence)]
struct PkiStatusInfo {
    status: u8,
    #[asn1(optional = "true")]
    status_string: Option<Any>,
    #[asn1(optional = "true")]
    fail_info: Option<Any>,
}

#[derive(Clone, Debug, Sequence)]
struct TimeStampResp {
    status: PkiStatusInfo,
    #[asn1(optional = "true")]
    time_stamp_token: Option<ContentInfo>,
}

#[derive(Clone, Debug, Sequence)]
struct TstInfo {
    version: u8,
    /// Kept raw: `const-oid` refuses valid OIDs such as `2.999.1` (a second arc above 39).
    policy: Any,
    message_imprint: MessageImprint,
    serial_number: Int,
    gen_time: Any,
    #[asn1(optional = "true")]
    accuracy: Option<Accuracy>,
    #[asn1(default = "Default::default")]
    ordering: bool,
    #[asn1(optional = "true")]
    nonce: Option<Int>,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    tsa: Option<Any>,
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", optional = "true")]
    extensions: Option<Any>,
}

/// `Accuracy`: typed, so that when it is absent the nonce after it is not taken for it.
#[derive(Clone, Debug, Sequence)]
struct Accuracy {
    #[asn1(optional = "true")]
    seconds: Option<Int>,
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT", optional = "true")]
    millis: Option<Int>,
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", optional = "true")]
    micros: Option<Int>,
}

/// ESS `IssuerSerial`: the issuer's names and the serial number of the certificate named.
#[derive(Clone, Debug, Sequence)]
struct IssuerSerial {
    issuer: x509_cert::ext::pkix::name::GeneralNames,
    serial_number: x509_cert::serial_number::SerialNumber,
}

/// ESS `ESSCertID` (RFC 2634) and `ESSCertIDv2` (RFC 5035): the first names the signer's
/// certificate by its SHA-1, the second by a hash that defaults to SHA-256.
#[derive(Clone, Debug, Sequence)]
struct EssCertId {
    cert_hash: OctetString,
    #[asn1(optional = "true")]
    issuer_serial: Option<IssuerSerial>,
}

#[derive(Clone, Debug, Sequence)]
struct EssCertIdV2 {
    #[asn1(optional = "true")]
    hash_algorithm: Option<AlgorithmIdentifierOwned>,
    cert_hash: OctetString,
    #[asn1(optional = "true")]
    issuer_serial: Option<IssuerSerial>,
}

#[derive(Clone, Debug, Sequence)]
struct SigningCertificate {
    certs: Vec<EssCertId>,
    #[asn1(optional = "true")]
    policies: Option<Any>,
}

#[derive(Clone, Debug, Sequence)]
struct SigningCertificateV2 {
    certs: Vec<EssCertIdV2>,
    #[asn1(optional = "true")]
    policies: Option<Any>,
}

/// The parts of a CMS `SignedData` a token check reads. Parsed element by element rather
/// than as one DER structure: TSAs' certificate sets are not always canonical DER (OpenSSL
/// sends the signer's certificate twice when it is also among the extra certificates), and
/// nothing in them is signed as a whole.
struct SignedData {
    econtent_type: ObjectIdentifier,
    /// The encapsulated content's octets (the DER TSTInfo).
    econtent: Vec<u8>,
    certificates: Vec<Certificate>,
    signer_infos: Vec<SignerInfo>,
}

/// The elements inside a constructed DER value.
fn elements(any: &Any) -> Result<Vec<Any>, TokenError> {
    let mut reader = der::SliceReader::new(any.value()).map_err(|e| bad(e.to_string()))?;
    let mut out = Vec::new();
    while !der::Reader::is_finished(&reader) {
        out.push(Any::decode(&mut reader).map_err(|e| bad(format!("not DER: {e}")))?);
    }
    Ok(out)
}

impl SignedData {
    fn parse(content: &Any) -> Result<SignedData, TokenError> {
        let not = |e: der::Error| bad(format!("not CMS SignedData: {e}"));
        if content.tag() != der::Tag::Sequence {
            return Err(bad("not CMS SignedData"));
        }
        let parts = elements(content)?;
        let mut parts = parts.iter().peekable();
        let _version = parts.next().ok_or_else(|| bad("empty SignedData"))?;
        let _digest_algorithms = parts.next().ok_or_else(|| bad("short SignedData"))?;
        let encap: EncapsulatedContentInfo = parts
            .next()
            .ok_or_else(|| bad("short SignedData"))?
            .decode_as()
            .map_err(not)?;
        let mut certificates = Vec::new();
        let context = |n: u8| der::Tag::ContextSpecific {
            constructed: true,
            number: der::TagNumber::new(n),
        };
        if let Some(certs) = parts.next_if(|p| p.tag() == context(0)) {
            for cert in elements(certs)? {
                // Other certificate formats (attribute certificates) are not used here.
                if cert.tag() == der::Tag::Sequence {
                    certificates.push(cert.decode_as().map_err(not)?);
                }
            }
        }
        let _crls = parts.next_if(|p| p.tag() == context(1));
        let signers = parts
            .next()
            .ok_or_else(|| bad("SignedData has no signerInfos"))?;
        if parts.next().is_some() || signers.tag() != der::Tag::Set {
            return Err(bad("not CMS SignedData"));
        }
        let signer_infos = elements(signers)?
            .iter()
            .map(|s| s.decode_as().map_err(not))
            .collect::<Result<_, _>>()?;
        let econtent = encap
            .econtent
            .as_ref()
            .ok_or_else(|| bad("the token holds no TSTInfo"))?
            .decode_as::<OctetStringRef>()
            .map_err(|e| bad(format!("the TSTInfo is not an OCTET STRING: {e}")))?
            .as_bytes()
            .to_vec();
        Ok(SignedData {
            econtent_type: encap.econtent_type,
            econtent,
            certificates,
            signer_infos,
        })
    }
}

/// Why a token or a TSA's answer is not good.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenError(pub String);

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TokenError {}

fn bad(reason: impl Into<String>) -> TokenError {
    TokenError(reason.into())
}

/// What a good token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp {
    /// The TSA's time (`genTime`), to the second it gives (fractions dropped).
    pub time: DateTime<Utc>,
    /// The signer certificate's subject, as RFC 4514 text.
    pub tsa: String,
    /// The token's serial number, hex.
    pub serial: String,
    /// The TSA's policy id.
    pub policy: String,
    /// Whether the signer chains to a trusted TSA certificate (always true when checked
    /// against a non-empty trust list; false when none was given).
    pub trusted: bool,
}

/// The TSA certificates a verifier trusts: roots or the TSA certificates themselves.
#[derive(Debug, Clone, Default)]
pub struct TsaTrust {
    certs: Vec<Certificate>,
}

impl TsaTrust {
    /// Certificates from PEM text (one or more `CERTIFICATE` blocks).
    pub fn from_pem(pem: &[u8]) -> Result<TsaTrust, TokenError> {
        // (x509-cert's loader panics on empty input.)
        if pem.iter().all(u8::is_ascii_whitespace) {
            return Err(bad("no certificate in it"));
        }
        let certs = Certificate::load_pem_chain(pem)
            .map_err(|e| bad(format!("not PEM certificates: {e}")))?;
        if certs.is_empty() {
            return Err(bad("no certificate in it"));
        }
        Ok(TsaTrust { certs })
    }

    /// The certificates of the PEM files `paths` (`--tsa-ca`, else `$CALLREC_TSA_CA`: see
    /// [`crate::places::tsa_ca`]); an error names the file.
    pub fn load(paths: &[std::path::PathBuf]) -> Result<TsaTrust, TokenError> {
        let mut trust = TsaTrust::default();
        for path in paths {
            let pem = crate::fsutil::read_regular(path)
                .map_err(|e| bad(format!("cannot read TSA certificates {path:?}: {e}")))?;
            let certs = TsaTrust::from_pem(&pem)
                .map_err(|e| bad(format!("TSA certificates {path:?} cannot be used: {e}")))?;
            trust.extend(certs);
        }
        Ok(trust)
    }

    pub fn extend(&mut self, other: TsaTrust) {
        self.certs.extend(other.certs);
    }

    pub fn is_empty(&self) -> bool {
        self.certs.is_empty()
    }

    /// The certificates as PEM, for a bundle.
    pub fn to_pem(&self) -> String {
        use der::EncodePem;
        self.certs
            .iter()
            .filter_map(|c| c.to_pem(der::pem::LineEnding::LF).ok())
            .collect()
    }
}

/// A DER `TimeStampReq` for `digest` (SHA-256), asking for the signer's certificate.
pub fn request(digest: &[u8; 32], nonce: u64) -> Vec<u8> {
    TimeStampReq {
        version: 1,
        message_imprint: imprint(digest),
        nonce: Some(nonce_int(nonce)),
        cert_req: true,
    }
    .to_der()
    .expect("a request encodes")
}

fn imprint(digest: &[u8; 32]) -> MessageImprint {
    MessageImprint {
        hash_algorithm: AlgorithmIdentifierOwned {
            oid: ID_SHA256,
            parameters: Some(Any::null()),
        },
        hashed_message: OctetString::new(digest.to_vec()).expect("32 bytes"),
    }
}

fn nonce_int(nonce: u64) -> Int {
    // Positive and minimal: a leading zero byte only where the top bit is set.
    let bytes = nonce.max(1).to_be_bytes();
    let start = bytes.iter().position(|&b| b != 0).expect("non-zero");
    let mut minimal = Vec::with_capacity(9);
    if bytes[start] & 0x80 != 0 {
        minimal.push(0);
    }
    minimal.extend_from_slice(&bytes[start..]);
    Int::new(&minimal).expect("minimal integer")
}

/// The token from a TSA's DER `TimeStampResp` to the request made with `digest` and `nonce`,
/// and its stamp: granted, stamping that digest with that nonce, signed by the certificate it
/// holds, and chaining to `trust` when it holds certificates (see [`check_token`]).
pub fn token_from_reply(
    reply: &[u8],
    digest: &[u8; 32],
    nonce: u64,
    trust: &TsaTrust,
) -> Result<(Vec<u8>, Stamp), TokenError> {
    let resp = TimeStampResp::from_der(reply)
        .map_err(|e| bad(format!("the reply is not a TimeStampResp: {e}")))?;
    // 0 granted, 1 granted with modifications; anything else is a refusal.
    if resp.status.status > 1 {
        return Err(bad(format!(
            "the TSA refused the request (PKIStatus {})",
            resp.status.status
        )));
    }
    let token = resp
        .time_stamp_token
        .ok_or_else(|| bad("the TSA granted the request but sent no token"))?
        .to_der()
        .map_err(|e| bad(e.to_string()))?;
    let (stamp, tst) = check(&token, digest, trust)?;
    if tst.nonce != Some(nonce_int(nonce)) {
        return Err(bad(
            "the token does not carry the request's nonce (a replayed answer)",
        ));
    }
    Ok((token, stamp))
}

/// Check a DER `TimeStampToken` stamps `digest`, and what it says. With trusted certificates
/// the signer must chain to one of them; with none, everything else is still checked and the
/// stamp says it is not trusted.
pub fn check_token(token: &[u8], digest: &[u8; 32], trust: &TsaTrust) -> Result<Stamp, TokenError> {
    check(token, digest, trust).map(|(stamp, _)| stamp)
}

fn check(
    token: &[u8],
    digest: &[u8; 32],
    trust: &TsaTrust,
) -> Result<(Stamp, TstInfo), TokenError> {
    let info =
        ContentInfo::from_der(token).map_err(|e| bad(format!("not a DER ContentInfo: {e}")))?;
    if info.content_type != ID_SIGNED_DATA {
        return Err(bad("not CMS SignedData"));
    }
    let signed = SignedData::parse(&info.content)?;
    if signed.econtent_type != ID_CT_TST_INFO {
        return Err(bad("the signed content is not a TSTInfo"));
    }
    let tst_der = signed.econtent;
    let tst = TstInfo::from_der(&tst_der).map_err(|e| bad(format!("not a DER TSTInfo: {e}")))?;
    if tst.version != 1 {
        return Err(bad(format!(
            "TSTInfo version {} (only 1 exists)",
            tst.version
        )));
    }
    if tst.message_imprint.hash_algorithm.oid != ID_SHA256 {
        return Err(bad("the token stamps a hash other than SHA-256"));
    }
    if tst.message_imprint.hashed_message.as_bytes() != digest {
        return Err(bad("the token stamps another hash, not this one"));
    }
    let time = generalized_time(&tst.gen_time)?;

    let [signer_info] = signed.signer_infos.as_slice() else {
        return Err(bad("the token must have exactly one signer"));
    };
    let mut pool = signed.certificates;
    pool.extend(trust.certs.iter().cloned());
    let signer = pool
        .iter()
        .find(|c| identifies(&signer_info.sid, c))
        .ok_or_else(|| bad("the signer's certificate is neither in the token nor trusted"))?
        .clone();
    let signer_der = signer.to_der().map_err(|e| bad(e.to_string()))?;

    // Signed attributes: content type, digest of the TSTInfo, the signing certificate.
    let attrs = signer_info
        .signed_attrs
        .as_ref()
        .ok_or_else(|| bad("the signer has no signed attributes"))?;
    let attr = |oid: ObjectIdentifier| -> Result<&Any, TokenError> {
        let found: Vec<_> = attrs.iter().filter(|a| a.oid == oid).collect();
        match found.as_slice() {
            [one] if one.values.len() == 1 => Ok(one.values.iter().next().expect("one value")),
            [] => Err(bad(format!("the signed attribute {oid} is missing"))),
            _ => Err(bad(format!("the signed attribute {oid} is not single"))),
        }
    };
    let content_type: ObjectIdentifier = attr(ID_CONTENT_TYPE)?
        .decode_as()
        .map_err(|e| bad(format!("bad content-type attribute: {e}")))?;
    if content_type != ID_CT_TST_INFO {
        return Err(bad("the content-type attribute is not TSTInfo"));
    }
    let hash = HashAlg::from_oid(&signer_info.digest_alg.oid)?;
    if hash == HashAlg::Sha1 {
        return Err(bad(
            "the TSA signs with SHA-1, which is no longer safe for signatures",
        ));
    }
    let message_digest = attr(ID_MESSAGE_DIGEST)?
        .decode_as::<OctetStringRef>()
        .map_err(|e| bad(format!("bad message-digest attribute: {e}")))?;
    if message_digest.as_bytes() != hash.digest(&tst_der) {
        return Err(bad(
            "the signed digest is not the TSTInfo's: the token was changed",
        ));
    }
    check_signing_certificate(attrs.iter(), &signer, &signer_der)?;
    let signed_bytes = attrs.to_der().map_err(|e| bad(e.to_string()))?;
    verify_signature(
        &signer,
        &signer_info.signature_algorithm.oid,
        Some(hash),
        &signed_bytes,
        signer_info.signature.as_bytes(),
    )
    .map_err(|e| bad(format!("the TSA's signature does not verify: {e}")))?;

    // The signer may stamp time and nothing else, and was valid when it did.
    let eku = extension(&signer, ID_CE_EXT_KEY_USAGE)
        .ok_or_else(|| bad("the TSA certificate has no extended key usage"))?;
    let usages = ExtendedKeyUsage::from_der(eku.extn_value.as_bytes())
        .map_err(|e| bad(format!("bad extended key usage: {e}")))?;
    if !eku.critical || usages.0 != [ID_KP_TIME_STAMPING] {
        return Err(bad(
            "the TSA certificate's extended key usage is not timeStamping alone, critical",
        ));
    }
    if let Some(ku) = extension(&signer, ID_CE_KEY_USAGE) {
        let usage = x509_cert::ext::pkix::KeyUsage::from_der(ku.extn_value.as_bytes())
            .map_err(|e| bad(format!("bad key usage: {e}")))?;
        use x509_cert::ext::pkix::KeyUsages;
        let signing = usage.0.contains(KeyUsages::DigitalSignature)
            || usage.0.contains(KeyUsages::NonRepudiation);
        let others = usage.0 & !(KeyUsages::DigitalSignature | KeyUsages::NonRepudiation);
        if !signing || !others.is_empty() {
            return Err(bad(
                "the TSA certificate's key usage is not digitalSignature or nonRepudiation alone",
            ));
        }
    }
    no_unknown_critical(&signer, "the TSA certificate")?;
    valid_at(&signer, time, "the TSA certificate")?;
    let trusted = !trust.is_empty();
    if trusted {
        chain_to_trust(&signer, &pool, trust, time)?;
    }
    let stamp = Stamp {
        time,
        tsa: signer.tbs_certificate.subject.to_string(),
        serial: hex::encode(tst.serial_number.as_bytes()),
        policy: oid_text(&tst.policy)?,
        trusted,
    };
    Ok((stamp, tst))
}

fn identifies(sid: &SignerIdentifier, cert: &Certificate) -> bool {
    match sid {
        SignerIdentifier::IssuerAndSerialNumber(is) => {
            is.issuer == cert.tbs_certificate.issuer
                && is.serial_number == cert.tbs_certificate.serial_number
        }
        SignerIdentifier::SubjectKeyIdentifier(ski) => extension(cert, ID_CE_SUBJECT_KEY_ID)
            .and_then(|e| SubjectKeyIdentifier::from_der(e.extn_value.as_bytes()).ok())
            .is_some_and(|own| own == *ski),
    }
}

fn extension(cert: &Certificate, oid: ObjectIdentifier) -> Option<&x509_cert::ext::Extension> {
    cert.tbs_certificate
        .extensions
        .as_ref()?
        .iter()
        .find(|e| e.extn_id == oid)
}

/// RFC 3161 §2.4.1: the signer's certificate is named in an ESS signing-certificate attribute
/// (v1 with SHA-1, or v2); in every such attribute the first certificate named must be the
/// signer's, by its hash and, where given, its issuer and serial number.
fn check_signing_certificate<'a>(
    attrs: impl Iterator<Item = &'a x509_cert::attr::Attribute>,
    signer: &Certificate,
    signer_der: &[u8],
) -> Result<(), TokenError> {
    let mut named_any = false;
    for attr in
        attrs.filter(|a| a.oid == ID_SIGNING_CERTIFICATE_V2 || a.oid == ID_SIGNING_CERTIFICATE)
    {
        for value in attr.values.iter() {
            let (alg, hash, issuer_serial) = if attr.oid == ID_SIGNING_CERTIFICATE_V2 {
                let v2: SigningCertificateV2 = value
                    .decode_as()
                    .map_err(|e| bad(format!("bad signing-certificate-v2 attribute: {e}")))?;
                let first = v2
                    .certs
                    .into_iter()
                    .next()
                    .ok_or_else(|| bad("no certificate named"))?;
                let alg = match &first.hash_algorithm {
                    Some(a) => HashAlg::from_oid(&a.oid)?,
                    None => HashAlg::Sha256,
                };
                (alg, first.cert_hash, first.issuer_serial)
            } else {
                let v1: SigningCertificate = value
                    .decode_as()
                    .map_err(|e| bad(format!("bad signing-certificate attribute: {e}")))?;
                let first = v1
                    .certs
                    .into_iter()
                    .next()
                    .ok_or_else(|| bad("no certificate named"))?;
                (HashAlg::Sha1, first.cert_hash, first.issuer_serial)
            };
            if alg.digest(signer_der) != hash.as_bytes() {
                return Err(bad(
                    "the signing-certificate attribute names another certificate",
                ));
            }
            if let Some(is) = issuer_serial {
                let tbs = &signer.tbs_certificate;
                let issuer_named = is.issuer.iter().any(|n| {
                    matches!(n, x509_cert::ext::pkix::name::GeneralName::DirectoryName(d) if *d == tbs.issuer)
                });
                if is.serial_number != tbs.serial_number || !issuer_named {
                    return Err(bad(
                        "the signing-certificate attribute's issuer and serial name another certificate",
                    ));
                }
            }
            named_any = true;
        }
    }
    if !named_any {
        return Err(bad("the token does not name its signing certificate (ESS)"));
    }
    Ok(())
}

/// Extensions a TSA's or a CA's certificate may mark critical; any other critical extension is
/// one this verifier does not understand, so the certificate is refused (RFC 5280 §4.2).
const KNOWN_CRITICAL: [ObjectIdentifier; 8] = [
    ID_CE_EXT_KEY_USAGE,
    ID_CE_BASIC_CONSTRAINTS,
    ID_CE_SUBJECT_KEY_ID,
    ID_CE_KEY_USAGE,
    ObjectIdentifier::new_unwrap("2.5.29.35"), // authority key identifier
    ObjectIdentifier::new_unwrap("2.5.29.17"), // subject alternative name
    ObjectIdentifier::new_unwrap("2.5.29.32"), // certificate policies
    ObjectIdentifier::new_unwrap("2.5.29.30"), // name constraints (CAs)
];

fn no_unknown_critical(cert: &Certificate, what: &str) -> Result<(), TokenError> {
    let unknown = cert
        .tbs_certificate
        .extensions
        .iter()
        .flatten()
        .find(|e| e.critical && !KNOWN_CRITICAL.contains(&e.extn_id));
    match unknown {
        Some(e) => Err(bad(format!(
            "{what} has a critical extension this verifier does not know ({})",
            e.extn_id
        ))),
        None => Ok(()),
    }
}

fn valid_at(cert: &Certificate, time: DateTime<Utc>, what: &str) -> Result<(), TokenError> {
    let v = &cert.tbs_certificate.validity;
    let (from, to) = (
        v.not_before.to_unix_duration().as_secs(),
        v.not_after.to_unix_duration().as_secs(),
    );
    let t = u64::try_from(time.timestamp()).unwrap_or(0);
    if t < from || t > to {
        return Err(bad(format!(
            "{what} was not valid at the stamped time {time}"
        )));
    }
    Ok(())
}

/// The signer is a trusted certificate, or is issued by one through CA certificates found in
/// the token or the trust list.
fn chain_to_trust(
    signer: &Certificate,
    pool: &[Certificate],
    trust: &TsaTrust,
    time: DateTime<Utc>,
) -> Result<(), TokenError> {
    let untrusted = || bad("the TSA's certificate does not chain to a trusted TSA certificate");
    let mut current = signer.clone();
    for _ in 0..MAX_CHAIN {
        if trust.certs.contains(&current) {
            return Ok(());
        }
        let tbs = current
            .tbs_certificate
            .to_der()
            .map_err(|e| bad(e.to_string()))?;
        let issuer = pool
            .iter()
            .filter(|c| c.tbs_certificate.subject == current.tbs_certificate.issuer)
            .find(|c| {
                verify_signature(
                    c,
                    &current.signature_algorithm.oid,
                    None,
                    &tbs,
                    current.signature.raw_bytes(),
                )
                .is_ok()
                    && is_ca(c)
                    && no_unknown_critical(c, "an issuing certificate").is_ok()
                    && valid_at(c, time, "an issuing certificate").is_ok()
            })
            .ok_or_else(untrusted)?;
        current = issuer.clone();
    }
    Err(untrusted())
}

fn is_ca(cert: &Certificate) -> bool {
    extension(cert, ID_CE_BASIC_CONSTRAINTS)
        .and_then(|e| BasicConstraints::from_der(e.extn_value.as_bytes()).ok())
        .is_some_and(|bc| bc.ca)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HashAlg {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl HashAlg {
    fn from_oid(oid: &ObjectIdentifier) -> Result<HashAlg, TokenError> {
        Ok(match *oid {
            ID_SHA1 => HashAlg::Sha1,
            ID_SHA256 => HashAlg::Sha256,
            ID_SHA384 => HashAlg::Sha384,
            ID_SHA512 => HashAlg::Sha512,
            _ => return Err(bad(format!("unsupported hash algorithm {oid}"))),
        })
    }

    fn digest(self, bytes: &[u8]) -> Vec<u8> {
        match self {
            HashAlg::Sha1 => ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, bytes)
                .as_ref()
                .to_vec(),
            HashAlg::Sha256 => Sha256::digest(bytes).to_vec(),
            HashAlg::Sha384 => Sha384::digest(bytes).to_vec(),
            HashAlg::Sha512 => Sha512::digest(bytes).to_vec(),
        }
    }
}

/// Verify `signature` over `message` with `cert`'s public key. `alg` is a signature algorithm
/// OID, or `rsaEncryption` with the hash given by `hash` (as CMS signers may say).
fn verify_signature(
    cert: &Certificate,
    alg: &ObjectIdentifier,
    hash: Option<HashAlg>,
    message: &[u8],
    signature: &[u8],
) -> Result<(), TokenError> {
    use ring::signature as sig;
    let spki = &cert.tbs_certificate.subject_public_key_info;
    let key = spki.subject_public_key.raw_bytes();
    let curve = || -> Option<ObjectIdentifier> {
        (spki.algorithm.oid == ID_EC_PUBLIC_KEY)
            .then(|| spki.algorithm.parameters.as_ref()?.decode_as().ok())
            .flatten()
    };
    let scheme: &dyn sig::VerificationAlgorithm = match (*alg, hash) {
        (RSA_ENCRYPTION, Some(HashAlg::Sha256)) | (SHA256_WITH_RSA, _) => {
            &sig::RSA_PKCS1_2048_8192_SHA256
        }
        (RSA_ENCRYPTION, Some(HashAlg::Sha384)) | (SHA384_WITH_RSA, _) => {
            &sig::RSA_PKCS1_2048_8192_SHA384
        }
        (RSA_ENCRYPTION, Some(HashAlg::Sha512)) | (SHA512_WITH_RSA, _) => {
            &sig::RSA_PKCS1_2048_8192_SHA512
        }
        (ECDSA_WITH_SHA256, _) => match curve() {
            Some(SECP256R1) => &sig::ECDSA_P256_SHA256_ASN1,
            Some(SECP384R1) => &sig::ECDSA_P384_SHA256_ASN1,
            _ => return Err(bad("unsupported elliptic curve")),
        },
        (ECDSA_WITH_SHA384, _) => match curve() {
            Some(SECP256R1) => &sig::ECDSA_P256_SHA384_ASN1,
            Some(SECP384R1) => &sig::ECDSA_P384_SHA384_ASN1,
            _ => return Err(bad("unsupported elliptic curve")),
        },
        (ID_ED25519, _) => &sig::ED25519,
        _ => return Err(bad(format!("unsupported signature algorithm {alg}"))),
    };
    let rsa_key = [RSA_ENCRYPTION].contains(&spki.algorithm.oid);
    let rsa_sig = [
        RSA_ENCRYPTION,
        SHA256_WITH_RSA,
        SHA384_WITH_RSA,
        SHA512_WITH_RSA,
    ]
    .contains(alg);
    if rsa_key != rsa_sig {
        return Err(bad("the key does not match the signature algorithm"));
    }
    sig::UnparsedPublicKey::new(scheme, key)
        .verify(message, signature)
        .map_err(|_| bad("bad signature"))
}

/// An OBJECT IDENTIFIER in dotted form (X.690 8.19: base-128 arcs, the first two combined).
fn oid_text(any: &Any) -> Result<String, TokenError> {
    let invalid = || bad("the token's policy is not an OBJECT IDENTIFIER");
    if any.tag() != der::Tag::ObjectIdentifier || any.value().is_empty() {
        return Err(invalid());
    }
    let mut arcs: Vec<u128> = Vec::new();
    let mut value: u128 = 0;
    for (i, &b) in any.value().iter().enumerate() {
        if value == 0 && b == 0x80 {
            return Err(invalid()); // not minimal
        }
        value = value.checked_mul(128).ok_or_else(invalid)? | u128::from(b & 0x7f);
        if b & 0x80 == 0 {
            arcs.push(value);
            value = 0;
        } else if i + 1 == any.value().len() {
            return Err(invalid());
        }
    }
    let first = arcs[0];
    let (a, b) = match first {
        0..=39 => (0, first),
        40..=79 => (1, first - 40),
        _ => (2, first - 80),
    };
    let mut text = format!("{a}.{b}");
    for arc in &arcs[1..] {
        text.push_str(&format!(".{arc}"));
    }
    Ok(text)
}

/// A DER GeneralizedTime (`YYYYMMDDHHMMSS[.f]Z`), fractions dropped.
fn generalized_time(any: &Any) -> Result<DateTime<Utc>, TokenError> {
    let invalid = || bad("the token's time is not a valid GeneralizedTime");
    if any.tag() != der::Tag::GeneralizedTime {
        return Err(invalid());
    }
    let text = std::str::from_utf8(any.value()).map_err(|_| invalid())?;
    let text = text.strip_suffix('Z').ok_or_else(invalid)?;
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    // DER: a fraction has no trailing zeros and is not empty when the dot is present.
    if text.contains('.') && (fraction.is_empty() || fraction.ends_with('0')) {
        return Err(invalid());
    }
    if whole.len() != 14
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !fraction.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(invalid());
    }
    if &whole[12..] > "59" {
        return Err(invalid()); // no leap second: nothing downstream represents one
    }
    NaiveDateTime::parse_from_str(whole, "%Y%m%d%H%M%S")
        .map(|t| t.and_utc())
        .map_err(|_| invalid())
}

/// The longest TSA URL recorded in an anchor.
pub const MAX_URL: usize = 2048;

/// A TSA's address: the URL asked (with any user name and password it needs) and the form an
/// anchor records and messages show, without user name, password, query or fragment (secrets
/// stay out of the evidence) and in ASCII.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TsaUrl {
    url: reqwest::Url,
    shown: String,
}

impl TsaUrl {
    /// An `http` or `https` URL; the error does not repeat it (it may hold a password).
    pub fn parse(text: &str) -> Result<TsaUrl, String> {
        let url = reqwest::Url::parse(text).map_err(|e| format!("not a URL ({e})"))?;
        if !matches!(url.scheme(), "http" | "https") || !url.has_host() {
            return Err("not an http:// or https:// URL".into());
        }
        let mut shown = url.clone();
        // (Cannot fail for an http URL with a host.)
        let _ = shown.set_username("");
        let _ = shown.set_password(None);
        shown.set_query(None);
        shown.set_fragment(None);
        let shown = shown.to_string();
        if shown.len() > MAX_URL {
            return Err(format!("longer than {MAX_URL} characters"));
        }
        Ok(TsaUrl { url, shown })
    }

    /// The URL as an anchor records it.
    pub fn shown(&self) -> &str {
        &self.shown
    }
}

impl fmt::Display for TsaUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

/// Ask the TSA at `url` for a token over `digest`: one HTTP POST of a `TimeStampReq`
/// (`application/timestamp-query`), at most [`TIMEOUT`]. The token is checked before it is
/// returned (granted, this digest, this nonce, signed by its certificate).
pub async fn fetch(
    client: &reqwest::Client,
    tsa: &TsaUrl,
    digest: &[u8; 32],
    trust: &TsaTrust,
) -> Result<(Vec<u8>, Stamp), FetchError> {
    let nonce: u64 = rand::random::<u64>() >> 1;
    let response = client
        .post(tsa.url.clone())
        .header("Content-Type", "application/timestamp-query")
        .body(request(digest, nonce))
        .timeout(TIMEOUT)
        .send()
        .await
        .map_err(|e| FetchError::Unreachable(without_url(e)))?;
    let status = response.status();
    if !status.is_success() {
        return Err(FetchError::Unreachable(format!("HTTP status {status}")));
    }
    let mut reply = Vec::new();
    let mut response = response;
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| FetchError::Unreachable(without_url(e)))?
    {
        if reply.len() + chunk.len() > MAX_REPLY {
            return Err(FetchError::Refused(bad("the reply is too large")));
        }
        reply.extend_from_slice(&chunk);
    }
    token_from_reply(&reply, digest, nonce, trust).map_err(FetchError::Refused)
}

/// A request error's causes, without the URL (it may hold credentials).
fn without_url(e: reqwest::Error) -> String {
    let mut causes = Vec::new();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        causes.push(s.to_string());
        source = s.source();
    }
    let mut text = e.without_url().to_string();
    for cause in causes {
        text.push_str(": ");
        text.push_str(&cause);
    }
    text
}

/// Why no token came from a TSA.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// Could not be reached, or answered with an HTTP error: may pass by itself.
    #[error("no answer: {0}")]
    Unreachable(String),
    /// Answered, but with no good token.
    #[error("bad answer: {0}")]
    Refused(TokenError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_are_positive_and_minimal() {
        for n in [1u64, 0x7f, 0x80, 0xff, 0x1234, u64::MAX >> 1] {
            let der = nonce_int(n).to_der().unwrap();
            let reparsed = Int::from_der(&der).unwrap();
            assert_eq!(reparsed, nonce_int(n));
            assert_eq!(der[2] & 0x80, 0, "positive: {n:#x}");
        }
    }

    #[test]
    fn generalized_times_with_and_without_fractions() {
        let t = |s: &str| {
            generalized_time(&Any::new(der::Tag::GeneralizedTime, s.as_bytes().to_vec()).unwrap())
        };
        assert_eq!(
            t("20261128123456Z").unwrap().to_rfc3339(),
            "2026-11-28T12:34:56+00:00"
        );
        assert_eq!(
            t("20261128123456.25Z").unwrap(),
            t("20261128123456Z").unwrap()
        );
        for bad in [
            "20261128123460Z",
            "20261128123456",
            "20261128123456.Z",
            "20261128123456.50Z",
            "2026112812345Z",
            "20261328123456Z",
        ] {
            assert!(t(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tsa_urls_keep_no_secret_and_are_ascii() {
        let tsa =
            TsaUrl::parse("https://alice:pw@tsa.example.com:8443/tsr?key=k#zeit-\u{e4}").unwrap();
        assert_eq!(tsa.shown(), "https://tsa.example.com:8443/tsr");
        assert_eq!(tsa.url.password(), Some("pw"));
        for bad in [
            "ftp://tsa.example.com/",
            "tsa.example.com",
            "file:///tsa",
            "",
        ] {
            assert!(TsaUrl::parse(bad).is_err(), "{bad}");
        }
        let long = format!("http://tsa.example.com/{}", "a".repeat(MAX_URL));
        assert!(TsaUrl::parse(&long).is_err());
    }

    #[test]
    fn oids_of_every_arc() {
        let oid =
            |bytes: &[u8]| oid_text(&Any::new(der::Tag::ObjectIdentifier, bytes.to_vec()).unwrap());
        assert_eq!(
            oid(&[0x88, 0x37, 0x98, 0x59, 0x01]).unwrap(),
            "2.999.3161.1"
        );
        assert_eq!(oid(&[0x2a, 0x03, 0x04]).unwrap(), "1.2.3.4");
        assert!(oid(&[0x2a, 0x83]).is_err());
        assert!(oid(&[0x2a, 0x80, 0x01]).is_err());
    }

    #[test]
    fn a_request_is_der_with_the_digest() {
        let req = request(&[7; 32], 42);
        let parsed = TimeStampReq::from_der(&req).unwrap();
        assert_eq!(parsed.message_imprint.hashed_message.as_bytes(), &[7; 32]);
        assert!(parsed.cert_req);
        assert!(check_token(&req, &[7; 32], &TsaTrust::default()).is_err());
    }
}
