//! Hostile review of anchors, the TSA client and the court bundle (FORMAT.md sections 8, 11 and
//! 12): inputs that made `callrec-seal --tsa`, `callrec-verify` or a bundle's `verify.sh` do
//! the wrong thing. Each test fails on the code it was written against; those not fixed yet are
//! ignored with the defect named, so `cargo test --test tests hostile_anchors -- --ignored`
//! shows what is still open.
//!
//! Some tokens here are made by hand (a small Python program on PyPI's `cryptography`, which
//! `rfc3161-client` brings, see tests/tsa.rs): a TSA certificate with a given validity or key
//! usage, ESS attributes of a given shape. Everything else comes from the real OpenSSL TSA of
//! tests/tsa.rs.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use base64::Engine;

use crate::tsa::{Alg, Mode, Tsa};
use crate::util::*;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// The files of `dir` whose names end with `.anchor`, sorted.
fn anchors_in(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|e| e == "anchor"))
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
}

/// A field of an anchor file.
fn field(anchor: &Path, name: &str) -> String {
    let text = fs::read_to_string(anchor).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .unwrap_or_else(|| panic!("no {name} in {text}"))
        .to_string()
}

/// The anchor file with its token replaced (the rest byte for byte).
fn with_token(anchor: &Path, token: &[u8], out: &Path) {
    let text = fs::read_to_string(anchor).unwrap();
    let old = format!("token: {}\n", field(anchor, "token"));
    let new = format!("token: {}\n", B64.encode(token));
    fs::create_dir_all(out.parent().unwrap()).unwrap();
    fs::write(out, text.replacen(&old, &new, 1)).unwrap();
}

/// The anchored head's `sealed-at`, as a GeneralizedTime (`YYYYMMDDhhmmssZ`).
fn head_sealed_at(anchor: &Path) -> String {
    let manifest = B64.decode(field(anchor, "manifest")).unwrap();
    let manifest = String::from_utf8(manifest).unwrap();
    let at = manifest
        .lines()
        .find_map(|l| l.strip_prefix("sealed-at: "))
        .unwrap();
    at.replace(['-', ':', 'T'], "")
}

/// `callrec-seal -k keys -o OUT --tsa URL INPUTS...`, required to succeed.
fn seal_tsa(t: &TestDir, out: &str, tsa: &str, inputs: &[&str]) {
    run_ok(
        t.cmd("callrec-seal")
            .args(["-k", "keys", "-o", out, "-j", "1", "--tsa", tsa])
            .args(inputs),
    );
}

/// `callrec-verify -p keys/seal.pub --tsa-ca CA PATHS...`: the exit code and stderr.
fn verify(t: &TestDir, ca: &Path, paths: &[PathBuf]) -> (i32, String) {
    let (code, _, stderr) = run(t
        .cmd("callrec-verify")
        .args(["-p", "keys/seal.pub", "--tsa-ca"])
        .arg(ca)
        .args(paths));
    (code, stderr)
}

/// `sh verify.sh` of a bundle, with the system's tools only.
fn verify_sh(bundle: &Path) -> (i32, String) {
    let (code, stdout, stderr) = run(Command::new("sh")
        .arg(bundle.join("verify.sh"))
        .current_dir(bundle.parent().unwrap())
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", bundle.parent().unwrap()));
    (code, format!("{stdout}{stderr}"))
}

/// `TestDir::wav`, in a subdirectory made first.
fn wav(t: &TestDir, name: &str) -> PathBuf {
    fs::create_dir_all(t.join(name).parent().unwrap()).unwrap();
    t.wav(name)
}

/// `TestDir::ffmpeg` of a tone, in a subdirectory made first.
fn tone(t: &TestDir, name: &str, frequency: u32) -> PathBuf {
    fs::create_dir_all(t.join(name).parent().unwrap()).unwrap();
    let source = format!("sine=frequency={frequency}:duration=1:sample_rate=8000");
    t.ffmpeg(name, &["-f", "lavfi", "-i", &source, "-ac", "1"])
}

/// A key, one recording sealed into `out/` and anchored there by `tsa`: the sealed file and
/// the anchor.
fn one_anchored(t: &TestDir, tsa: &Tsa) -> (PathBuf, PathBuf) {
    t.keygen("keys");
    wav(t, "in/call.wav");
    seal_tsa(t, "out", &tsa.url(), &["in/call.wav"]);
    let mut anchors = anchors_in(&t.join("out"));
    anchors.extend(anchors_in(&t.join("in")));
    assert_eq!(anchors.len(), 1, "one anchor");
    (t.join("out/call.sealed.wav"), anchors.remove(0))
}

/// Makes an RFC 3161 token by hand: `forge.py MODE SHA256-HEX GENTIME OUTDIR` writes
/// OUTDIR/token.der and OUTDIR/trust.pem (what a verifier is told to trust).
const FORGE: &str = r#"
import datetime, hashlib, sys
from cryptography import x509
from cryptography.x509.oid import NameOID, ExtendedKeyUsageOID
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

mode, digest, gen, out = sys.argv[1], bytes.fromhex(sys.argv[2]), sys.argv[3], sys.argv[4]
def L(n):
    if n < 0x80: return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, 'big'); return bytes([0x80 | len(b)]) + b
