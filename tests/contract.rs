//! The contract every tool keeps in a pipeline (issue 11): a closed stdout ends the program
//! quietly, a failed write to stdout fails it, and JSON Lines always end with a summary.

use std::fs::{self, File};
use std::process::{Command, Stdio};

use crate::util::*;

/// A directory with keys, five sealed records pushed to an archive and indexed: every tool
/// has something to print.
fn fixture() -> TestDir {
    let t = TestDir::new();
    t.keygen("keys");
    for i in 0..5 {
        t.write(&format!("spool/r{i}.bin"), format!("evidence {i}"));
    }
    run_ok(
        t.cmd("callrec-seal")
            .args(["-k", "keys", "-o", "sealed", "spool"]),
    );
    run_ok(
        t.cmd("callrec-push")
            .args(["--to", "archive", "--journal", "journal", "sealed"]),
    );
    run_ok(t.cmd("callrec-query").args([
        "--db",
        "index.sqlite",
        "index",
        "--pubkey",
        "keys/seal.pub",
        "archive",
    ]));
    t
}

/// The commands under test, each printing several lines.
fn commands(t: &TestDir) -> Vec<(&'static str, Command)> {
    let mut out = Vec::new();
    let mut seal = t.cmd("callrec-seal");
    seal.args(["-k", "keys", "-o", "sealed2", "spool"]);
    out.push(("seal", seal));
    let mut verify = t.cmd("callrec-verify");
    verify.args(["--json", "--pubkey", "keys/seal.pub", "archive"]);
    out.push(("verify", verify));
    let mut annotate = t.cmd("callrec-annotate");
    annotate.args(["--remark", "checked", "spool"]);
    out.push(("annotate", annotate));
    let mut push = t.cmd("callrec-push");
    push.args([
        "--json",
        "--to",
        "archive2",
        "--journal",
        "journal2",
        "sealed/sent",
    ]);
    out.push(("push", push));
    let mut search = t.cmd("callrec-query");
    search.args(["--db", "index.sqlite", "search", "--json"]);
    out.push(("query search", search));
    let mut keygen = t.cmd("callrec-seal");
    keygen.args(["keygen", "-o", "keys2"]);
    out.push(("seal keygen", keygen));
    out
}

#[test]
fn a_closed_pipe_ends_every_tool_quietly() {
    for (name, mut cmd) in commands(&fixture()) {
        // The reader is gone before the tool writes a byte, as with `| head -0`.
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{name}: {stderr}");
        assert!(
            !stderr.contains("Broken pipe") && !stderr.contains("error"),
            "{name}: {stderr}"
        );
    }
}

#[test]
fn a_failed_write_to_stdout_fails_every_tool() {
    for (name, mut cmd) in commands(&fixture()) {
        let out = cmd
            .stdout(File::options().write(true).open("/dev/full").unwrap())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{name} passed a truncated report: {stderr}"
        );
        assert!(
            stderr.contains("No space left on device"),
            "{name}: {stderr}"
        );
    }
}

#[test]
fn push_json_lines_have_a_type_and_end_with_a_summary() {
    let t = fixture();
    fs::remove_dir_all(t.join("archive")).unwrap();
    fs::rename(t.join("sealed/sent"), t.join("more")).unwrap();
    let out = run_ok(t.cmd("callrec-push").args([
        "--json",
        "--to",
        "archive",
        "--journal",
        "journal3",
        "more",
    ]));
    let lines = json_lines(&out.stdout);
    assert!(lines.iter().all(|l| l["type"].is_string()), "{lines:?}");
    assert_eq!(lines.iter().filter(|l| l["type"] == "archived").count(), 5);
    let summary = lines.last().unwrap();
    assert_eq!(summary["type"], "summary");
    assert_eq!(summary["uploaded"], 5);
    assert_eq!(summary["failed"], 0);
}
