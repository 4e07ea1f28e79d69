//! Anchors (issue 12): RFC 3161 time stamps over a key's chain head, from a real TSA (OpenSSL's
//! `openssl ts -reply` on loopback, see `tsa.rs`). Every token callrec obtains is checked two
//! more ways: `openssl ts -verify` and PyPI's `rfc3161-client`.

use std::fs;
use std::path::{Path, PathBuf};

use base64::Engine;
use sha2::{Digest, Sha256};

use crate::tsa::{self, Mode, Tsa};
use crate::util::*;

/// A key directory and `n` recordings `call-1.wav`...
fn setup(t: &TestDir, n: usize) -> Vec<PathBuf> {
    t.keygen("keys");
    (1..=n).map(|i| t.wav(&format!("call-{i}.wav"))).collect()
}

/// `callrec-seal -k keys -o out --tsa URL --json FILES`: the exit code and the JSON lines.
fn seal_with(t: &TestDir, tsa: &str, files: &[PathBuf]) -> (i32, Vec<SealLine>, String) {
    let (code, stdout, stderr) = run(t
        .cmd("callrec-seal")
        .args(["-k", "keys", "-o", "out", "--json", "--tsa", tsa])
        .args(files));
    (code, parse_seal_json(&stdout), stderr)
}

/// The sealed files a run wrote, in sequence order (parallel sealing takes inputs in any order).
fn by_sequence(t: &TestDir, lines: &[SealLine]) -> Vec<PathBuf> {
    let mut sealed: Vec<(u64, PathBuf)> = lines
        .iter()
        .filter_map(|l| match l {
            SealLine::Sealed {
                output, sequence, ..
            } => Some((*sequence, t.join(output))),
            _ => None,
        })
        .collect();
    sealed.sort();
    sealed.into_iter().map(|(_, p)| p).collect()
}

fn anchors_in(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "anchor"))
        .collect();
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

/// The anchor's token, written to a file for the independent checkers.
fn token_file(t: &TestDir, anchor: &Path) -> PathBuf {
    let der = base64::engine::general_purpose::STANDARD
        .decode(field(anchor, "token"))
        .unwrap();
    t.write("token.der", der)
}

/// `callrec-verify --json` with the seal key and (if given) a trusted TSA certificate.
fn verify(t: &TestDir, tsa_ca: Option<&Path>, paths: &[&Path]) -> (i32, Vec<VerifyLine>) {
    let mut cmd = t.cmd("callrec-verify");
    cmd.args(["--json", "-p", "keys/seal.pub"]);
    if let Some(ca) = tsa_ca {
        cmd.arg("--tsa-ca").arg(ca);
    }
    let (code, stdout, _) = run(cmd.args(paths));
    (code, parse_verify_json(&stdout))
}

fn anchored_records(lines: &[VerifyLine]) -> usize {
    lines
        .iter()
        .filter(|l| {
            matches!(
                l,
                VerifyLine::Verdict {
                    anchored_at: Some(_),
                    ..
                }
            )
        })
        .count()
}

