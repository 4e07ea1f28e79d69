//! callrec-verify: tampering of every kind is caught; chain gaps and forks are reported.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::util::*;

/// A small sealed file of arbitrary bytes, with its key directory.
fn small_sealed(t: &TestDir) -> (PathBuf, PathBuf) {
    let keys = t.keygen("keys");
    t.write(
        "ev.bin",
        (0..200u32).map(|i| (i * 7 % 251) as u8).collect::<Vec<_>>(),
    );
    let sealed = t.seal("keys", &["ev.bin"]);
    (keys, sealed[0].clone())
}

/// Verify every file in `dir` with `--json`; returns the verdicts by file name.
fn verdicts(t: &TestDir, keys: &Path, dir: &str) -> Vec<(String, String, Option<String>)> {
    let (_, stdout, _) = run(t
        .cmd("callrec-verify")
        .args(["--json", "-p"])
        .arg(keys.join("seal.pub"))
        .arg(dir));
    parse_verify_json(&stdout)
        .into_iter()
        .filter_map(|l| match l {
            VerifyLine::Verdict {
                path,
                status,
                check,
                ..
            } => Some((path, status, check)),
            _ => None,
        })
        .collect()
}

#[test]
fn every_single_bit_flip_is_caught() {
    let t = TestDir::new();
    let (keys, sealed) = small_sealed(&t);
    let good = fs::read(&sealed).unwrap();
    fs::create_dir(t.join("flips")).unwrap();
    for offset in 0..good.len() {
        for bit in 0..8 {
            let mut bad = good.clone();
            bad[offset] ^= 1 << bit;
            fs::write(t.join(format!("flips/{offset:05}-{bit}.sealed")), bad).unwrap();
        }
    }
    let results = verdicts(&t, &keys, "flips");
    assert_eq!(results.len(), good.len() * 8);
    let missed: Vec<_> = results.iter().filter(|(_, s, _)| s != "failed").collect();
    assert!(missed.is_empty(), "flips not caught: {missed:?}");
    // Sanity: the unflipped file verifies, so the failures above are the flips' doing.
    run_ok(t.cmd("callrec-verify").arg("-p").arg(&keys).arg(&sealed));
}

#[test]
fn truncation_and_appended_bytes_are_caught() {
    let t = TestDir::new();
    let (keys, sealed) = small_sealed(&t);
    let good = fs::read(&sealed).unwrap();
    fs::create_dir(t.join("cut")).unwrap();
    for len in 0..good.len() {
        fs::write(t.join(format!("cut/{len:05}.sealed")), &good[..len]).unwrap();
    }
    let footer = good[good.len() - 40..].to_vec();
    for (name, extra) in [
        ("one-byte", vec![0u8]),
        ("newline", b"\n".to_vec()),
        ("footer-again", footer),
        ("kilobyte", vec![0xAA; 1024]),
    ] {
        let mut bad = good.clone();
        bad.extend_from_slice(&extra);
        fs::write(t.join(format!("cut/append-{name}.sealed")), bad).unwrap();
    }
    let results = verdicts(&t, &keys, "cut");
    assert_eq!(results.len(), good.len() + 4);
    for (path, status, _) in &results {
        assert_eq!(status, "failed", "{path} was not caught");
    }
    // Quick checks alone catch every length change too: the footer locates the whole file.
    let (code, _, _) = run(t.cmd("callrec-verify").args(["--quick", "cut"]));
    assert_eq!(code, 1);
}

