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
fn pushing_again_is_a_no_op_a_new_seal_is_kept_beside_and_another_object_is_a_conflict() {
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

    // The same record sealed again (a different seal, so a different manifest hash in its
    // key): archived beside the first, which is unchanged.
    let archived = fs::read(t.join("archive").join(&archive_before[0])).unwrap();
    fs::remove_dir_all(t.join("spool")).unwrap();
    fs::create_dir(t.join("spool")).unwrap();
    run_ok(
        t.cmd("callrec-seal")
            .args(["-k", "keys", "-o", "spool", "in"]),
    );
    let resealed = fs::read(t.join("spool").join(&sealed)).unwrap();
    let out = run_ok(t.cmd("callrec-push").args(["--to", "archive", "spool"]));
    let key = lines(&out).remove(0);
    assert!(!archive_before.contains(&key));
    assert_eq!(fs::read(t.join("archive").join(&key)).unwrap(), resealed);
    assert_eq!(
        fs::read(t.join("archive").join(&archive_before[0])).unwrap(),
        archived
    );

    // Something else under the key of a seal: a conflict, and nothing changes.
    let mut other = archived.clone();
    other.push(b'x');
    fs::write(t.join("archive").join(&archive_before[0]), &other).unwrap();
    fs::copy(t.join("copy.bin"), t.join("spool").join(&sealed)).unwrap();
    let archive_now = files(&t.join("archive"));
    let (code, stdout, stderr) = run(t.cmd("callrec-push").args(["--to", "archive", "spool"]));
    assert_eq!(code, 1);
    assert!(stdout.is_empty());
    assert!(
        stderr.contains("already holds a different record"),
        "{stderr}"
    );
    assert_eq!(
        fs::read(t.join("archive").join(&archive_before[0])).unwrap(),
        other
    );
    assert_eq!(files(&t.join("archive")), archive_now);
    assert!(
        t.join("spool").join(&sealed).exists(),
        "the conflicting record stays in the spool"
    );
}

#[test]
fn a_record_that_fails_verification_is_not_pushed() {
    let t = TestDir::new();
    spool(&t, 1);
    let name = files(&t.join("spool")).remove(0);
    let path = t.join("spool").join(&name);
    let mut bytes = fs::read(&path).unwrap();
    bytes[0] ^= 1; // the media, where only the signed hash notices
    fs::write(&path, bytes).unwrap();
    let (code, stdout, stderr) = run(t
        .cmd("callrec-push")
        .args(["--to", "archive", "--pubkey", "keys", "spool"]));
    assert_eq!(code, 1, "{stderr}");
    assert!(stdout.is_empty());
    assert!(stderr.contains("media-sha256 check failed"), "{stderr}");
    assert!(!t.join("archive").exists() || files(&t.join("archive")).is_empty());
    assert!(path.exists());
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
    // An upload cut short may leave a temporary file beside the keys (removed by a push a
    // minute later), never a partial object under a key.
    assert!(files(&t.join("archive"))
        .iter()
        .all(|f| f.ends_with(".sealed.bin")
            || Path::new(f)
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(".callrec-"))));
    run_ok(
        t.cmd("callrec-verify")
            .args(["-p", "keys"])
            .args(archived.iter().map(|f| t.join("archive").join(f))),
    );
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

