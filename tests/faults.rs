//! Fault injection across the whole pipeline: capture → annotate → seal → push → index, run
//! again and again with a `kill -9` at a random moment of a random step, then rerun. Whatever
//! was killed, every call ends archived exactly once as a whole verified seal, the spool and
//! the journal stay consistent, the chain has no gap or fork, and no personal data reaches any
//! output. `CALLREC_FAULT_RUNS` and `CALLREC_FAULT_SEED` change the campaign.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use rand::{Rng, SeedableRng};

use crate::util::*;

const STEPS: [&str; 5] = ["capture", "annotate", "seal", "push", "index"];
/// Personal data put into every record; it must never appear in any tool's output.
const CUSTOMER: &str = "故障测试客户";
const ID_NUMBER: &str = "110108197712281810";

/// The record ids a spool holds (media, recordings in progress and sidecars).
fn ids_in(spool: &Path) -> BTreeSet<String> {
    fs::read_dir(spool)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".mkv") || n.ends_with(".mkv.part") || n.ends_with(".json"))
                .map(|n| n.split('.').next().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn step_command(t: &TestDir, step: &str, tone: &Path) -> Option<Command> {
    let mut cmd;
    match step {
        "capture" => {
            cmd = t.cmd("callrec-capture");
            cmd.arg("--audio")
                .arg(format!("file:{}", tone.display()))
                .args(["--realtime", "--number", "13321150748", "-o", "spool"]);
        }
        "annotate" => {
            let media: Vec<_> = fs::read_dir(t.join("spool"))
                .ok()?
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "mkv"))
                .collect();
            if media.is_empty() {
                return None;
            }
            cmd = t.cmd("callrec-annotate");
            cmd.args(["--customer", CUSTOMER, "--id-number", ID_NUMBER])
                .args(media);
        }
        "seal" => {
            cmd = t.cmd("callrec-seal");
            cmd.args(["-k", "keys", "-o", "sealed", "--remove-source", "spool"]);
        }
        "push" => {
            cmd = t.cmd("callrec-push");
            cmd.args(["--pubkey", "keys/seal.pub", "--to", "archive", "sealed"]);
        }
        "index" => {
            cmd = t.cmd("callrec-query");
            cmd.args(["--db", "index.sqlite", "index", "--identity", "keys"])
                .args(["--pubkey", "keys/seal.pub", "archive"]);
        }
        _ => unreachable!(),
    }
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    Some(cmd)
}

/// Everything a run printed, checked for personal data.
fn check_output(step: &str, out: &std::process::Output) {
    for stream in [&out.stdout, &out.stderr] {
        let text = String::from_utf8_lossy(stream);
        assert!(
            !text.contains(CUSTOMER) && !text.contains(ID_NUMBER),
            "{step} printed personal data: {text}"
        );
    }
}

