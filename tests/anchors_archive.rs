//! Anchors in the archive: `callrec-push` archives a spool's anchor files beside its records
//! (a directory archive and Garage, a real S3 server), under keys made from their content, and
//! `callrec-query index` reads them back, checks them against a trusted TSA (OpenSSL's TSA on
//! loopback, `tsa.rs`) and dates each record by the anchors of its chain.

use std::fs;
use std::path::{Path, PathBuf};

use base64::Engine;
use serde_json::Value;

use crate::tsa::Tsa;
use crate::util::*;

/// A key directory, and `n` small recordings sealed into `spool` with the TSA: the records
/// and one anchor of the head (sequence `n`).
fn sealed_spool(t: &TestDir, tsa: &Tsa, n: usize) {
    t.keygen("keys");
    let inputs: Vec<PathBuf> = (0..n)
        .map(|i| t.write(&format!("in/{i:04}.bin"), format!("recording {i}")))
        .collect();
    let (code, _, stderr) = run(t
        .cmd("callrec-seal")
        .args(["-k", "keys", "-o", "spool", "--tsa", &tsa.url()])
        .args(&inputs));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        anchors_in(&t.join("spool")).len(),
        1,
        "{stderr} {:?}",
        files(t.path())
    );
}

/// The anchor files directly in `dir`.
fn anchors_in(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "anchor"))
        .collect();
    found.sort();
    found
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

/// A copy of every file directly in `from`, in the new directory `to`.
fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

/// The archive key an anchor must have: the day its head was sealed (UTC), then its canonical
/// name `KEYID.SEQUENCE.T.anchor` (T: 16 hex digits of the token's SHA-256).
fn expected_key(anchor: &[u8]) -> String {
    let text = std::str::from_utf8(anchor).unwrap();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .unwrap()
            .to_string()
    };
    let b64 = base64::engine::general_purpose::STANDARD;
    let manifest = String::from_utf8(b64.decode(field("manifest")).unwrap()).unwrap();
    let sealed_at = manifest
        .lines()
        .find_map(|l| l.strip_prefix("sealed-at: "))
        .unwrap();
    let day: chrono::DateTime<chrono::Utc> = sealed_at.parse().unwrap();
    let token = b64.decode(field("token")).unwrap();
    let t = <sha2::Sha256 as sha2::Digest>::digest(&token);
    format!(
        "{}/{}.{}.{}.anchor",
        day.format("%Y/%m/%d"),
        field("key-id"),
        field("sequence"),
        hex::encode(&t[..8])
    )
}

/// `callrec-query` with the TSA's certificate trusted (`$CALLREC_TSA_CA`) when given.
fn query(t: &TestDir, tsa_ca: Option<&Path>) -> std::process::Command {
    let mut cmd = t.cmd("callrec-query");
    cmd.env_remove("CALLREC_TSA_CA");
    if let Some(ca) = tsa_ca {
        cmd.env("CALLREC_TSA_CA", ca);
    }
    cmd
}

/// `callrec-query index --json` of `archive` into `db`, with the seal key and identity: the
/// exit code and the JSON lines.
fn index(t: &TestDir, db: &str, tsa_ca: Option<&Path>, archive: &str) -> (i32, Vec<Value>) {
    index_with(&mut query(t, tsa_ca), db, archive)
}

/// [`index`] with a command made ready (for S3).
fn index_with(cmd: &mut std::process::Command, db: &str, archive: &str) -> (i32, Vec<Value>) {
    let (code, stdout, stderr) = run(cmd.args([
        "--db",
        db,
        "index",
        "--json",
        "--pubkey",
        "keys/seal.pub",
        "--identity",
        "keys",
        archive,
    ]));
    assert!(code == 0 || code == 1, "{stderr}");
    (code, json_lines(stdout.as_bytes()))
}

/// `callrec-query search --json` of `db`: the records.
fn search(t: &TestDir, db: &str) -> Vec<Value> {
    query_records(&run_ok(query(t, None).args(["--db", db, "search", "--json"])).stdout)
}