def tlv(tag, c): return bytes([tag]) + L(len(c)) + c
def seq(*xs): return tlv(0x30, b''.join(xs))
def set_(*xs): return tlv(0x31, b''.join(sorted(xs)))
def oid(s):
    a = [int(x) for x in s.split('.')]; body = bytearray()
    for v in [a[0] * 40 + a[1]] + a[2:]:
        enc = [v & 0x7f]; v >>= 7
        while v: enc.append(0x80 | (v & 0x7f)); v >>= 7
        body += bytes(reversed(enc))
    return tlv(0x06, bytes(body))
def integer(n): return tlv(0x02, n.to_bytes(max(1, (n.bit_length() + 8) // 8), 'big', signed=True))
def octet(b): return tlv(0x04, b)
def ctx0(c): return tlv(0xa0, c)
SHA256 = '2.16.840.1.101.3.4.2.1'
def name(cn): return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
def der(c): return c.public_bytes(serialization.Encoding.DER)
def pem(c): return c.public_bytes(serialization.Encoding.PEM)
t0 = datetime.datetime.strptime(gen, '%Y%m%d%H%M%SZ').replace(tzinfo=datetime.timezone.utc)
day = datetime.timedelta(days=1)
ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
ca = (x509.CertificateBuilder().subject_name(name('hostile CA')).issuer_name(name('hostile CA'))
      .public_key(ca_key.public_key()).serial_number(1).not_valid_before(t0 - day)
      .not_valid_after(t0 + 3650 * day)
      .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
      .sign(ca_key, hashes.SHA256()))
not_after = t0 + datetime.timedelta(seconds=1) if mode == 'expires-after-gentime' else t0 + 3650 * day
b = (x509.CertificateBuilder().subject_name(name('hostile TSA')).issuer_name(name('hostile CA'))
     .public_key(key.public_key()).serial_number(2).not_valid_before(t0 - day)
     .not_valid_after(not_after)
     .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
     .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True))
if mode == 'key-usage-cert-sign':
    b = b.add_extension(x509.KeyUsage(False, False, False, False, False, True, False, False, False), critical=True)
tsa = b.sign(ca_key, hashes.SHA256())
other = (x509.CertificateBuilder().subject_name(name('other')).issuer_name(name('hostile CA'))
         .public_key(ec.generate_private_key(ec.SECP256R1()).public_key()).serial_number(3)
         .not_valid_before(t0 - day).not_valid_after(t0 + day).sign(ca_key, hashes.SHA256()))
tst = seq(integer(1), oid('2.999.3161.1'), seq(seq(oid(SHA256), b'\x05\x00'), octet(digest)),
          integer(7), tlv(0x18, gen.encode()), seq(integer(1)))
def attr(o, v): return seq(oid(o), set_(v))
v2 = lambda c: seq(seq(seq(octet(hashlib.sha256(der(c)).digest()))))
v1 = lambda c: seq(seq(seq(octet(hashlib.sha1(der(c)).digest()))))
attrs = [attr('1.2.840.113549.1.9.3', oid('1.2.840.113549.1.9.16.1.4')),
         attr('1.2.840.113549.1.9.4', octet(hashlib.sha256(tst).digest()))]
if mode == 'ess-v1-right-v2-wrong':
    attrs += [attr('1.2.840.113549.1.9.16.2.12', v1(tsa)), attr('1.2.840.113549.1.9.16.2.47', v2(other))]
else:
    attrs.append(attr('1.2.840.113549.1.9.16.2.47', v2(tsa)))
signed = set_(*attrs)
sig = key.sign(signed, ec.ECDSA(hashes.SHA256()))
si = seq(integer(1), seq(tsa.issuer.public_bytes(), integer(2)), seq(oid(SHA256)),
         b'\xa0' + signed[1:], seq(oid('1.2.840.10045.4.3.2')), octet(sig))
sd = seq(integer(3), set_(seq(oid(SHA256))),
         seq(oid('1.2.840.113549.1.9.16.1.4'), ctx0(octet(tst))), ctx0(der(tsa)), set_(si))
open(out + '/token.der', 'wb').write(seq(oid('1.2.840.113549.1.7.2'), ctx0(sd)))
open(out + '/trust.pem', 'wb').write(pem(tsa) if mode == 'trust-the-tsa-itself' else pem(ca))
"#;

/// A hand-made token over `anchor`'s head at its `sealed-at`, in `t/NAME/`: the anchor file
/// carrying it (`NAME/KEY.SEQ.NAME.anchor`) and the certificates to trust.
fn forged_anchor(t: &TestDir, anchor: &Path, mode: &str) -> (PathBuf, PathBuf) {
    let dir = t.join(mode);
    fs::create_dir_all(&dir).unwrap();
    let out = Command::new("python3")
        .arg("-c")
        .arg(FORGE)
        .arg(mode)
        .arg(field(anchor, "manifest-sha256"))
        .arg(head_sealed_at(anchor))
        .arg(&dir)
        .stdin(Stdio::null())
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "forge.py (needs PyPI's cryptography, scripts/test installs it): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = fs::read(dir.join("token.der")).unwrap();
    let forged = dir.join(format!(
        "{}.{}.{mode}.anchor",
        field(anchor, "key-id"),
        field(anchor, "sequence")
    ));
    with_token(anchor, &token, &forged);
    (forged, dir.join("trust.pem"))
}

// ---------------------------------------------------------------------------------------------
// callrec-seal --tsa

/// RFC 3161's `accuracy` is OPTIONAL. `TstInfo` reads it as `Option<Any>`, which takes *any*
/// next element: without an accuracy, the nonce is read as the accuracy and the token looks
/// like a replay. A TSA configured without accuracy can never anchor.
#[test]
fn hostile_anchors_a_token_without_accuracy_keeps_its_nonce() {
    let t = TestDir::new();
    let tsa = Tsa::start_with(Alg::EcP256);
    let config = fs::read_to_string(tsa.dir().join("openssl.cnf")).unwrap();
    let without: String = config
        .lines()
        .filter(|l| !l.starts_with("accuracy"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_ne!(
        without, config,
        "the harness's configuration has an accuracy"
    );
    let cnf = t.write("no-accuracy.cnf", without);
    let digest = [0x5a; 32];
    let nonce = 0x1234_5678_9abc_def0_u64;
    t.write("q.tsq", callrec::anchor::tsp::request(&digest, nonce));
    let out = Command::new("openssl")
        .args(["ts", "-reply", "-section", "tsa_ok", "-config"])
        .arg(&cnf)
        .args(["-queryfile", "q.tsq", "-out", "r.tsr"])
        .current_dir(t.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reply = fs::read(t.join("r.tsr")).unwrap();
    let text = Command::new("openssl")
        .args(["ts", "-reply", "-text", "-in", "r.tsr"])
        .current_dir(t.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("Accuracy: unspecified"), "{text}");
    assert!(text.contains("Nonce: 0x123456789ABCDEF0"), "{text}");
    if let Err(e) = callrec::anchor::tsp::token_from_reply(
        &reply,
        &digest,
        nonce,
        &callrec::anchor::tsp::TsaTrust::default(),
    ) {
        panic!("OpenSSL's token with the request's nonce, without accuracy, refused: {e}");
    }
}

/// The run's anchor goes where the seals went (`-o`), not into the first of the run's
/// directories in name order (here the input directory, `a-in` < `z-out`).
#[test]
fn hostile_anchors_the_runs_anchor_goes_to_the_output_directory() {
    let t = TestDir::new();
    let tsa = Tsa::start_with(Alg::EcP256);
    t.keygen("keys");
    wav(&t, "a-in/call.wav");
    seal_tsa(&t, "z-out", &tsa.url(), &["a-in"]);
    assert!(t.join("z-out/call.sealed.wav").exists());
    assert_eq!(
        anchors_in(&t.join("a-in")),
        Vec::<PathBuf>::new(),
        "the anchor went into the input directory"
    );
    assert_eq!(anchors_in(&t.join("z-out")).len(), 1);
}

/// Whoever answers at the TSA's URL (on plain HTTP, anyone on the path) can give a token that
/// is well formed but signed by a certificate no verifier trusts: callrec-seal writes it as an
/// anchor and records the head as anchored, so the real TSA is never asked for that head.
/// With the trusted TSA certificates known at sealing (CALLREC_TSA_CA), it must not count.
#[test]
fn hostile_anchors_an_untrusted_tsa_does_not_anchor_the_head() {
    let t = TestDir::new();
    let real = Tsa::start_with(Alg::EcP256);
    let rogue = Tsa::start_with(Alg::EcP256);
    t.keygen("keys");
    wav(&t, "in/call.wav");
    let trust = real.ca_pem().to_path_buf();
    run_ok(t.cmd("callrec-seal").env("CALLREC_TSA_CA", &trust).args([
        "-k",
        "keys",
        "-o",
        "out",
        "--tsa",
        &rogue.url(),
        "in/call.wav",
    ]));
    let (code, _, stderr) = run(t.cmd("callrec-seal").env("CALLREC_TSA_CA", &trust).args([
        "anchor",
        "-k",
        "keys",
        "-o",
        "out",
        "--tsa",
        &real.url(),
    ]));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        real.requests(),
        1,
        "the trusted TSA was not asked: the rogue's token counted ({stderr})"
    );
}

/// A TSA URL reqwest takes (a non-ASCII character, a space) is written into the anchor as
/// given, and the anchor's own reader refuses it: the head counts as anchored, yet every
/// verification of the set fails.
#[test]
fn hostile_anchors_an_anchor_seal_writes_is_one_verify_reads() {
    let t = TestDir::new();
    let tsa = Tsa::start_with(Alg::EcP256);
    t.keygen("keys");
    wav(&t, "in/call.wav");
    let url = format!("{}#zeitstempel-\u{e4}", tsa.url());
    seal_tsa(&t, "out", &url, &["in/call.wav"]);
    let mut anchors = anchors_in(&t.join("out"));
    anchors.extend(anchors_in(&t.join("in")));
    assert_eq!(anchors.len(), 1);
    let mut files = vec![t.join("out/call.sealed.wav")];
    files.extend(anchors);
    let (code, stderr) = verify(&t, tsa.ca_pem(), &files);
    assert_eq!(code, 0, "{stderr}");
}

/// A TSA URL with credentials (`https://user:password@tsa/...`, as paid TSAs use) goes into
/// every anchor file, so into the evidence handed to a court and its report.
#[test]
fn hostile_anchors_no_tsa_password_in_an_anchor() {
    let t = TestDir::new();
    let tsa = Tsa::start_with(Alg::EcP256);
    t.keygen("keys");
    wav(&t, "in/call.wav");
    let url = tsa.url().replace("http://", "http://alice:s3cret-pw@");
    seal_tsa(&t, "out", &url, &["in/call.wav"]);
    let mut anchors = anchors_in(&t.join("out"));
    anchors.extend(anchors_in(&t.join("in")));
    assert_eq!(anchors.len(), 1);
    let text = fs::read_to_string(&anchors[0]).unwrap();
    assert!(!text.contains("s3cret-pw"), "{text}");
}

/// `--timestamp each` with a TSA that accepts connections and never answers: every record
/// waits the whole timeout, one after another, so a run of N records takes N times 10 s.
#[test]
fn hostile_anchors_a_dead_tsa_costs_a_run_one_timeout() {
    let t = TestDir::new();
    let tsa = Tsa::start_with(Alg::EcP256);
    tsa.set_mode(Mode::Slow(Duration::from_secs(120)));
    t.keygen("keys");
    for i in 1..=3 {
        wav(&t, &format!("in/call-{i}.wav"));
    }
    let (code, _, stderr) = run(t.cmd("callrec-seal").args([
        "-k",
        "keys",
        "-o",
        "out",
        "-j",
        "1",
        "--timestamp",
        "each",
        "--tsa",
        &tsa.url(),
        "in",
    ]));
    assert_eq!(code, 0, "{stderr}");
    // Asked once: after it did not answer, the run asks it no more (each request would cost
    // the whole timeout).
    assert_eq!(tsa.requests(), 1, "{stderr}");
}

// ---------------------------------------------------------------------------------------------
// callrec-verify

/// An empty (or blank) --tsa-ca file panics in x509-cert's `load_pem_chain` (debug builds:
/// "attempt to subtract with overflow"), exit 101.
#[test]
fn hostile_anchors_an_empty_tsa_ca_file_is_an_error_not_a_crash() {
    let t = TestDir::new();
    t.keygen("keys");
    t.wav("call.wav");
    t.seal("keys", &["call.wav"]);
    for (name, bytes) in [("empty.pem", ""), ("blank.pem", "\n\n")] {
        t.write(name, bytes);
        let (code, _, stderr) = run(t.cmd("callrec-verify").args([
            "-p",
            "keys/seal.pub",
            "--tsa-ca",
            name,
            "call.sealed.wav",
        ]));
        assert_eq!(code, 2, "{name}: {stderr}");
        assert!(!stderr.contains("panicked"), "{name}: {stderr}");
    }
}

/// Two anchors of one key hold two different signed heads at one sequence: the key's chain
/// forked, and the verifier holds the proof. Here the records present start after that
/// sequence (so neither head is "present"), and the record after follows only one of them.
#[test]
fn hostile_anchors_two_anchored_heads_at_one_sequence_are_a_fork() {
    let t = TestDir::new();
    let tsa = Tsa::start_with(Alg::EcP256);
    t.keygen("keys");
    wav(&t, "in/c1.wav");
    tone(&t, "x/x.wav", 900);
    tone(&t, "y/y.wav", 700);
    tone(&t, "z/z.wav", 500);
    t.seal("keys", &["-o", "out", "in/c1.wav"]);
    let state = fs::read(t.join("keys/chain.state")).unwrap();
    // Sequence 2, twice: x, anchored; then, the state put back, y, anchored; z follows y.
    t.seal("keys", &["-o", "out-x", "x/x.wav"]);
    run_ok(
        t.cmd("callrec-seal")
            .args(["anchor", "-k", "keys", "-o", "ax", "--tsa", &tsa.url()]),
    );
    fs::write(t.join("keys/chain.state"), state).unwrap();
    t.seal("keys", &["-o", "out-y", "y/y.wav"]);
    run_ok(
        t.cmd("callrec-seal")
            .args(["anchor", "-k", "keys", "-o", "ay", "--tsa", &tsa.url()]),
    );
    t.seal("keys", &["-o", "out-y", "z/z.wav"]);
    let (ax, ay) = (anchors_in(&t.join("ax")), anchors_in(&t.join("ay")));
    assert_eq!((ax.len(), ay.len()), (1, 1));
    assert_eq!(field(&ax[0], "sequence"), "2");
    assert_eq!(field(&ay[0], "sequence"), "2");
    assert_ne!(
        field(&ax[0], "manifest-sha256"),
        field(&ay[0], "manifest-sha256")
    );
    let z = t.join("out-y/z.sealed.wav");
    for set in [
        vec![z.clone(), ax[0].clone(), ay[0].clone()],
        vec![z.clone(), ax[0].clone()],
    ] {
        let (code, stderr) = verify(&t, tsa.ca_pem(), &set);
        assert_eq!(code, 1, "{set:?}: {stderr}");
        assert!(stderr.contains("fork"), "{set:?}: {stderr}");
    }
}

/// callrec accepts these tokens; `openssl ts -verify` (and so the bundle's verify.sh) refuses
/// them. FORMAT.md section 11 says openssl "checks the token the same way".
/// * a TSA certificate whose key usage is keyCertSign alone (OpenSSL: a TSA key must allow
///   digitalSignature or nonRepudiation, and nothing else);
/// * a SignerInfo with both ESS attributes, v1 naming the signer and v2 another certificate
///   (OpenSSL checks both; callrec only the first in the set).
#[test]
fn hostile_anchors_callrec_refuses_what_openssl_refuses() {
    let t = TestDir::new();
    let tsa = Tsa::start_with(Alg::EcP256);
    let (sealed, anchor) = one_anchored(&t, &tsa);
    for mode in ["key-usage-cert-sign", "ess-v1-right-v2-wrong"] {
        let (forged, trust) = forged_anchor(&t, &anchor, mode);
        let token = t.write("token.der", B64.decode(field(&forged, "token")).unwrap());
        let openssl = Command::new("openssl")
            .args(["ts", "-verify", "-token_in", "-digest"])
            .arg(field(&forged, "manifest-sha256"))
            .arg("-in")
            .arg(&token)
            .arg("-CAfile")
            .arg(&trust)
            .output()
            .unwrap();
        assert!(!openssl.status.success(), "{mode}: openssl accepts it");
        let (code, stderr) = verify(&t, &trust, &[sealed.clone(), forged]);
        assert_eq!(code, 1, "{mode}: callrec-verify accepts it: {stderr}");
    }
}

// ---------------------------------------------------------------------------------------------
// The court bundle: what callrec-verify puts in a bundle, its verify.sh must pass.

/// A bundle of one anchor alone (the `--bundle` run exits 0), and its verify.sh reports a gap
/// "up to the anchored head": callrec checks the gap to an anchored head only for keys with a
/// sealed file in the set, verify.sh for every key.
#[test]
fn hostile_anchors_a_bundle_of_an_anchor_alone_passes_its_verify_sh() {
    let t = TestDir::new();
    let tsa = Tsa::start_with(Alg::EcP256);
    let (_, anchor) = one_anchored(&t, &tsa);
    let (code, _, stderr) = run(t
        .cmd("callrec-verify")
        .args(["-p", "keys/seal.pub", "--tsa-ca"])
        .arg(tsa.ca_pem())
        .args(["--bundle", "court"])
        .arg(&anchor));
    if code != 0 {
        return; // Refusing such a bundle is a fix too.
    }
    let (code, out) = verify_sh(&t.join("court"));
    assert_eq!(
        code, 0,
        "callrec bundled it, its verify.sh refuses it:\n{out}{stderr}"
    );
}

/// callrec checks the TSA certificate at the stamped time (FORMAT.md section 11); verify.sh's
/// `openssl ts -verify` checks it now. Once the TSA's certificate has expired (years before a
/// case ends), every bundle's verify.sh fails. `-attime` (the TSA's time) fixes it.
#[test]
fn hostile_anchors_verify_sh_passes_after_the_tsa_certificate_expired() {
    let t = TestDir::new();
    let tsa = Tsa::start_with(Alg::EcP256);
    let (sealed, anchor) = one_anchored(&t, &tsa);
    // The TSA certificate ends one second after the stamped time (the head's sealed-at).
    let (forged, trust) = forged_anchor(&t, &anchor, "expires-after-gentime");
    std::thread::sleep(Duration::from_millis(2500));
    let (code, stderr) = verify(&t, &trust, &[sealed.clone(), forged.clone()]);
    assert_eq!(code, 0, "callrec-verify: {stderr}");
    let (code, _, stderr) = run(t
        .cmd("callrec-verify")
        .args(["-p", "keys/seal.pub", "--tsa-ca"])
        .arg(&trust)
        .args(["--bundle", "court"])
        .arg(&sealed)
        .arg(&forged));
    assert_eq!(code, 0, "{stderr}");
    let (code, out) = verify_sh(&t.join("court"));
    assert_eq!(
        code, 0,
        "callrec bundled it, its verify.sh refuses it:\n{out}"
    );
}

/// `--tsa-ca` may be "a TSA's root or its own certificate" (callrec-verify --help); with the
/// TSA's own certificate, `openssl ts -verify -CAfile` finds no root and verify.sh fails.
/// `-partial_chain` fixes it.
#[test]
fn hostile_anchors_verify_sh_trusts_a_tsa_certificate_as_callrec_does() {
    let t = TestDir::new();
    let tsa = Tsa::start_with(Alg::EcP256);
    let (sealed, anchor) = one_anchored(&t, &tsa);
    let (forged, trust) = forged_anchor(&t, &anchor, "trust-the-tsa-itself");
    let (code, _, stderr) = run(t
        .cmd("callrec-verify")
        .args(["-p", "keys/seal.pub", "--tsa-ca"])
        .arg(&trust)
        .args(["--bundle", "court"])
        .arg(&sealed)
        .arg(&forged));
    assert_eq!(code, 0, "{stderr}");
    let (code, out) = verify_sh(&t.join("court"));
    assert_eq!(
        code, 0,
        "callrec bundled it, its verify.sh refuses it:\n{out}"
    );
}
