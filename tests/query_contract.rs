//! query_contract: callrec-query as a user meets it (issue 11, items 6-10): mistakes are usage
//! errors that name the valid values, phone numbers match however they are written, read-only
//! commands never create an index, exports land in the format their name asks for (checked with
//! the real ffprobe and decoded with the real ffmpeg) with no FFmpeg message passed on, a
//! corrected call's versions all serve the original's media, the configured vocabulary and
//! `$CALLREC_PUBKEY` reach every command, and pages and workload columns say what they mean.

use std::fs;

use serde_json::{json, Value};

use crate::util::*;

/// A sidecar for record `rec-NNNN`; `edit` changes it before it is written.
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

/// Seal records (sidecars as given, media a few bytes) into the directory archive `archive`.
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

fn index(t: &TestDir) {
    run_ok(t.cmd("callrec-query").args([
        "index",
        "--identity",
        "keys",
        "--pubkey",
        "keys",
        "archive",
    ]));
}

fn search_ids(t: &TestDir, args: &[&str]) -> Vec<String> {
    query_records(&run_ok(t.cmd("callrec-query").args(["search", "--json"]).args(args)).stdout)
        .iter()
        .map(|v| v["record_id"].as_str().unwrap().to_string())
        .collect()
}

/// An audio-only recording (Opus in Matroska, as capture makes them), sealed as `rec-audio`
/// into `archive` and indexed.
fn audio_record(t: &TestDir) {
    t.keygen("keys");
    t.ffmpeg(
        "call.mka",
        &[
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=1:sample_rate=48000",
            "-c:a",
            "libopus",
        ],
    );
    let record = sidecar(0, |r| r["id"] = json!("rec-audio"));
    t.write(
        "call.mka.callrec.json",
        serde_json::to_vec(&record).unwrap(),
    );
    fs::create_dir_all(t.join("archive")).unwrap();
    run_ok(t.cmd("callrec-seal").args([
        "-k",
        "keys",
        "--no-watermark",
        "-o",
        "archive",
        "call.mka",
    ]));
    index(t);
}

/// What ffprobe says of a file's first stream and its container: `codec,format`.
fn probe(t: &TestDir, name: &str) -> String {
    let codec = tool_ok(
        "ffprobe",
        &[
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name:format=format_name",
            "-of",
            "default=nw=1:nk=1",
            name,
        ],
        t.path(),
    );
    codec.trim().lines().collect::<Vec<_>>().join(",")
}

/// The file decodes from end to end with the real ffmpeg.
fn decodes(t: &TestDir, name: &str) {
    let out = tool(
        "ffmpeg",
        &["-v", "error", "-xerror", "-i", name, "-f", "null", "-"],
        t.path(),
    );
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{name} does not decode: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// No FFmpeg message, temporary file or internal name reaches the user.
fn no_ffmpeg_text(stderr: &str) {
    for raw in [
        "Stream map",
        "matches no streams",
        "not supported in",
        "Invalid argument",
        ".callrec-",
        "Conversion failed",
    ] {
        assert!(
            !stderr.contains(raw),
            "FFmpeg's {raw:?} reached the user: {stderr}"
        );
    }
}

// Item 6 ------------------------------------------------------------------------------------

#[test]
fn mistakes_are_usage_errors_naming_the_valid_values_and_the_closest() {
    let t = TestDir::new();
    sealed_archive(&t, &[sidecar(0, |_| {}), sidecar(1, |_| {})]);
    index(&t);
    let cases: [(&[&str], &[&str]); 6] = [
        (
            &["search", "--business-type", "大额核实"],
            &[
                "--business-type",
                "did you mean 1 大额支付?",
                "5 其他 (other)",
            ],
        ),
        (
            &["search", "--role", "finance hed"],
            &[
                "--role",
                "did you mean 2 财务负责人?",
                "1 法定代表人/单位负责人",
            ],
        ),
        (
            &["search", "--result", "9"],
            &[
                "--result \"9\" is not in the vocabulary",
                "7 核实失败,其他原因",
            ],
        ),
        (
            &["search", "--from", "2026-11-30", "--to", "2026-11-01"],
            &["--from is after --to"],
        ),
        (
            &["stats", "--from", "2026-11-30", "--to", "2026-11-01"],
            &["--from is after --to"],
        ),
        (
            &[
                "search",
                "--from",
                "2026-11-30T00:00:00+08:00",
                "--to",
                "2026-11-01",
            ],
            &["--from is after --to"],
        ),
    ];
    for (args, needles) in cases {
        let (code, stdout, stderr) = run(t.cmd("callrec-query").args(args));
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stdout.is_empty(), "{args:?}: {stdout}");
        for needle in needles {
            assert!(
                stderr.contains(needle),
                "{args:?}: {needle:?} missing: {stderr}"
            );
        }
    }
    // A value that is not a phone number is refused without being repeated.
    let (code, _, stderr) = run(t
        .cmd("callrec-query")
        .args(["search", "--phone", "1332115xyz"]));
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("--phone") && !stderr.contains("1332115xyz"),
        "{stderr}"
    );
    // A range of one day, and codes, labels and English names in the vocabulary, still work.
    assert_eq!(
        search_ids(&t, &["--from", "2026-11-02", "--to", "2026-11-02"]),
        ["rec-0001"]
    );
    assert_eq!(
        search_ids(
            &t,
            &["--business-type", "large-value payment", "--role", "3"]
        )
        .len(),
        2
    );
}

