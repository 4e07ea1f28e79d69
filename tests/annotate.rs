//! callrec-annotate: fields, validation that changes nothing, batches, the figure 3C line,
//! the interactive mode on a real pseudo-terminal, and corrections of sealed records.

use std::fs;
use std::path::PathBuf;

use sha2::{Digest, Sha256};

use crate::util::*;

/// A captured call: media and the skeleton sidecar capture writes.
fn call(t: &TestDir, name: &str, id: &str, phone: &str, start: &str) -> PathBuf {
    let media = t.write(name, format!("media of {id}"));
    t.write(
        &format!("{name}.callrec.json"),
        format!(
            r#"{{"schema": 1, "id": "{id}", "phone": {{"number": "{phone}", "device": {{"number": "8803880203"}}}}, "times": {{"call_start": "{start}"}}}}"#
        ),
    );
    media
}

fn sidecar(t: &TestDir, name: &str) -> serde_json::Value {
    serde_json::from_slice(&fs::read(t.join(format!("{name}.callrec.json"))).unwrap()).unwrap()
}

#[test]
fn fields_are_validated_stored_and_the_path_passed_on() {
    let t = TestDir::new();
    call(
        &t,
        "a.mkv",
        "rec-a",
        "13321150748",
        "2018-12-25T10:12:20+08:00",
    );
    let out = run_ok(t.cmd("callrec-annotate").args([
        "--operator",
        "130002",
        "--institution",
        "0068",
        "--institution-name",
        "大旺路分理处",
        "--customer",
        "李霞",
        "--role",
        "3",
        "--business",
        "大额支付",
        "--account",
        "32150100100065711",
        "--credit-code",
        "911101140924495254",
        "--id-number",
        "110108197712281810",
        "--result",
        "1",
        "--remark",
        "(补核实)",
        "--flag",
        "01",
        "a.mkv",
    ]));
    assert_eq!(lines(&out), ["a.mkv"]);
    let r = sidecar(&t, "a.mkv");
    assert_eq!(r["id"], "rec-a");
    assert_eq!(r["operator"]["id"], "130002");
    assert_eq!(r["call"]["role"], "财务人员");
    assert_eq!(r["call"]["business_type"], "大额支付");
    assert_eq!(r["call"]["result"], 1);
    assert_eq!(
        r["phone"]["number"], "13321150748",
        "capture's fields are kept"
    );
    assert!(r["terminal"]["host_name"]
        .as_str()
        .is_some_and(|h| !h.is_empty()));
    assert!(r["times"]["annotated_at"].is_string());

    let out = run_ok(
        t.cmd("callrec-annotate")
            .args(["--print-line", "a.mkv.callrec.json"]),
    );
    let line = String::from_utf8(out.stdout).unwrap();
    assert!(line.starts_with("01|"), "{line}");
    assert!(
        line.trim_end().ends_with("|130002|核实成功。(补核实)"),
        "{line}"
    );
    assert_eq!(line.trim_end().split('|').count(), 16);
}

#[test]
fn an_invalid_value_changes_nothing_and_names_record_and_field() {
    let t = TestDir::new();
    call(
        &t,
        "a.mkv",
        "rec-a",
        "13321150748",
        "2018-12-25T10:12:20+08:00",
    );
    let before = fs::read(t.join("a.mkv.callrec.json")).unwrap();
    let (code, stdout, stderr) = run(t.cmd("callrec-annotate").args([
        "--customer",
        "李霞",
        "--id-number",
        "110108197712281811",
        "--result",
        "9",
        "a.mkv",
    ]));
    assert_eq!(code, 1);
    assert!(stdout.is_empty());
    assert!(stderr.contains("a.mkv"), "{stderr}");
    assert!(
        stderr.contains("id_number: the check digit is wrong"),
        "{stderr}"
    );
    assert!(stderr.contains("result: not one of"), "{stderr}");
    assert!(
        !stderr.contains("110108197712281811"),
        "personal data in a message: {stderr}"
    );
    assert_eq!(fs::read(t.join("a.mkv.callrec.json")).unwrap(), before);
}

#[test]
fn pipes_newlines_and_control_characters_are_refused() {
    let t = TestDir::new();
    call(
        &t,
        "a.mkv",
        "rec-a",
        "13321150748",
        "2018-12-25T10:12:20+08:00",
    );
    let before = fs::read(t.join("a.mkv.callrec.json")).unwrap();
    for bad in ["李|霞", "李\n霞", "\u{1b}[2J李霞", "李\r霞"] {
        let (code, _, stderr) = run(t.cmd("callrec-annotate").args(["--customer", bad, "a.mkv"]));
        assert_eq!(code, 1, "{bad:?}");
        assert!(
            stderr.contains("customer: '|', line breaks and control characters are not allowed"),
            "{stderr}"
        );
        assert!(
            !stderr.contains('\u{1b}'),
            "a control character reached the terminal"
        );
    }
    assert_eq!(fs::read(t.join("a.mkv.callrec.json")).unwrap(), before);
}