#[test]
fn s3_push_reads_back_keeps_new_seals_beside_refuses_conflicts_and_never_overwrites() {
    let garage = Garage::start();
    let t = TestDir::new();
    spool(&t, 3);
    let sealed: Vec<Vec<u8>> = files(&t.join("spool"))
        .iter()
        .map(|f| fs::read(t.join("spool").join(f)).unwrap())
        .collect();
    fs::create_dir(t.join("again")).unwrap();
    for f in files(&t.join("spool")) {
        fs::copy(t.join("spool").join(&f), t.join("again").join(&f)).unwrap();
    }
    let out = run_ok(garage.env(t.cmd("callrec-push").args([
        "--to",
        "s3://calls/branch-0068",
        "--verify",
        "full",
        "--json",
        "spool",
    ])));
    let receipts = archived_lines(&out.stdout);
    assert_eq!(receipts.len(), 3);
    assert!(receipts
        .iter()
        .all(|r| r["status"] == "uploaded" && r["etag"].is_string()));
    let objects = garage.objects();
    assert_eq!(objects.len(), 3);
    for (key, bytes) in &objects {
        assert!(key.starts_with("branch-0068/20"), "{key}");
        assert!(sealed.contains(bytes), "{key} differs from what was sealed");
    }

    // The same seals again: already archived.
    let (code, _, stderr) =
        run(garage.env(
            t.cmd("callrec-push")
                .args(["--to", "s3://calls/branch-0068", "again"]),
        ));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stderr.matches("already archived").count(), 3, "{stderr}");

    // The same records sealed again: new seals, archived beside the first ones.
    fs::remove_dir_all(t.join("spool")).unwrap();
    fs::create_dir(t.join("spool")).unwrap();
    run_ok(
        t.cmd("callrec-seal")
            .args(["-k", "keys", "-o", "spool", "in"]),
    );
    run_ok(
        garage.env(
            t.cmd("callrec-push")
                .args(["--to", "s3://calls/branch-0068", "spool"]),
        ),
    );
    let with_new = garage.objects();
    assert_eq!(with_new.len(), 6);
    assert!(objects.iter().all(|(k, v)| with_new.get(k) == Some(v)));

    // Something else under the key of a seal: conflicts, and the bucket is unchanged.
    // (Garage ignores If-None-Match, so this rests on callrec's own check and read-back.)
    for (key, bytes) in &objects {
        let mut other = bytes.clone();
        other.push(b'x');
        put(&garage, key, other);
    }
    let tampered = garage.objects();
    for f in files(&t.join("again/sent")) {
        fs::rename(t.join("again/sent").join(&f), t.join("again").join(&f)).unwrap();
    }
    let (code, _, stderr) =
        run(garage.env(
            t.cmd("callrec-push")
                .args(["--to", "s3://calls/branch-0068", "again"]),
        ));
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(
        stderr.matches("already holds a different record").count(),
        3,
        "{stderr}"
    );
    assert_eq!(garage.objects(), tampered);
}

/// Store an object in the Garage bucket, behind callrec's back.
fn put(garage: &Garage, key: &str, bytes: Vec<u8>) {
    use object_store::ObjectStore;
    let store = object_store::aws::AmazonS3Builder::new()
        .with_bucket_name(Garage::BUCKET)
        .with_endpoint(&garage.endpoint)
        .with_allow_http(true)
        .with_region("garage")
        .with_access_key_id(&garage.key_id)
        .with_secret_access_key(&garage.secret)
        .build()
        .unwrap();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(store.put(&object_store::path::Path::from(key), bytes.into()))
        .unwrap();
}

#[test]
fn s3_server_down_exits_75_and_the_same_command_completes_later() {
    let mut garage = Garage::start();
    let t = TestDir::new();
    spool(&t, 2);
    garage.stop();
    let (code, _, stderr) =
        run(garage.env(t.cmd("callrec-push").args(["--to", "s3://calls", "spool"])));
    assert_eq!(code, 75, "{stderr}");
    assert_eq!(
        files(&t.join("spool"))
            .iter()
            .filter(|f| f.ends_with(".sealed.bin"))
            .count(),
        2
    );
    assert!(!files(&t.join("spool"))
        .iter()
        .any(|f| f.starts_with("sent/")));
    garage.run_server();
    let out = run_ok(garage.env(t.cmd("callrec-push").args(["--to", "s3://calls", "spool"])));
    assert_eq!(lines(&out).len(), 2);
    assert_eq!(garage.objects().len(), 2);
}

#[test]
fn s3_large_records_go_up_in_parts() {
    let garage = Garage::start();
    let t = TestDir::new();
    t.keygen("keys");
    let big: Vec<u8> = (0..40u32 << 20)
        .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
        .collect();
    t.write("in/big.bin", &big);
    fs::create_dir(t.join("spool")).unwrap();
    run_ok(
        t.cmd("callrec-seal")
            .args(["-k", "keys", "-o", "spool", "in"]),
    );
    let sealed = fs::read(t.join("spool/big.sealed.bin")).unwrap();
    run_ok(
        garage.env(
            t.cmd("callrec-push")
                .args(["--to", "s3://calls", "--verify", "full", "spool"]),
        ),
    );
    let objects = garage.objects();
    assert_eq!(objects.len(), 1);
    assert!(
        objects.values().next().unwrap() == &sealed,
        "the object differs from the sealed file"
    );
}

