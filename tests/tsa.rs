//! A real RFC 3161 timestamp authority on loopback, for the anchor (`--tsa`) tests.
//!
//! The authority is OpenSSL's own: every request is answered by `openssl ts -reply`, run on the
//! request's exact bytes, with a test CA and a TSA certificate that `openssl` makes afresh for each
//! [`Tsa`]. In front of it is a minimal HTTP/1.1 server (std only: a `TcpListener` and a thread,
//! one thread per connection, one request per connection, `Connection: close`):
//!
//! * `POST /tsa` with `Content-Type: application/timestamp-query` and a `Content-Length` body is
//!   answered `200` with `Content-Type: application/timestamp-reply` and the DER TimeStampResp
//!   that OpenSSL made. A request OpenSSL cannot parse gets OpenSSL's own rejection (status 2,
//!   `badDataFormat`), still `200`, as real TSAs do. Another path is `404`, another method `405`,
//!   another content type `415`, no `Content-Length` `411`, a body over 1 MiB `413`.
//! * [`Tsa::set_mode`] turns on a fault: [`Mode::Down`] closes the listening socket (connections
//!   are refused; the next other mode listens again on the same port), [`Mode::Http500`],
//!   [`Mode::Slow`], [`Mode::WrongHash`] (OpenSSL stamps the request with the first byte of its
//!   hash flipped: nonce and everything else as asked), [`Mode::BadSignature`] (a byte of the
//!   SignerInfo's signature flipped after OpenSSL signed), [`Mode::Reject`] (OpenSSL's real
//!   rejection, status 2 `badAlg`, from a TSA configured for SHA-512 only).
//!
//! The tokens are real RFC 3161 / RFC 5816 tokens, as `openssl ts` makes them (OpenSSL 3.0):
//! * SignedData v3, one SignerInfo v1 (sid = issuerAndSerialNumber), digestAlgorithm SHA-256;
//!   signatureAlgorithm `rsaEncryption` (1.2.840.113549.1.1.1, PKCS #1 v1.5, *not*
//!   sha256WithRSAEncryption) for [`Alg::Rsa2048`], `ecdsa-with-SHA256` for [`Alg::EcP256`].
//! * signedAttrs (DER-sorted): contentType = id-ct-TSTInfo, signingTime, messageDigest, and
//!   signingCertificateV2 (RFC 5035) holding one ESSCertIDv2 with only `certHash` = SHA-256 of the
//!   TSA certificate's DER: hashAlgorithm is omitted (DEFAULT sha256), and so is issuerSerial.
//! * TSTInfo: version 1, policy [`POLICY`], the request's imprint and nonce, serial numbers from
//!   2 up, genTime in whole seconds (`YYYYMMDDhhmmssZ`), accuracy 1 s 500 ms 100 µs, ordering
//!   absent (false), `tsa` = [4] directoryName of the TSA certificate's subject.
//! * certificates: the TSA certificate when the request has certReq (and none otherwise); with
//!   [`Options::embed_ca`] the CA certificate too (OpenSSL's `certs`). OpenSSL writes that field
//!   in insertion order, signer first, which is *not* DER's sorted SET OF: the TSA certificate is
//!   made longer than the CA's, so such a token is always unsorted. Strict DER parsers refuse it
//!   (rust-asn1, and so PyPI's `rfc3161-client`); RustCrypto's `der` 0.7 sorts on decode.
//! * The TSA certificate (serial 2, issued by the CA): basicConstraints critical CA:FALSE,
//!   keyUsage critical digitalSignature+nonRepudiation, extendedKeyUsage critical timeStamping,
//!   SKI, AKI; valid from its making for 30 days. The CA: self-signed, basicConstraints critical
//!   CA:TRUE, keyUsage critical keyCertSign+cRLSign.
//!
//! Independent checks of a token (each takes a TimeStampResp or a bare TimeStampToken, DER):
//! [`openssl_verify`] (`openssl ts -verify`) and [`pyverify`] (PyPI's `rfc3161-client`, which
//! scripts/test installs), with `_result` forms that say why a token failed.
//!
//! ```ignore
//! let tsa = Tsa::start();
//! t.cmd("callrec-seal").args(["--tsa", &tsa.url()]) ...;
//! assert!(openssl_verify(&token, &sha256_hex, tsa.ca_pem()));
//! tsa.set_mode(Mode::Down);
//! ```
//!
//! Dropping a [`Tsa`] closes the port, stops every thread (a slow answer is abandoned), waits for
//! any `openssl` child, and removes its directory.

