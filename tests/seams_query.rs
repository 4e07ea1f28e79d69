//! seams_query: callrec-query where it meets other tools' files, edited indexes and hostile
//! archives (issue 10, items 7, 8, 10-14): re-indexing with new keys, `get` of a record other
//! than the one asked for, spreadsheet formulas, terminal escapes, symbolic links, bad names and
//! working files in a directory archive, and private output files.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};

use serde_json::{json, Value};

use crate::util::*;

/// A sidecar for record `id`; `edit` changes it before it is written.
fn sidecar(i: usize, edit: impl Fn(&mut Value)) -> Value {
    let mut record = json!({
        "schema": 1,
        "id": format!("rec-{i:04}"),
        "collection_flag": "01",
        "phone": {"number": format!("133211507{i:02}"), "device": {"number": "8803880201"}},
        "operator": {"id": "130002", "name": "柜员二", "institution_code": "0068",
                      "institution_name": "大旺路分理处"},
        "call": {"customer_name": format!("客户{i}"), "role": "财务人员", "business_type": "大额支付",
                 "account": "32150100100065711", "result": 1, "remark": ""},
        "times": {"call_start": format!("2026-11-{:02}T09:30:00+08:00", i + 1)},
    });
    edit(&mut record);
    record
}

/// Seal records (sidecars as given) with the key directory `keys` into the directory
/// archive `archive` (as callrec-seal names them: `NNNN.sealed.bin`).
fn sealed_archive(t: &TestDir, records: &[Value]) {
    if !t.join("keys").exists() {
        t.keygen("keys");
    }
    for (i, record) in records.iter().enumerate() {
        t.write(&format!("in/{i:04}.bin"), format!("media {i}"));
        t.write(
            &format!("in/{i:04}.bin.callrec.json"),
            serde_json::to_vec(record).unwrap(),
        );
    }
    fs::create_dir_all(t.join("archive")).unwrap();
    run_ok(
        t.cmd("callrec-seal")
            .args(["-k", "keys", "-o", "archive", "in"]),
    );
}

fn plain_archive(t: &TestDir, n: usize) {
    let records: Vec<Value> = (0..n).map(|i| sidecar(i, |_| {})).collect();
    sealed_archive(t, &records);
}

/// `index --json ARGS archive`: exit code, the summary, and the other lines.
fn index(t: &TestDir, args: &[&str]) -> (i32, Value, Vec<Value>) {
    let (code, stdout, stderr) = run(t
        .cmd("callrec-query")
        .args(["index", "--json"])
        .args(args)
        .arg("archive"));
    assert!(code == 0 || code == 1, "index exited {code}: {stderr}");
    let mut lines = json_lines(stdout.as_bytes());
    let summary = lines.remove(0);
    // The last line sums up every archive; the others are per record or entry.
    assert_eq!(
        lines.pop().map(|l| l["type"].clone()),
        Some("summary".into())
    );
    (code, summary, lines)
}

fn search(t: &TestDir, args: &[&str]) -> Vec<Value> {
    query_records(&run_ok(t.cmd("callrec-query").args(["search", "--json"]).args(args)).stdout)
}

fn sql(t: &TestDir, statement: &str) {
    tool_ok(
        "sqlite3",
        &["data/callrec/index.sqlite", statement],
        t.path(),
    );
}

#[test]
fn reindexing_with_an_identity_reads_the_text_info_it_could_not_read_before() {
    let t = TestDir::new();
    plain_archive(&t, 3);
    let (_, summary, _) = index(&t, &[]);
    assert_eq!(summary["text_unread"], 3);
    assert!(search(&t, &["--phone", "13321150701"]).is_empty());

    let (code, summary, _) = index(&t, &["--identity", "keys"]);
    assert_eq!(code, 0);
    assert_eq!(
        summary["read"], 3,
        "an identity now given reads the text info"
    );
    assert_eq!(summary["text_unread"], 0);
    let found = search(&t, &["--phone", "13321150701"]);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["customer_name"], "客户1");

    let (_, summary, _) = index(&t, &["--identity", "keys"]);
    assert_eq!(summary["read"], 0, "a plain rerun reads nothing");
    let (_, summary, _) = index(&t, &[]);
    assert_eq!(summary["read"], 0, "a run with fewer keys reads nothing");

    // A wrong identity is tried once; the right one reads what it could not.
    let t = TestDir::new();
    plain_archive(&t, 2);
    t.keygen("other");
    let (_, summary, _) = index(&t, &["--identity", "other"]);
    assert_eq!(summary["text_unread"], 2);
    let (_, summary, _) = index(&t, &["--identity", "other"]);
    assert_eq!(summary["read"], 0, "the same identity is not tried again");
    let (_, summary, _) = index(&t, &["--identity", "keys"]);
    assert_eq!(summary["read"], 2);
    assert_eq!(summary["text_unread"], 0);
}

