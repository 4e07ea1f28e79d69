//! callrec-push: to a directory archive (and, with the S3 tests, to a real S3 server): never
//! overwritten, verified, nothing lost.

use std::fs;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use crate::util::*;

/// Seal `n` small records into `spool`.
fn spool(t: &TestDir, n: usize) {
    t.keygen("keys");
    fs::create_dir_all(t.join("in")).unwrap();
    fs::create_dir_all(t.join("spool")).unwrap();
    for i in 0..n {
        t.write(&format!("in/{i:04}.bin"), format!("recording {i}"));
    }
    run_ok(
        t.cmd("callrec-seal")
            .args(["-k", "keys", "-o", "spool", "in"]),
    );
}

/// Regular files below `dir`, relative, sorted.
fn files(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            e.path()
                .strip_prefix(dir)
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    out.sort();
    out
}

#[test]
fn records_are_archived_verified_and_moved_to_sent() {
    let t = TestDir::new();
    spool(&t, 3);
    let before: Vec<Vec<u8>> = files(&t.join("spool"))
        .iter()
        .map(|f| fs::read(t.join("spool").join(f)).unwrap())
        .collect();
    let out = run_ok(
        t.cmd("callrec-push")
            .args(["--to", "archive", "--verify", "full", "spool"]),
    );
    let keys = lines(&out);
    assert_eq!(keys.len(), 3);
    for key in &keys {
        assert!(
            key.starts_with("20") && key.contains(".sealed.bin"),
            "{key}"
        );
        let archived = fs::read(t.join("archive").join(key)).unwrap();
        assert!(before.contains(&archived));
    }
    assert_eq!(
        files(&t.join("spool"))
            .iter()
            .filter(|f| f.starts_with("sent/"))
            .count(),
        3
    );
    assert!(files(&t.join("spool"))
        .iter()
        .all(|f| f.starts_with("sent/") || f.starts_with(".callrec-push")));
    let journal = fs::read_to_string(t.join("state/callrec/push-journal.jsonl")).unwrap();
    assert_eq!(journal.lines().count(), 3);
    let receipt: serde_json::Value = serde_json::from_str(journal.lines().next().unwrap()).unwrap();
    assert_eq!(receipt["status"], "uploaded");
    run_ok(t.cmd("callrec-verify").args(["-p", "keys", "archive"]));
}

#[test]
fn pushing_again_is_a_no_op_and_a_different_seal_is_a_conflict() {
    let t = TestDir::new();
    spool(&t, 1);
    let sealed = files(&t.join("spool")).remove(0);
    fs::copy(t.join("spool").join(&sealed), t.join("copy.bin")).unwrap();
    run_ok(t.cmd("callrec-push").args(["--to", "archive", "spool"]));
    let archive_before = files(&t.join("archive"));

    // The same seal again: already archived, success.
    fs::copy(t.join("copy.bin"), t.join("spool").join(&sealed)).unwrap();
    let (code, stdout, stderr) = run(t.cmd("callrec-push").args(["--to", "archive", "spool"]));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout.lines().count(), 1);
    assert!(stderr.contains("already archived"), "{stderr}");

    // The same record sealed again (a different seal, so different bytes): a conflict.
    fs::remove_dir_all(t.join("spool")).unwrap();
    fs::create_dir(t.join("spool")).unwrap();
    run_ok(
        t.cmd("callrec-seal")
            .args(["-k", "keys", "-o", "spool", "in"]),
    );
    let archived = fs::read(t.join("archive").join(&archive_before[0])).unwrap();
    let (code, stdout, stderr) = run(t.cmd("callrec-push").args(["--to", "archive", "spool"]));
    assert_eq!(code, 1);
    assert!(stdout.is_empty());
    assert!(
        stderr.contains("already holds a different record"),
        "{stderr}"
    );
    assert_eq!(
        fs::read(t.join("archive").join(&archive_before[0])).unwrap(),
        archived
    );
    assert_eq!(files(&t.join("archive")), archive_before);
    assert!(
        t.join("spool").join(&sealed).exists(),
        "the conflicting record stays in the spool"
    );
}

#[test]
fn a_killed_push_run_again_archives_everything_exactly_once() {
    let t = TestDir::new();
    spool(&t, 150);
    let mut child = t
        .cmd("callrec-push")
        .args(["--to", "archive", "-j", "1", "spool"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(150));
    child.kill().unwrap();
    child.wait().unwrap();
    run_ok(t.cmd("callrec-push").args(["--to", "archive", "spool"]));
    let archived: Vec<String> = files(&t.join("archive"))
        .into_iter()
        .filter(|f| f.ends_with(".sealed.bin"))
        .collect();
    assert_eq!(archived.len(), 150, "every record archived once");
    let sent = files(&t.join("spool"))
        .iter()
        .filter(|f| f.starts_with("sent/"))
        .count();
    assert_eq!(sent, 150, "nothing missing from the spool");
    run_ok(t.cmd("callrec-verify").args(["-p", "keys", "archive"]));
}

#[test]
fn an_unreachable_archive_exits_75_with_the_spool_intact() {
    let t = TestDir::new();
    spool(&t, 2);
    let before = files(&t.join("spool"));
    let (code, stdout, stderr) = run(t
        .cmd("callrec-push")
        .args([
            "--to",
            "s3://calls/x",
            "--endpoint",
            "http://127.0.0.1:9",
            "spool",
        ])
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test"));
    assert_eq!(code, 75, "{stderr}");
    assert!(stdout.is_empty());
    assert!(stderr.contains("unreachable"), "{stderr}");
    let after: Vec<String> = files(&t.join("spool"))
        .into_iter()
        .filter(|f| !f.starts_with(".callrec-push"))
        .collect();
    assert_eq!(
        after,
        before
            .into_iter()
            .filter(|f| !f.starts_with(".callrec-push"))
            .collect::<Vec<_>>()
    );
}