use std::fs;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// The TSA policy OID of every token (under 2.999, the arc X.660 keeps for examples).
pub const POLICY: &str = "2.999.3161.1";

/// The key type of the CA and of the TSA.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alg {
    /// RSA 2048, signatures PKCS #1 v1.5 with SHA-256 (what public TSAs use).
    Rsa2048,
    /// ECDSA P-256 with SHA-256 (keys made in milliseconds).
    EcP256,
}

/// How a [`Tsa`] is made.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    pub alg: Alg,
    /// Put the CA certificate in every token as well (OpenSSL's `certs`), after the TSA's.
    pub embed_ca: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            alg: Alg::Rsa2048,
            embed_ca: false,
        }
    }
}

/// How the server answers from now on (see the module's documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Ok,
    Down,
    Http500,
    Slow(Duration),
    WrongHash,
    BadSignature,
    Reject,
}

/// One HTTP request as the server read it.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    pub path: String,
    /// Header names in lower case, values trimmed, in the order sent.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// The first header of that name (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

struct Shared {
    dir: PathBuf,
    port: u16,
    mode: Mutex<Mode>,
    listener: Mutex<Option<TcpListener>>,
    stop: AtomicBool,
    count: AtomicUsize,
    last: Mutex<Option<Request>>,
    /// One `openssl ts -reply` at a time: it reads and rewrites the serial file.
    openssl: Mutex<()>,
}

