//! callrec-query: an index over a real archive (a directory, and the Garage S3 server), every
//! figure 7 filter against a brute-force filter over the same records, tampered records
//! flagged and refused, literal matching of hostile values, incremental re-indexing, the
//! workload report and verified fetches.

use std::collections::BTreeSet;
use std::fs;

use serde_json::{json, Value};

use crate::util::*;

/// Customer names that would mean something to SQL or to LIKE if they were not bound as values.
const HOSTILE: [&str; 6] = [
    "王_明",
    "张%三",
    "O'Brien",
    "\"引号\"",
    "x' OR '1'='1",
    "李霞'); DROP TABLE records; --",
];

const ROLES: [&str; 5] = [
    "法定代表人/单位负责人",
    "财务负责人",
    "财务人员",
    "对账人员",
    "其他人员",
];
const BUSINESS: [&str; 5] = ["大额支付", "对公账户", "对私业务", "银企对账", "其他"];
const INSTITUTIONS: [(&str, &str); 3] = [
    ("0068", "大旺路分理处"),
    ("0069", "中关村支行"),
    ("0101", "100%_支行"),
];

/// The i-th synthetic record: every field of figure 7 varies, on its own cycle.
fn record(i: usize) -> Value {
    let customer = if i % 4 == 3 {
        HOSTILE[i / 4 % HOSTILE.len()].to_string()
    } else {
        format!("客户{}", i % 9)
    };
    let (code, name) = INSTITUTIONS[i % 3];
    let day = 1 + i % 28;
    json!({
        "schema": 1,
        "id": format!("rec-{i:04}"),
        "collection_flag": if i.is_multiple_of(5) { "02" } else { "01" },
        "phone": {"number": format!("133211507{:02}", i % 6), "device": {"number": format!("88038802{:02}", i % 4)}},
        "operator": {"id": format!("13000{}", i % 3 + 2), "name": format!("柜员{}", i % 3 + 2),
                      "institution_code": code, "institution_name": name},
        "call": {"customer_name": customer, "role": ROLES[i % 5], "business_type": BUSINESS[i % 4],
                 "account": format!("{:017}", 32150100100065711u64 + (i % 8) as u64),
                 "result": i % 7 + 1, "remark": ""},
        "times": {"call_start": format!("2026-11-{day:02}T{:02}:{:02}:00+08:00", 8 + i % 10, i % 60)},
    })
}

const N: usize = 48;

/// Seal N records into `spool`, and push them to a directory archive `archive`.
fn archive(t: &TestDir) {
    t.keygen("keys");
    fs::create_dir_all(t.join("in")).unwrap();
    for i in 0..N {
        t.write(&format!("in/{i:04}.bin"), format!("media {i}"));
        t.write(
            &format!("in/{i:04}.bin.callrec.json"),
            serde_json::to_vec(&record(i)).unwrap(),
        );
    }
    fs::create_dir_all(t.join("spool")).unwrap();
    run_ok(
        t.cmd("callrec-seal")
            .args(["-k", "keys", "-o", "spool", "in"]),
    );
}

fn search(t: &TestDir, args: &[&str]) -> BTreeSet<String> {
    let out = run_ok(t.cmd("callrec-query").args(["search", "--json"]).args(args));
    query_records(&out.stdout)
        .iter()
        .map(|v| v["record_id"].as_str().unwrap().to_string())
        .collect()
}

