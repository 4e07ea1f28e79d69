//! callrec-seal and keygen: outputs, refusals, idempotence, nothing lost.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::util::*;

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn temp_files(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".callrec-"))
        .collect()
}

#[test]
fn keygen_makes_private_secrets_and_never_overwrites() {
    let t = TestDir::new();
    let keys = t.keygen("keys");
    assert_eq!(mode(&keys), 0o700);
    for secret in ["seal.key", "age-identity.txt", "table.key"] {
        assert_eq!(mode(&keys.join(secret)), 0o600, "{secret}");
    }
    for public in ["seal.pub", "age-recipients.txt"] {
        assert_eq!(mode(&keys.join(public)), 0o644, "{public}");
    }
    let before = fs::read(keys.join("seal.key")).unwrap();
    let (code, _, stderr) = run(t.cmd("callrec-seal").args(["keygen", "-o", "keys"]));
    assert_eq!(code, 2);
    assert!(stderr.contains("refusing to overwrite"), "{stderr}");
    assert_eq!(fs::read(keys.join("seal.key")).unwrap(), before);
}

#[test]
fn secret_key_readable_by_others_is_refused() {
    let t = TestDir::new();
    let keys = t.keygen("keys");
    t.write("ev.bin", "evidence");
    fs::set_permissions(keys.join("seal.key"), fs::Permissions::from_mode(0o644)).unwrap();
    let (code, stdout, stderr) = run(t.cmd("callrec-seal").args(["-k", "keys", "ev.bin"]));
    assert_eq!(code, 2);
    assert!(stdout.is_empty());
    assert!(stderr.contains("accessible by group or others"), "{stderr}");
    assert!(stderr.contains("chmod 600"), "{stderr}");
    assert!(!t.join("ev.sealed.bin").exists());
}

#[test]
fn seals_beside_input_keeps_input_and_prints_path() {
    let t = TestDir::new();
    t.keygen("keys");
    let media = t.wav("call.wav");
    let before = fs::read(&media).unwrap();
    let out = run_ok(t.cmd("callrec-seal").args(["-k", "keys", "call.wav"]));
    assert_eq!(lines(&out), ["call.sealed.wav"]);
    assert_eq!(fs::read(&media).unwrap(), before, "input changed");
    let sealed = fs::read(t.join("call.sealed.wav")).unwrap();
    assert_eq!(
        &sealed[..before.len()],
        &before[..],
        "media must come first, unchanged"
    );
    assert!(temp_files(t.path()).is_empty());
}

#[test]
fn sealing_again_is_reported_not_repeated() {
    let t = TestDir::new();
    t.keygen("keys");
    t.write("ev.bin", "evidence");
    t.seal("keys", &["ev.bin"]);
    let first = fs::read(t.join("ev.sealed.bin")).unwrap();
    // The same input again: the output exists and seals the same record.
    let (code, stdout, stderr) = run(t.cmd("callrec-seal").args(["-k", "keys", "ev.bin"]));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, "ev.sealed.bin\n");
    assert!(stderr.contains("already sealed as"), "{stderr}");
    // A sealed file as input: reported, passed through, not sealed twice.
    let (code, stdout, stderr) = run(t.cmd("callrec-seal").args(["-k", "keys", "ev.sealed.bin"]));
    assert_eq!(code, 0);
    assert_eq!(stdout, "ev.sealed.bin\n");
    assert!(stderr.contains("already a sealed file"), "{stderr}");
    assert!(!t.join("ev.sealed.sealed.bin").exists());
    assert_eq!(fs::read(t.join("ev.sealed.bin")).unwrap(), first);
    // The chain did not move: the next seal is sequence 2.
    t.write("next.bin", "next");
    let out = run_ok(
        t.cmd("callrec-seal")
            .args(["-k", "keys", "--json", "next.bin"]),
    );
    let lines = parse_seal_json(&String::from_utf8(out.stdout).unwrap());
    assert!(
        matches!(lines[0], SealLine::Sealed { sequence: 2, .. }),
        "{lines:?}"
    );
}