#[test]
fn a_phone_number_matches_however_it_is_written() {
    let t = TestDir::new();
    sealed_archive(
        &t,
        &[
            sidecar(0, |r| r["phone"]["number"] = json!("13321150748")),
            sidecar(1, |r| r["phone"]["number"] = json!("+8613321150749")),
            sidecar(2, |r| r["phone"]["number"] = json!("010-12345678")),
        ],
    );
    index(&t);
    for (typed, want) in [
        ("+8613321150748", "rec-0000"),
        ("0086 133 2115 0748", "rec-0000"),
        ("13321150748", "rec-0000"),
        ("13321150749", "rec-0001"),
        ("+86 133-2115-0749", "rec-0001"),
        ("01012345678", "rec-0002"),
        ("+86 10 12345678", "rec-0002"),
        ("010-12345678", "rec-0002"),
    ] {
        assert_eq!(
            search_ids(&t, &["--phone", typed]),
            [want],
            "--phone {typed}"
        );
    }
}

#[test]
fn read_only_commands_never_create_an_index() {
    let t = TestDir::new();
    for args in [
        vec!["search"],
        vec!["history", "rec-0000"],
        vec!["stats"],
        vec![
            "get", "rec-0000", "--sealed", "-o", "out.bin", "--pubkey", "keys",
        ],
    ] {
        let (code, stdout, stderr) = run(t
            .cmd("callrec-query")
            .args(["--db", "nonexistent/dir/x.sqlite"])
            .args(&args));
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stdout.is_empty());
        assert!(
            stderr.contains("no index at") && stderr.contains("callrec-query index"),
            "{args:?}: {stderr}"
        );
        assert!(
            !t.join("nonexistent").exists(),
            "{args:?} created a directory"
        );
        // The default place too.
        let (code, _, stderr) = run(t.cmd("callrec-query").args(&args));
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(
            !t.join("data/callrec/index.sqlite").exists(),
            "{args:?} created an index"
        );
    }
}

// Item 7 ------------------------------------------------------------------------------------