/// The records a filter should find, by brute force over the generated records.
fn expected(keep: impl Fn(&Value) -> bool) -> BTreeSet<String> {
    (0..N)
        .map(record)
        .filter(|r| keep(r))
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

/// Index an archive (text info decrypted, signatures checked) and return the summary.
fn index_summary(cmd: &mut std::process::Command, archive: &str) -> Value {
    let out = run_ok(cmd.args([
        "index",
        "--identity",
        "keys",
        "--pubkey",
        "keys",
        "--json",
        archive,
    ]));
    json_lines(&out.stdout).remove(0)
}

/// Every figure 7 condition, alone and combined, against brute force.
fn check_every_filter(t: &TestDir) {
    let s = |v: &Value, path: &[&str]| {
        path.iter()
            .fold(v, |v, p| &v[*p])
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    type Keep<'a> = Box<dyn Fn(&Value) -> bool + 'a>;
    let cases: Vec<(Vec<&str>, Keep)> = vec![
        (
            vec!["--from", "2026-11-10", "--to", "2026-11-12"],
            Box::new(|r| {
                let day = &s(r, &["times", "call_start"])[..10];
                ("2026-11-10"..="2026-11-12").contains(&day)
            }),
        ),
        (
            vec!["--from", "2026-11-20T00:00:00+08:00"],
            Box::new(|r| s(r, &["times", "call_start"]).as_str() >= "2026-11-20"),
        ),
        (
            vec!["--collection-flag", "02"],
            Box::new(|r| r["collection_flag"] == "02"),
        ),
        (
            vec!["--institution", "0069"],
            Box::new(|r| r["operator"]["institution_code"] == "0069"),
        ),
        (
            vec!["--institution", "分理处"],
            Box::new(|r| s(r, &["operator", "institution_name"]).contains("分理处")),
        ),
        (
            vec!["--phone", "13321150703"],
            Box::new(|r| r["phone"]["number"] == "13321150703"),
        ),
        (
            vec!["--customer", "客户"],
            Box::new(|r| s(r, &["call", "customer_name"]).contains("客户")),
        ),
        (
            vec!["--account", "32150100100065713"],
            Box::new(|r| r["call"]["account"] == "32150100100065713"),
        ),
        (
            vec!["--role", "财务人员"],
            Box::new(|r| r["call"]["role"] == "财务人员"),
        ),
        (
            vec!["--role", "2"],
            Box::new(|r| r["call"]["role"] == "财务负责人"),
        ),
        (
            vec!["--business-type", "corporate account"],
            Box::new(|r| r["call"]["business_type"] == "对公账户"),
        ),
        (
            vec!["--result", "1,3", "--result", "7"],
            Box::new(|r| [1, 3, 7].contains(&r["call"]["result"].as_u64().unwrap())),
        ),
        (
            vec!["--device", "8803880201"],
            Box::new(|r| r["phone"]["device"]["number"] == "8803880201"),
        ),
        (
            vec!["--operator", "130003"],
            Box::new(|r| r["operator"]["id"] == "130003"),
        ),
        (
            vec![
                "--operator",
                "130002",
                "--result",
                "1,2,3",
                "--from",
                "2026-11-05",
                "--to",
                "2026-11-25",
                "--institution",
                "0068",
            ],
            Box::new(|r| {
                let day = &s(r, &["times", "call_start"])[..10];
                r["operator"]["id"] == "130002"
                    && [1, 2, 3].contains(&r["call"]["result"].as_u64().unwrap())
                    && ("2026-11-05"..="2026-11-25").contains(&day)
                    && r["operator"]["institution_code"] == "0068"
            }),
        ),
    ];
    for (args, keep) in cases {
        let want = expected(keep);
        assert!(
            !want.is_empty(),
            "a filter that matches nothing proves little: {args:?}"
        );
        assert_eq!(search(t, &args), want, "search {args:?}");
    }
    // Hostile values match themselves only, and SQL fragments do nothing.
    for name in HOSTILE {
        let want = expected(|r| s(r, &["call", "customer_name"]).contains(name));
        assert!(!want.is_empty());
        assert_eq!(search(t, &["--customer", name]), want, "customer {name:?}");
    }
    for literal in ["%", "_", "'", "%' OR 1=1 --", "\" OR \"\"=\""] {
        let want = expected(|r| s(r, &["call", "customer_name"]).contains(literal));
        assert_eq!(
            search(t, &["--customer", literal]),
            want,
            "customer {literal:?}"
        );
    }
    assert_eq!(
        search(t, &["--institution", "100%_"]),
        expected(|r| r["operator"]["institution_code"] == "0101")
    );
    assert_eq!(
        search(t, &["--institution", "%"]),
        expected(|r| r["operator"]["institution_code"] == "0101")
    );
    assert!(search(t, &["--institution", "9%"]).is_empty());
    assert_eq!(search(t, &[]).len(), N, "the index survived every value");
}

#[test]
fn every_filter_matches_brute_force_over_a_directory_archive() {
    let t = TestDir::new();
    archive(&t);
    run_ok(t.cmd("callrec-push").args(["--to", "archive", "spool"]));
    let summary = index_summary(&mut t.cmd("callrec-query"), "archive");
    assert_eq!(summary["listed"], N);
    assert_eq!(summary["read"], N);
    assert_eq!(summary["failed"], 0);
    assert_eq!(summary["text_unread"], 0);
    check_every_filter(&t);

    // Sorted and limited.
    let out = run_ok(t.cmd("callrec-query").args([
        "search",
        "--json",
        "--sort",
        "time",
        "--reverse",
        "--limit",
        "3",
    ]));
    let times: Vec<String> = query_records(&out.stdout)
        .iter()
        .map(|v| v["call_start"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(times.len(), 3);
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "{times:?}");
    assert!(times[0].starts_with("2026-11-28"), "{times:?}");

    // CSV keeps the Chinese text, behind a byte-order mark for spreadsheets.
    let out = run_ok(
        t.cmd("callrec-query")
            .args(["search", "--csv", "--operator", "130002"]),
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with('\u{feff}'));
    let mut reader = csv::Reader::from_reader(text.trim_start_matches('\u{feff}').as_bytes());
    let header = reader.headers().unwrap().clone();
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(
        rows.len(),
        expected(|r| r["operator"]["id"] == "130002").len()
    );
    let col = header.iter().position(|h| h == "business_type").unwrap();
    assert!(rows.iter().all(|r| BUSINESS.contains(&&r[col])));

    // In a pipe, one record id per line.
    let out = run_ok(
        t.cmd("callrec-query")
            .args(["search", "--phone", "13321150700"]),
    );
    assert_eq!(
        lines(&out).into_iter().collect::<BTreeSet<_>>(),
        expected(|r| r["phone"]["number"] == "13321150700")
    );
}

#[test]
fn reindexing_reads_only_what_changed_and_tampering_is_flagged_and_refused() {
    let t = TestDir::new();
    archive(&t);
    run_ok(t.cmd("callrec-push").args(["--to", "archive", "spool"]));
    let index = |t: &TestDir| {
        let (code, stdout, stderr) =
            run(t
                .cmd("callrec-query")
                .args(["index", "--identity", "keys", "--json", "archive"]));
        let lines: Vec<Value> = stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        (code, lines, stderr)
    };
    let (code, first, _) = index(&t);
    assert_eq!(code, 0);
    assert_eq!(first[0]["read"], N);

    let (code, again, _) = index(&t);
    assert_eq!(code, 0);
    assert_eq!(again[0]["read"], 0, "an unchanged archive reads no record");
    assert_eq!(again[0]["unchanged"], N);

    // Tamper with one archived record's media: it is read again, flagged, and refused by get.
    let victim = walkdir::WalkDir::new(t.join("archive"))
        .sort_by_file_name()
        .into_iter()
        .filter_map(Result::ok)
        .find(|e| e.file_name().to_string_lossy().contains("rec-0005"))
        .unwrap()
        .into_path();
    let mut bytes = fs::read(&victim).unwrap();
    let media_len = "media 5".len();
    bytes[media_len / 7] ^= 0x20;
    fs::write(&victim, &bytes).unwrap();
    let (code, third, _) = index(&t);
    assert_eq!(code, 1, "a record that fails a check makes index exit 1");
    assert_eq!(third[0]["read"], 1);
    assert_eq!(third[0]["failed"], 1);
    assert_eq!(third[1]["type"], "flagged");
    assert_eq!(third[1]["record_id"], "rec-0005");
    assert!(
        third[1]["problem"]
            .as_str()
            .unwrap()
            .starts_with("media-checksum"),
        "{}",
        third[1]
    );
    assert_eq!(
        search(&t, &["--failed"]),
        BTreeSet::from(["rec-0005".to_string()])
    );
    let (code, stdout, stderr) = run(t.cmd("callrec-query").args([
        "get", "rec-0005", "--sealed", "-o", "out.bin", "--pubkey", "keys",
    ]));
    assert_eq!(code, 1, "{stderr}");
    assert!(stdout.is_empty());
    assert!(
        stderr.contains("refused") && stderr.contains("media-checksum"),
        "{stderr}"
    );
    assert!(!t.join("out.bin").exists(), "nothing handed out");

    // A tampered record is never counted as work done.
    let out = run_ok(
        t.cmd("callrec-query")
            .args(["stats", "--by", "all", "--json"]),
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let total: u64 = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["type"] == "workload")
        .map(|v| v["calls"].as_u64().unwrap())
        .sum();
    assert_eq!(total, N as u64 - 1);
    let summary = json_lines(text.as_bytes()).pop().unwrap();
    assert_eq!(summary["type"], "summary");
    assert_eq!(summary["flagged"], 1, "{text}");
}

#[test]
fn workload_per_operator_against_a_quota() {
    let t = TestDir::new();
    archive(&t);
    run_ok(
        t.cmd("callrec-query")
            .args(["index", "--identity", "keys", "spool"]),
    );
    let out = run_ok(
        t.cmd("callrec-query")
            .args(["stats", "--by", "month", "--quota", "16", "--json"]),
    );
    let lines = json_lines(&out.stdout);
    let rows: Vec<&Value> = lines.iter().filter(|v| v["type"] == "workload").collect();
    assert_eq!(rows.len(), 3, "three operators, one month");
    for row in &rows {
        let id = row["operator_id"].as_str().unwrap();
        let mine: Vec<Value> = (0..N)
            .map(record)
            .filter(|r| r["operator"]["id"] == id)
            .collect();
        assert_eq!(row["period"], "2026-11");
        assert_eq!(row["calls"], mine.len());
        let ok = mine.iter().filter(|r| r["call"]["result"] == 1).count();
        assert_eq!(row["confirmed"], ok);
        assert_eq!(row["not_confirmed"], mine.len() - ok);
        assert_eq!(row["behind"], mine.len() < 16);
        let rate = (mine.len() - ok) as f64 / mine.len() as f64;
        assert!((row["not_confirmed_rate"].as_f64().unwrap() - rate).abs() < 1e-9);
    }
    let distribution: u64 = lines
        .iter()
        .filter(|v| v["type"] == "result")
        .map(|v| v["calls"].as_u64().unwrap())
        .sum();
    assert_eq!(distribution, N as u64);

    // One operator's own view, per day.
    let out = run_ok(t.cmd("callrec-query").args([
        "stats",
        "--operator",
        "130003",
        "--by",
        "day",
        "--json",
    ]));
    let days: Vec<Value> = json_lines(&out.stdout)
        .into_iter()
        .filter(|v| v["type"] == "workload")
        .collect();
    assert_eq!(
        days.len(),
        expected(|r| r["operator"]["id"] == "130003").len(),
        "each of this operator's calls falls on its own day"
    );
    assert!(days.iter().all(|d| d["operator_id"] == "130003"));
}

#[test]
fn get_fetches_verified_audio_text_and_a_printable_page() {
    let t = TestDir::new();
    t.keygen("keys");
    t.ffmpeg(
        "call.mkv",
        &[
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=1",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=160x120:rate=10:duration=1",
            "-c:a",
            "flac",
            "-c:v",
            "mjpeg",
        ],
    );
    let mut r = record(0);
    r["id"] = json!("rec-av");
    t.write("call.mkv.callrec.json", serde_json::to_vec(&r).unwrap());
    fs::create_dir(t.join("spool")).unwrap();
    run_ok(
        t.cmd("callrec-seal")
            .args(["-k", "keys", "--no-watermark", "-o", "spool", "call.mkv"]),
    );
    run_ok(t.cmd("callrec-push").args(["--to", "archive", "spool"]));
    run_ok(
        t.cmd("callrec-query")
            .args(["index", "--identity", "keys", "archive"]),
    );

    let out = run_ok(t.cmd("callrec-query").args([
        "get", "rec-av", "--audio", "-o", "call.mka", "--pubkey", "keys",
    ]));
    assert_eq!(lines(&out), ["call.mka"]);
    assert_eq!(stream_types(t.path(), "call.mka"), "audio");
    run_ok(t.cmd("callrec-query").args([
        "get",
        "rec-av",
        "--video",
        "-o",
        "call-video.mkv",
        "--pubkey",
        "keys",
    ]));
    assert_eq!(stream_types(t.path(), "call-video.mkv"), "video");

    let out = run_ok(t.cmd("callrec-query").args([
        "get",
        "rec-av",
        "--text",
        "--pubkey",
        "keys",
        "--identity",
        "keys",
    ]));
    let text: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(text["call"]["customer_name"], "客户0");

    let out = run_ok(t.cmd("callrec-query").args([
        "get",
        "rec-av",
        "--print",
        "--pubkey",
        "keys",
        "--identity",
        "keys",
    ]));
    let page = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "rec-av",
        "客户0",
        "大旺路分理处",
        "13321150700",
        "1 核实成功",
        "VERIFIED",
        "Customer name",
    ] {
        assert!(page.contains(needle), "{needle:?} missing from:\n{page}");
    }

    // An existing file is never overwritten; an unknown record is exit 1.
    let (code, _, stderr) = run(t.cmd("callrec-query").args([
        "get", "rec-av", "--audio", "-o", "call.mka", "--pubkey", "keys",
    ]));
    assert_eq!(code, 2, "{stderr}");
    let (code, _, _) = run(t
        .cmd("callrec-query")
        .args(["get", "rec-none", "--sealed", "-o", "x", "--pubkey", "keys"]));
    assert_eq!(code, 1);
}

#[test]
fn corrections_show_as_the_latest_version_with_their_history() {
    let t = TestDir::new();
    archive(&t);
    // Correct rec-0001 (sealed in spool/0001.sealed.bin): result 1 now.
    let out = run_ok(t.cmd("callrec-annotate").args([
        "--identity",
        "keys",
        "--result",
        "1",
        "spool/0001.sealed.bin",
    ]));
    let correction = lines(&out).remove(0);
    run_ok(
        t.cmd("callrec-seal")
            .args(["-k", "keys", "-o", "spool", &correction]),
    );
    run_ok(
        t.cmd("callrec-query")
            .args(["index", "--identity", "keys", "spool"]),
    );

    let phone = record(1)["phone"]["number"].as_str().unwrap().to_string();
    let found = search(&t, &["--phone", &phone]);
    assert!(
        !found.contains("rec-0001"),
        "the corrected original is not current"
    );
    let correction_id = found
        .iter()
        .find(|id| !id.starts_with("rec-"))
        .expect("the correction is found in its place")
        .clone();
    assert_eq!(
        found.len(),
        expected(|r| r["phone"]["number"] == phone.as_str()).len()
    );
    assert!(search(&t, &["--phone", &phone, "--all-versions"]).contains("rec-0001"));

    let out = run_ok(
        t.cmd("callrec-query")
            .args(["history", "rec-0001", "--json"]),
    );
    let versions = query_records(&out.stdout);
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[0]["record_id"], "rec-0001");
    assert_eq!(versions[0]["corrected_by"], correction_id.as_str());
    assert_eq!(versions[1]["corrects"], "rec-0001");
    assert_eq!(versions[1]["result"], 1);
}

#[test]
fn an_s3_archive_is_indexed_with_ranged_reads_and_fetched_verified() {
    let garage = Garage::start();
    let t = TestDir::new();
    archive(&t);
    run_ok(
        garage.env(
            t.cmd("callrec-push")
                .args(["--to", "s3://calls/branch", "spool"]),
        ),
    );
    let summary = index_summary(garage.env(&mut t.cmd("callrec-query")), "s3://calls/branch");
    assert_eq!(summary["read"], N);
    assert_eq!(summary["failed"], 0);
    check_every_filter(&t);

    let summary = index_summary(garage.env(&mut t.cmd("callrec-query")), "s3://calls/branch");
    assert_eq!(summary["read"], 0, "an unchanged bucket reads no record");

    let out = run_ok(garage.env(t.cmd("callrec-query").args([
        "get", "rec-0007", "--sealed", "-o", "rec7.bin", "--pubkey", "keys",
    ])));
    assert_eq!(lines(&out), ["rec7.bin"]);
    assert_eq!(
        fs::read(t.join("rec7.bin")).unwrap(),
        fs::read(t.join("spool/sent/0007.sealed.bin")).unwrap()
    );
}

#[test]
fn an_archive_key_that_would_escape_the_archive_is_refused() {
    let t = TestDir::new();
    archive(&t);
    run_ok(t.cmd("callrec-push").args(["--to", "archive", "spool"]));
    run_ok(
        t.cmd("callrec-query")
            .args(["index", "--identity", "keys", "archive"]),
    );
    fs::write(t.join("outside.sealed.bin"), "not in the archive").unwrap();
    // Someone with write access to the index points a record outside the archive.
    tool_ok(
        "sqlite3",
        &[
            "data/callrec/index.sqlite",
            "UPDATE records SET key = '../outside.sealed.bin' WHERE record_id = 'rec-0001'",
        ],
        t.path(),
    );
    let (code, stdout, stderr) = run(t.cmd("callrec-query").args([
        "get", "rec-0001", "--sealed", "-o", "out.bin", "--pubkey", "keys",
    ]));
    assert_eq!(code, 2, "{stderr}");
    assert!(stdout.is_empty());
    assert!(stderr.contains("unsafe archive key"), "{stderr}");
    assert!(!t.join("out.bin").exists());
}

// A record sealed twice has two archived seals (keys name the manifest hash); `get` hands out
// the newest, not whichever row the index happens to return first.
#[test]
fn get_of_a_record_with_two_seals_hands_out_the_newest() {
    let t = TestDir::new();
    t.keygen("keys");
    t.write("in/0000.bin", "media 0");
    t.write(
        "in/0000.bin.callrec.json",
        serde_json::to_vec(&record(0)).unwrap(),
    );
    // The older seal under the key that sorts (and is indexed) first.
    for dir in ["archive/a", "archive/b"] {
        fs::create_dir_all(t.join(dir)).unwrap();
        run_ok(t.cmd("callrec-seal").args(["-k", "keys", "-o", dir, "in"]));
    }
    let (older, newer) = (
        fs::read(t.join("archive/a/0000.sealed.bin")).unwrap(),
        fs::read(t.join("archive/b/0000.sealed.bin")).unwrap(),
    );
    assert_ne!(older, newer);
    let summary = index_summary(&mut t.cmd("callrec-query"), "archive");
    assert_eq!(summary["read"], 2);
    assert_eq!(summary["failed"], 0);
    let out = run_ok(t.cmd("callrec-query").args([
        "get", "rec-0000", "--sealed", "-o", "out.bin", "--pubkey", "keys",
    ]));
    assert_eq!(lines(&out), ["out.bin"]);
    assert!(
        fs::read(t.join("out.bin")).unwrap() == newer,
        "the newest seal"
    );
}