#[test]
fn a_different_file_under_an_existing_name_is_a_conflict() {
    let t = TestDir::new();
    t.keygen("keys");
    t.write("a/ev.bin", "first");
    t.write("b/ev.bin", "second");
    fs::create_dir(t.join("out")).unwrap();
    t.seal("keys", &["-o", "out", "a/ev.bin"]);
    let before = fs::read(t.join("out/ev.sealed.bin")).unwrap();
    let (code, stdout, stderr) = run(t
        .cmd("callrec-seal")
        .args(["-k", "keys", "-o", "out", "b/ev.bin"]));
    assert_eq!(code, 1);
    assert!(stdout.is_empty());
    assert!(
        stderr.contains("already exists and is not a seal of this record"),
        "{stderr}"
    );
    assert_eq!(fs::read(t.join("out/ev.sealed.bin")).unwrap(), before);
    assert!(temp_files(&t.join("out")).is_empty());
}

#[test]
fn sidecar_or_media_path_name_the_same_record() {
    let t = TestDir::new();
    t.keygen("keys");
    t.write("x/call.bin", "media");
    t.write("y/call.bin", "media");
    let record = r#"{"schema": 1, "id": "20261127T101500Z-0123456789ab", "phone": {"number": "13321150748"}}"#;
    t.write("x/call.bin.callrec.json", record);
    t.write("y/call.bin.callrec.json", record);
    let by_media = t.seal("keys", &["--cipher", "table", "x/call.bin"]);
    let by_sidecar = t.seal("keys", &["--cipher", "table", "y/call.bin.callrec.json"]);
    for sealed in [&by_media[0], &by_sidecar[0]] {
        let out = run_ok(
            t.cmd("callrec-verify")
                .args(["--json", "-p", "keys", "--show", "--identity", "keys"])
                .arg(sealed),
        );
        let text = json_lines(&out.stdout).remove(0);
        assert_eq!(text["record"]["id"], "20261127T101500Z-0123456789ab");
        assert_eq!(text["record"]["phone"]["number"], "13321150748");
    }
}

#[test]
fn bad_sidecar_names_file_and_field_and_changes_nothing() {
    let t = TestDir::new();
    t.keygen("keys");
    t.write("call.bin", "media");
    t.write(
        "call.bin.callrec.json",
        r#"{"schema": 1, "id": "x", "call": {"result": "110108197712281810"}}"#,
    );
    let (code, stdout, stderr) = run(t.cmd("callrec-seal").args(["-k", "keys", "call.bin"]));
    assert_eq!(code, 1);
    assert!(stdout.is_empty());
    assert!(stderr.contains("call.bin.callrec.json"), "{stderr}");
    assert!(stderr.contains("not a valid call record"), "{stderr}");
    // The offending value may be personal data: it must not be echoed.
    assert!(!stderr.contains("110108197712281810"), "{stderr}");
    assert!(!t.join("call.sealed.bin").exists());
    assert!(temp_files(t.path()).is_empty());
    assert!(
        !t.join("keys/chain.state").exists(),
        "the chain moved for a failed seal"
    );

    t.write(
        "call.bin.callrec.json",
        r#"{"schema": 1, "id": "../../etc/passwd"}"#,
    );
    let (code, _, stderr) = run(t.cmd("callrec-seal").args(["-k", "keys", "call.bin"]));
    assert_eq!(code, 1);
    assert!(stderr.contains("invalid record id"), "{stderr}");
}

#[test]
fn remove_source_only_after_verification_and_directories_are_walked() {
    let t = TestDir::new();
    t.keygen("keys");
    t.write("spool/a.bin", "a");
    t.write("spool/sub/b.bin", "b");
    t.write(
        "spool/sub/b.bin.callrec.json",
        r#"{"schema": 1, "id": "rec-b"}"#,
    );
    fs::create_dir(t.join("out")).unwrap();
    let out =
        run_ok(
            t.cmd("callrec-seal")
                .args(["-k", "keys", "-o", "out", "--remove-source", "spool"]),
        );
    let mut printed = lines(&out);
    printed.sort();
    assert_eq!(printed, ["out/a.sealed.bin", "out/b.sealed.bin"]);
    assert!(!t.join("spool/a.bin").exists());
    assert!(!t.join("spool/sub/b.bin").exists());
    assert!(!t.join("spool/sub/b.bin.callrec.json").exists());
    run_ok(t.cmd("callrec-verify").args(["-p", "keys", "out"]));
}