#[test]
fn a_seal_run_anchors_its_head_once_and_every_token_checks_three_ways() {
    let t = TestDir::new();
    let tsa = Tsa::start();
    let files = setup(&t, 3);
    let (code, lines, stderr) = seal_with(&t, &tsa.url(), &files);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(tsa.requests(), 1, "one round trip per run, not per record");
    let anchored: Vec<_> = lines
        .iter()
        .filter_map(|l| match l {
            SealLine::Anchored {
                path,
                sequence,
                tsa_name,
                ..
            } => Some((path.clone(), *sequence, tsa_name.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(anchored.len(), 1, "{lines:?}");
    let (path, sequence, tsa_name) = &anchored[0];
    assert_eq!(*sequence, 3, "the head after the run");
    assert!(tsa_name.contains("CN="), "{tsa_name}");
    assert!(matches!(
        lines.last(),
        Some(SealLine::Summary {
            sealed: 3,
            anchored: 1,
            ..
        })
    ));

    // The token stamps the head's manifest hash, and two other implementations agree.
    let anchor = t.join(path);
    let hash = field(&anchor, "manifest-sha256");
    let head = fs::read(&by_sequence(&t, &lines)[2]).unwrap();
    let p = parts(&head);
    assert_eq!(hex::encode(Sha256::digest(&head[p.manifest.clone()])), hash);
    let token = token_file(&t, &anchor);
    assert!(tsa::openssl_verify(&token, &hash, tsa.ca_pem()));
    assert!(tsa::pyverify(&token, &hash, tsa.ca_pem()));
    let other = hex::encode(Sha256::digest(b"another manifest"));
    assert!(!tsa::openssl_verify(&token, &other, tsa.ca_pem()));
    assert!(!tsa::pyverify(&token, &other, tsa.ca_pem()));

    // callrec-verify: every record anchored by it, at the TSA's time.
    let out = t.join("out");
    let (code, lines) = verify(&t, Some(tsa.ca_pem()), &[&out]);
    assert_eq!(code, 0, "{lines:?}");
    assert_eq!(anchored_records(&lines), 3, "{lines:?}");
    assert!(lines.iter().any(|l| matches!(
        l,
        VerifyLine::Anchor { status, trusted: Some(true), sequence: Some(3), .. } if status == "verified"
    )));
    // Without a trusted TSA the anchor still checks, but gives no trusted time.
    let (code, lines) = verify(&t, None, &[&out]);
    assert_eq!(code, 0);
    assert_eq!(anchored_records(&lines), 0);
    assert!(lines.iter().any(|l| matches!(
        l,
        VerifyLine::Anchor {
            trusted: Some(false),
            ..
        }
    )));
}

#[test]
fn a_tsa_that_is_down_never_stops_sealing_and_the_head_is_anchored_later() {
    let t = TestDir::new();
    let tsa = Tsa::start();
    let files = setup(&t, 2);
    tsa.set_mode(Mode::Down);
    let (code, lines, stderr) = seal_with(&t, &tsa.url(), &files[..1]);
    assert_eq!(code, 0, "sealing succeeds without the TSA: {stderr}");
    assert!(
        lines
            .iter()
            .any(|l| matches!(l, SealLine::NotAnchored { sequence: 1, .. })),
        "{lines:?}"
    );
    assert!(stderr.contains("not anchored"), "{stderr}");
    assert!(anchors_in(&t.join("out")).is_empty());
    // `callrec-seal anchor` while it is still down: exit 75, try again later.
    let (code, _, _) =
        run(t
            .cmd("callrec-seal")
            .args(["anchor", "-k", "keys", "-o", "out", "--tsa", &tsa.url()]));
    assert_eq!(code, 75);
    tsa.set_mode(Mode::Http500);
    let (code, _, _) =
        run(t
            .cmd("callrec-seal")
            .args(["anchor", "-k", "keys", "-o", "out", "--tsa", &tsa.url()]));
    assert_eq!(code, 75, "a server error may pass by itself");

    // The next run, the TSA back, anchors the head: the new record and the old.
    tsa.set_mode(Mode::Ok);
    let (code, lines, _) = seal_with(&t, &tsa.url(), &files[1..]);
    assert_eq!(code, 0);
    assert!(lines
        .iter()
        .any(|l| matches!(l, SealLine::Anchored { sequence: 2, .. })));
    let out = t.join("out");
    let (code, lines) = verify(&t, Some(tsa.ca_pem()), &[&out]);
    assert_eq!(code, 0);
    assert_eq!(anchored_records(&lines), 2);

    // Anchored already: nothing asked, exit 0; --again adds a witness.
    let before = tsa.requests();
    let anchor = |extra: &[&str]| {
        run(t
            .cmd("callrec-seal")
            .args(["anchor", "-k", "keys", "-o", "out", "--tsa", &tsa.url()])
            .args(extra))
    };
    let (code, stdout, stderr) = anchor(&[]);
    assert_eq!((code, stdout.as_str()), (0, ""), "{stderr}");
    assert_eq!(tsa.requests(), before);
    let (code, stdout, _) = anchor(&["--again"]);
    assert_eq!(code, 0);
    assert!(stdout.trim_end().ends_with(".anchor"), "{stdout}");
    assert_eq!(anchors_in(&out).len(), 2);
}

#[test]
fn a_tsa_answer_that_is_not_a_good_token_is_refused() {
    let t = TestDir::new();
    let tsa = Tsa::start();
    let files = setup(&t, 1);
    for (mode, says) in [
        (Mode::WrongHash, "another hash"),
        (Mode::BadSignature, "signature"),
        (Mode::Reject, "refused"),
    ] {
        tsa.set_mode(mode);
        let (code, _, stderr) = run(t
            .cmd("callrec-seal")
            .args(["-k", "keys", "-o", "out", "--tsa", &tsa.url()])
            .args(&files));
        assert_eq!(code, 0, "{mode:?}: {stderr}");
        assert!(stderr.contains(says), "{mode:?}: {stderr}");
        assert!(anchors_in(&t.join("out")).is_empty(), "{mode:?}");
        let (code, _, _) = run(t.cmd("callrec-seal").args([
            "anchor",
            "-k",
            "keys",
            "-o",
            "out",
            "--tsa",
            &tsa.url(),
        ]));
        assert_eq!(code, 1, "{mode:?}: a bad answer does not pass by itself");
    }
}

#[test]
fn anchors_fail_when_their_token_is_changed_or_its_tsa_not_trusted() {
    let t = TestDir::new();
    let tsa = Tsa::start();
    let stranger = Tsa::start();
    let files = setup(&t, 1);
    let (code, ..) = seal_with(&t, &tsa.url(), &files);
    assert_eq!(code, 0);
    let anchor = anchors_in(&t.join("out")).remove(0);
    let check_of = |lines: &[VerifyLine]| {
        lines.iter().find_map(|l| match l {
            VerifyLine::Anchor { status, check, .. } => Some((status.clone(), check.clone())),
            _ => None,
        })
    };
    let failed_at = |check: &str| Some(("failed".to_string(), Some(check.to_string())));

    let (code, lines) = verify(&t, Some(stranger.ca_pem()), &[&anchor]);
    assert_eq!(code, 1);
    assert_eq!(check_of(&lines), failed_at("timestamp"));

    // One byte of the token (its last: inside the TSA's signature).
    let text = fs::read_to_string(&anchor).unwrap();
    let mut token = base64::engine::general_purpose::STANDARD
        .decode(field(&anchor, "token"))
        .unwrap();
    *token.last_mut().unwrap() ^= 1;
    let changed = text.replace(
        &field(&anchor, "token"),
        &base64::engine::general_purpose::STANDARD.encode(&token),
    );
    let bad = t.write("bad.anchor", changed);
    let (code, lines) = verify(&t, Some(tsa.ca_pem()), &[&bad]);
    assert_eq!(code, 1);
    assert_eq!(check_of(&lines), failed_at("timestamp"));
    let bad_token = t.write("bad.der", &token);
    let hash = field(&anchor, "manifest-sha256");
    assert!(!tsa::openssl_verify(&bad_token, &hash, tsa.ca_pem()));

    // The form: a CR, or a sequence that is not the manifest's.
    let crlf = t.write("crlf.anchor", text.replace('\n', "\r\n"));
    let (_, lines) = verify(&t, Some(tsa.ca_pem()), &[&crlf]);
    assert_eq!(check_of(&lines), failed_at("anchor"));
    let moved = t.write(
        "moved.anchor",
        text.replace("sequence: 1\n", "sequence: 9\n"),
    );
    let (_, lines) = verify(&t, Some(tsa.ca_pem()), &[&moved]);
    assert_eq!(check_of(&lines), failed_at("anchor"));
}

#[test]
fn the_last_record_removed_after_an_anchor_is_a_gap() {
    let t = TestDir::new();
    let tsa = Tsa::start();
    let files = setup(&t, 3);
    let (code, lines, _) = seal_with(&t, &tsa.url(), &files);
    assert_eq!(code, 0);
    let sealed = by_sequence(&t, &lines);
    fs::remove_file(&sealed[2]).unwrap();
    // Without the anchor the shorter chain looks complete...
    let (code, _) = verify(&t, None, &[&sealed[0], &sealed[1]]);
    assert_eq!(code, 0);
    // ...with it, sequence 3 is missing.
    let out = t.join("out");
    let (code, lines) = verify(&t, Some(tsa.ca_pem()), &[&out]);
    assert_eq!(code, 1);
    assert!(
        lines.iter().any(|l| matches!(
            l,
            VerifyLine::Chain { status, message, .. } if status == "gap" && message.contains("sequence 3")
        )),
        "{lines:?}"
    );
}

#[test]
fn explain_checks_an_anchor_with_openssl_and_minisign() {
    let t = TestDir::new();
    let tsa = Tsa::start();
    let files = setup(&t, 1);
    let (code, ..) = seal_with(&t, &tsa.url(), &files);
    assert_eq!(code, 0);
    let anchor = anchors_in(&t.join("out")).remove(0);
    let script = run_ok(t.cmd("callrec-verify").arg("--explain").arg(&anchor)).stdout;
    let script = t.write("check.sh", script);
    let check = |ca: &Path| {
        run(std::process::Command::new("sh")
            .arg(&script)
            .current_dir(t.path())
            .env("PUB", t.join("keys/seal.pub"))
            .env("TSA_CA", ca))
    };
    let (code, stdout, stderr) = check(tsa.ca_pem());
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("anchored: key"), "{stdout}");
    let stranger = Tsa::start();
    let (code, ..) = check(stranger.ca_pem());
    assert_ne!(code, 0);
}

#[test]
fn timestamp_each_anchors_every_record_as_it_is_sealed() {
    let t = TestDir::new();
    let tsa = Tsa::start_with(tsa::Alg::EcP256);
    let files = setup(&t, 3);
    let (code, stdout, stderr) = run(t
        .cmd("callrec-seal")
        .args([
            "-k",
            "keys",
            "-o",
            "out",
            "-j",
            "1",
            "--json",
            "--timestamp",
            "each",
        ])
        .args(["--tsa", &tsa.url()])
        .args(&files));
    assert_eq!(code, 0, "{stderr}");
    let lines = parse_seal_json(&stdout);
    let mut sequences: Vec<u64> = lines
        .iter()
        .filter_map(|l| match l {
            SealLine::Anchored { sequence, .. } => Some(*sequence),
            _ => None,
        })
        .collect();
    sequences.sort();
    assert_eq!(sequences, [1, 2, 3], "{lines:?}");
    assert_eq!(tsa.requests(), 3, "one per record, none more at the end");
    let out = t.join("out");
    let (code, lines) = verify(&t, Some(tsa.ca_pem()), &[&out]);
    assert_eq!(code, 0);
    // Each record's own anchor is the first to cover it.
    for line in &lines {
        if let VerifyLine::Verdict {
            sequence: Some(n),
            anchor: Some(anchor),
            ..
        } = line
        {
            assert!(anchor.contains(&format!(".{n}.")), "{n}: {anchor}");
        }
    }
    assert_eq!(anchored_records(&lines), 3);
}

#[test]
fn a_record_sealed_after_an_anchor_of_its_chain_fails() {
    let t = TestDir::new();
    let tsa = Tsa::start_with(tsa::Alg::EcP256);
    let files = setup(&t, 2);
    // The sealing PC's clock two days fast for the first record (libfaketime), right for the
    // second, which is anchored now: the first claims a time after the TSA saw its chain.
    let seal = t.cmd("callrec-seal");
    let mut fast = std::process::Command::new("faketime");
    fast.arg("+2 days")
        .arg(seal.get_program())
        .current_dir(t.path())
        .env("HOME", t.path())
        .args(["-k", "keys", "-o", "out"])
        .arg(&files[0]);
    run_ok(&mut fast);
    let (code, ..) = seal_with(&t, &tsa.url(), &files[1..]);
    assert_eq!(code, 0);
    let out = t.join("out");
    let (code, lines) = verify(&t, Some(tsa.ca_pem()), &[&out]);
    assert_eq!(code, 1, "{lines:?}");
    assert!(
        lines.iter().any(|l| matches!(
            l,
            VerifyLine::Chain { status, paths, .. } if status == "time" && paths[0].ends_with("call-1.sealed.wav")
        )),
        "{lines:?}"
    );
    // Without a trusted TSA the anchor's time proves nothing, and nothing fails.
    let (code, _) = verify(&t, None, &[&out]);
    assert_eq!(code, 0);
}
