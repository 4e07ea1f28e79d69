//! callrec-push where it meets a second process, a crash or another tool's files: two seals of
//! one record, two pushes of one seal, kills, leftovers, durability, what a walk takes.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use crate::util::*;

/// Seal `names` (small recordings `in/NAME.bin`, made once) into `spool`.
fn seal_into(t: &TestDir, spool: &str, names: &[&str]) {
    if !t.join("keys").exists() {
        t.keygen("keys");
    }
    for name in names {
        let input = t.join("in").join(format!("{name}.bin"));
        if !input.exists() {
            t.write(&format!("in/{name}.bin"), format!("recording {name}"));
        }
    }
    fs::create_dir_all(t.join(spool)).unwrap();
    let inputs: Vec<PathBuf> = names
        .iter()
        .map(|n| t.join("in").join(format!("{n}.bin")))
        .collect();
    run_ok(
        t.cmd("callrec-seal")
            .args(["-k", "keys", "-o", spool])
            .args(inputs),
    );
}

fn names(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{i:04}")).collect()
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

/// The bytes of every sealed file in `dir` (not below).
fn seals(dir: &Path) -> BTreeSet<Vec<u8>> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".sealed.bin"))
        .map(|p| fs::read(p).unwrap())
        .collect()
}

/// The archived objects of a directory archive: key → bytes. Anything else in it (a
/// temporary or staging file) fails the test.
fn archived(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    files(dir)
        .into_iter()
        .map(|f| {
            assert!(f.ends_with(".sealed.bin"), "{f} left in the archive");
            let bytes = fs::read(dir.join(&f)).unwrap();
            (f, bytes)
        })
        .collect()
}