/// Object Lock against moto, which implements it (Garage does not): for the protocol only.
#[test]
fn object_lock_is_set_at_push_and_read_back() {
    let moto = Moto::start();
    let t = TestDir::new();
    spool(&t, 2);
    let out = run_ok(moto.env(t.cmd("callrec-push").args([
        "--to",
        "s3://locked/calls",
        "--retain-days",
        "30",
        "--lock-mode",
        "compliance",
        "--legal-hold",
        "--require-retention",
        "--json",
        "spool",
    ])));
    let receipts = archived_lines(&out.stdout);
    assert_eq!(receipts.len(), 2);
    let in_30_days = (chrono::Utc::now() + chrono::Duration::days(30)).timestamp();
    for receipt in &receipts {
        let retention = &receipt["retention"];
        assert_eq!(retention["mode"], "COMPLIANCE", "{receipt}");
        assert_eq!(retention["legal_hold"], true, "{receipt}");
        let until = chrono::DateTime::parse_from_rfc3339(retention["until"].as_str().unwrap())
            .unwrap()
            .timestamp();
        assert!((until - in_30_days).abs() < 120, "{receipt}");
        // Read independently of callrec, by boto3.
        let key = receipt["key"].as_str().unwrap();
        let seen = moto.boto(&format!(
            "h = s3.head_object(Bucket='locked', Key='{key}')\n\
             print(h['ObjectLockMode'], int(h['ObjectLockRetainUntilDate'].timestamp()), \
             h['ObjectLockLegalHoldStatus'])"
        ));
        let fields: Vec<&str> = seen.split_whitespace().collect();
        assert_eq!(fields[0], "COMPLIANCE");
        assert!(
            (fields[1].parse::<i64>().unwrap() - until).abs() <= 1,
            "{seen}"
        );
        assert_eq!(fields[2], "ON");
    }
    // Pushed again with a shorter retention: already archived, the longer lock stands.
    for f in files(&t.join("spool/sent")) {
        fs::rename(t.join("spool/sent").join(&f), t.join("spool").join(&f)).unwrap();
    }
    let out = run_ok(moto.env(t.cmd("callrec-push").args([
        "--to",
        "s3://locked/calls",
        "--retain-days",
        "1",
        "--require-retention",
        "--json",
        "spool",
    ])));
    for receipt in archived_lines(&out.stdout) {
        assert_eq!(receipt["status"], "already-archived");
        let until =
            chrono::DateTime::parse_from_rfc3339(receipt["retention"]["until"].as_str().unwrap())
                .unwrap()
                .timestamp();
        assert!((until - in_30_days).abs() < 120, "{receipt}");
    }
}

#[test]
fn a_store_without_object_lock_is_named_and_require_retention_fails() {
    let garage = Garage::start();
    let t = TestDir::new();
    spool(&t, 1);
    let sealed = files(&t.join("spool"))
        .into_iter()
        .find(|f| f.ends_with(".sealed.bin"))
        .unwrap();
    let (code, _, stderr) = run(garage.env(t.cmd("callrec-push").args([
        "--to",
        "s3://calls",
        "--retain-days",
        "7",
        "--require-retention",
        "spool",
    ])));
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("did not keep the retention"), "{stderr}");
    assert!(
        t.join("spool").join(&sealed).exists(),
        "the record stays in the spool"
    );

    // Without --require-retention: archived, with a plain warning and the reason in the receipt.
    let (code, stdout, stderr) = run(garage.env(t.cmd("callrec-push").args([
        "--to",
        "s3://calls",
        "--retain-days",
        "7",
        "--json",
        "spool",
    ])));
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("archived without the Object Lock asked for"),
        "{stderr}"
    );
    let receipt = &archived_lines(stdout.as_bytes())[0];
    assert!(receipt["retention_problem"].is_string(), "{receipt}");
    assert!(receipt.get("retention").is_none(), "{receipt}");
}

#[test]
fn s3_push_killed_midway_and_run_again_archives_everything_exactly_once() {
    let garage = Garage::start();
    let t = TestDir::new();
    spool(&t, 60);
    let sealed: std::collections::BTreeSet<Vec<u8>> = files(&t.join("spool"))
        .iter()
        .filter(|f| f.ends_with(".sealed.bin"))
        .map(|f| fs::read(t.join("spool").join(f)).unwrap())
        .collect();
    let mut child = garage
        .env(
            t.cmd("callrec-push")
                .args(["--to", "s3://calls", "-j", "1", "spool"]),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once some records, but not all, have gone up.
    for _ in 0..200 {
        std::thread::sleep(Duration::from_millis(25));
        let sent = files(&t.join("spool"))
            .iter()
            .filter(|f| f.starts_with("sent/"))
            .count();
        if sent >= 5 {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let sent_before = files(&t.join("spool"))
        .iter()
        .filter(|f| f.starts_with("sent/"))
        .count();
    assert!(sent_before < 60, "the push finished before it was killed");
    run_ok(garage.env(t.cmd("callrec-push").args(["--to", "s3://calls", "spool"])));
    let objects = garage.objects();
    assert_eq!(objects.len(), 60, "every record archived exactly once");
    for (key, bytes) in &objects {
        assert!(key.ends_with(".sealed.bin"), "{key}");
        assert!(sealed.contains(bytes), "{key} is not a whole sealed record");
    }
    let spool_files = files(&t.join("spool"));
    assert_eq!(
        spool_files
            .iter()
            .filter(|f| f.starts_with("sent/"))
            .count(),
        60,
        "nothing missing from the spool"
    );
}