#[test]
fn get_audio_writes_the_format_its_name_asks_for() {
    let t = TestDir::new();
    audio_record(&t);
    for (name, codec, format) in [
        ("call.wav", "pcm_s16le", "wav"),
        ("call.flac", "flac", "flac"),
        ("call.mp3", "mp3", "mp3"),
        ("call.m4a", "aac", "mov,mp4,m4a,3gp,3g2,mj2"),
        ("call.opus", "opus", "ogg"),
        ("call-out.mka", "opus", "matroska,webm"),
    ] {
        let (code, stdout, stderr) = run(t.cmd("callrec-query").args([
            "get",
            "rec-audio",
            "--audio",
            "-o",
            name,
            "--pubkey",
            "keys",
        ]));
        assert_eq!(code, 0, "{name}: {stderr}");
        assert_eq!(stdout.trim(), name);
        assert_eq!(probe(&t, name), format!("{codec},{format}"), "{name}");
        decodes(&t, name);
    }
    // callrec-verify's export is the same.
    let sealed = fs::read_dir(t.join("archive"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().contains(".sealed"))
        .unwrap();
    run_ok(
        t.cmd("callrec-verify")
            .args(["--pubkey", "keys", "--extract-audio", "-o", "verify.wav"])
            .arg(&sealed),
    );
    assert_eq!(probe(&t, "verify.wav"), "pcm_s16le,wav");
}

#[test]
fn get_video_of_an_audio_record_says_it_has_none() {
    let t = TestDir::new();
    audio_record(&t);
    for (args, message) in [
        (&["--video", "-o", "v.mkv"][..], "this record has no video"),
        (&["--video", "-o", "v.wav"][..], "cannot hold video"),
        (
            &["--audio", "-o", "a.xyz"][..],
            "cannot tell a format from the name",
        ),
    ] {
        let (code, stdout, stderr) = run(t
            .cmd("callrec-query")
            .args(["get", "rec-audio", "--pubkey", "keys"])
            .args(args));
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stdout.is_empty());
        assert!(stderr.contains(message), "{args:?}: {stderr}");
        no_ffmpeg_text(&stderr);
    }
    assert!(!t.join("v.mkv").exists() && !t.join("v.wav").exists() && !t.join("a.xyz").exists());
    let leftovers: Vec<_> = fs::read_dir(t.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".callrec-"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

// Item 8 ------------------------------------------------------------------------------------

#[test]
fn every_version_of_a_corrected_call_serves_the_original_media_and_its_own_text() {
    let t = TestDir::new();
    audio_record(&t);
    let sealed = fs::read_dir(t.join("archive"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().contains(".sealed"))
        .unwrap();
    let out = run_ok(
        t.cmd("callrec-annotate")
            .args(["--identity", "keys", "--result", "3"])
            .arg(&sealed),
    );
    let correction = lines(&out).remove(0);
    run_ok(
        t.cmd("callrec-seal")
            .args(["-k", "keys", "-o", "archive", &correction]),
    );
    index(&t);
    let found = search_ids(&t, &["--phone", "13321150700"]);
    assert_eq!(found.len(), 1);
    let current = found[0].clone();
    assert_ne!(
        current, "rec-audio",
        "the correction is listed in the original's place"
    );

    for (id, name) in [
        (current.as_str(), "current.wav"),
        ("rec-audio", "original.wav"),
    ] {
        let (code, _, stderr) = run(t
            .cmd("callrec-query")
            .args(["get", id, "--audio", "-o", name, "--pubkey", "keys"]));
        assert_eq!(code, 0, "get {id} --audio: {stderr}");
        no_ffmpeg_text(&stderr);
        assert_eq!(probe(&t, name), "pcm_s16le,wav");
        decodes(&t, name);
    }

    let page = |id: &str| {
        String::from_utf8(
            run_ok(t.cmd("callrec-query").args([
                "get",
                id,
                "--print",
                "--pubkey",
                "keys",
                "--identity",
                "keys",
            ]))
            .stdout,
        )
        .unwrap()
    };
    let old = page("rec-audio");
    assert!(
        old.contains("SUPERSEDED") && old.contains(&format!("corrected by {current}")),
        "{old}"
    );
    assert!(
        old.contains("1 核实成功"),
        "the old version's own text: {old}"
    );
    let new = page(&current);
    assert!(!new.contains("SUPERSEDED"), "{new}");
    assert!(new.contains("3 核实失败,电话长时间占线或关机"), "{new}");
    assert!(new.contains("This record corrects rec-audio"), "{new}");
}

// Item 9 ------------------------------------------------------------------------------------

#[test]
fn the_configured_vocabulary_and_pubkey_reach_every_command() {
    let t = TestDir::new();
    t.write(
        "vocabulary.json",
        r#"{"business_types": [{"code": 6, "label": "票据业务", "english": "bills"}],
            "results": [{"code": 8, "label": "核实失败,客户拒接", "english": "failed: refused"}]}"#,
    );
    sealed_archive(
        &t,
        &[sidecar(0, |r| {
            r["call"]["business_type"] = json!("票据业务");
            r["call"]["result"] = json!(8);
        })],
    );
    index(&t);
    let vocab = t.join("vocabulary.json");
    let query = |args: &[&str]| {
        let mut cmd = t.cmd("callrec-query");
        cmd.env("CALLREC_VOCABULARY", &vocab).args(args);
        let (code, stdout, stderr) = run(&mut cmd);
        assert_eq!(code, 0, "{args:?}: {stderr}");
        stdout
    };
    assert_eq!(
        query(&["search", "--business-type", "bills", "--result", "8"]).trim(),
        "rec-0000"
    );
    assert!(query(&["stats"]).contains("8 核实失败,客户拒接"));
    assert!(query(&[
        "get",
        "rec-0000",
        "--print",
        "--pubkey",
        "keys",
        "--identity",
        "keys"
    ])
    .contains("8 核实失败,客户拒接"));
    // --vocabulary names it as well, after any subcommand.
    let out =
        run_ok(
            t.cmd("callrec-query")
                .args(["stats", "--vocabulary", vocab.to_str().unwrap()]),
        );
    assert!(String::from_utf8_lossy(&out.stdout).contains("8 核实失败,客户拒接"));
    // callrec-verify --show writes the label into the figure 3C line.
    let sealed = fs::read_dir(t.join("archive"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().contains(".sealed"))
        .unwrap();
    let out = run_ok(
        t.cmd("callrec-verify")
            .env("CALLREC_VOCABULARY", &vocab)
            .args(["--pubkey", "keys", "--show", "--identity", "keys"])
            .arg(&sealed),
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("核实失败,客户拒接"));

    // $CALLREC_PUBKEY is the trusted key of `index` too: keys that did not seal the records
    // flag them.
    t.keygen("other");
    let (code, stdout, stderr) = run(t
        .cmd("callrec-query")
        .env("CALLREC_PUBKEY", t.join("other"))
        .args(["--db", "other.sqlite", "index", "--json", "archive"]));
    assert_eq!(code, 1, "{stderr}");
    let flagged: Vec<Value> = json_lines(stdout.as_bytes())
        .into_iter()
        .filter(|l| l["type"] == "flagged")
        .collect();
    assert_eq!(flagged.len(), 1, "{stdout}");
    assert!(flagged[0]["problem"]
        .as_str()
        .unwrap()
        .starts_with("signature"));
}

// Item 10 -----------------------------------------------------------------------------------

#[test]
fn pages_show_times_to_the_second_and_stats_name_the_calls_result() {
    let t = TestDir::new();
    sealed_archive(
        &t,
        &[
            sidecar(0, |r| {
                r["times"]["call_start"] = json!("2026-11-28T07:46:03.461964119+00:00")
            }),
            sidecar(1, |r| r["call"]["result"] = json!(4)),
        ],
    );
    index(&t);
    let out = run_ok(t.cmd("callrec-query").env("TZ", "Asia/Shanghai").args([
        "get",
        "rec-0000",
        "--print",
        "--pubkey",
        "keys",
        "--identity",
        "keys",
    ]));
    let page = String::from_utf8(out.stdout).unwrap();
    let line = |label: &str| {
        page.lines()
            .find(|l| l.starts_with(label))
            .unwrap_or_else(|| panic!("no {label} in {page}"))
            .to_string()
    };
    assert!(
        line("通话时间").ends_with("  2026-11-28 07:46:03 +00:00"),
        "{page}"
    );
    let sealed = line("封存时间");
    let value = sealed.rsplit("  ").next().unwrap();
    assert!(
        chrono::DateTime::parse_from_str(value, "%Y-%m-%d %H:%M:%S %:z").is_ok()
            && value.ends_with("+08:00"),
        "the seal's time in local time: {sealed}"
    );
    assert!(!page.contains(".461964119"), "{page}");

    let table =
        String::from_utf8(run_ok(t.cmd("callrec-query").args(["stats", "--by", "all"])).stdout)
            .unwrap();
    let header = table.lines().next().unwrap();
    assert!(
        header.contains("CONFIRMED") && header.contains("NOT CONFIRMED"),
        "{header}"
    );
    assert!(
        !header.contains("VERIFIED") && !header.contains("FAILED"),
        "{header}"
    );

    // JSON and CSV use the same names, and docs/QUERY.md documents each of them.
    let json = json_lines(
        &run_ok(
            t.cmd("callrec-query")
                .args(["stats", "--by", "all", "--json"]),
        )
        .stdout,
    );
    let row = json.iter().find(|l| l["type"] == "workload").unwrap();
    assert_eq!(row["confirmed"], 1);
    assert_eq!(row["not_confirmed"], 1);
    assert_eq!(row["not_confirmed_rate"], 0.5);
    let csv = String::from_utf8(
        run_ok(
            t.cmd("callrec-query")
                .args(["stats", "--by", "all", "--csv"]),
        )
        .stdout,
    )
    .unwrap();
    let header: Vec<&str> = csv
        .trim_start_matches('\u{feff}')
        .lines()
        .next()
        .unwrap()
        .split(',')
        .collect();
    let fields: Vec<&str> = row
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .filter(|k| *k != "type")
        .collect();
    let mut sorted = header.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, fields, "CSV and JSON name the same fields");
    let doc = fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/QUERY.md")).unwrap();
    for field in header {
        assert!(
            doc.contains(&format!("`{field}`")),
            "docs/QUERY.md does not document {field}"
        );
    }
}
