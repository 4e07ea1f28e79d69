//! Issue 10, the annotate side: no personal data in errors or in files others can read, named
//! pipes refused at once, keygen that a kill cannot leave half done, key directories kept
//! private, and batches read row by row whatever their encoding slips.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::*;

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// A captured call: media and a sidecar with the given JSON body after the schema.
fn call(t: &TestDir, name: &str, body: &str) -> PathBuf {
    let media = t.write(name, format!("media of {name}"));
    t.write(
        &format!("{name}.callrec.json"),
        format!(r#"{{"schema": 1, {body}}}"#),
    );
    media
}

fn sidecar(t: &TestDir, name: &str) -> serde_json::Value {
    serde_json::from_slice(&fs::read(t.join(format!("{name}.callrec.json"))).unwrap()).unwrap()
}

/// Run, killing the command if it has not finished in 10 seconds: a hang fails the test.
fn run_within(cmd: &mut Command) -> (i32, String, String) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(10) {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("{cmd:?} hung");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().expect("exited normally"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn mkfifo(t: &TestDir, name: &str) -> PathBuf {
    let out = tool("mkfifo", &[name], t.path());
    assert!(out.status.success());
    t.join(name)
}

#[test]
fn a_sidecar_value_of_the_wrong_type_is_named_by_field_never_echoed() {
    let t = TestDir::new();
    call(
        &t,
        "a.mkv",
        r#""id": "rec-a", "call": {"customer_name": "李霞", "id_number": 110108197712281810}"#,
    );
    call(
        &t,
        "b.mkv",
        r#""id": "rec-b", "call": {"result": "李霞核实成功"}"#,
    );
    call(
        &t,
        "c.mkv",
        r#""id": "rec-c", "phone": {"number": 13321150748.5}"#,
    );
    for (name, field) in [
        ("a.mkv", "call.id_number"),
        ("b.mkv", "call.result"),
        ("c.mkv", "phone.number"),
    ] {
        let (code, stdout, stderr) =
            run(t.cmd("callrec-annotate").args(["--remark", "回拨", name]));
        assert_eq!(code, 1, "{stderr}");
        assert!(stdout.is_empty());
        assert!(stderr.contains(&format!("{name}.callrec.json")), "{stderr}");
        assert!(stderr.contains(field), "the field is named: {stderr}");
        assert!(stderr.contains("invalid type"), "{stderr}");
        for value in ["110108197712281810", "李霞", "13321150748"] {
            assert!(
                !stderr.contains(value),
                "personal data in an error: {stderr}"
            );
        }
    }
}

#[test]
fn a_quote_in_a_record_id_does_not_leak_what_follows() {
    let t = TestDir::new();
    call(&t, "a.mkv", r#""id": "x\" 李霞 110108197712281810 \"""#);
    let (code, _, stderr) = run(t
        .cmd("callrec-annotate")
        .args(["--remark", "回拨", "a.mkv"]));
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("invalid record id"), "{stderr}");
    assert!(stderr.contains("id"), "{stderr}");
    assert!(
        !stderr.contains("李霞"),
        "personal data in an error: {stderr}"
    );
    assert!(
        !stderr.contains("110108"),
        "personal data in an error: {stderr}"
    );

    // A batch whose record_id column holds a name, and one that lost its header row.
    call(&t, "b.mkv", r#""id": "rec-b""#);
    t.write(
        "ids.csv",
        "record_id,customer\n李霞,李霞\n\"x\"\"y 王芳\",王芳\n",
    );
    t.write("headless.csv", "rec-b,张伟,110108197712281810\n");
    let (code, _, stderr) = run(t
        .cmd("callrec-annotate")
        .args(["--from-csv", "ids.csv", "b.mkv"]));
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("ids.csv:2: invalid record id"), "{stderr}");
    assert!(stderr.contains("ids.csv:3: invalid record id"), "{stderr}");
    let (code, _, stderr) =
        run(t
            .cmd("callrec-annotate")
            .args(["--from-csv", "headless.csv", "b.mkv"]));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("headless.csv"), "{stderr}");
    for value in ["李霞", "王芳", "张伟", "110108197712281810"] {
        assert!(
            !stderr.contains(value),
            "personal data in an error: {stderr}"
        );
    }
}

#[test]
fn sidecars_and_corrections_are_private_files() {
    let t = TestDir::new();
    t.keygen("keys");
    t.write("bare.wav", "no sidecar yet");
    call(&t, "a.mkv", r#""id": "rec-a""#);
    fs::set_permissions(
        t.join("a.mkv.callrec.json"),
        fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    run_ok(
        t.cmd("callrec-annotate")
            .args(["--customer", "李霞", "bare.wav", "a.mkv"]),
    );
    assert_eq!(mode(&t.join("bare.wav.callrec.json")), 0o600);
    assert_eq!(
        mode(&t.join("a.mkv.callrec.json")),
        0o600,
        "a replaced sidecar too"
    );

    t.seal("keys", &["a.mkv"]);
    let out = run_ok(t.cmd("callrec-annotate").args([
        "--identity",
        "keys",
        "--result",
        "1",
        "a.sealed.mkv",
    ]));
    let correction = t.join(lines(&out).remove(0));
    assert_eq!(mode(&correction), 0o600);
    assert_eq!(
        mode(&PathBuf::from(format!(
            "{}.callrec.json",
            correction.display()
        ))),
        0o600,
        "the decrypted record"
    );
}

#[test]
fn a_named_pipe_as_input_fails_at_once_naming_it() {
    let t = TestDir::new();
    call(&t, "a.mkv", r#""id": "rec-a""#);
    mkfifo(&t, "pipe.mkv");
    mkfifo(&t, "side.mkv.callrec.json");
    mkfifo(&t, "batch.csv");
    mkfifo(&t, "batch.jsonl");
    for args in [
        &["--remark", "x", "pipe.mkv"][..],
        &["--remark", "x", "side.mkv.callrec.json"],
        &["--from-csv", "batch.csv", "a.mkv"],
        &["--from-json", "batch.jsonl", "a.mkv"],
    ] {
        let (code, _, stderr) = run_within(t.cmd("callrec-annotate").args(args));
        assert_ne!(code, 0, "{args:?}: {stderr}");
        let named = args[args.len() - 1 - usize::from(args[0].starts_with("--from"))];
        assert!(stderr.contains(named), "{args:?}: {stderr}");
        assert!(stderr.contains("not a regular file"), "{args:?}: {stderr}");
    }
    // A public key file named by the user.
    t.write("ev.bin", "evidence");
    mkfifo(&t, "pipe.pub");
    let (code, _, stderr) = run_within(t.cmd("callrec-verify").args(["-p", "pipe.pub", "ev.bin"]));
    assert_ne!(code, 0, "{stderr}");
    assert!(stderr.contains("pipe.pub"), "{stderr}");
    assert!(stderr.contains("not a regular file"), "{stderr}");
}

#[test]
fn a_killed_keygen_leaves_nothing_or_a_whole_key_directory() {
    let exe = env!("CARGO_BIN_EXE_callrec-seal");
    // Kill keygen at each of its fsyncs in turn (the files, the directory, its parent).
    for when in 1..=8 {
        let t = TestDir::new();
        let status = Command::new("strace")
            .current_dir(t.path())
            .args(["-f", "-o", "/dev/null", "-e"])
            .arg(format!("inject=fsync:signal=SIGKILL:when={when}"))
            .arg(exe)
            .args(["keygen", "-o", "keys"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("strace runs");
        let keys = t.join("keys");
        let whole = [
            "seal.key",
            "seal.pub",
            "age-identity.txt",
            "age-recipients.txt",
            "table.key",
        ]
        .iter()
        .all(|n| keys.join(n).is_file());
        assert!(
            !keys.exists() || whole,
            "kill at fsync {when} ({status}) left a half key directory"
        );
        // The rerun makes the keys or finds them whole, and removes the dead run's leftovers.
        let (code, _, stderr) = run(t.cmd("callrec-seal").args(["keygen", "-o", "keys"]));
        if code != 0 {
            assert!(whole, "{stderr}");
            assert!(stderr.contains("refusing to overwrite"), "{stderr}");
        }
        t.write("ev.bin", "evidence");
        t.seal("keys", &["ev.bin"]);
        let names: Vec<String> = fs::read_dir(t.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains("keys") && n != "keys")
            .collect();
        assert!(
            names.is_empty(),
            "leftovers after kill at fsync {when}: {names:?}"
        );
    }
}

#[test]
fn keygen_leaves_a_live_runs_directory_alone() {
    let t = TestDir::new();
    let mut dead = Command::new("true").spawn().unwrap();
    let dead_pid = dead.id();
    dead.wait().unwrap();
    let live = t.join(format!(".keys.keygen-{}", std::process::id()));
    let stale = t.join(format!(".keys.keygen-{dead_pid}"));
    for dir in [&live, &stale] {
        fs::create_dir(dir).unwrap();
        fs::write(dir.join("seal.key"), "half").unwrap();
    }
    t.keygen("keys");
    assert!(live.exists(), "a live keygen's directory was removed");
    assert!(!stale.exists(), "a dead keygen's directory was left");
}

#[test]
fn a_key_directory_open_to_others_is_refused() {
    let t = TestDir::new();
    let keys = t.keygen("keys");
    t.write("ev.bin", "evidence");
    t.seal("keys", &["ev.bin"]);
    for open in [0o777, 0o750, 0o701] {
        fs::set_permissions(&keys, fs::Permissions::from_mode(open)).unwrap();
        let (code, stdout, stderr) = run(t.cmd("callrec-seal").args(["-k", "keys", "ev.bin"]));
        assert_eq!(code, 2, "{open:o}: {stderr}");
        assert!(stdout.is_empty());
        assert!(stderr.contains("accessible by group or others"), "{stderr}");
        assert!(stderr.contains("chmod 700"), "{stderr}");
        let (code, _, stderr) = run(t.cmd("callrec-verify").args([
            "-p",
            "keys",
            "--show",
            "--identity",
            "keys",
            "ev.sealed.bin",
        ]));
        assert_eq!(code, 2, "{open:o}: {stderr}");
        assert!(stderr.contains("chmod 700"), "{stderr}");
    }
}

#[test]
fn a_set_but_missing_vocabulary_file_is_an_error() {
    let t = TestDir::new();
    call(&t, "a.mkv", r#""id": "rec-a""#);
    let before = fs::read(t.join("a.mkv.callrec.json")).unwrap();
    let (code, _, stderr) = run(t
        .cmd("callrec-annotate")
        .env("CALLREC_VOCABULARY", "gone.json")
        .args(["--role", "3", "a.mkv"]));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("gone.json"), "{stderr}");
    assert_eq!(fs::read(t.join("a.mkv.callrec.json")).unwrap(), before);
    // The default file under the configuration directory stays optional.
    run_ok(t.cmd("callrec-annotate").args(["--role", "3", "a.mkv"]));
}

#[test]
fn an_empty_batch_is_an_error_naming_the_file() {
    let t = TestDir::new();
    call(&t, "a.mkv", r#""id": "rec-a""#);
    t.write("header-only.csv", "record_id,customer\n");
    t.write("nothing.csv", "");
    t.write("blank.jsonl", "\n  \n");
    for (flag, file) in [
        ("--from-csv", "header-only.csv"),
        ("--from-csv", "nothing.csv"),
        ("--from-json", "blank.jsonl"),
    ] {
        let (code, _, stderr) = run(t.cmd("callrec-annotate").args([flag, file, "a.mkv"]));
        assert_eq!(code, 2, "{file}: {stderr}");
        assert!(stderr.contains(file), "{stderr}");
        assert!(stderr.contains("no rows"), "{stderr}");
    }
}

#[test]
fn a_column_named_twice_is_refused() {
    let t = TestDir::new();
    call(&t, "a.mkv", r#""id": "rec-a""#);
    let before = fs::read(t.join("a.mkv.callrec.json")).unwrap();
    t.write(
        "twice.csv",
        "record_id,customer,remark,customer\nrec-a,李霞,,王芳\n",
    );
    let (code, _, stderr) =
        run(t
            .cmd("callrec-annotate")
            .args(["--from-csv", "twice.csv", "a.mkv"]));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("twice.csv"), "{stderr}");
    assert!(stderr.contains("customer"), "{stderr}");
    assert!(stderr.contains("twice"), "{stderr}");
    assert_eq!(fs::read(t.join("a.mkv.callrec.json")).unwrap(), before);
}

#[test]
fn a_byte_order_mark_starts_a_batch_harmlessly() {
    let t = TestDir::new();
    call(&t, "a.mkv", r#""id": "rec-a""#);
    call(&t, "b.mkv", r#""id": "rec-b""#);
    t.write(
        "batch.jsonl",
        "\u{feff}{\"record_id\": \"rec-a\", \"customer\": \"李霞\"}\n",
    );
    t.write("batch.csv", "\u{feff}\"record_id\",customer\nrec-b,王芳\n");
    run_ok(
        t.cmd("callrec-annotate")
            .args(["--from-json", "batch.jsonl", "a.mkv"]),
    );
    run_ok(
        t.cmd("callrec-annotate")
            .args(["--from-csv", "batch.csv", "b.mkv"]),
    );
    assert_eq!(sidecar(&t, "a.mkv")["call"]["customer_name"], "李霞");
    assert_eq!(sidecar(&t, "b.mkv")["call"]["customer_name"], "王芳");
}

#[test]
fn a_bad_utf8_byte_rejects_its_row_only() {
    let t = TestDir::new();
    for name in ["a", "b", "c"] {
        call(
            &t,
            &format!("{name}.mkv"),
            &format!(r#""id": "rec-{name}""#),
        );
    }
    let mut jsonl = Vec::new();
    jsonl.extend_from_slice("{\"record_id\": \"rec-a\", \"customer\": \"李霞\"}\n".as_bytes());
    jsonl.extend_from_slice(b"{\"record_id\": \"rec-b\", \"customer\": \"\xff\xfe\"}\n");
    jsonl.extend_from_slice("{\"record_id\": \"rec-c\", \"customer\": \"王芳\"}\n".as_bytes());
    t.write("batch.jsonl", &jsonl);
    let (code, stdout, stderr) = run(t.cmd("callrec-annotate").args([
        "--from-json",
        "batch.jsonl",
        "a.mkv",
        "b.mkv",
        "c.mkv",
    ]));
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(stdout.lines().collect::<Vec<_>>(), ["a.mkv", "c.mkv"]);
    assert!(stderr.contains("batch.jsonl:2: "), "{stderr}");
    assert!(stderr.contains("UTF-8"), "{stderr}");

    let mut csv = b"record_id,customer\nrec-a,\xe6\x9d\x8e\n".to_vec();
    csv.extend_from_slice(b"rec-b,\xff\n");
    csv.extend_from_slice("rec-c,张伟\n".as_bytes());
    t.write("batch.csv", &csv);
    let (code, stdout, stderr) =
        run(t
            .cmd("callrec-annotate")
            .args(["--from-csv", "batch.csv", "a.mkv", "b.mkv", "c.mkv"]));
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(stdout.lines().collect::<Vec<_>>(), ["a.mkv", "c.mkv"]);
    assert!(stderr.contains("batch.csv:3: "), "{stderr}");
    assert_eq!(sidecar(&t, "c.mkv")["call"]["customer_name"], "张伟");
}

#[test]
fn record_errors_name_the_field_never_the_value() {
    use callrec::record::{china_standard_time, Record, RecordId};
    use callrec::vocab::Vocabulary;

    // The customer's name where the date belongs.
    let shifted = "01|1573890531|大额核实|0068|大旺路分理处|13321150748|王芳|财务人员|李霞|10时12分20秒|8803880203|911101140924495254|110108197712281810|32150100100065711|130002|核实成功";
    let id = RecordId::parse("rec-a").unwrap();
    let err = Record::from_line(id, shifted, china_standard_time(), &Vocabulary::builtin())
        .unwrap_err()
        .to_string();
    assert!(err.contains("call_date"), "{err}");
    assert!(!err.contains("李霞"), "personal data in an error: {err}");

    let syntax =
        "{\"schema\": 1, \"id\": \"rec-a\", \"call\": {\"customer_name\": \"李霞\" \"x\"}}";
    let err = Record::from_json(syntax.as_bytes(), Path::new("a.json"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("call.customer_name: expected `,` or `}`"),
        "{err}"
    );
    assert!(!err.contains("李霞"), "personal data in an error: {err}");

    let long = "1".repeat(81);
    let err = RecordId::parse(&long).unwrap_err().to_string();
    assert!(err.contains("81 characters"), "{err}");
    assert!(!err.contains(&long), "{err}");
}