#[test]
fn transplanted_text_block_or_trailer_is_caught() {
    let t = TestDir::new();
    let keys = t.keygen("keys");
    // Two records of identical shape: same media size, same record layout.
    for name in ["a", "b"] {
        t.write(&format!("{name}.bin"), vec![name.as_bytes()[0]; 500]);
        t.write(
            &format!("{name}.bin.callrec.json"),
            format!(r#"{{"schema": 1, "id": "rec-{name}", "media": {{"file_name": "{name}.bin", "size": 500}}}}"#),
        );
    }
    // The table cipher keeps the text block's length fixed (age adds random-length grease).
    let sealed = t.seal("keys", &["--cipher", "table", "a.bin", "b.bin"]);
    assert_eq!(sealed.len(), 2);
    let a = fs::read(t.join("a.sealed.bin")).unwrap();
    let b = fs::read(t.join("b.sealed.bin")).unwrap();
    let (pa, pb) = (parts(&a), parts(&b));
    assert_eq!(
        pa.text.len(),
        pb.text.len(),
        "test needs equal-size text blocks"
    );

    let mut text_swap = a.clone();
    text_swap[pa.text.clone()].copy_from_slice(&b[pb.text.clone()]);
    t.write("swap/text.sealed", &text_swap);
    // The whole tail (text, manifest, signature, footer) of b on a's media.
    let mut tail_swap = a[..pa.media_len].to_vec();
    tail_swap.extend_from_slice(&b[pb.media_len..]);
    t.write("swap/tail.sealed", &tail_swap);
    // Only the seal (manifest, signature, footer) of b.
    let mut seal_swap = a[..pa.manifest.start].to_vec();
    seal_swap.extend_from_slice(&b[pb.manifest.start..]);
    t.write("swap/seal.sealed", &seal_swap);
    let mut footer_swap = a.clone();
    footer_swap[pa.footer.clone()].copy_from_slice(&b[pb.footer.clone()]);
    t.write("swap/footer.sealed", &footer_swap);

    let results = verdicts(&t, &keys, "swap");
    assert_eq!(results.len(), 4);
    for (path, status, check) in &results {
        assert_eq!(status, "failed", "{path} was not caught");
        if path.ends_with("text.sealed") {
            assert_eq!(check.as_deref(), Some("text-sha256"));
        }
    }
}

#[test]
fn signature_by_untrusted_key_is_rejected() {
    let t = TestDir::new();
    t.keygen("mine");
    t.keygen("other");
    t.write("ev.bin", b"evidence");
    let sealed = t.seal("other", &["ev.bin"]);
    let (code, stdout, stderr) = run(t
        .cmd("callrec-verify")
        .args(["-p", "mine/seal.pub"])
        .arg(&sealed[0]));
    assert_eq!(code, 1);
    assert!(stdout.is_empty());
    assert!(stderr.contains("signature check failed"), "{stderr}");
    assert!(
        stderr.contains("not among the trusted public keys"),
        "{stderr}"
    );
    // Trusting both keys: it verifies.
    run_ok(
        t.cmd("callrec-verify")
            .args(["-p", "mine/seal.pub", "-p", "other"])
            .arg(&sealed[0]),
    );
}

fn chain_lines(stdout: &str) -> Vec<(String, String)> {
    parse_verify_json(stdout)
        .into_iter()
        .filter_map(|l| match l {
            VerifyLine::Chain {
                status, message, ..
            } => Some((status, message)),
            _ => None,
        })
        .collect()
}

#[test]
fn removed_record_is_a_gap() {
    let t = TestDir::new();
    t.keygen("keys");
    for name in ["1.bin", "2.bin", "3.bin"] {
        t.write(&format!("in/{name}"), name);
    }
    fs::create_dir(t.join("out")).unwrap();
    // One at a time, so the sequence follows the names.
    for name in ["1.bin", "2.bin", "3.bin"] {
        t.seal("keys", &["-o", "out", &format!("in/{name}")]);
    }
    let (code, stdout, _) = run(t
        .cmd("callrec-verify")
        .args(["--json", "-p", "keys", "out"]));
    assert_eq!(code, 0, "{stdout}");
    assert!(chain_lines(&stdout).is_empty());

    fs::remove_file(t.join("out/2.sealed.bin")).unwrap();
    let (code, stdout, stderr) = run(t
        .cmd("callrec-verify")
        .args(["--json", "-p", "keys", "out"]));
    assert_eq!(code, 1);
    let chain = chain_lines(&stdout);
    assert_eq!(chain.len(), 1, "{chain:?}");
    assert_eq!(chain[0].0, "gap");
    assert!(
        chain[0].1.contains("sequence 2 is missing"),
        "{}",
        chain[0].1
    );
    assert!(stderr.contains("gap"), "{stderr}");
}

#[test]
fn two_records_with_one_sequence_are_a_fork() {
    let t = TestDir::new();
    let keys = t.keygen("keys");
    t.write("a.bin", "first");
    t.write("b.bin", "second");
    t.seal("keys", &["a.bin"]);
    // A copy of the key directory (and its chain state) seals a different record in the same place.
    fs::create_dir(t.join("copy")).unwrap();
    fs::set_permissions(t.join("copy"), fs::Permissions::from_mode(0o700)).unwrap();
    for entry in fs::read_dir(&keys).unwrap() {
        let entry = entry.unwrap();
        fs::copy(entry.path(), t.join("copy").join(entry.file_name())).unwrap();
    }
    t.write("c.bin", "third");
    t.seal("keys", &["b.bin"]);
    t.seal("copy", &["c.bin"]);
    let (code, stdout, _) = run(t
        .cmd("callrec-verify")
        .args(["--json", "-p", "keys"])
        .args(["a.sealed.bin", "b.sealed.bin", "c.sealed.bin"]));
    assert_eq!(code, 1);
    let chain = chain_lines(&stdout);
    assert_eq!(chain.len(), 1, "{chain:?}");
    assert_eq!(chain[0].0, "fork");
    assert!(chain[0].1.contains("claim sequence 2"), "{}", chain[0].1);
}

#[test]
fn exit_codes_separate_bad_from_unchecked() {
    let t = TestDir::new();
    let (keys, sealed) = small_sealed(&t);
    let pubkey = keys.join("seal.pub");
    // Missing file: could not check.
    let (code, _, stderr) = run(t
        .cmd("callrec-verify")
        .arg("-p")
        .arg(&pubkey)
        .arg("missing"));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("could not check"), "{stderr}");
    // No trusted key: could not check, and it says how to fix it.
    let (code, _, stderr) = run(t.cmd("callrec-verify").arg(&sealed));
    assert_eq!(code, 2);
    assert!(stderr.contains("--pubkey"), "{stderr}");
    // A file that is not sealed at all: proven bad, by the footer check.
    t.write("plain.txt", "hello");
    let (code, _, stderr) = run(t
        .cmd("callrec-verify")
        .arg("-p")
        .arg(&pubkey)
        .arg("plain.txt"));
    assert_eq!(code, 1);
    assert!(stderr.contains("footer check failed"), "{stderr}");
    // Bad and unchecked together: bad wins.
    let (code, _, _) = run(t
        .cmd("callrec-verify")
        .arg("-p")
        .arg(&pubkey)
        .args(["plain.txt", "missing"]));
    assert_eq!(code, 1);
}