#[test]
fn a_thousand_row_csv_batch_annotates_a_thousand_records() {
    let t = TestDir::new();
    let mut csv = String::from("record_id,operator,customer,role,business,result,account\n");
    for i in 0..1000 {
        call(
            &t,
            &format!("spool/{i:04}.mkv"),
            &format!("rec-{i:04}"),
            "13321150748",
            "2026-11-27T10:00:00+08:00",
        );
        csv.push_str(&format!(
            "rec-{i:04},130002,客户{i},{},大额支付,{},{:017}\n",
            i % 5 + 1,
            i % 7 + 1,
            32150100100065711u64 + i
        ));
    }
    t.write("batch.csv", csv);
    let out = run_ok(
        t.cmd("callrec-annotate")
            .args(["--from-csv", "batch.csv", "spool"]),
    );
    assert_eq!(lines(&out).len(), 1000);
    let r = sidecar(&t, "spool/0123.mkv");
    assert_eq!(r["call"]["customer_name"], "客户123");
    assert_eq!(r["call"]["role"], "对账人员"); // 123 % 5 + 1 = 4
    assert_eq!(r["call"]["result"], 123 % 7 + 1);
}

#[test]
fn bad_batch_rows_are_reported_by_line_and_change_nothing() {
    let t = TestDir::new();
    call(
        &t,
        "a.mkv",
        "rec-a",
        "13321150748",
        "2026-11-27T10:00:00+08:00",
    );
    call(
        &t,
        "b.mkv",
        "rec-b",
        "13321150749",
        "2026-11-27T10:05:00+08:00",
    );
    call(
        &t,
        "c.mkv",
        "rec-c",
        "010-12345678",
        "2026-11-27T10:10:00+08:00",
    );
    call(
        &t,
        "d.mkv",
        "rec-d",
        "13321150750",
        "2026-11-27T10:15:00+08:00",
    );
    let before_b = fs::read(t.join("b.mkv.callrec.json")).unwrap();
    let before_d = fs::read(t.join("d.mkv.callrec.json")).unwrap();
    t.write(
        "batch.csv",
        "record_id,phone,call_time,customer,result,id_number\n\
         rec-a,,,甲,1,\n\
         rec-b,,,乙,8,\n\
         ,010-12345678,2026-11-27 10:10:30,丙,2,\n\
         rec-d,,,丁,1,110108197712281811\n\
         rec-zz,,,戊,1,\n",
    );
    let (code, stdout, stderr) =
        run(t
            .cmd("callrec-annotate")
            .args(["--from-csv", "batch.csv", "."]));
    assert_eq!(code, 1, "{stderr}");
    let mut done: Vec<&str> = stdout.lines().collect();
    done.sort();
    assert_eq!(done, ["./a.mkv", "./c.mkv"]);
    assert!(
        stderr.contains("batch.csv:3: result: not one of"),
        "{stderr}"
    );
    assert!(stderr.contains("batch.csv:5: id_number:"), "{stderr}");
    assert!(
        stderr.contains("batch.csv:6: no record among the inputs matches"),
        "{stderr}"
    );
    assert_eq!(fs::read(t.join("b.mkv.callrec.json")).unwrap(), before_b);
    assert_eq!(fs::read(t.join("d.mkv.callrec.json")).unwrap(), before_d);
    assert_eq!(
        sidecar(&t, "c.mkv")["call"]["customer_name"],
        "丙",
        "matched by phone and time"
    );
}

#[test]
fn json_lines_batch_and_a_vocabulary_file() {
    let t = TestDir::new();
    call(
        &t,
        "a.mkv",
        "rec-a",
        "13321150748",
        "2026-11-27T10:00:00+08:00",
    );
    t.write(
        "vocab.json",
        r#"{"mode": "extend", "roles": [{"code": 6, "label": "审计人员", "english": "auditor"}]}"#,
    );
    t.write(
        "batch.jsonl",
        "{\"record_id\": \"rec-a\", \"role\": \"6\", \"result\": 1}\n",
    );
    run_ok(t.cmd("callrec-annotate").args([
        "--vocabulary",
        "vocab.json",
        "--from-json",
        "batch.jsonl",
        "a.mkv",
    ]));
    let r = sidecar(&t, "a.mkv");
    assert_eq!(r["call"]["role"], "审计人员");
    assert_eq!(r["call"]["result"], 1);
}

#[test]
fn records_come_from_stdin_and_bare_media_gets_a_sidecar() {
    let t = TestDir::new();
    t.write("bare.wav", "no sidecar yet");
    let (code, stdout, _) = run_with_stdin(
        t.cmd("callrec-annotate")
            .args(["--phone", "13321150748", "--json"]),
        b"bare.wav\n",
    );
    assert_eq!(code, 0);
    let line = json_lines(stdout.as_bytes()).remove(0);
    assert_eq!(line["type"], "record");
    assert_eq!(line["path"], "bare.wav");
    assert_eq!(line["record"]["phone"]["number"], "13321150748");
    assert_eq!(sidecar(&t, "bare.wav")["phone"]["number"], "13321150748");
}