/// A running timestamp authority; see the module's documentation.
pub struct Tsa {
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
    ca: PathBuf,
    cert: PathBuf,
    alg: Alg,
    dir: Option<tempfile::TempDir>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Run openssl (no standard input) and panic, with its error output, unless it succeeds.
fn openssl_ok(dir: &Path, args: &[&str]) -> Output {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("openssl must be installed (scripts/setup)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn config(dir: &Path, embed_ca: bool) -> String {
    let d = dir.display();
    let certs = if embed_ca {
        "certs = $dir/ca.pem\n"
    } else {
        ""
    };
    format!(
        "# openssl req / x509 / ts configuration of a test timestamp authority.\n\
         [req]\n\
         distinguished_name = req_dn\n\
         [req_dn]\n\
         [ca_ext]\n\
         basicConstraints = critical,CA:TRUE\n\
         keyUsage = critical,keyCertSign,cRLSign\n\
         subjectKeyIdentifier = hash\n\
         authorityKeyIdentifier = keyid:always\n\
         [tsa_ext]\n\
         basicConstraints = critical,CA:FALSE\n\
         keyUsage = critical,digitalSignature,nonRepudiation\n\
         extendedKeyUsage = critical,timeStamping\n\
         subjectKeyIdentifier = hash\n\
         authorityKeyIdentifier = keyid\n\
         [tsa]\n\
         default_tsa = tsa_ok\n\
         [tsa_ok]\n\
         dir = {d}\n\
         serial = $dir/serial\n\
         crypto_device = builtin\n\
         signer_cert = $dir/tsa.pem\n\
         signer_key = $dir/tsa.key\n\
         signer_digest = sha256\n\
         {certs}\
         default_policy = {POLICY}\n\
         other_policies = 2.999.3161.2\n\
         digests = sha256, sha384, sha512\n\
         accuracy = secs:1, millisecs:500, microsecs:100\n\
         clock_precision_digits = 0\n\
         ordering = no\n\
         tsa_name = yes\n\
         ess_cert_id_chain = no\n\
         ess_cert_id_alg = sha256\n\
         [tsa_reject]\n\
         dir = {d}\n\
         serial = $dir/serial\n\
         crypto_device = builtin\n\
         signer_cert = $dir/tsa.pem\n\
         signer_key = $dir/tsa.key\n\
         signer_digest = sha256\n\
         default_policy = {POLICY}\n\
         digests = sha512\n\
         ess_cert_id_alg = sha256\n"
    )
}

impl Tsa {
    /// RSA 2048, tokens with the TSA certificate only.
    pub fn start() -> Tsa {
        Tsa::start_opts(Options::default())
    }

    pub fn start_with(alg: Alg) -> Tsa {
        Tsa::start_opts(Options {
            alg,
            ..Options::default()
        })
    }

    /// A new CA and TSA certificate, serving on 127.0.0.1 at a port of the system's choice.
    pub fn start_opts(opts: Options) -> Tsa {
        let tmp = tempfile::Builder::new()
            .prefix("callrec-tsa-")
            .tempdir()
            .expect("temp dir");
        let dir = tmp.path().to_path_buf();
        fs::write(dir.join("openssl.cnf"), config(&dir, opts.embed_ca)).unwrap();
        fs::write(dir.join("serial"), "01\n").unwrap();
        // The two keys at once: RSA key generation takes a few hundred milliseconds.
        let keygen: Vec<_> = ["ca.key", "tsa.key"]
            .iter()
            .map(|key| {
                let mut cmd = Command::new("openssl");
                cmd.arg("genpkey");
                match opts.alg {
                    Alg::Rsa2048 => cmd
                        .args(["-algorithm", "RSA", "-pkeyopt"])
                        .arg("rsa_keygen_bits:2048"),
                    Alg::EcP256 => cmd
                        .args(["-algorithm", "EC", "-pkeyopt"])
                        .arg("ec_paramgen_curve:P-256"),
                };
                cmd.args(["-out", key])
                    .current_dir(&dir)
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("openssl must be installed (scripts/setup)")
            })
            .collect();
        for child in keygen {
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "openssl genpkey: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let make = |words: &str, subject: Option<&str>| {
            let mut args: Vec<&str> = words.split_whitespace().collect();
            args.extend(subject.map(|s| ["-subj", s]).into_iter().flatten());
            openssl_ok(&dir, &args);
        };
        make(
            "req -config openssl.cnf -new -x509 -key ca.key -days 30 -sha256 -extensions ca_ext \
             -out ca.pem",
            Some("/O=callrec tests/CN=callrec test CA"),
        );
        // A long subject makes the TSA certificate longer than the CA's, so that OpenSSL's
        // signer-first order of an embedded chain is always the unsorted one (see above).
        make(
            "req -config openssl.cnf -new -key tsa.key -out tsa.csr",
            Some("/C=ZZ/O=callrec tests/OU=RFC 3161 timestamping/CN=callrec test TSA"),
        );
        make(
            "x509 -req -in tsa.csr -CA ca.pem -CAkey ca.key -set_serial 2 -days 30 -sha256 \
             -extfile openssl.cnf -extensions tsa_ext -out tsa.pem",
            None,
        );
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Shared {
            dir: dir.clone(),
            port,
            mode: Mutex::new(Mode::Ok),
            listener: Mutex::new(Some(listener)),
            stop: AtomicBool::new(false),
            count: AtomicUsize::new(0),
            last: Mutex::new(None),
            openssl: Mutex::new(()),
        });
        let accept = {
            let shared = shared.clone();
            thread::Builder::new()
                .name("tsa-accept".into())
                .spawn(move || accept_loop(shared))
                .unwrap()
        };
        Tsa {
            shared,
            accept: Some(accept),
            ca: dir.join("ca.pem"),
            cert: dir.join("tsa.pem"),
            alg: opts.alg,
            dir: Some(tmp),
        }
    }

    /// `http://127.0.0.1:PORT/tsa`
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/tsa", self.shared.port)
    }

    pub fn port(&self) -> u16 {
        self.shared.port
    }

    pub fn alg(&self) -> Alg {
        self.alg
    }

    /// Its directory (keys, certificates, openssl.cnf, each query and reply); removed on drop.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// The CA certificate (PEM): what a verifier trusts (`--tsa-ca`).
    pub fn ca_pem(&self) -> &Path {
        &self.ca
    }

    /// The TSA's certificate (PEM), the one in its tokens.
    pub fn tsa_cert_pem(&self) -> &Path {
        &self.cert
    }

    /// How many HTTP requests it has read in full, in any mode but `Down`, whatever it answered
    /// and whether or not the answer reached the client (counted before answering).
    pub fn requests(&self) -> usize {
        self.shared.count.load(Ordering::SeqCst)
    }

