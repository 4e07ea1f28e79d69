//! Where one tool meets another's leftovers, a crash or a second process: capture, seal and the
//! chain (issue 10). Each test reproduces a failure seen on an earlier build.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::*;

const AUDIO: &str = "lavfi:sine=frequency=440:sample_rate=16000";

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// `callrec-verify --json` over files: the verdicts' statuses and the chain issues.
fn verify_json(t: &TestDir, keys: &str, files: &[&Path]) -> (i32, Vec<VerifyLine>) {
    let (code, stdout, stderr) = run(t
        .cmd("callrec-verify")
        .args(["--json", "--pubkey"])
        .arg(t.join(keys).join("seal.pub"))
        .args(files));
    assert!(code != 2, "verify could not check: {stderr}");
    (code, parse_verify_json(&stdout))
}

fn chain_issues(lines: &[VerifyLine]) -> Vec<String> {
    lines
        .iter()
        .filter_map(|l| match l {
            VerifyLine::Chain {
                status, message, ..
            } => Some(format!("{status}: {message}")),
            _ => None,
        })
        .collect()
}

/// Start a capture recording `seconds` of a lavfi tone in real time into `spool`.
fn start_capture(t: &TestDir, spool: &str, seconds: &str) -> Child {
    t.cmd("callrec-capture")
        .args([
            "--audio",
            AUDIO,
            "--number",
            "13321150748",
            "--duration",
            seconds,
        ])
        .args(["-o", spool])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("capture starts")
}