#[test]
fn paths_from_stdin_and_json_summary() {
    let t = TestDir::new();
    let (keys, sealed) = small_sealed(&t);
    let list = format!("{}\0", sealed.display());
    let (code, stdout, _) = run_with_stdin(
        t.cmd("callrec-verify")
            .args(["-0", "--json", "-p"])
            .arg(&keys),
        list.as_bytes(),
    );
    assert_eq!(code, 0);
    let lines = parse_verify_json(&stdout);
    assert!(matches!(
        &lines[0],
        VerifyLine::Verdict { status, sequence: Some(1), record_id: Some(_), .. } if status == "verified"
    ));
    assert!(matches!(
        lines.last().unwrap(),
        VerifyLine::Summary {
            verified: 1,
            failed: 0,
            errors: 0,
            chain_issues: 0,
            anchored: 0
        }
    ));
}

#[test]
fn quick_check_needs_no_key_and_catches_sampled_media_bytes() {
    let t = TestDir::new();
    let (_, sealed) = small_sealed(&t);
    run_ok(t.cmd("callrec-verify").arg("--quick").arg(&sealed));
    let mut bytes = fs::read(&sealed).unwrap();
    bytes[200 / 7] ^= 0xFF; // the first of the six lChecksum offsets
    fs::write(&sealed, bytes).unwrap();
    let (code, _, stderr) = run(t.cmd("callrec-verify").arg("--quick").arg(&sealed));
    assert_eq!(code, 1);
    assert!(stderr.contains("media-checksum check failed"), "{stderr}");
}