#[test]
fn reindexing_with_other_trusted_keys_checks_the_signatures_again() {
    let t = TestDir::new();
    plain_archive(&t, 3);
    t.keygen("other");
    let (code, _, _) = index(&t, &["--identity", "keys"]);
    assert_eq!(code, 0);

    // Keys that do not trust these seals: every record is checked again and flagged.
    let (code, summary, lines) = index(&t, &["--pubkey", "other"]);
    assert_eq!(code, 1, "{summary}");
    assert_eq!(summary["read"], 3);
    assert_eq!(summary["failed"], 3);
    assert!(
        lines
            .iter()
            .all(|l| l["type"] == "flagged"
                && l["problem"].as_str().unwrap().starts_with("signature"))
    );
    assert_eq!(search(&t, &["--failed"]).len(), 3);
    let (_, summary, _) = index(&t, &["--pubkey", "other"]);
    assert_eq!(summary["read"], 0, "a plain rerun reads nothing");

    // The right key clears them, and the text info read before is kept by a run that has no
    // identity.
    let (code, summary, _) = index(&t, &["--pubkey", "keys"]);
    assert_eq!(code, 0);
    assert_eq!(summary["read"], 3);
    assert_eq!(summary["failed"], 0);
    assert!(search(&t, &["--failed"]).is_empty());
    let found = search(&t, &["--phone", "13321150702"]);
    assert_eq!(found.len(), 1, "the text info survived the recheck");
    assert_eq!(found[0]["customer_name"], "客户2");
    let (_, summary, _) = index(&t, &["--pubkey", "keys", "--identity", "keys"]);
    assert_eq!(summary["read"], 0);
}