    /// The last request it read in full.
    pub fn last_request(&self) -> Option<Request> {
        lock(&self.shared.last).clone()
    }

    /// Takes effect for requests read from now on; `Down` closes the port before returning, and
    /// any other mode after `Down` listens again on the same port before returning.
    pub fn set_mode(&self, mode: Mode) {
        *lock(&self.shared.mode) = mode;
        let mut listener = lock(&self.shared.listener);
        if mode == Mode::Down {
            *listener = None;
        } else if listener.is_none() {
            let l = TcpListener::bind(("127.0.0.1", self.shared.port)).expect("listen again");
            l.set_nonblocking(true).unwrap();
            *listener = Some(l);
        }
    }
}

impl Drop for Tsa {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        *lock(&self.shared.listener) = None;
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
        drop(self.dir.take());
    }
}

fn accept_loop(shared: Arc<Shared>) {
    let mut handlers: Vec<JoinHandle<()>> = Vec::new();
    while !shared.stop.load(Ordering::SeqCst) {
        let accepted = match lock(&shared.listener).as_ref() {
            Some(l) => l.accept().ok(),
            None => None,
        };
        match accepted {
            Some((stream, _)) => {
                let shared = shared.clone();
                handlers.push(
                    thread::Builder::new()
                        .name("tsa-conn".into())
                        .spawn(move || {
                            let _ = serve(&shared, stream);
                        })
                        .unwrap(),
                );
            }
            None => thread::sleep(Duration::from_millis(2)),
        }
        handlers.retain(|h| !h.is_finished());
    }
    for h in handlers {
        let _ = h.join();
    }
}

/// Read into `buf` until `done` says so, giving up when the server stops or after 10 s.
fn read_until(
    shared: &Shared,
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    done: impl Fn(&[u8]) -> bool,
) -> io::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut chunk = [0u8; 8192];
    while !done(buf) {
        if shared.stop.load(Ordering::SeqCst) || Instant::now() > deadline {
            return Err(io::ErrorKind::TimedOut.into());
        }
        match stream.read(&mut chunk) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn respond(
    stream: &mut TcpStream,
    status: &str,
    content_type: &str,
    body: &[u8],
) -> io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()?;
    let _ = stream.shutdown(Shutdown::Write);
    Ok(())
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

const MAX_BODY: usize = 1 << 20;

/// One connection: one request, one answer.
fn serve(shared: &Shared, mut stream: TcpStream) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_millis(50)))?;
    let mut buf = Vec::new();
    read_until(shared, &mut stream, &mut buf, |b| {
        find(b, b"\r\n\r\n").is_some() || b.len() > 64 * 1024
    })?;
    let Some(end) = find(&buf, b"\r\n\r\n") else {
        return respond(
            &mut stream,
            "431 Request Header Fields Too Large",
            "text/plain",
            b"",
        );
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or("").split(' ');
    let method = first.next().unwrap_or("").to_string();
    let path = first.next().unwrap_or("").to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let length = match header("content-length").map(|v| v.parse::<usize>()) {
        Some(Ok(n)) => Some(n),
        Some(Err(_)) => {
            return respond(&mut stream, "400 Bad Request", "text/plain", b"bad length")
        }
        None => None,
    };
    if method == "POST" {
        let Some(length) = length else {
            return respond(&mut stream, "411 Length Required", "text/plain", b"");
        };
        if length > MAX_BODY {
            return respond(&mut stream, "413 Content Too Large", "text/plain", b"");
        }
        if header("expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue")) {
            stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        }
        let want = end + 4 + length;
        read_until(shared, &mut stream, &mut buf, |b| b.len() >= want)?;
        buf.truncate(want);
    }
    let body = buf.split_off((end + 4).min(buf.len()));
    let mode = *lock(&shared.mode);
    shared.count.fetch_add(1, Ordering::SeqCst);
    let content_type = header("content-type");
    *lock(&shared.last) = Some(Request {
        method: method.clone(),
        path: path.clone(),
        headers: headers.clone(),
        body: body.clone(),
    });
    if path != "/tsa" {
        return respond(&mut stream, "404 Not Found", "text/plain", b"not found");
    }
    if method != "POST" {
        return respond(
            &mut stream,
            "405 Method Not Allowed",
            "text/plain",
            b"POST only",
        );
    }
    if content_type.as_deref() != Some("application/timestamp-query") {
        return respond(&mut stream, "415 Unsupported Media Type", "text/plain", b"");
    }
    if let Mode::Slow(delay) = mode {
        let until = Instant::now() + delay;
        while Instant::now() < until {
            if shared.stop.load(Ordering::SeqCst) {
                return Ok(());
            }
            thread::sleep(Duration::from_millis(5).min(until - Instant::now()));
        }
    }
    if mode == Mode::Http500 {
        return respond(
            &mut stream,
            "500 Internal Server Error",
            "text/plain",
            b"TSA failure",
        );
    }
    let mut query = body;
    if mode == Mode::WrongHash {
        if let Some(hash) = query_imprint(&query) {
            query[hash.start] ^= 0xff;
        }
    }
    let section = if mode == Mode::Reject {
        "tsa_reject"
    } else {
        "tsa_ok"
    };
    let reply = {
        let _one = lock(&shared.openssl);
        let n = shared.count.load(Ordering::SeqCst);
        let (q, r) = (format!("query-{n}.tsq"), format!("reply-{n}.tsr"));
        fs::write(shared.dir.join(&q), &query)?;
        let _ = fs::remove_file(shared.dir.join(&r));
        let out = Command::new("openssl")
            .args([
                "ts",
                "-reply",
                "-config",
                "openssl.cnf",
                "-section",
                section,
            ])
            .args(["-queryfile", &q, "-out", &r])
            .current_dir(&shared.dir)
            .stdin(Stdio::null())
            .output()?;
        match fs::read(shared.dir.join(&r)) {
            Ok(reply) if out.status.success() => reply,
            _ => {
                let msg = String::from_utf8_lossy(&out.stderr).into_owned();
                return respond(
                    &mut stream,
                    "500 Internal Server Error",
                    "text/plain",
                    msg.as_bytes(),
                );
            }
        }
    };
    let mut reply = reply;
    if mode == Mode::BadSignature {
        if let Some(sig) = signature(&reply) {
            reply[sig.end - 1] ^= 0xff;
        }
    }
    respond(&mut stream, "200 OK", "application/timestamp-reply", &reply)
}