/// Run a step to its end; returns how long it took.
fn run_step(t: &TestDir, step: &str, tone: &Path) -> Duration {
    let Some(mut cmd) = step_command(t, step, tone) else {
        return Duration::ZERO;
    };
    let started = std::time::Instant::now();
    let out = cmd.output().unwrap();
    let took = started.elapsed();
    check_output(step, &out);
    // Exit 1 is allowed only for what the campaign itself leaves: nothing here may fail.
    assert!(
        out.status.success(),
        "{step} failed after faults: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    took
}

#[test]
fn kills_anywhere_in_the_pipeline_lose_nothing() {
    let runs: usize = std::env::var("CALLREC_FAULT_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let seed: u64 = std::env::var("CALLREC_FAULT_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20261128);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let t = TestDir::new();
    t.keygen("keys");
    fs::create_dir(t.join("spool")).unwrap();
    let tone = t.ffmpeg(
        "tone.wav",
        &[
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=0.6:sample_rate=8000",
        ],
    );

    let mut calls = BTreeSet::new();
    let mut kills: BTreeMap<&str, usize> = BTreeMap::new();
    // How long each step last took when left alone: the kill lands at a random moment of it.
    let mut took: BTreeMap<&str, Duration> = STEPS
        .iter()
        .map(|s| (*s, Duration::from_millis(300)))
        .collect();
    for _ in 0..runs {
        let victim = STEPS[rng.gen_range(0..STEPS.len())];
        let delay = took[victim].mul_f64(rng.gen_range(0.0..1.0));
        for step in STEPS {
            if step == victim {
                if let Some(mut cmd) = step_command(&t, step, &tone) {
                    let mut child = cmd.spawn().unwrap();
                    std::thread::sleep(delay);
                    let finished = child.try_wait().unwrap().is_some();
                    let _ = child.kill();
                    let out = child.wait_with_output().unwrap();
                    check_output(step, &out);
                    if !finished {
                        *kills.entry(step).or_default() += 1;
                    }
                    calls.extend(ids_in(&t.join("spool")));
                    // A killed capture's call is completed by the next seal, not recorded again.
                    if step == "capture" {
                        continue;
                    }
                }
            }
            let time = run_step(&t, step, &tone);
            if !time.is_zero() {
                took.insert(step, time);
            }
            calls.extend(ids_in(&t.join("spool")));
        }
    }
    // A last quiet night, once temporary files killed runs left are old enough to be known
    // stale: everything left is sealed, pushed and indexed, and the leftovers removed.
    std::thread::sleep(Duration::from_secs(11));
    for step in ["seal", "push", "index"] {
        run_step(&t, step, &tone);
    }

    // Each call archived exactly once, as a whole seal that verifies, with no gap or fork.
    let out =
        run_ok(
            t.cmd("callrec-verify")
                .args(["--json", "--pubkey", "keys/seal.pub", "archive"]),
        );
    let mut archived: BTreeMap<String, usize> = BTreeMap::new();
    for line in parse_verify_json(&String::from_utf8_lossy(&out.stdout)) {
        match line {
            VerifyLine::Verdict {
                status, record_id, ..
            } => {
                assert_eq!(status, "verified");
                *archived.entry(record_id.unwrap()).or_default() += 1;
            }
            VerifyLine::Chain { message, .. } => panic!("chain issue: {message}"),
            _ => {}
        }
    }
    let archived_ids: BTreeSet<String> = archived.keys().cloned().collect();
    assert_eq!(archived_ids, calls, "calls lost or invented");
    assert!(
        archived.values().all(|&n| n == 1),
        "archived twice: {archived:?}"
    );

    // The spool and the sealed directory hold nothing but what was done.
    let left: Vec<String> = fs::read_dir(t.join("spool"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(left.is_empty(), "left in the spool: {left:?}");
    let pending: Vec<String> = fs::read_dir(t.join("sealed"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "sent" && n != ".callrec-push.lock")
        .collect();
    assert!(pending.is_empty(), "not pushed: {pending:?}");
    // The journal has one receipt per archived record.
    let journal = fs::read_to_string(t.join("state/callrec/push-journal.jsonl")).unwrap();
    let mut keys = BTreeMap::new();
    for line in journal.lines() {
        let receipt: serde_json::Value = serde_json::from_str(line).unwrap();
        *keys
            .entry(receipt["key"].as_str().unwrap().to_string())
            .or_insert(0) += 1;
    }
    assert_eq!(keys.len(), calls.len());
    assert!(
        keys.values().all(|&n| n == 1),
        "duplicate receipts: {keys:?}"
    );
    // The index holds every call once.
    let out = run_ok(
        t.cmd("callrec-query")
            .args(["--db", "index.sqlite", "search", "--json"]),
    );
    assert_eq!(
        json_lines(&out.stdout)
            .iter()
            .filter(|l| l["type"] != "summary")
            .count(),
        calls.len()
    );
    eprintln!(
        "fault campaign (seed {seed}): {runs} runs, kills per step {kills:?}, {} calls, {} archived",
        calls.len(),
        archived.len()
    );
}