#[test]
fn interactive_mode_on_a_real_terminal() {
    let t = TestDir::new();
    call(
        &t,
        "a.mkv",
        "rec-a",
        "13321150748",
        "2018-12-25T10:12:20+08:00",
    );
    let exe = env!("CARGO_BIN_EXE_callrec-annotate");
    let mut cmd = std::process::Command::new(exe);
    cmd.current_dir(t.path()).env("HOME", t.path()).args([
        "--interactive",
        "--operator",
        "130002",
        "--institution",
        "0068",
        "a.mkv",
    ]);
    let mut p = rexpect::session::spawn_command(cmd, Some(10_000)).unwrap();
    p.exp_string("Call to 13321150748 at 2018-12-25 10:12:20 (record rec-a)")
        .unwrap();
    p.exp_string("Customer name: ").unwrap();
    p.send_line("李霞").unwrap();
    p.exp_string("(finance staff)").unwrap(); // rexpect reads bytes as Latin-1: match ASCII
    p.exp_string("Role of the person called: ").unwrap();
    p.send_line("9").unwrap(); // not a role: asked again
    p.exp_string("invalid role: not one of").unwrap();
    p.exp_string("Role of the person called: ").unwrap();
    p.send_line("3").unwrap();
    p.exp_string("Business type: ").unwrap();
    p.send_line("1").unwrap();
    p.exp_string("Account number: ").unwrap();
    p.send_line("").unwrap(); // skipped
    p.exp_string("ID number: ").unwrap();
    p.send_line("110108197712281810").unwrap();
    p.exp_string("Company credit code: ").unwrap();
    p.send_line("").unwrap();
    p.exp_string("Verification result: ").unwrap();
    p.send_line("1").unwrap();
    p.exp_string("Remark: ").unwrap();
    p.send_line("").unwrap();
    p.exp_string("a.mkv").unwrap();
    p.exp_eof().unwrap();
    let r = sidecar(&t, "a.mkv");
    assert_eq!(r["call"]["customer_name"], "李霞");
    assert_eq!(r["call"]["role"], "财务人员");
    assert_eq!(r["call"]["business_type"], "大额支付");
    assert_eq!(r["call"]["account"], "");
    assert_eq!(r["call"]["id_number"], "110108197712281810");
    assert_eq!(r["operator"]["id"], "130002");
}

#[test]
fn a_sealed_record_is_corrected_never_changed() {
    let t = TestDir::new();
    t.keygen("keys");
    call(
        &t,
        "a.mkv",
        "rec-a",
        "13321150748",
        "2018-12-25T10:12:20+08:00",
    );
    run_ok(
        t.cmd("callrec-annotate")
            .args(["--customer", "李霞", "--result", "4", "a.mkv"]),
    );
    t.seal("keys", &["a.mkv"]);
    let original = fs::read(t.join("a.sealed.mkv")).unwrap();
    let original_sha = Sha256::digest(&original);

    // The call was in fact answered: a correction, sealed in turn.
    let out = run_ok(t.cmd("callrec-annotate").args([
        "--identity",
        "keys",
        "--result",
        "1",
        "--remark",
        "回拨核实",
        "a.sealed.mkv",
    ]));
    let correction = lines(&out).remove(0);
    assert!(correction.ends_with(".correction"), "{correction}");
    let record: serde_json::Value =
        serde_json::from_slice(&fs::read(t.join(format!("{correction}.callrec.json"))).unwrap())
            .unwrap();
    assert_eq!(record["corrects"]["record_id"], "rec-a");
    assert_eq!(
        record["call"]["customer_name"], "李霞",
        "the whole record is carried over"
    );
    assert_eq!(record["call"]["result"], 1);
    let sealed = t.seal("keys", &[&correction]);

    assert_eq!(
        Sha256::digest(fs::read(t.join("a.sealed.mkv")).unwrap()),
        original_sha
    );
    let (code, stdout, _) = run(t
        .cmd("callrec-verify")
        .args(["--json", "-p", "keys", "a.sealed.mkv"])
        .arg(&sealed[0]));
    assert_eq!(code, 0, "{stdout}");
    let history = parse_verify_json(&stdout)
        .into_iter()
        .find_map(|l| match l {
            VerifyLine::History {
                record_id,
                versions,
            } => Some((record_id, versions)),
            _ => None,
        })
        .expect("a history line");
    assert_eq!(history.0, "rec-a");
    assert_eq!(history.1.len(), 2);
    assert_eq!(history.1[0].record_id, "rec-a");
    assert_eq!(history.1[0].corrects, None);
    assert_eq!(history.1[1].corrects.as_deref(), Some("rec-a"));

    // The corrected text is what the correction's seal holds.
    let out = run_ok(
        t.cmd("callrec-verify")
            .args(["-p", "keys", "--show", "--identity", "keys"])
            .arg(&sealed[0]),
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.lines()
            .last()
            .unwrap()
            .ends_with("|核实成功。回拨核实"),
        "{text}"
    );
}