// A few DER walks: enough to find the fields the faults touch, no more.

/// One DER element in a buffer: its tag, where it starts, and its content.
#[derive(Clone, Debug)]
struct Tlv {
    tag: u8,
    start: usize,
    body: Range<usize>,
}

fn tlv(buf: &[u8], at: usize) -> Option<Tlv> {
    let tag = *buf.get(at)?;
    let first = *buf.get(at + 1)? as usize;
    let (len, head) = if first < 0x80 {
        (first, 2)
    } else {
        let n = first & 0x7f;
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | *buf.get(at + 2 + i)? as usize;
        }
        (len, 2 + n)
    };
    let body = at + head..at + head + len;
    (body.end <= buf.len()).then_some(Tlv {
        tag,
        start: at,
        body,
    })
}

fn children(buf: &[u8], parent: &Tlv) -> Option<Vec<Tlv>> {
    let mut kids = Vec::new();
    let mut at = parent.body.start;
    while at < parent.body.end {
        let kid = tlv(buf, at)?;
        at = kid.body.end;
        kids.push(kid);
    }
    (at == parent.body.end).then_some(kids)
}

fn der_len(len: usize) -> Vec<u8> {
    if len < 0x80 {
        vec![len as u8]
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        let mut out = vec![0x80 | bytes.len() as u8];
        out.extend(bytes);
        out
    }
}

/// The hashedMessage bytes of a TimeStampReq.
fn query_imprint(req: &[u8]) -> Option<Range<usize>> {
    let top = tlv(req, 0)?;
    let imprint = children(req, &top)?.into_iter().nth(1)?;
    let hash = children(req, &imprint)?.into_iter().nth(1)?;
    (hash.tag == 0x04).then_some(hash.body)
}