#[test]
fn paths_on_stdin_and_json_lines() {
    let t = TestDir::new();
    t.keygen("keys");
    t.write("a b.bin", "a");
    t.write("c\nd.bin", "c");
    let (code, stdout, stderr) = run_with_stdin(
        t.cmd("callrec-seal")
            .args(["-k", "keys", "-0", "--json", "-j", "2"]),
        b"a b.bin\0c\nd.bin\0",
    );
    assert_eq!(code, 0, "{stderr}");
    let lines = parse_seal_json(&stdout);
    assert_eq!(lines.len(), 3);
    let mut outputs: Vec<_> = lines
        .iter()
        .filter_map(|l| match l {
            SealLine::Sealed { output, .. } => Some(output.as_str()),
            _ => None,
        })
        .collect();
    outputs.sort();
    assert_eq!(outputs, ["a b.sealed.bin", "c\nd.sealed.bin"]);
    assert!(matches!(
        lines[2],
        SealLine::Summary {
            sealed: 2,
            already_sealed: 0,
            failed: 0,
            anchored: 0
        }
    ));
}

#[test]
fn parallel_seals_share_one_chain_without_gaps_or_forks() {
    let t = TestDir::new();
    t.keygen("keys");
    for i in 0..40 {
        t.write(&format!("in/{i:02}.bin"), format!("record {i}"));
    }
    fs::create_dir(t.join("out")).unwrap();
    let out = run_ok(
        t.cmd("callrec-seal")
            .args(["-k", "keys", "-j", "4", "--json", "-o", "out", "in"]),
    );
    let mut sequences: Vec<u64> = parse_seal_json(&String::from_utf8(out.stdout).unwrap())
        .into_iter()
        .filter_map(|l| match l {
            SealLine::Sealed { sequence, .. } => Some(sequence),
            _ => None,
        })
        .collect();
    sequences.sort();
    assert_eq!(sequences, (1..=40).collect::<Vec<_>>());
    run_ok(t.cmd("callrec-verify").args(["-p", "keys", "out"]));
}

#[test]
fn a_crash_around_the_rename_neither_reuses_nor_skips_a_sequence() {
    let t = TestDir::new();
    t.keygen("keys");
    t.write("a.bin", "a");
    t.seal("keys", &["a.bin"]);
    let state: serde_json::Value =
        serde_json::from_slice(&fs::read(t.join("keys/chain.state")).unwrap()).unwrap();
    assert_eq!(state["next_sequence"], 1 + 1);
    let hash = state["previous"].as_str().unwrap().to_string();

    // As if killed after the rename but before the commit: the file landed.
    let landed = serde_json::json!({
        "next_sequence": 1,
        "previous": "0".repeat(64),
        "pending": {"sequence": 1, "manifest_sha256": hash, "path": t.join("a.sealed.bin")},
    });
    fs::write(t.join("keys/chain.state"), landed.to_string()).unwrap();
    t.write("b.bin", "b");
    t.seal("keys", &["b.bin"]);

    // As if killed before the rename: the file never landed, so its place is given again.
    let state: serde_json::Value =
        serde_json::from_slice(&fs::read(t.join("keys/chain.state")).unwrap()).unwrap();
    let lost = serde_json::json!({
        "next_sequence": 3,
        "previous": state["previous"],
        "pending": {"sequence": 3, "manifest_sha256": "ab".repeat(32), "path": t.join("never.sealed.bin")},
    });
    fs::write(t.join("keys/chain.state"), lost.to_string()).unwrap();
    t.write("c.bin", "c");
    t.seal("keys", &["c.bin"]);

    let (code, stdout, _) = run(t.cmd("callrec-verify").args([
        "--json",
        "-p",
        "keys",
        "a.sealed.bin",
        "b.sealed.bin",
        "c.sealed.bin",
    ]));
    assert_eq!(code, 0, "{stdout}");
    let sequences: Vec<u64> = parse_verify_json(&stdout)
        .into_iter()
        .filter_map(|l| match l {
            VerifyLine::Verdict { sequence, .. } => sequence,
            _ => None,
        })
        .collect();
    assert_eq!(sequences, [1, 2, 3]);
}

#[test]
fn remove_source_on_a_rerun_removes_what_an_earlier_run_sealed() {
    let t = TestDir::new();
    t.keygen("keys");
    t.write("ev.bin", "evidence");
    // As if an earlier run was killed after sealing but before removing its input.
    t.seal("keys", &["ev.bin"]);
    let out = run_ok(
        t.cmd("callrec-seal")
            .args(["-k", "keys", "--remove-source", "ev.bin"]),
    );
    assert_eq!(lines(&out), ["ev.sealed.bin"]);
    assert!(!t.join("ev.bin").exists());
    run_ok(
        t.cmd("callrec-verify")
            .args(["-p", "keys", "ev.sealed.bin"]),
    );
}