/// Start a push with `args`, its output captured.
fn spawn(cmd: &mut Command) -> Child {
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Wait for a push: (exit code, stdout, stderr).
fn finish(child: Child) -> (i32, String, String) {
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().expect("exited normally"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `callrec-push ARGS` run under `strace STRACE_ARGS`, with the environment the tests give it.
fn strace_push(t: &TestDir, strace_args: &[&str], args: &[&str]) -> Command {
    let push = t.cmd("callrec-push");
    let mut cmd = Command::new("strace");
    cmd.current_dir(t.path())
        .args(strace_args)
        .arg(push.get_program())
        .args(args)
        .stdin(Stdio::null());
    for (name, value) in push.get_envs() {
        match value {
            Some(value) => cmd.env(name, value),
            None => cmd.env_remove(name),
        };
    }
    cmd
}

/// Run a command that should be killed; whether it was.
fn killed(cmd: &mut Command) -> bool {
    use std::os::unix::process::ExitStatusExt;
    let status = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    status.signal() == Some(9) || status.code() == Some(128 + 9)
}

/// Make every file below `dir` look untouched for two hours.
fn age(dir: &Path) {
    let then = SystemTime::now() - Duration::from_secs(7200);
    for f in files(dir) {
        fs::File::options()
            .write(true)
            .open(dir.join(f))
            .unwrap()
            .set_modified(then)
            .unwrap();
    }
}

// Issue 10 item 4: two different seals of one record, pushed at once from two spools, were
// both reported uploaded while the bucket kept one (Garage ignores If-None-Match). They now
// have different keys, and each reported key holds its seal.
#[test]
fn two_seals_of_one_record_pushed_at_once_to_garage_are_both_kept() {
    let garage = Garage::start();
    let t = TestDir::new();
    let names = names(6);
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    seal_into(&t, "a", &names);
    seal_into(&t, "b", &names);
    let (a, b) = (seals(&t.join("a")), seals(&t.join("b")));
    assert!(a.is_disjoint(&b), "sealing again makes different seals");
    let push = |spool: &str| {
        spawn(garage.env(t.cmd("callrec-push").args([
            "--to",
            "s3://calls/branch",
            "--json",
            "-j",
            "4",
            spool,
        ])))
    };
    let (first, second) = (push("a"), push("b"));
    let mut reported = Vec::new();
    for child in [first, second] {
        let (code, stdout, stderr) = finish(child);
        assert_eq!(code, 0, "{stderr}");
        reported.extend(archived_lines(stdout.as_bytes()));
    }
    assert_eq!(reported.len(), 12);
    let objects = garage.objects();
    assert_eq!(objects.len(), 12, "every seal of every record kept");
    for receipt in &reported {
        let key = receipt["key"].as_str().unwrap();
        let bytes = &objects[key];
        assert_eq!(
            hex(bytes),
            receipt["sha256"].as_str().unwrap(),
            "{key} does not hold the seal reported archived there"
        );
    }
    let all: BTreeSet<Vec<u8>> = objects.into_values().collect();
    assert_eq!(all, a.union(&b).cloned().collect());
}

fn hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

// Issue 10 item 4, the key: day, record id and the manifest hash's first 16 hex digits.
#[test]
fn the_archive_key_names_the_seal_by_its_manifest_hash() {
    let t = TestDir::new();
    seal_into(&t, "spool", &["0000"]);
    let out = run_ok(
        t.cmd("callrec-push")
            .args(["--to", "archive", "--json", "spool"]),
    );
    let receipt = &archived_lines(&out.stdout)[0];
    let key = receipt["key"].as_str().unwrap();
    let manifest = receipt["manifest_sha256"].as_str().unwrap();
    let record = receipt["record_id"].as_str().unwrap();
    let name = format!("{record}.{}.sealed.bin", &manifest[..16]);
    let parts: Vec<&str> = key.split('/').collect();
    assert_eq!(parts.len(), 4, "{key}");
    assert!(parts[..3]
        .iter()
        .all(|p| p.bytes().all(|b| b.is_ascii_digit())));
    assert_eq!(parts[3], name);
}

// Issue 10 item 5: a directory archive's file and directories are fsynced before the receipt
// is written and before the spool copy moves to sent/.
#[test]
fn a_directory_push_is_durable_before_the_receipt_and_the_move() {
    let t = TestDir::new();
    seal_into(&t, "spool", &["0000"]);
    run_ok(&mut strace_push(
        &t,
        &[
            "-f",
            "-qq",
            "-y",
            "-e",
            "trace=fsync,fdatasync,write,rename,renameat,renameat2",
            "-o",
            "trace.txt",
        ],
        &["--to", "archive", "spool"],
    ));
    let trace = fs::read_to_string(t.join("trace.txt")).unwrap();
    let lines: Vec<&str> = trace.lines().collect();
    let root = t.path().canonicalize().unwrap().join("archive");
    let key = files(&t.join("archive")).remove(0);
    let at = |what: &str, path: &Path| {
        let needle = format!("<{}>", path.display());
        lines
            .iter()
            .position(|l| l.contains(what) && l.contains(&needle))
            .unwrap_or_else(|| panic!("no {what} of {needle} in\n{trace}"))
    };
    let receipt = lines
        .iter()
        .position(|l| l.contains("write(") && l.contains("push-journal.jsonl>"))
        .expect("a receipt written");
    let moved = lines
        .iter()
        .position(|l| l.contains("rename(") && l.contains("sent/"))
        .expect("the spool copy moved");
    assert!(receipt < moved);
    let file = root.join(&key);
    let mut synced = vec![at("fsync(", &file)];
    let mut dir = file.parent().unwrap();
    while dir != root.parent().unwrap() {
        synced.push(at("fsync(", dir));
        dir = dir.parent().unwrap();
    }
    for (i, line) in synced.iter().enumerate() {
        assert!(
            *line < receipt,
            "sync {i} (file, then directories up to the root) after the receipt:\n{trace}"
        );
    }
}

// Issue 10 item 6: the same sealed files pushed by two processes at once, outside the spool
// lock (file lists, and two spools holding the same records), to a directory archive: both
// succeed, each record archived once, no false conflict.
#[test]
fn two_pushes_of_the_same_files_to_a_directory_both_succeed() {
    let t = TestDir::new();
    let names = names(12);
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    seal_into(&t, "spool", &names);
    let sealed = seals(&t.join("spool"));
    let listed: Vec<String> = files(&t.join("spool"))
        .into_iter()
        .filter(|f| f.ends_with(".sealed.bin"))
        .map(|f| format!("spool/{f}"))
        .collect();
    for round in 0..4 {
        let archive = format!("archive{round}");
        let push = |inputs: &[String]| {
            spawn(
                t.cmd("callrec-push")
                    .args(["--to", &archive, "-j", "4"])
                    .args(inputs),
            )
        };
        let (code_a, code_b);
        if round % 2 == 0 {
            let (a, b) = (push(&listed), push(&listed));
            let (x, y) = (finish(a), finish(b));
            assert!(!x.2.contains("different record"), "{}", x.2);
            assert!(!y.2.contains("different record"), "{}", y.2);
            (code_a, code_b) = (x.0, y.0);
        } else {
            // Two spools holding the same records, each under its own lock.
            for spool in ["s1", "s2"] {
                let _ = fs::remove_dir_all(t.join(spool));
                fs::create_dir(t.join(spool)).unwrap();
                for f in &listed {
                    let name = Path::new(f).file_name().unwrap();
                    fs::copy(t.join(f), t.join(spool).join(name)).unwrap();
                }
            }
            let (a, b) = (push(&["s1".into()]), push(&["s2".into()]));
            let (x, y) = (finish(a), finish(b));
            assert!(!x.2.contains("different record"), "{}", x.2);
            assert!(!y.2.contains("different record"), "{}", y.2);
            (code_a, code_b) = (x.0, y.0);
            for spool in ["s1", "s2"] {
                assert!(
                    files(&t.join(spool))
                        .iter()
                        .all(|f| f.starts_with("sent/") || f.starts_with(".callrec-push")),
                    "{spool} kept a record"
                );
            }
        }
        assert_eq!((code_a, code_b), (0, 0), "round {round}");
        let objects = archived(&t.join(&archive));
        assert_eq!(objects.len(), 12);
        assert_eq!(objects.into_values().collect::<BTreeSet<_>>(), sealed);
    }
}

// Issue 10 item 6 on Garage: two processes pushing the same large records (uploaded in parts)
// at once both end correctly: never exit 75 (Garage drops the older of two multipart uploads
// of a key when the newer completes: NoSuchUpload) and never a false conflict. Which process
// starts first and how many records each has in flight varies from round to round.
#[test]
fn two_pushes_of_the_same_large_records_to_garage_both_succeed() {
    let garage = Garage::start();
    let t = TestDir::new();
    t.keygen("keys");
    for i in 0..4u32 {
        let big: Vec<u8> = (0..(30u32 << 20))
            .map(|j| (j.wrapping_add(i << 28).wrapping_mul(2654435761) >> 24) as u8)
            .collect();
        t.write(&format!("in/big{i}.bin"), &big);
    }
    fs::create_dir(t.join("spool")).unwrap();
    run_ok(
        t.cmd("callrec-seal")
            .args(["-k", "keys", "-o", "spool", "in"]),
    );
    let sealed = seals(&t.join("spool"));
    let rounds = [
        ("4", "1", 150),
        ("1", "4", 150),
        ("2", "2", 50),
        ("1", "4", 500),
    ];
    for (round, (jobs_a, jobs_b, delay)) in rounds.into_iter().enumerate() {
        for spool in ["s1", "s2"] {
            let _ = fs::remove_dir_all(t.join(spool));
            fs::create_dir(t.join(spool)).unwrap();
            for f in files(&t.join("spool")) {
                fs::copy(t.join("spool").join(&f), t.join(spool).join(&f)).unwrap();
            }
        }
        let prefix = format!("s3://calls/round{round}");
        let push = |spool: &str, jobs: &str| {
            spawn(
                garage.env(
                    t.cmd("callrec-push")
                        .args(["--to", &prefix, "-j", jobs, spool]),
                ),
            )
        };
        let a = push("s1", jobs_a);
        std::thread::sleep(Duration::from_millis(delay));
        let b = push("s2", jobs_b);
        for (code, _, stderr) in [finish(a), finish(b)] {
            assert_eq!(code, 0, "round {round}: {stderr}");
        }
    }
    let objects = garage.objects();
    assert_eq!(objects.len(), 16);
    assert_eq!(objects.into_values().collect::<BTreeSet<_>>(), sealed);
}

// Issue 10 item 15: the next push removes what killed pushes left in the directories it writes
// to (temporary files nobody holds, untouched for a minute; old `KEY#N` staging files), and
// leaves a live writer's file alone.
#[test]
fn a_push_removes_stale_leftovers_and_keeps_live_ones() {
    let t = TestDir::new();
    seal_into(&t, "spool", &["0000"]);
    run_ok(t.cmd("callrec-push").args(["--to", "archive", "spool"]));
    let key = files(&t.join("archive")).remove(0);
    let day = t.join("archive").join(Path::new(&key).parent().unwrap());
    let plant = |name: &str| {
        let path = day.join(name);
        fs::write(&path, b"half a record").unwrap();
        path
    };
    let dead = plant(".callrec-dead.tmp");
    let legacy = plant(&format!(
        "{}#3",
        Path::new(&key).file_name().unwrap().to_string_lossy()
    ));
    let live = plant(".callrec-live.tmp");
    age(&t.join("archive"));
    let fresh = plant(".callrec-fresh.tmp");
    let holder = fs::File::open(&live).unwrap();
    holder.lock().unwrap();

    seal_into(&t, "spool", &["0001"]);
    run_ok(t.cmd("callrec-push").args(["--to", "archive", "spool"]));
    assert!(!dead.exists(), "a killed push's temporary file stays");
    assert!(!legacy.exists(), "an old staging file stays");
    assert!(live.exists(), "a live writer's file was removed");
    assert!(fresh.exists(), "a file just written was removed");
    drop(holder);
}

// Issue 10 item 15, with real kills: a push killed as it links a record into the archive
// leaves a temporary file; the next run (a minute on) leaves nothing but records.
#[test]
fn pushes_killed_at_the_link_leave_nothing_behind_after_a_rerun() {
    let t = TestDir::new();
    let names = names(4);
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    seal_into(&t, "spool", &names);
    let sealed = seals(&t.join("spool"));
    for _ in 0..3 {
        let killed = killed(&mut strace_push(
            &t,
            &[
                "-f",
                "-qq",
                "-o",
                "/dev/null",
                "-e",
                "inject=linkat,renameat2:signal=KILL:when=1",
            ],
            &["--to", "archive", "-j", "1", "spool"],
        ));
        assert!(killed, "the push was not killed");
    }
    assert!(
        files(&t.join("archive"))
            .iter()
            .any(|f| !f.ends_with(".sealed.bin")),
        "a kill at the link leaves a file being written"
    );
    age(&t.join("archive"));
    run_ok(t.cmd("callrec-push").args(["--to", "archive", "spool"]));
    let objects = archived(&t.join("archive"));
    assert_eq!(objects.into_values().collect::<BTreeSet<_>>(), sealed);
}

// Issue 10 item 16: killed after the receipt is journaled but before the spool copy moves, a
// push run again reports the record already archived and does not journal it twice.
#[test]
fn a_push_killed_before_the_move_and_run_again_journals_each_seal_once() {
    let t = TestDir::new();
    let names = names(3);
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    seal_into(&t, "spool", &names);
    let killed = killed(&mut strace_push(
        &t,
        &[
            "-f",
            "-qq",
            "-o",
            "/dev/null",
            "-e",
            "inject=rename:signal=KILL:when=1",
        ],
        &["--to", "archive", "-j", "1", "spool"],
    ));
    assert!(killed, "the push was not killed");
    let journal = t.join("state/callrec/push-journal.jsonl");
    let before = fs::read_to_string(&journal).unwrap().lines().count();
    assert!(before >= 1, "killed before any receipt");
    let out = run_ok(
        t.cmd("callrec-push")
            .args(["--to", "archive", "--json", "spool"]),
    );
    let statuses: Vec<String> = archived_lines(&out.stdout)
        .iter()
        .map(|r| r["status"].as_str().unwrap().to_string())
        .collect();
    // Every record journaled before the kill is found archived; so may be one a second
    // worker had uploaded but not yet journaled when the kill came.
    assert!(
        statuses.iter().filter(|s| *s == "already-archived").count() >= before,
        "{statuses:?}"
    );
    let text = fs::read_to_string(&journal).unwrap();
    let receipts = json_lines(text.as_bytes());
    assert_eq!(receipts.len(), 3, "{text}");
    let seals: BTreeSet<(String, String)> = receipts
        .iter()
        .map(|r| {
            (
                r["key"].as_str().unwrap().to_string(),
                r["manifest_sha256"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(seals.len(), 3, "a seal journaled twice:\n{text}");

    // The same seals from a second spool: already archived, still journaled once each.
    fs::create_dir(t.join("again")).unwrap();
    for f in files(&t.join("spool/sent")) {
        fs::copy(t.join("spool/sent").join(&f), t.join("again").join(&f)).unwrap();
    }
    run_ok(t.cmd("callrec-push").args(["--to", "archive", "again"]));
    assert_eq!(fs::read_to_string(&journal).unwrap().lines().count(), 3);
}

// Issue 11 item 1 (push): a spool walk takes sealed files only. A capture spool (media,
// sidecars, a recording in progress) and the push's own lock are nothing to push.
#[test]
fn a_spool_without_sealed_files_is_nothing_to_do() {
    let t = TestDir::new();
    t.write("spool/call.mkv", "media");
    t.write("spool/call.json", "{}");
    t.write("spool/next.mkv.part", "recording");
    t.write("spool/.callrec-push.lock", "");
    t.write("spool/.callrec-abc.tmp", "temporary");
    t.write("spool/x.sealed.bin#4", "staging");
    let (code, stdout, stderr) = run(t.cmd("callrec-push").args(["--to", "archive", "spool"]));
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.is_empty() && stderr.is_empty(), "{stdout}{stderr}");
    assert!(t.join("spool/call.mkv").exists() && t.join("spool/call.json").exists());

    // Sealed files beside them are pushed; the rest stays where it is; sent/ is not walked.
    seal_into(&t, "spool", &["0000"]);
    let out = run_ok(t.cmd("callrec-push").args(["--to", "archive", "spool"]));
    assert_eq!(lines(&out).len(), 1);
    let out = run_ok(t.cmd("callrec-push").args(["--to", "archive", "spool"]));
    assert!(out.stdout.is_empty());
    for f in [
        "call.mkv",
        "call.json",
        "next.mkv.part",
        ".callrec-push.lock",
    ] {
        assert!(t.join("spool").join(f).exists(), "{f}");
    }
}

// Issue 10 item 14 (push): a named pipe given as input fails at once, plainly, not a hang.
#[test]
fn a_named_pipe_given_to_push_fails_fast() {
    let t = TestDir::new();
    let status = Command::new("mkfifo")
        .arg(t.join("pipe.sealed.bin"))
        .status()
        .unwrap();
    assert!(status.success());
    let mut child = spawn(
        t.cmd("callrec-push")
            .args(["--to", "archive", "pipe.sealed.bin"]),
    );
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(20) {
            child.kill().unwrap();
            panic!("callrec-push hangs on a named pipe");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let (code, stdout, stderr) = finish(child);
    assert_eq!(code, 1, "{stderr}");
    assert!(stdout.is_empty());
    assert!(stderr.contains("not a regular file"), "{stderr}");
}

// Issue 11 item 3: exit 75 ("try again later") only for what may pass by itself. What does
// not (credentials refused, a bucket that does not exist, an archive path that cannot be a
// directory, a read-only share) is exit 1 or 2, with the cause named, and leaves the spool
// as it was.

/// Exit code and stderr of `callrec-push --to TARGET spool` and of `callrec-query index
/// TARGET`, each run with `env` set after the Garage environment.
fn push_and_index(
    t: &TestDir,
    garage: Option<&Garage>,
    target: &str,
    env: &[(&str, &str)],
) -> [(i32, String); 2] {
    let mut push = t.cmd("callrec-push");
    push.args(["--to", target, "spool"]);
    let mut index = t.cmd("callrec-query");
    index.args(["index", target]);
    [push, index].map(|mut cmd| {
        if let Some(garage) = garage {
            garage.env(&mut cmd);
        }
        for (name, value) in env {
            cmd.env(name, value);
        }
        let (code, stdout, stderr) = run(&mut cmd);
        assert!(stdout.is_empty(), "{stdout}");
        (code, stderr)
    })
}

#[test]
fn s3_credentials_refused_are_named_not_retried() {
    let garage = Garage::start();
    let t = TestDir::new();
    seal_into(&t, "spool", &["0000", "0001"]);
    let before = files(&t.join("spool"));
    let wrong_secret = "0".repeat(64);
    for env in [
        ("AWS_SECRET_ACCESS_KEY", wrong_secret.as_str()),
        ("AWS_ACCESS_KEY_ID", "GK0123456789abcdef01234567"),
    ] {
        for (code, stderr) in push_and_index(&t, Some(&garage), "s3://calls/branch", &[env]) {
            assert!(code == 1 || code == 2, "{env:?}: exit {code}: {stderr}");
            assert!(stderr.contains("credentials"), "{env:?}: {stderr}");
            assert!(!stderr.contains("try again"), "{env:?}: {stderr}");
        }
    }
    let after: Vec<String> = files(&t.join("spool"))
        .into_iter()
        .filter(|f| !f.starts_with(".callrec-push"))
        .collect();
    let before: Vec<String> = before
        .into_iter()
        .filter(|f| !f.starts_with(".callrec-push"))
        .collect();
    assert_eq!(after, before);
    assert!(garage.objects().is_empty());
    // The right credentials push the same spool.
    let out = run_ok(
        garage.env(
            t.cmd("callrec-push")
                .args(["--to", "s3://calls/branch", "spool"]),
        ),
    );
    assert_eq!(lines(&out).len(), 2);
}

#[test]
fn s3_bucket_that_does_not_exist_is_named_not_retried() {
    let garage = Garage::start();
    let t = TestDir::new();
    seal_into(&t, "spool", &["0000"]);
    for (code, stderr) in push_and_index(&t, Some(&garage), "s3://no-such-bucket/branch", &[]) {
        assert!(code == 1 || code == 2, "exit {code}: {stderr}");
        assert!(stderr.contains("no-such-bucket"), "{stderr}");
        assert!(stderr.contains("does not exist"), "{stderr}");
    }
    assert!(t.join("spool/0000.sealed.bin").exists());
}

#[test]
fn s3_server_down_is_still_temporary_for_index() {
    let mut garage = Garage::start();
    let t = TestDir::new();
    seal_into(&t, "spool", &["0000"]);
    garage.stop();
    for (code, stderr) in push_and_index(&t, Some(&garage), "s3://calls", &[]) {
        assert_eq!(code, 75, "{stderr}");
        assert!(stderr.contains("unreachable"), "{stderr}");
    }
}

#[test]
fn a_directory_archive_that_cannot_be_a_directory_is_exit_2_and_named() {
    let t = TestDir::new();
    seal_into(&t, "spool", &["0000"]);
    t.write("afile", "not a directory");
    for target in ["afile", "afile/archive"] {
        for (code, stderr) in push_and_index(&t, None, target, &[]) {
            assert_eq!(code, 2, "{target}: {stderr}");
            assert!(stderr.contains("afile"), "{target}: {stderr}");
        }
    }
    assert!(t.join("spool/0000.sealed.bin").exists());
}

#[test]
fn a_directory_archive_whose_day_directory_is_a_file_fails_the_record_not_75() {
    let t = TestDir::new();
    seal_into(&t, "spool", &["0000"]);
    // Where the record goes: push a copy to a scratch archive.
    fs::create_dir_all(t.join("copy")).unwrap();
    fs::copy(
        t.join("spool/0000.sealed.bin"),
        t.join("copy/0000.sealed.bin"),
    )
    .unwrap();
    let out = run_ok(
        t.cmd("callrec-push")
            .args(["--to", "scratch", "copy/0000.sealed.bin"]),
    );
    let key = lines(&out).remove(0);
    let year = key.split('/').next().unwrap();
    t.write(&format!("archive/{year}"), "a file where a directory goes");
    let (code, stdout, stderr) = run(t.cmd("callrec-push").args(["--to", "archive", "spool"]));
    assert_eq!(code, 1, "{stderr}");
    assert!(stdout.is_empty());
    assert!(stderr.contains(year), "{stderr}");
    assert!(!stderr.contains("unreachable"), "{stderr}");
    assert!(t.join("spool/0000.sealed.bin").exists());
}

/// A read-only file system mounted at `dir` (needs the right to mount; `None` without it).
struct ReadOnlyMount(PathBuf);

impl ReadOnlyMount {
    fn new(dir: &Path) -> Option<ReadOnlyMount> {
        fs::create_dir_all(dir).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "ro,size=1m", "tmpfs"])
            .arg(dir)
            .stderr(Stdio::null())
            .status()
            .ok()?;
        status.success().then(|| ReadOnlyMount(dir.to_path_buf()))
    }
}

impl Drop for ReadOnlyMount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_read_only_directory_archive_is_named_not_retried() {
    let t = TestDir::new();
    seal_into(&t, "spool", &["0000"]);
    let Some(_mount) = ReadOnlyMount::new(&t.join("archive")) else {
        eprintln!("skipped: cannot mount a read-only file system here");
        return;
    };
    let (code, stdout, stderr) = run(t.cmd("callrec-push").args(["--to", "archive", "spool"]));
    assert!(code == 1 || code == 2, "exit {code}: {stderr}");
    assert!(stdout.is_empty());
    assert!(stderr.contains("archive"), "{stderr}");
    assert!(stderr.contains("Read-only file system"), "{stderr}");
    assert!(t.join("spool/0000.sealed.bin").exists());
}