/// The TimeStampToken (a ContentInfo) in a TimeStampResp or in a bare token: where it lies.
fn token_range(der: &[u8]) -> Option<Range<usize>> {
    let top = tlv(der, 0)?;
    let kids = children(der, &top)?;
    match kids.first()?.tag {
        0x06 => Some(top.start..top.body.end),
        0x30 => kids.get(1).map(|t| t.start..t.body.end),
        _ => None,
    }
}

/// Whether DER is a TimeStampResp (rather than a bare TimeStampToken).
fn is_response(der: &[u8]) -> bool {
    tlv(der, 0)
        .and_then(|top| children(der, &top))
        .and_then(|kids| kids.first().map(|k| k.tag == 0x30))
        .unwrap_or(false)
}

/// The SignedData of the token in `der` (a response or a token).
fn signed_data(der: &[u8]) -> Option<Tlv> {
    let token = tlv(der, token_range(der)?.start)?;
    let explicit = children(der, &token)?.into_iter().nth(1)?;
    children(der, &explicit)?.into_iter().next()
}

/// The signature value bytes of the (first) SignerInfo.
fn signature(der: &[u8]) -> Option<Range<usize>> {
    let sd = signed_data(der)?;
    let infos = children(der, &sd)?.into_iter().last()?;
    let info = children(der, &infos)?.into_iter().next()?;
    let sig = children(der, &info)?.into_iter().find(|k| k.tag == 0x04)?;
    Some(sig.body)
}

/// The certificates of a token, in the order they are written.
pub fn token_certs(der: &[u8]) -> Vec<Vec<u8>> {
    let Some(sd) = signed_data(der) else {
        return Vec::new();
    };
    let kids = children(der, &sd).unwrap_or_default();
    let Some(certs) = kids.iter().find(|k| k.tag == 0xa0) else {
        return Vec::new();
    };
    children(der, certs)
        .unwrap_or_default()
        .iter()
        .map(|c| der[c.start..c.body.end].to_vec())
        .collect()
}

/// The TimeStampToken of a TimeStampResp (or the token itself, given one).
pub fn token_of(der: &[u8]) -> Vec<u8> {
    der[token_range(der).expect("a TimeStampResp with a token, or a TimeStampToken")].to_vec()
}

/// The DER of a certificate in PEM.
pub fn pem_to_der(pem: &Path) -> Vec<u8> {
    let p = pem.to_str().unwrap();
    openssl_ok(Path::new("."), &["x509", "-in", p, "-outform", "DER"]).stdout
}

/// A granted TimeStampResp for a token, with the certificates SET OF in DER order: what a strict
/// DER parser accepts. The certificates are not signed, so this changes nothing a verifier checks.
fn canonical_response(der: &[u8]) -> Vec<u8> {
    let mut resp = if is_response(der) {
        der.to_vec()
    } else {
        let mut body = vec![0x30, 0x03, 0x02, 0x01, 0x00];
        body.extend_from_slice(der);
        let mut resp = vec![0x30];
        resp.extend(der_len(body.len()));
        resp.extend(body);
        resp
    };
    if let Some(sd) = signed_data(&resp) {
        let kids = children(&resp, &sd).unwrap_or_default();
        if let Some(certs) = kids.iter().find(|k| k.tag == 0xa0) {
            let mut each: Vec<Vec<u8>> = children(&resp, certs)
                .unwrap_or_default()
                .iter()
                .map(|c| resp[c.start..c.body.end].to_vec())
                .collect();
            each.sort();
            resp.splice(certs.body.clone(), each.concat());
        }
    }
    resp
}

/// `openssl ts -query -digest HEX -sha256 -cert` (with a random nonce, or `-no_nonce`).
pub fn query(sha256_hex: &str, nonce: bool) -> Vec<u8> {
    let mut args = vec!["ts", "-query", "-digest", sha256_hex, "-sha256", "-cert"];
    if !nonce {
        args.push("-no_nonce");
    }
    openssl_ok(Path::new("."), &args).stdout
}

/// A minimal HTTP/1.1 client: POST `body` as `application/timestamp-query`; the status and body.
pub fn post(url: &str, body: &[u8]) -> io::Result<(u16, Vec<u8>)> {
    let rest = url.strip_prefix("http://").expect("an http:// URL");
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut stream = TcpStream::connect(host)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/timestamp-query\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    let end = find(&answer, b"\r\n\r\n").ok_or(io::ErrorKind::InvalidData)?;
    let status = String::from_utf8_lossy(&answer[..end])
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or(io::ErrorKind::InvalidData)?;
    Ok((status, answer[end + 4..].to_vec()))
}