/// Wait until `dir` holds a file whose name ends with `suffix` and has some bytes.
fn wait_for(dir: &Path, suffix: &str) -> PathBuf {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(entries) = fs::read_dir(dir) {
            for e in entries.flatten() {
                let p = e.path();
                if p.to_string_lossy().ends_with(suffix)
                    && fs::metadata(&p).is_ok_and(|m| m.len() > 2000)
                {
                    return p;
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "no {suffix} file appeared in {dir:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_changed_annotation_is_sealed_as_a_correction_never_dropped() {
    let t = TestDir::new();
    t.keygen("keys");
    t.wav("call.wav");
    run_ok(
        t.cmd("callrec-annotate")
            .args(["--customer", "张三", "call.wav"]),
    );
    run_ok(
        t.cmd("callrec-seal")
            .args(["-k", "keys", "-o", "sealed", "call.wav"]),
    );
    // The record is still in the spool: the operator changes the text and seals again.
    run_ok(
        t.cmd("callrec-annotate")
            .args(["--customer", "李四", "call.wav"]),
    );
    let (code, stdout, stderr) = run(t.cmd("callrec-seal").args([
        "-k",
        "keys",
        "-o",
        "sealed",
        "--remove-source",
        "--json",
        "call.wav",
    ]));
    assert_eq!(code, 0, "{stderr}");
    let lines = parse_seal_json(&stdout);
    let correction = match &lines[0] {
        SealLine::Sealed {
            output, corrects, ..
        } => {
            assert_eq!(corrects.as_deref(), Some("sealed/call.sealed.wav"));
            t.join(output)
        }
        other => panic!("expected a new seal, got {other:?}"),
    };
    assert!(
        stderr.contains("sealed the new text as a correction"),
        "{stderr}"
    );
    // Both sources are gone only because both seals verified; the new text is sealed.
    assert!(!t.join("call.wav").exists());
    assert!(!t.join("call.wav.callrec.json").exists());
    let shown = run_ok(
        t.cmd("callrec-verify")
            .args(["--show", "--identity", "keys", "--pubkey", "keys/seal.pub"])
            .arg(&correction),
    );
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(shown.contains("李四"), "{shown}");
    // The history links the two versions.
    let (code, lines) = verify_json(&t, "keys", &[&t.join("sealed")]);
    assert_eq!(code, 0);
    assert!(lines
        .iter()
        .any(|l| matches!(l, VerifyLine::History { versions, .. } if versions.len() == 2)));

    // Sealing the same changed text again makes nothing new.
    t.wav("call2.wav");
    run_ok(
        t.cmd("callrec-annotate")
            .args(["--customer", "王五", "call2.wav"]),
    );
    run_ok(
        t.cmd("callrec-seal")
            .args(["-k", "keys", "-o", "sealed", "call2.wav"]),
    );
    run_ok(
        t.cmd("callrec-annotate")
            .args(["--customer", "赵六", "call2.wav"]),
    );
    let first = lines_of(run_ok(t.cmd("callrec-seal").args([
        "-k",
        "keys",
        "-o",
        "sealed",
        "call2.wav",
    ])));
    let again = lines_of(run_ok(t.cmd("callrec-seal").args([
        "-k",
        "keys",
        "-o",
        "sealed",
        "call2.wav",
    ])));
    assert_eq!(first, again, "a re-run finds the correction it made");
    assert!(first[0].ends_with(".sealed.correction"), "{first:?}");
}

fn lines_of(out: std::process::Output) -> Vec<String> {
    lines(&out)
}

#[test]
fn sealing_a_spool_leaves_a_recording_in_progress_alone() {
    let t = TestDir::new();
    t.keygen("keys");
    let capture = start_capture(&t, "spool", "4");
    let part = wait_for(&t.join("spool"), ".mkv.part");
    // With --remove-source, and without: the recording in progress is not a record yet.
    for extra in [&["--remove-source"][..], &[][..]] {
        let (code, stdout, stderr) = run(t
            .cmd("callrec-seal")
            .args(["-k", "keys", "-o", "sealed"])
            .args(extra)
            .arg("spool"));
        assert_eq!(code, 0, "{stderr}");
        assert!(stdout.is_empty(), "sealed something: {stdout}");
        assert!(part.exists(), "the recording in progress was touched");
    }
    // Named directly, it is refused.
    let (code, _, stderr) = run(t.cmd("callrec-seal").args(["-k", "keys"]).arg(&part));
    assert_eq!(code, 1);
    assert!(stderr.contains("still in progress"), "{stderr}");
    let out = capture.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let media = t.join(String::from_utf8(out.stdout).unwrap().trim());
    assert!(media.exists() && !part.exists());
    // The whole call is there.
    let sealed = t.seal("keys", &["-o", "sealed", "spool"]);
    assert_eq!(sealed.len(), 1);
    let secs: f64 = tool_ok(
        "ffprobe",
        &[
            "-v",
            "error",
            "-show_entries",
            "format=duration",
            "-of",
            "csv=p=0",
            media.to_str().unwrap(),
        ],
        t.path(),
    )
    .trim()
    .parse()
    .unwrap();
    assert!(secs > 3.5, "the recording was cut to {secs} s");
}

#[test]
fn a_killed_capture_is_completed_as_an_interrupted_record() {
    let t = TestDir::new();
    t.keygen("keys");
    let mut capture = start_capture(&t, "spool", "60");
    let part = wait_for(&t.join("spool"), ".mkv.part");
    std::thread::sleep(Duration::from_millis(1500));
    capture.kill().unwrap();
    capture.wait().unwrap();
    // The sidecar was written when recording started: number and start time survive.
    let media_name = part
        .file_name()
        .unwrap()
        .to_string_lossy()
        .replace(".part", "");
    let sidecar = t.join("spool").join(format!("{media_name}.callrec.json"));
    let record: serde_json::Value = serde_json::from_slice(&fs::read(&sidecar).unwrap()).unwrap();
    assert_eq!(record["phone"]["number"], "13321150748");
    assert!(record["times"]["call_start"].is_string());
    assert_eq!(mode(&sidecar), 0o600, "a sidecar holds personal data");
    assert_eq!(mode(&part), 0o600, "a recording holds personal data");

    // The next seal completes it, flagged, and seals it.
    let (code, stdout, stderr) =
        run(t
            .cmd("callrec-seal")
            .args(["-k", "keys", "-o", "sealed", "--remove-source", "spool"]));
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(
        names(&t.join("spool")).is_empty(),
        "{:?}",
        names(&t.join("spool"))
    );
    let sealed = t.join(stdout.trim());
    let bytes = fs::read(&sealed).unwrap();
    let manifest = String::from_utf8_lossy(&bytes[parts(&bytes).manifest]).into_owned();
    assert!(
        manifest.contains("health: interrupted") || manifest.contains(" interrupted"),
        "{manifest}"
    );
    let shown = run_ok(
        t.cmd("callrec-verify")
            .args(["--show", "--identity", "keys", "--pubkey", "keys/seal.pub"])
            .arg(&sealed),
    );
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(shown.contains("13321150748"), "{shown}");
    assert!(shown.contains("call_end"), "{shown}");
}

#[test]
fn a_killed_capture_is_completed_by_the_next_capture() {
    let t = TestDir::new();
    let mut capture = start_capture(&t, "spool", "60");
    wait_for(&t.join("spool"), ".mkv.part");
    capture.kill().unwrap();
    capture.wait().unwrap();
    let (code, stdout, stderr) =
        run(t
            .cmd("callrec-capture")
            .args(["--audio", AUDIO, "--duration", "0.5", "-o", "spool"]));
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert_eq!(stdout.lines().count(), 1);
    let media: Vec<String> = names(&t.join("spool"))
        .into_iter()
        .filter(|n| n.ends_with(".mkv"))
        .collect();
    assert_eq!(media.len(), 2, "{:?}", names(&t.join("spool")));
    assert!(!names(&t.join("spool")).iter().any(|n| n.ends_with(".part")));
}

#[test]
fn capture_for_zero_seconds_is_a_usage_error() {
    let t = TestDir::new();
    let (code, _, stderr) =
        run(t
            .cmd("callrec-capture")
            .args(["--audio", AUDIO, "--duration", "0", "-o", "spool"]));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--duration"), "{stderr}");
}

/// Run `callrec-seal` under strace, killed with SIGKILL on entering the `n`-th call of
/// `syscall`.
fn seal_killed_at(t: &TestDir, syscall: &str, n: u32, args: &[&str]) {
    let exe = env!("CARGO_BIN_EXE_callrec-seal");
    let status = Command::new("strace")
        .args(["-f", "-qq", "-o", "/dev/null", "-e"])
        .arg(format!("trace={syscall}"))
        .arg("-e")
        .arg(format!("inject={syscall}:signal=SIGKILL:when={n}"))
        .arg(exe)
        .args(args)
        .current_dir(t.path())
        .env("HOME", t.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("strace is installed (scripts/setup)");
    assert!(!status.success());
}

#[test]
fn a_seal_killed_after_landing_then_pushed_leaves_no_fork() {
    let t = TestDir::new();
    t.keygen("keys");
    t.write("spool/a.bin", "evidence a");
    t.write("spool/b.bin", "evidence b");
    // fsyncs of one bare seal: the file and its directory under the stage name, the pending
    // state and its directory, then the final link's directory (5): killed there, the sealed
    // file has landed but the chain has not moved on.
    seal_killed_at(
        &t,
        "fsync",
        5,
        &["-k", "keys", "-o", "out", "--no-watermark", "spool/a.bin"],
    );
    let state = fs::read_to_string(t.join("keys/chain.state")).unwrap();
    assert!(
        state.contains("\"pending\": {"),
        "not killed between link and commit: {state}"
    );
    assert!(t.join("out/a.sealed.bin").exists());
    // The sealed file leaves the output directory before the next seal.
    run_ok(t.cmd("callrec-push").args(["--to", "archive", "out"]));
    assert!(!t.join("out/a.sealed.bin").exists());
    t.seal("keys", &["-o", "out", "spool/b.bin"]);
    let archived: Vec<PathBuf> = walkdir::WalkDir::new(t.join("archive"))
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| e.into_path())
        .collect();
    let mut files: Vec<&Path> = archived.iter().map(PathBuf::as_path).collect();
    let b = t.join("out/b.sealed.bin");
    files.push(&b);
    let (code, lines) = verify_json(&t, "keys", &files);
    assert_eq!(chain_issues(&lines), Vec::<String>::new());
    assert_eq!(code, 0);
    // No stage is left behind.
    assert!(!names(&t.join("out"))
        .iter()
        .any(|n| n.ends_with(".pending")));
}

#[test]
fn a_seal_killed_before_landing_is_rolled_forward() {
    let t = TestDir::new();
    t.keygen("keys");
    t.write("a.bin", "evidence a");
    // Killed at the fsync after the pending state (4): the stage is complete, not linked.
    seal_killed_at(
        &t,
        "fsync",
        4,
        &["-k", "keys", "-o", "out", "--no-watermark", "a.bin"],
    );
    assert!(!t.join("out/a.sealed.bin").exists());
    t.write("b.bin", "evidence b");
    let sealed = t.seal("keys", &["-o", "out", "a.bin", "b.bin"]);
    assert_eq!(sealed.len(), 2);
    let (code, lines) = verify_json(&t, "keys", &[&t.join("out")]);
    assert_eq!(chain_issues(&lines), Vec::<String>::new());
    assert_eq!(code, 0);
}

#[test]
fn killed_seals_leave_no_temporary_files_for_ever() {
    let t = TestDir::new();
    t.keygen("keys");
    t.write("a.bin", vec![7u8; 4 << 20]);
    // Killed at its first fsync: the temporary copy is complete but never finished.
    seal_killed_at(
        &t,
        "fsync",
        1,
        &["-k", "keys", "-o", "out", "--no-watermark", "a.bin"],
    );
    let temps: Vec<String> = names(&t.join("out"))
        .into_iter()
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert_eq!(temps.len(), 1, "{:?}", names(&t.join("out")));
    // Young temporary files might be a live writer's: left alone.
    let young = fs::File::options()
        .write(true)
        .open(t.join("out").join(&temps[0]))
        .unwrap();
    young.set_modified(std::time::SystemTime::now()).unwrap();
    drop(young);
    t.seal("keys", &["-o", "out", "--no-watermark", "a.bin"]);
    assert!(t.join("out").join(&temps[0]).exists());
    // Once old and unlocked, the next run removes them; a live writer's locked file stays.
    let old = std::time::SystemTime::now() - Duration::from_secs(3600);
    let stale = fs::File::options()
        .write(true)
        .open(t.join("out").join(&temps[0]))
        .unwrap();
    stale.set_modified(old).unwrap();
    drop(stale);
    let live_path = t.write("out/.callrec-live.tmp", "a live writer's");
    let live = fs::File::open(&live_path).unwrap();
    live.lock().unwrap();
    fs::File::options()
        .write(true)
        .open(&live_path)
        .unwrap()
        .set_modified(old)
        .unwrap();
    t.write("b.bin", "evidence b");
    let (code, _, stderr) = run(t
        .cmd("callrec-seal")
        .args(["-k", "keys", "-o", "out", "b.bin"]));
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("removed 1 temporary file"), "{stderr}");
    assert!(!t.join("out").join(&temps[0]).exists());
    assert!(live_path.exists(), "a locked temporary file was removed");
}

#[test]
fn a_fake_seal_is_not_taken_as_sealed() {
    let t = TestDir::new();
    t.keygen("keys");
    t.write("real.bin", "evidence");
    let sealed = t.seal("keys", &["real.bin"]);
    // Media that merely ends with a well-formed footer: a sealed file's tail glued onto
    // other bytes, and a sealed file whose media was changed.
    let bytes = fs::read(&sealed[0]).unwrap();
    let mut fake = b"tampered".to_vec();
    fake.extend_from_slice(&bytes[8..]);
    t.write("fake.bin", &fake);
    let mut changed = bytes.clone();
    changed[0] ^= 1;
    t.write("changed.bin", &changed);
    for name in ["fake.bin", "changed.bin"] {
        let (code, stdout, stderr) = run(t.cmd("callrec-seal").args(["-k", "keys", name]));
        assert_eq!(code, 1, "{name}: {stderr}");
        assert!(stdout.is_empty(), "{name} printed as sealed: {stdout}");
        assert!(stderr.contains("does not verify"), "{stderr}");
    }
    // A real sealed file given again is still reported as sealed.
    let (code, stdout, _) = run(t.cmd("callrec-seal").args(["-k", "keys"]).arg(&sealed[0]));
    assert_eq!(code, 0);
    assert_eq!(stdout.trim(), sealed[0].to_str().unwrap());
}

#[test]
fn a_named_pipe_given_as_input_fails_at_once() {
    let t = TestDir::new();
    t.keygen("keys");
    let fifo = t.join("pipe.wav");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let started = Instant::now();
    for (bin, args) in [
        ("callrec-seal", vec!["-k", "keys", "pipe.wav"]),
        ("callrec-verify", vec!["--quick", "pipe.wav"]),
    ] {
        let (code, _, stderr) = run(t.cmd(bin).args(&args));
        assert_ne!(code, 0, "{bin}");
        assert!(stderr.contains("pipe.wav"), "{bin}: {stderr}");
    }
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "a tool waited on the pipe"
    );
}

#[test]
fn state_files_in_a_spool_are_never_records() {
    let t = TestDir::new();
    t.keygen("keys");
    t.write("spool/a.bin", "evidence a");
    t.write("spool/.callrec-push.lock", "");
    t.write("spool/x.bin#3", "a directory archive's staging file");
    let sealed = t.seal("keys", &["spool"]);
    assert_eq!(sealed.len(), 1, "{sealed:?}");
    // Verify takes only sealed files from a directory, so a cron job's `|| mail` stays quiet.
    let (code, stdout, stderr) =
        run(t
            .cmd("callrec-verify")
            .args(["--pubkey", "keys/seal.pub", "spool"]));
    assert_eq!(code, 0, "{stdout}{stderr}");
    // A second night: the same spool again seals nothing new and fails nothing.
    let (code, _, stderr) = run(t.cmd("callrec-seal").args(["-k", "keys", "spool"]));
    assert_eq!(code, 0, "{stderr}");
    let seq: Vec<String> = names(&t.join("spool"));
    assert!(
        !seq.iter()
            .any(|n| n.contains(".sealed") && n.starts_with('.')),
        "{seq:?}"
    );
}

#[test]
fn a_damaged_chain_state_stops_the_run_with_exit_2() {
    let t = TestDir::new();
    t.keygen("keys");
    t.write("a.bin", "evidence a");
    t.seal("keys", &["a.bin"]);
    fs::write(t.join("keys/chain.state"), "{ not json").unwrap();
    t.write("b.bin", "evidence b");
    let (code, stdout, stderr) = run(t.cmd("callrec-seal").args(["-k", "keys", "b.bin"]));
    assert_eq!(code, 2, "{stderr}");
    assert!(stdout.is_empty());
    assert!(stderr.contains("chain.state"), "{stderr}");
    assert!(!t.join("b.sealed.bin").exists());
}

#[test]
fn output_directories_are_created() {
    let t = TestDir::new();
    t.keygen("keys");
    t.write("a.bin", "evidence");
    let sealed = t.seal("keys", &["-o", "new/sealed", "a.bin"]);
    assert_eq!(sealed, [t.join("new/sealed/a.sealed.bin")]);
}

#[test]
fn an_interrupted_removal_never_removes_a_new_recording_of_the_same_name() {
    let t = TestDir::new();
    t.keygen("keys");
    t.wav("call.wav");
    // unlinks: the stage (1), the media (2), the marker (3).
    seal_killed_at(
        &t,
        "unlink",
        3,
        &["-k", "keys", "--remove-source", "call.wav"],
    );
    assert!(
        t.join(".callrec-call.wav.removing").exists(),
        "not killed mid-removal"
    );
    assert!(!t.join("call.wav").exists());
    // The seal is pushed away; a new recording takes the name.
    fs::create_dir(t.join("sent")).unwrap();
    fs::rename(t.join("call.sealed.wav"), t.join("sent/call.sealed.wav")).unwrap();
    t.ffmpeg(
        "call.wav",
        &["-f", "lavfi", "-i", "sine=frequency=880:duration=2"],
    );
    let new = fs::read(t.join("call.wav")).unwrap();
    let sealed = t.seal("keys", &["call.wav"]);
    assert_eq!(
        fs::read(t.join("call.wav")).unwrap(),
        new,
        "the new recording was touched"
    );
    let bytes = fs::read(&sealed[0]).unwrap();
    assert_eq!(
        &bytes[..new.len()],
        &new[..],
        "the new recording was not sealed"
    );
    assert!(!t.join(".callrec-call.wav.removing").exists());
}

#[test]
fn a_killed_capture_named_by_its_part_file_is_completed_and_sealed() {
    let t = TestDir::new();
    t.keygen("keys");
    let mut capture = start_capture(&t, "spool", "60");
    let part = wait_for(&t.join("spool"), ".mkv.part");
    capture.kill().unwrap();
    capture.wait().unwrap();
    let (code, stdout, stderr) = run(t
        .cmd("callrec-seal")
        .args(["-k", "keys", "-o", "sealed", "--remove-source"])
        .arg(&part));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(
        names(&t.join("spool")).is_empty(),
        "{:?}",
        names(&t.join("spool"))
    );
}

#[test]
fn a_stage_left_after_its_commit_is_removed_by_the_next_run() {
    let t = TestDir::new();
    t.keygen("keys");
    t.write("a.bin", "evidence a");
    // The first unlink of a seal is its stage's, after the chain committed.
    seal_killed_at(&t, "unlink", 1, &["-k", "keys", "-o", "out", "a.bin"]);
    let stages = |t: &TestDir| -> Vec<String> {
        names(&t.join("out"))
            .into_iter()
            .filter(|n| n.ends_with(".pending"))
            .collect()
    };
    assert_eq!(stages(&t).len(), 1, "not killed at the stage's removal");
    assert!(t.join("out/a.sealed.bin").exists());
    t.write("b.bin", "evidence b");
    let (code, _, stderr) = run(t
        .cmd("callrec-seal")
        .args(["-k", "keys", "-o", "out", "b.bin"]));
    assert_eq!(code, 0, "{stderr}");
    assert!(stages(&t).is_empty(), "{:?}", stages(&t));
    let (code, lines) = verify_json(&t, "keys", &[&t.join("out")]);
    assert_eq!(chain_issues(&lines), Vec::<String>::new());
    assert_eq!(code, 0);
}