/// The TSA's time of an anchor file, as callrec-verify reads it.
fn tsa_time(t: &TestDir, tsa: &Tsa, anchor: &Path) -> String {
    let out = run_ok(
        t.cmd("callrec-verify")
            .args(["--json", "-p", "keys/seal.pub", "--tsa-ca"])
            .arg(tsa.ca_pem())
            .arg(anchor),
    );
    json_lines(&out.stdout)
        .into_iter()
        .find(|l| l["type"] == "anchor")
        .unwrap()["time"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn anchors_are_pushed_beside_their_records_to_a_directory_and_to_s3() {
    let garage = Garage::start();
    let tsa = Tsa::start();
    let t = TestDir::new();
    sealed_spool(&t, &tsa, 3);
    let anchor = anchors_in(&t.join("spool")).remove(0);
    let bytes = fs::read(&anchor).unwrap();
    let key = expected_key(&bytes);
    // The same files in two more spools: one pushed to Garage under a misleading name, one
    // pushed again to the directory archive.
    copy_dir(&t.join("spool"), &t.join("s3-spool"));
    let misnamed = t.join("s3-spool/0000000000000000.9.0000000000000000.anchor");
    fs::rename(
        t.join("s3-spool").join(anchor.file_name().unwrap()),
        &misnamed,
    )
    .unwrap();
    copy_dir(&t.join("spool"), &t.join("again"));

    // A directory archive: the anchor under its key, byte for byte, after the records.
    let out = run_ok(t.cmd("callrec-push").args([
        "--to",
        "archive",
        "--pubkey",
        "keys/seal.pub",
        "--json",
        "spool",
    ]));
    let receipts = archived_lines(&out.stdout);
    assert_eq!(receipts.len(), 4, "{receipts:?}");
    assert!(receipts.iter().all(|r| r["status"] == "uploaded"));
    let kinds: Vec<&str> = receipts
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["record", "record", "record", "anchor"]);
    let receipt = &receipts[3];
    assert_eq!(receipt["key"], key.as_str());
    assert_eq!(receipt["size"], bytes.len() as u64);
    assert_eq!(
        receipt["sha256"],
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes))
    );
    // The receipt names the head: its record and its manifest hash, the hash the TSA stamped.
    let head = receipts
        .iter()
        .find(|r| r["kind"] == "record" && r["manifest_sha256"] == receipt["manifest_sha256"])
        .expect("the head is among the records");
    assert_eq!(head["record_id"], receipt["record_id"]);
    assert_eq!(fs::read(t.join("archive").join(&key)).unwrap(), bytes);
    let spool = files(&t.join("spool"));
    assert!(
        spool
            .iter()
            .all(|f| f.starts_with("sent/") || f.starts_with(".callrec-push")),
        "{spool:?}"
    );
    assert!(spool.contains(&format!(
        "sent/{}",
        anchor.file_name().unwrap().to_string_lossy()
    )));
    let journal = fs::read_to_string(t.join("state/callrec/push-journal.jsonl")).unwrap();
    let journaled: Vec<Value> = journal
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(journaled.len(), 4);
    assert!(journaled
        .iter()
        .any(|r| r["kind"] == "anchor" && r["key"] == key.as_str()));
    // What the archive holds verifies as a set: every record anchored at the TSA's time.
    let out = run_ok(
        t.cmd("callrec-verify")
            .args(["--json", "-p", "keys/seal.pub", "--tsa-ca"])
            .arg(tsa.ca_pem())
            .arg("archive"),
    );
    let summary = json_lines(&out.stdout).pop().unwrap();
    assert_eq!(summary["anchored"], 3, "{summary}");

    // The same anchor again: already archived, journaled once, moved to sent/ all the same.
    let out = run_ok(
        t.cmd("callrec-push")
            .args(["--to", "archive", "--json", "again"]),
    );
    let receipts = archived_lines(&out.stdout);
    assert_eq!(receipts.len(), 4);
    assert!(receipts.iter().all(|r| r["status"] == "already-archived"));
    assert!(anchors_in(&t.join("again")).is_empty());
    let journal = fs::read_to_string(t.join("state/callrec/push-journal.jsonl")).unwrap();
    assert_eq!(journal.lines().count(), 4);

    // Garage: the misnamed anchor lands under the key its content gives, byte for byte.
    let push_s3 = |spool: &str| {
        run_ok(garage.env(t.cmd("callrec-push").args([
            "--to",
            "s3://calls/branch-0068",
            "--verify",
            "full",
            "--json",
            spool,
        ])))
    };
    let receipts = archived_lines(&push_s3("s3-spool").stdout);
    assert_eq!(receipts.len(), 4);
    assert!(receipts.iter().all(|r| r["status"] == "uploaded"));
    let s3_key = format!("branch-0068/{key}");
    assert_eq!(receipts[3]["key"], s3_key.as_str());
    assert!(receipts[3]["etag"].is_string());
    let objects = garage.objects();
    assert_eq!(objects.len(), 4);
    assert_eq!(objects[&s3_key], bytes);
    assert!(anchors_in(&t.join("s3-spool")).is_empty());
    assert!(t
        .join("s3-spool/sent")
        .join(misnamed.file_name().unwrap())
        .is_file());
    // Pushed again (from a fresh copy): already archived.
    copy_dir(&t.join("again/sent"), &t.join("s3-again"));
    let receipts = archived_lines(&push_s3("s3-again").stdout);
    assert!(
        receipts.len() == 4 && receipts.iter().all(|r| r["status"] == "already-archived"),
        "{receipts:?}"
    );

    // Indexed from the bucket: every record dated by the anchor.
    let (code, lines) = index_with(
        garage.env(&mut query(&t, Some(tsa.ca_pem()))),
        "s3.sqlite",
        "s3://calls/branch-0068",
    );
    assert_eq!(code, 0, "{lines:?}");
    let indexed = lines.iter().find(|l| l["type"] == "indexed").unwrap();
    assert_eq!(indexed["anchors"], 1, "{indexed}");
    let time = tsa_time(&t, &tsa, &t.join("archive").join(&key));
    let records = search(&t, "s3.sqlite");
    assert_eq!(records.len(), 3);
    assert!(
        records.iter().all(|r| r["anchored_at"] == time.as_str()),
        "{records:?}"
    );
}

