//! The test timestamp authority itself (tests/tsa.rs): its tokens verify with OpenSSL and with
//! rfc3161-client, each fault fails as it should, and dropping it leaves nothing behind.

use std::fs;
use std::io::ErrorKind;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::tsa::*;

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The digest of a message that is different for each call.
fn digest(name: &str) -> String {
    sha256_hex(format!("{name} {:?}", Instant::now()).as_bytes())
}

/// Post a fresh query for `hex` and save the 200 reply; returns its path.
fn stamp(tsa: &Tsa, hex: &str, out: &Path) -> PathBuf {
    let (status, reply) = post(&tsa.url(), &query(hex, true)).expect("post");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&reply));
    fs::write(out, &reply).unwrap();
    out.to_path_buf()
}

fn reply_text(reply: &Path) -> String {
    let out = Command::new("openssl")
        .args(["ts", "-reply", "-text", "-in"])
        .arg(reply)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn tsa_harness_rsa_reply_over_curl_verifies_with_openssl_and_rfc3161_client() {
    let tsa = Tsa::start();
    assert_eq!(tsa.alg(), Alg::Rsa2048);
    assert!(tsa.url().starts_with("http://127.0.0.1:"));
    assert!(tsa.url().ends_with(&format!(":{}/tsa", tsa.port())));
    let hex = digest("rsa");
    fs::write(tsa.dir().join("my.tsq"), query(&hex, true)).unwrap();
    let reply = tsa.dir().join("my.tsr");
    let out = Command::new("curl")
        .args(["-sS", "-H", "Content-Type: application/timestamp-query"])
        .args(["--data-binary", "@my.tsq", "-o", "my.tsr"])
        .args(["-w", "%{http_code} %{content_type}"])
        .arg(tsa.url())
        .current_dir(tsa.dir())
        .output()
        .expect("curl must be installed (scripts/setup)");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "200 application/timestamp-reply",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(tsa.requests(), 1);
    let request = tsa.last_request().unwrap();
    assert_eq!(
        (request.method.as_str(), request.path.as_str()),
        ("POST", "/tsa")
    );
    assert_eq!(
        request.header("Content-Type"),
        Some("application/timestamp-query")
    );
    assert_eq!(request.body, fs::read(tsa.dir().join("my.tsq")).unwrap());

    // The whole reply and the bare token both verify, with both verifiers.
    openssl_verify_result(&reply, &hex, tsa.ca_pem()).unwrap();
    pyverify_result(&reply, &hex, tsa.ca_pem()).unwrap();
    let token = tsa.dir().join("my.token");
    fs::write(&token, token_of(&fs::read(&reply).unwrap())).unwrap();
    assert!(openssl_verify(&token, &hex, tsa.ca_pem()));
    assert!(pyverify(&token, &hex, tsa.ca_pem()));

    // Its details, as the module documents them.
    let text = reply_text(&reply);
    for line in [
        "Status: Granted.",
        &format!("Policy OID: {POLICY}"),
        "Hash Algorithm: sha256",
        "Accuracy: 0x01 seconds, 0x01F4 millis, 0x64 micros",
        "Ordering: no",
        "TSA: DirName:/C=ZZ/O=callrec tests/OU=RFC 3161 timestamping/CN=callrec test TSA",
    ] {
        assert!(text.contains(line), "no {line:?} in {text}");
    }
    assert!(text.contains("Nonce: 0x"), "{text}");
    let time = token_time(&token);
    assert_eq!(time, token_time(&reply));
    assert!(
        time.ends_with(" GMT") && time.len() == "Nov 28 12:43:28 2026 GMT".len(),
        "{time}"
    );
    // The TSA certificate only: certReq and no `certs`.
    let der = fs::read(&token).unwrap();
    assert_eq!(token_certs(&der), vec![pem_to_der(tsa.tsa_cert_pem())]);
    let dump = Command::new("openssl")
        .args(["asn1parse", "-inform", "DER", "-in"])
        .arg(&token)
        .output()
        .unwrap();
    let dump = String::from_utf8_lossy(&dump.stdout);
    for part in [
        "id-smime-aa-signingCertificateV2",
        "signingTime",
        ":rsaEncryption",
    ] {
        assert!(dump.contains(part), "no {part} in {dump}");
    }
}

#[test]
fn tsa_harness_ec_with_the_ca_embedded_verifies_and_keeps_openssls_order() {
    let tsa = Tsa::start_opts(Options {
        alg: Alg::EcP256,
        embed_ca: true,
    });
    let hex = digest("ec");
    let reply = stamp(&tsa, &hex, &tsa.dir().join("ec.tsr"));
    assert!(openssl_verify(&reply, &hex, tsa.ca_pem()));
    assert!(pyverify(&reply, &hex, tsa.ca_pem()));
    let certs = token_certs(&fs::read(&reply).unwrap());
    let (tsa_der, ca_der) = (pem_to_der(tsa.tsa_cert_pem()), pem_to_der(tsa.ca_pem()));
    assert_eq!(certs, vec![tsa_der, ca_der]);
    assert!(
        certs[0] > certs[1],
        "signer first: not DER's order of a SET OF"
    );
    // Trusting the TSA's own certificate is not trusting its CA: a CA of another TSA fails.
    let other = Tsa::start_with(Alg::EcP256);
    assert!(!openssl_verify(&reply, &hex, other.ca_pem()));
    assert!(!pyverify(&reply, &hex, other.ca_pem()));
}

#[test]
fn tsa_harness_wrong_hash_fails_both_and_only_for_the_hash() {
    let tsa = Tsa::start_with(Alg::EcP256);
    tsa.set_mode(Mode::WrongHash);
    let hex = digest("wrong");
    let reply = stamp(&tsa, &hex, &tsa.dir().join("wrong.tsr"));
    let openssl = openssl_verify_result(&reply, &hex, tsa.ca_pem()).unwrap_err();
    assert!(openssl.contains("message imprint mismatch"), "{openssl}");
    let python = pyverify_result(&reply, &hex, tsa.ca_pem()).unwrap_err();
    assert!(python.contains("Mismatch between messages"), "{python}");
    // It is a good token of the digest with its first byte flipped.
    let mut flipped = hex::decode(&hex).unwrap();
    flipped[0] ^= 0xff;
    assert!(openssl_verify(&reply, &hex::encode(&flipped), tsa.ca_pem()));
    assert!(pyverify(&reply, &hex::encode(&flipped), tsa.ca_pem()));
}

fn bad_signature_fails_both(alg: Alg) {
    let tsa = Tsa::start_with(alg);
    let hex = digest("bad");
    let good = stamp(&tsa, &hex, &tsa.dir().join("good.tsr"));
    tsa.set_mode(Mode::BadSignature);
    let bad = stamp(&tsa, &hex, &tsa.dir().join("bad.tsr"));
    assert!(openssl_verify(&good, &hex, tsa.ca_pem()) && pyverify(&good, &hex, tsa.ca_pem()));
    let openssl = openssl_verify_result(&bad, &hex, tsa.ca_pem()).unwrap_err();
    assert!(openssl.contains("signature failure"), "{alg:?}: {openssl}");
    let python = pyverify_result(&bad, &hex, tsa.ca_pem()).unwrap_err();
    assert!(
        python.contains("Unable to verify pkcs7 signature"),
        "{alg:?}: {python}"
    );
    assert_eq!(tsa.requests(), 2);
}

#[test]
fn tsa_harness_bad_signature_fails_both_rsa() {
    bad_signature_fails_both(Alg::Rsa2048);
}

#[test]
fn tsa_harness_bad_signature_fails_both_ec() {
    bad_signature_fails_both(Alg::EcP256);
}

#[test]
fn tsa_harness_down_refuses_connections_and_comes_back_on_the_same_port() {
    let tsa = Tsa::start_with(Alg::EcP256);
    tsa.set_mode(Mode::Down);
    let err = TcpStream::connect(("127.0.0.1", tsa.port())).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
    let err = post(&tsa.url(), &query(&digest("down"), true)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
    assert_eq!(tsa.requests(), 0);
    tsa.set_mode(Mode::Ok);
    let hex = digest("up");
    let reply = stamp(&tsa, &hex, &tsa.dir().join("up.tsr"));
    assert!(openssl_verify(&reply, &hex, tsa.ca_pem()));
    assert_eq!(tsa.requests(), 1);
}

#[test]
fn tsa_harness_http_errors_500_slow_and_openssls_rejections() {
    let tsa = Tsa::start_with(Alg::EcP256);
    let hex = digest("faults");
    tsa.set_mode(Mode::Http500);
    assert_eq!(post(&tsa.url(), &query(&hex, true)).unwrap().0, 500);

    tsa.set_mode(Mode::Slow(Duration::from_millis(300)));
    let started = Instant::now();
    let reply = stamp(&tsa, &hex, &tsa.dir().join("slow.tsr"));
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(openssl_verify(&reply, &hex, tsa.ca_pem()));

    // A real rejection: status 2, badAlg, no token.
    tsa.set_mode(Mode::Reject);
    let rejected = stamp(&tsa, &hex, &tsa.dir().join("rejected.tsr"));
    let text = reply_text(&rejected);
    assert!(text.contains("Status: Rejected."), "{text}");
    assert!(
        text.contains("unrecognized or unsupported algorithm"),
        "{text}"
    );
    assert!(!openssl_verify(&rejected, &hex, tsa.ca_pem()));
    assert!(!pyverify(&rejected, &hex, tsa.ca_pem()));

    // A request that is not a TimeStampReq gets OpenSSL's own rejection, as a TSA answers.
    tsa.set_mode(Mode::Ok);
    let (status, garbage) = post(&tsa.url(), b"not DER").unwrap();
    assert_eq!(status, 200);
    fs::write(tsa.dir().join("garbage.tsr"), garbage).unwrap();
    let text = reply_text(&tsa.dir().join("garbage.tsr"));
    assert!(
        text.contains("the data submitted has the wrong format"),
        "{text}"
    );

    // HTTP that is not a timestamp query: curl's default content type, another path, GET.
    let code = |args: &[&str], url: &str| {
        let out = Command::new("curl")
            .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}"])
            .args(args)
            .arg(url)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(code(&["--data-binary", "x"], &tsa.url()), "415");
    let elsewhere = tsa.url().replace("/tsa", "/other");
    assert_eq!(code(&["--data-binary", "x"], &elsewhere), "404");
    assert_eq!(code(&[], &tsa.url()), "405");
    assert_eq!(tsa.requests(), 7);
    assert_eq!(tsa.last_request().unwrap().method, "GET");
}

/// The processes that run in `dir` or name it on their command line.
fn processes_in(dir: &Path) -> Vec<String> {
    let needle = dir.to_str().unwrap();
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let cwd = fs::read_link(entry.path().join("cwd")).unwrap_or_default();
        let cmdline = fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cwd.to_string_lossy().starts_with(needle) || cmdline.contains(needle) {
            found.push(cmdline);
        }
    }
    found
}

#[test]
fn tsa_harness_drop_stops_everything_and_closes_the_port() {
    let tsa = Tsa::start_with(Alg::EcP256);
    let (url, port, dir) = (tsa.url(), tsa.port(), tsa.dir().to_path_buf());
    tsa.set_mode(Mode::Slow(Duration::from_secs(30)));
    let body = query(&digest("drop"), true);
    let client = std::thread::spawn(move || post(&url, &body));
    let deadline = Instant::now() + Duration::from_secs(5);
    while tsa.requests() == 0 {
        assert!(Instant::now() < deadline, "the request did not arrive");
        std::thread::sleep(Duration::from_millis(5));
    }
    let started = Instant::now();
    drop(tsa);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "drop waited for the slow answer"
    );
    // The waiting client gets no answer; nothing listens; nothing of it runs; its files are gone.
    assert!(client.join().unwrap().is_err());
    let err = TcpStream::connect(("127.0.0.1", port)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
    let left = processes_in(&dir);
    assert!(left.is_empty(), "still running: {left:?}");
    assert!(!dir.exists());
}