#[test]
fn a_record_checked_again_stays_superseded_by_its_correction() {
    let t = TestDir::new();
    plain_archive(&t, 2);
    let out = run_ok(t.cmd("callrec-annotate").args([
        "--identity",
        "keys",
        "--result",
        "2",
        "archive/0001.sealed.bin",
    ]));
    let correction = lines(&out).remove(0);
    run_ok(
        t.cmd("callrec-seal")
            .args(["-k", "keys", "-o", "archive", &correction]),
    );
    index(&t, &["--identity", "keys"]);
    let current = |t: &TestDir| {
        search(t, &["--phone", "13321150701"])
            .iter()
            .map(|v| v["record_id"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let before = current(&t);
    assert_eq!(before.len(), 1);
    assert_ne!(before[0], "rec-0001");
    let (_, summary, _) = index(&t, &["--pubkey", "keys"]);
    assert_eq!(summary["read"], 3);
    assert_eq!(current(&t), before, "the original is still superseded");
}

#[test]
fn get_refuses_a_record_other_than_the_one_asked_for() {
    let t = TestDir::new();
    plain_archive(&t, 2);
    index(&t, &["--identity", "keys"]);
    // Someone edits the index: rec-0000 now points at rec-0001's file.
    sql(
        &t,
        "DELETE FROM records WHERE record_id = 'rec-0000'; \
         UPDATE records SET record_id = 'rec-0000' WHERE record_id = 'rec-0001'",
    );
    for what in [
        vec!["--sealed", "-o", "out.bin"],
        vec!["--text", "--identity", "keys"],
        vec!["--audio", "-o", "out.mka"],
    ] {
        let (code, stdout, stderr) = run(t
            .cmd("callrec-query")
            .args(["get", "rec-0000", "--pubkey", "keys"])
            .args(&what));
        assert_eq!(code, 1, "{what:?}: {stderr}");
        assert!(stdout.is_empty(), "{what:?}: {stdout}");
        assert!(
            stderr.contains("refused") && stderr.contains("names record rec-0001, not rec-0000"),
            "{stderr}"
        );
    }
    assert!(!t.join("out.bin").exists() && !t.join("out.mka").exists());
}

#[test]
fn csv_exports_neutralise_spreadsheet_formulas() {
    let t = TestDir::new();
    let records = vec![
        sidecar(0, |r| {
            r["call"]["remark"] = json!("=HYPERLINK(\"http://evil.example/\",\"点击\")");
            r["call"]["customer_name"] = json!("@SUM(A1:A9)");
            r["phone"]["number"] = json!("+14155550123");
            r["operator"]["id"] = json!("130009");
            r["operator"]["name"] = json!("-2+3");
        }),
        sidecar(1, |_| {}),
    ];
    sealed_archive(&t, &records);
    index(&t, &["--identity", "keys"]);
    let out = run_ok(t.cmd("callrec-query").args(["search", "--csv"]));
    let text = String::from_utf8(out.stdout).unwrap();
    let mut reader = csv::Reader::from_reader(text.trim_start_matches('\u{feff}').as_bytes());
    let header = reader.headers().unwrap().clone();
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let cell = |row: &csv::StringRecord, name: &str| {
        row[header.iter().position(|h| h == name).unwrap()].to_string()
    };
    let hostile = rows
        .iter()
        .find(|r| cell(r, "record_id") == "rec-0000")
        .unwrap();
    assert_eq!(
        cell(hostile, "remark"),
        "'=HYPERLINK(\"http://evil.example/\",\"点击\")"
    );
    assert_eq!(cell(hostile, "customer_name"), "'@SUM(A1:A9)");
    assert_eq!(cell(hostile, "phone"), "'+14155550123");
    assert_eq!(cell(hostile, "operator_name"), "'-2+3");
    let plain = rows
        .iter()
        .find(|r| cell(r, "record_id") == "rec-0001")
        .unwrap();
    assert_eq!(cell(plain, "phone"), "13321150701");
    assert_eq!(cell(plain, "customer_name"), "客户1");
    assert_eq!(cell(plain, "result"), "1");
    assert_eq!(cell(plain, "text"), "true");
    // JSON is not for spreadsheets: values are kept as they are.
    let found = search(&t, &["--customer", "@SUM"]);
    assert_eq!(found[0]["customer_name"], "@SUM(A1:A9)");

    let out = run_ok(
        t.cmd("callrec-query")
            .args(["stats", "--by", "all", "--csv"]),
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains(",'-2+3,"), "{text}");
    assert!(!text.contains(",-2+3,"), "{text}");
}

#[test]
fn terminal_output_escapes_control_characters() {
    let t = TestDir::new();
    let records = vec![sidecar(0, |r| {
        r["call"]["customer_name"] = json!("客户\u{1b}]0;pwned\u{7}\u{1b}[2J");
        r["operator"]["name"] = json!("柜员\u{1b}[31m");
    })];
    sealed_archive(&t, &records);
    index(&t, &["--identity", "keys"]);
    let on_terminal = |args: &[&str]| {
        let mut cmd = t.cmd("callrec-query");
        cmd.args(args);
        let mut session = rexpect::session::spawn_command(cmd, Some(10_000)).unwrap();
        session.exp_eof().unwrap()
    };
    for args in [
        &["search"][..],
        &["history", "rec-0000"],
        &["stats", "--by", "all"],
    ] {
        let shown = on_terminal(args);
        assert!(
            shown.contains("rec-0000") || args[0] == "stats",
            "{args:?}: {shown}"
        );
        assert!(
            !shown.contains('\u{1b}') && !shown.contains('\u{7}'),
            "{args:?} printed a raw control character: {shown:?}"
        );
        assert!(shown.contains("\\u{1b}"), "{args:?}: {shown:?}");
    }
    let out = run_ok(t.cmd("callrec-query").args([
        "get",
        "rec-0000",
        "--print",
        "--pubkey",
        "keys",
        "--identity",
        "keys",
    ]));
    assert!(!out.stdout.contains(&0x1b), "the page carries a raw escape");
    assert!(String::from_utf8(out.stdout)
        .unwrap()
        .contains("\\u{1b}]0;pwned\\u{7}"));
}

#[test]
fn symbolic_links_in_a_directory_archive_are_neither_listed_nor_read() {
    let t = TestDir::new();
    plain_archive(&t, 3);
    // A sealed record outside the archive, linked into it as a file and as a directory.
    fs::create_dir_all(t.join("outside")).unwrap();
    fs::copy(
        t.join("archive/0002.sealed.bin"),
        t.join("outside/x.sealed.bin"),
    )
    .unwrap();
    symlink("../outside/x.sealed.bin", t.join("archive/link.sealed.bin")).unwrap();
    symlink("../outside", t.join("archive/linked-dir")).unwrap();
    let (code, summary, lines) = index(&t, &["--identity", "keys"]);
    assert_eq!(code, 1, "a link where a record should be is reported");
    assert_eq!(summary["listed"], 3, "{summary}");
    assert_eq!(summary["read"], 3);
    assert_eq!(summary["skipped"], 1);
    let skipped: Vec<&Value> = lines.iter().filter(|l| l["type"] == "skipped").collect();
    assert_eq!(skipped.len(), 1, "{lines:?}");
    assert_eq!(skipped[0]["path"], "link.sealed.bin");
    assert!(skipped[0]["reason"]
        .as_str()
        .unwrap()
        .contains("symbolic link"));
    assert_eq!(search(&t, &[]).len(), 3);

    // An archived file replaced by a link to a copy outside is not served.
    fs::rename(
        t.join("archive/0001.sealed.bin"),
        t.join("outside/1.sealed.bin"),
    )
    .unwrap();
    symlink("../outside/1.sealed.bin", t.join("archive/0001.sealed.bin")).unwrap();
    // A row pointed through a linked directory is not served either.
    fs::rename(
        t.join("archive/0000.sealed.bin"),
        t.join("outside/0000.sealed.bin"),
    )
    .unwrap();
    sql(
        &t,
        "UPDATE records SET key = 'linked-dir/0000.sealed.bin' WHERE record_id = 'rec-0000'",
    );
    for (id, out) in [("rec-0001", "one.bin"), ("rec-0000", "zero.bin")] {
        let (code, stdout, stderr) = run(t
            .cmd("callrec-query")
            .args(["get", id, "--sealed", "-o", out, "--pubkey", "keys"]));
        assert_eq!(code, 2, "{id}: {stderr}");
        assert!(stdout.is_empty());
        assert!(stderr.contains("symbolic link"), "{stderr}");
        assert!(!t.join(out).exists());
    }
}

#[test]
fn a_bad_entry_in_a_directory_archive_is_skipped_and_working_files_are_not_records() {
    let t = TestDir::new();
    plain_archive(&t, 3);
    let sealed = fs::read(t.join("archive/0000.sealed.bin")).unwrap();
    // A name with a control character, and a named pipe with a sealed name.
    let bad = t.join("archive/bad\u{1b}[2Jname.sealed.bin");
    fs::write(&bad, &sealed).unwrap();
    tool_ok("mkfifo", &["archive/pipe.sealed.bin"], t.path());
    // Working files of the other tools: hidden, in progress, staging; and a hidden directory.
    for name in [
        ".callrec-x.sealed.bin",
        "0000.sealed.bin.part",
        "0000.sealed.bin#3",
        ".hidden/0009.sealed.bin",
    ] {
        t.write(&format!("archive/{name}"), &sealed);
    }
    let (code, summary, lines) = index(&t, &["--identity", "keys"]);
    assert_eq!(code, 1, "a bad entry is exit 1, not 75: {summary}");
    assert_eq!(summary["listed"], 3, "{summary}");
    assert_eq!(summary["read"], 3);
    assert_eq!(summary["skipped"], 2);
    let skipped: Vec<String> = lines
        .iter()
        .filter(|l| l["type"] == "skipped")
        .map(|l| l["path"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(skipped.len(), 2, "{lines:?}");
    assert!(skipped.contains(&"pipe.sealed.bin".to_string()));
    assert_eq!(search(&t, &[]).len(), 3);

    // On stderr the name is shown escaped.
    let (code, _, stderr) =
        run(t
            .cmd("callrec-query")
            .args(["index", "--identity", "keys", "archive"]));
    assert_eq!(code, 1);
    assert!(!stderr.contains('\u{1b}'), "{stderr:?}");
    assert!(stderr.contains("bad\\u{1b}[2Jname.sealed.bin"), "{stderr}");
}

#[test]
fn files_holding_personal_data_are_private() {
    let t = TestDir::new();
    plain_archive(&t, 1);
    index(&t, &["--identity", "keys"]);
    let mode = |name: &str| fs::metadata(t.join(name)).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode("data/callrec/index.sqlite"), 0o600);
    for (what, out) in [
        ("--text", "text.json"),
        ("--print", "page.txt"),
        ("--sealed", "copy.bin"),
    ] {
        run_ok(t.cmd("callrec-query").args([
            "get",
            "rec-0000",
            what,
            "-o",
            out,
            "--pubkey",
            "keys",
            "--identity",
            "keys",
        ]));
        assert_eq!(mode(out), 0o600, "{what}");
    }
}

// Issue 10 item 14: object_store refused a whole S3 listing over one key with `..` (exit 75,
// "unreachable", for ever). A key that cannot be an archive key is reported (escaped for a
// terminal) and skipped; the rest is indexed.
#[test]
fn an_s3_key_that_cannot_be_an_archive_key_is_skipped_not_fatal() {
    let garage = Garage::start();
    let t = TestDir::new();
    plain_archive(&t, 2);
    // Objects put by hand: two records, one under a key with a `..` segment, and one under a
    // key with a control character (and a space and a `+`, which S3 encodes on the wire).
    let script = format!(
        "import boto3\n\
         s3 = boto3.client('s3', endpoint_url='{}', region_name='garage', \
         aws_access_key_id='{}', aws_secret_access_key='{}')\n\
         for key, name in [('branch/2026/11/rec-0000.sealed.bin', '0000'), \
         ('branch/2026/11/rec-0001.sealed.bin', '0001'), ('branch/2026/../x.sealed.bin', '0000'), \
         ('branch/2026/11/\\x1b[31m a+b.sealed.bin', '0001')]:\n\
         \x20   s3.put_object(Bucket='calls', Key=key, Body=open('archive/' + name + '.sealed.bin', 'rb').read())\n\
         print(sorted(o['Key'] for o in s3.list_objects_v2(Bucket='calls')['Contents']))\n",
        garage.endpoint, garage.key_id, garage.secret
    );
    let listed = tool_ok("python3", &["-c", &script], t.path());
    assert!(listed.contains("branch/2026/../x.sealed.bin"), "{listed}");
    assert!(listed.contains("\\x1b[31m a+b"), "{listed}");
    let (code, stdout, stderr) = run(garage.env(t.cmd("callrec-query").args([
        "index",
        "--identity",
        "keys",
        "--json",
        "s3://calls/branch",
    ])));
    assert_eq!(code, 1, "bad keys are exit 1, not 75: {stderr}");
    let lines = json_lines(stdout.as_bytes());
    assert_eq!(lines[0]["read"], 2, "{stdout}");
    assert_eq!(lines[0]["skipped"], 2, "{stdout}");
    let skipped: Vec<&str> = lines
        .iter()
        .filter(|l| l["type"] == "skipped")
        .map(|l| l["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        skipped,
        [
            "branch/2026/../x.sealed.bin",
            "branch/2026/11/\u{1b}[31m a+b.sealed.bin"
        ],
        "{stdout}"
    );
    assert!(lines
        .iter()
        .filter(|l| l["type"] == "skipped")
        .all(|l| l["reason"]
            .as_str()
            .unwrap()
            .contains("not a safe archive key")));
    assert_eq!(search(&t, &[]).len(), 2);
    // The ETags are the store's, quoted, as object_store lists them: rows indexed before
    // listing went through the AWS SDK stay unchanged.
    let etags = tool_ok(
        "sqlite3",
        &[
            "data/callrec/index.sqlite",
            "SELECT key, etag FROM records ORDER BY key",
        ],
        t.path(),
    );
    let listed = tool_ok(
        "python3",
        &[
            "-c",
            &format!(
                "import boto3\n\
                 s3 = boto3.client('s3', endpoint_url='{}', region_name='garage', \
                 aws_access_key_id='{}', aws_secret_access_key='{}')\n\
                 for o in s3.list_objects_v2(Bucket='calls', Prefix='branch/2026/11/rec')['Contents']:\n\
                 \x20   print(o['Key'] + '|' + o['ETag'])\n",
                garage.endpoint, garage.key_id, garage.secret
            ),
        ],
        t.path(),
    );
    assert_eq!(etags, listed);
    assert!(
        etags.lines().all(|l| l.ends_with('"') && l.contains("|\"")),
        "{etags}"
    );

    // Read by a person: the bad key is named with its control character escaped, and
    // re-indexing does not fail over it either.
    let (code, _, stderr) = run(garage.env(t.cmd("callrec-query").args([
        "index",
        "--identity",
        "keys",
        "s3://calls/branch",
    ])));
    assert_eq!(code, 1, "{stderr}");
    assert!(!stderr.contains('\x1b'), "{stderr:?}");
    assert!(
        stderr.contains("SKIPPED branch/2026/11/\\u{1b}[31m a+b.sealed.bin"),
        "{stderr}"
    );
    assert!(
        stderr.contains("SKIPPED branch/2026/../x.sealed.bin"),
        "{stderr}"
    );
}