#[test]
fn a_tampered_anchor_is_refused_and_stays_in_the_spool() {
    let tsa = Tsa::start();
    let t = TestDir::new();
    sealed_spool(&t, &tsa, 2);
    let anchor = anchors_in(&t.join("spool")).remove(0);
    let text = fs::read_to_string(&anchor).unwrap();
    let token = text
        .lines()
        .find_map(|l| l.strip_prefix("token: "))
        .unwrap()
        .to_string();
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut der = b64.decode(&token).unwrap();
    *der.last_mut().unwrap() ^= 1; // inside the TSA's signature
    fs::write(&anchor, text.replace(&token, &b64.encode(&der))).unwrap();

    let (code, stdout, stderr) = run(t
        .cmd("callrec-push")
        .args(["--to", "archive", "--json", "spool"]));
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("timestamp"), "{stderr}");
    let lines = json_lines(stdout.as_bytes());
    assert!(lines
        .iter()
        .any(|l| l["type"] == "error" && l["temporary"] == false));
    assert_eq!(archived_lines(stdout.as_bytes()).len(), 2, "the records go");
    assert!(anchor.is_file(), "the anchor stays in the spool");
    assert!(!files(&t.join("archive"))
        .iter()
        .any(|f| f.ends_with(".anchor")));
    // Named directly it is refused the same way.
    let (code, ..) = run(t.cmd("callrec-push").args(["--to", "archive"]).arg(&anchor));
    assert_eq!(code, 1);
    assert!(anchor.is_file());
}