/// `openssl ts -verify -digest HEX -in TOKEN [-token_in] -CAfile CA`; `Err` says why it failed.
pub fn openssl_verify_result(
    token_der: &Path,
    sha256_hex: &str,
    ca_pem: &Path,
) -> Result<(), String> {
    let der = fs::read(token_der).expect("token file");
    let mut cmd = Command::new("openssl");
    cmd.args(["ts", "-verify", "-digest", sha256_hex, "-in"])
        .arg(token_der)
        .arg("-CAfile")
        .arg(ca_pem)
        .stdin(Stdio::null());
    if !is_response(&der) {
        cmd.arg("-token_in");
    }
    let out = cmd
        .output()
        .expect("openssl must be installed (scripts/setup)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() && text.contains("Verification: OK") {
        Ok(())
    } else {
        Err(text)
    }
}

/// Independent check #1: OpenSSL verifies the token (or response) against the SHA-256 digest and
/// the CA.
pub fn openssl_verify(token_der: &Path, sha256_hex: &str, ca_pem: &Path) -> bool {
    openssl_verify_result(token_der, sha256_hex, ca_pem).is_ok()
}

/// The token's genTime as OpenSSL prints it: the `Time stamp:` line's value, for example
/// `Nov 28 12:43:28 2026 GMT`.
pub fn token_time(token_der: &Path) -> String {
    let der = fs::read(token_der).expect("token file");
    let path = token_der.to_str().unwrap();
    let mut args = vec!["ts", "-reply", "-in", path, "-text"];
    if !is_response(&der) {
        args.push("-token_in");
    }
    let out = openssl_ok(Path::new("."), &args);
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix("Time stamp: "))
        .unwrap_or_else(|| panic!("no time stamp in: {text}"))
        .trim()
        .to_string()
}

const PYVERIFY: &str = r#"
import sys
try:
    from cryptography import x509
    from rfc3161_client import decode_timestamp_response, VerifierBuilder
except ImportError as e:
    print(f"rfc3161-client is not installed: {e}", file=sys.stderr)
    sys.exit(3)
try:
    resp = decode_timestamp_response(open(sys.argv[1], "rb").read())
    ca = x509.load_pem_x509_certificate(open(sys.argv[3], "rb").read())
    verifier = VerifierBuilder().add_root_certificate(ca).build()
    verifier.verify(resp, bytes.fromhex(sys.argv[2]))
except Exception as e:
    print(f"{type(e).__name__}: {e}", file=sys.stderr)
    sys.exit(1)
print("verified")
"#;

/// `pyverify`, saying why a token failed. Panics if rfc3161-client is missing.
pub fn pyverify_result(token_der: &Path, sha256_hex: &str, ca_pem: &Path) -> Result<(), String> {
    let der = fs::read(token_der).expect("token file");
    let mut resp = tempfile::NamedTempFile::new().unwrap();
    resp.write_all(&canonical_response(&der)).unwrap();
    let out = Command::new("python3")
        .arg("-c")
        .arg(PYVERIFY)
        .arg(resp.path())
        .arg(sha256_hex)
        .arg(ca_pem)
        .stdin(Stdio::null())
        .output()
        .expect("python3 must be installed");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    match out.status.code() {
        Some(0) => Ok(()),
        Some(1) => Err(err),
        _ => panic!("pyverify: {err} (scripts/test installs rfc3161-client)"),
    }
}

/// Independent check #2: PyPI's `rfc3161-client` (Trail of Bits) verifies the token (or
/// response): status granted, the CMS signature and the chain to the CA at genTime, the TSA
/// certificate's critical timeStamping EKU, and the imprint against the SHA-256 digest. It gets
/// the token as a TimeStampResp with the certificates in DER order (it refuses OpenSSL's order;
/// they are not signed, so the order changes nothing it checks).
pub fn pyverify(token_der: &Path, sha256_hex: &str, ca_pem: &Path) -> bool {
    pyverify_result(token_der, sha256_hex, ca_pem).is_ok()
}