#[test]
fn the_index_dates_each_record_by_the_anchors_of_its_chain() {
    let tsa = Tsa::start();
    let t = TestDir::new();
    sealed_spool(&t, &tsa, 3);
    let anchor = anchors_in(&t.join("spool")).remove(0);
    let time = tsa_time(&t, &tsa, &anchor);
    // A second archive without the last record (the head the anchor stamps), kept aside.
    copy_dir(&t.join("spool"), &t.join("short-spool"));
    run_ok(t.cmd("callrec-push").args(["--to", "archive", "spool"]));

    // With the TSA trusted: one anchor read, every record anchored at its time.
    let (code, lines) = index(&t, "index.sqlite", Some(tsa.ca_pem()), "archive");
    assert_eq!(code, 0, "{lines:?}");
    let indexed = lines.iter().find(|l| l["type"] == "indexed").unwrap();
    assert_eq!(
        (
            &indexed["listed"],
            &indexed["anchors"],
            &indexed["anchors_read"],
            &indexed["anchors_failed"]
        ),
        (
            &Value::from(3),
            &Value::from(1),
            &Value::from(1),
            &Value::from(0)
        ),
        "{indexed}"
    );
    let records = search(&t, "index.sqlite");
    assert_eq!(records.len(), 3);
    assert!(
        records.iter().all(|r| r["anchored_at"] == time.as_str()),
        "{records:?}"
    );
    let id = records[0]["record_id"].as_str().unwrap().to_string();
    let history = query_records(
        &run_ok(query(&t, None).args(["--db", "index.sqlite", "history", "--json", &id])).stdout,
    );
    assert_eq!(history[0]["anchored_at"], time.as_str());
    // A rerun reads nothing again.
    let (_, lines) = index(&t, "index.sqlite", Some(tsa.ca_pem()), "archive");
    let indexed = lines.iter().find(|l| l["type"] == "indexed").unwrap();
    assert_eq!(
        (&indexed["read"], &indexed["anchors_read"]),
        (&Value::from(0), &Value::from(0))
    );

    // The printed page shows the trusted time, checked again from the archive.
    let print = |db: &str, tsa_ca: Option<&Path>| {
        let out = run_ok(query(&t, tsa_ca).args([
            "--db",
            db,
            "get",
            &id,
            "--print",
            "--pubkey",
            "keys/seal.pub",
            "--identity",
            "keys",
        ]));
        String::from_utf8(out.stdout).unwrap()
    };
    let page = print("index.sqlite", Some(tsa.ca_pem()));
    let line = page
        .lines()
        .find(|l| l.starts_with("可信时间 / Trusted time"))
        .unwrap_or_else(|| panic!("{page}"));
    assert!(line.contains("(TSA ") && line.contains(".anchor"), "{line}");
    assert!(
        !line.contains("未锚定") && !line.contains("not checked now"),
        "{line}"
    );
    let local: chrono::DateTime<chrono::Local> = time.parse().unwrap();
    assert!(
        line.contains(&local.format("%Y-%m-%d %H:%M:%S %:z").to_string()),
        "{line}"
    );
    // Without the TSA certificates now, the page says the TSA was trusted when indexed.
    assert!(print("index.sqlite", None).contains("not checked now"));

    // Indexed without the TSA trusted: no record is anchored, and the page says so.
    let (code, _) = index(&t, "untrusted.sqlite", None, "archive");
    assert_eq!(code, 0);
    assert!(search(&t, "untrusted.sqlite")
        .iter()
        .all(|r| r["anchored_at"].is_null()));
    let page = print("untrusted.sqlite", Some(tsa.ca_pem()));
    assert!(
        page.contains("可信时间 / Trusted time") && page.contains("未锚定 (not anchored)"),
        "{page}"
    );
    // The same index given the TSA later checks the anchor again, and dates the records.
    let (_, lines) = index(&t, "untrusted.sqlite", Some(tsa.ca_pem()), "archive");
    let indexed = lines.iter().find(|l| l["type"] == "indexed").unwrap();
    assert_eq!(indexed["anchors_read"], 1);
    assert!(search(&t, "untrusted.sqlite")
        .iter()
        .all(|r| r["anchored_at"] == time.as_str()));

    // A tampered anchor in the archive is flagged (exit 1) and dates nothing.
    let text = fs::read_to_string(t.join("spool/sent").join(anchor.file_name().unwrap())).unwrap();
    let forged = text.replace("sequence: 3\n", "sequence: 9\n");
    t.write(
        "archive/2020/01/01/0000000000000000.9.0000000000000000.anchor",
        forged,
    );
    let (code, lines) = index(&t, "index.sqlite", Some(tsa.ca_pem()), "archive");
    assert_eq!(code, 1);
    let flagged: Vec<&Value> = lines.iter().filter(|l| l["type"] == "flagged").collect();
    assert_eq!(flagged.len(), 1, "{lines:?}");
    assert!(flagged[0]["key"].as_str().unwrap().ends_with(".anchor"));
    assert!(flagged[0]["problem"]
        .as_str()
        .unwrap()
        .starts_with("anchor"));
    assert_eq!(lines.last().unwrap()["failed"], 1);
    assert!(search(&t, "index.sqlite")
        .iter()
        .all(|r| r["anchored_at"] == time.as_str()));

    // The last record removed from an archive: the anchor of its head still dates the
    // records before it.
    let head = fs::read_dir(t.join("short-spool"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".sealed.bin"))
        .find(|p| {
            let out = run_ok(
                t.cmd("callrec-verify")
                    .args(["--json", "-p", "keys/seal.pub"])
                    .arg(p),
            );
            json_lines(&out.stdout)[0]["sequence"] == 3
        })
        .unwrap();
    fs::remove_file(head).unwrap();
    run_ok(t.cmd("callrec-push").args(["--to", "short", "short-spool"]));
    let (code, _) = index(&t, "short.sqlite", Some(tsa.ca_pem()), "short");
    assert_eq!(code, 0);
    let records = search(&t, "short.sqlite");
    assert_eq!(records.len(), 2);
    assert!(records.iter().all(|r| r["anchored_at"] == time.as_str()));
}
