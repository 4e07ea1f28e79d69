//! The court bundle (`callrec-verify --bundle`, issue 12): real records sealed by the built
//! tools, a real RFC 3161 TSA on loopback (`tsa.rs`), and the bundle's `verify.sh` run by the
//! system's `sh` with a PATH that holds no callrec tool: coreutils, minisign and openssl alone.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;

use crate::tsa::Tsa;
use crate::util::*;

/// Customer data put into the first record's text info: never in a report.
const CUSTOMER: &str = "张三丰";
const CORRECTED_CUSTOMER: &str = "李四光";
const ACCOUNT: &str = "32150100100065711";

/// Three sealed records, the first annotated with a customer, then corrected (a fourth seal,
/// its correction) in a run that anchors the head with the TSA. Returns the sealed files
/// (by sequence) and the anchor file.
fn evidence(t: &TestDir, tsa: &Tsa) -> (Vec<PathBuf>, PathBuf) {
    t.keygen("keys");
    // Three different calls (the same tone in the same second would be one record id).
    for i in 1..=3 {
        t.ffmpeg(
            &format!("call-{i}.wav"),
            &[
                "-f",
                "lavfi",
                "-i",
                &format!(
                    "sine=frequency={}:duration=1:sample_rate=8000",
                    300 + 100 * i
                ),
                "-ac",
                "1",
            ],
        );
    }
    run_ok(t.cmd("callrec-annotate").args([
        "--customer",
        CUSTOMER,
        "--account",
        ACCOUNT,
        "call-1.wav",
    ]));
    for i in 1..=3 {
        run_ok(
            t.cmd("callrec-seal")
                .args(["-k", "keys", "-o", "out", &format!("call-{i}.wav")]),
        );
    }
    run_ok(
        t.cmd("callrec-annotate")
            .args(["--customer", CORRECTED_CUSTOMER, "call-1.wav"]),
    );
    let out = run_ok(t.cmd("callrec-seal").args([
        "-k",
        "keys",
        "-o",
        "out",
        "--tsa",
        &tsa.url(),
        "call-1.wav",
    ]));
    let correction = t.join(lines(&out)[0].as_str());
    assert!(
        correction.to_string_lossy().ends_with(".sealed.correction"),
        "{correction:?}"
    );
    let mut sealed: Vec<PathBuf> = (1..=3)
        .map(|i| t.join(format!("out/call-{i}.sealed.wav")))
        .collect();
    sealed.push(correction);
    let anchors: Vec<PathBuf> = fs::read_dir(t.join("out"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "anchor"))
        .collect();
    assert_eq!(anchors.len(), 1, "{anchors:?}");
    (sealed, anchors[0].clone())
}

/// `callrec-verify -p keys/seal.pub --tsa-ca CA --bundle OUT ARGS...`
fn bundle(t: &TestDir, tsa: &Tsa, out: &str, args: &[&str]) -> (i32, String, String) {
    run(t
        .cmd("callrec-verify")
        .args(["-p", "keys/seal.pub", "--tsa-ca"])
        .arg(tsa.ca_pem())
        .args(["--bundle", out])
        .args(args))
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// `sh verify.sh` in a copy of the bundle, run from elsewhere, with the system's tools only.
fn verify_sh(bundle: &Path) -> (i32, String, String) {
    for dir in ["/usr/bin", "/bin"] {
        assert!(
            !Path::new(dir).join("callrec-verify").exists(),
            "a callrec tool in {dir} would make this test prove nothing"
        );
    }
    for tool in ["minisign", "openssl", "sha256sum"] {
        assert!(
            ["/usr/bin", "/bin"]
                .iter()
                .any(|d| Path::new(d).join(tool).exists()),
            "{tool} must be installed (scripts/setup)"
        );
    }
    run(Command::new("sh")
        .arg(bundle.join("verify.sh"))
        .current_dir(bundle.parent().unwrap())
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", bundle.parent().unwrap()))
}

/// A fresh copy of the bundle to tamper with.
fn fresh_copy(t: &TestDir, court: &Path, name: &str) -> PathBuf {
    let copy = t.join(name).join("court");
    copy_dir(court, &copy);
    copy
}

fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_bundle_verifies_without_callrec_and_every_tampering_fails() {
    let t = TestDir::new();
    let tsa = Tsa::start();
    let (sealed, anchor) = evidence(&t, &tsa);

    let (code, stdout, stderr) = bundle(&t, &tsa, "court", &["out"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, "court\n");
    let court = t.join("court");
    assert_eq!(
        file_names(&court),
        ["SHA256SUMS", "evidence", "keys", "report.html", "verify.sh"]
    );
    let mut expected: Vec<String> = sealed
        .iter()
        .chain([&anchor])
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    expected.sort();
    assert_eq!(file_names(&court.join("evidence")), expected);
    for path in sealed.iter().chain([&anchor]) {
        let copy = court.join("evidence").join(path.file_name().unwrap());
        assert_eq!(
            fs::read(path).unwrap(),
            fs::read(copy).unwrap(),
            "byte for byte"
        );
    }
    let key_id = fs::read_to_string(&anchor)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("key-id: ").map(String::from))
        .unwrap();
    assert_eq!(
        file_names(&court.join("keys")),
        [format!("{key_id}.pub"), "tsa-ca.pem".to_string()]
    );
    assert_eq!(
        fs::read(court.join("keys").join(format!("{key_id}.pub"))).unwrap(),
        fs::read(t.join("keys/seal.pub")).unwrap()
    );
    // Nothing half-written was left beside it.
    assert!(
        !file_names(t.path())
            .iter()
            .any(|n| n.starts_with(".callrec")),
        "{:?}",
        file_names(t.path())
    );
    // coreutils checks the checksums as they are.
    let sums = fs::read_to_string(court.join("SHA256SUMS")).unwrap();
    assert_eq!(sums.lines().count(), 9, "{sums}");
    let out = Command::new("sha256sum")
        .args(["--strict", "-c", "SHA256SUMS"])
        .current_dir(&court)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // verify.sh, elsewhere, with no callrec on the PATH: every file, then the chain.
    let good = fresh_copy(&t, &court, "elsewhere");
    let (code, stdout, stderr) = verify_sh(&good);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(
        stdout
            .lines()
            .filter(|l| l.starts_with("OK evidence/"))
            .count(),
        5
    );
    assert!(stdout.contains(&format!(
        "OK chain {key_id}: sequences 1 to 4, anchored up to 4"
    )));
    assert!(stdout.ends_with("all 5 files verified\n"), "{stdout}");

    // One byte of one record's media.
    let copy = fresh_copy(&t, &court, "media");
    let victim = copy.join("evidence/call-2.sealed.wav");
    let mut bytes = fs::read(&victim).unwrap();
    let p = parts(&bytes);
    bytes[p.media_len / 2 + 1] ^= 0x01;
    fs::write(&victim, bytes).unwrap();
    let (code, stdout, _) = verify_sh(&copy);
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains("FAILED evidence/call-2.sealed.wav: the media-sha256 check"),
        "{stdout}"
    );
    assert!(stdout.contains("FAILED SHA256SUMS"), "{stdout}");

    // One byte of the anchor's token (its last: inside the TSA's signature).
    let copy = fresh_copy(&t, &court, "token");
    let victim = copy.join("evidence").join(anchor.file_name().unwrap());
    let text = fs::read_to_string(&victim).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD;
    let token = text
        .lines()
        .find_map(|l| l.strip_prefix("token: "))
        .unwrap();
    let mut der = b64.decode(token).unwrap();
    *der.last_mut().unwrap() ^= 0x01;
    fs::write(&victim, text.replace(token, &b64.encode(&der))).unwrap();
    let (code, stdout, _) = verify_sh(&copy);
    assert_eq!(code, 1, "{stdout}");
    let name = anchor.file_name().unwrap().to_string_lossy();
    assert!(
        stdout.contains(&format!("FAILED evidence/{name}: the timestamp check")),
        "{stdout}"
    );

    // The last record removed, and its checksum line, as a forger would: the anchored head
    // shows the gap.
    let copy = fresh_copy(&t, &court, "forged");
    let last = sealed[3]
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    fs::remove_file(copy.join("evidence").join(&last)).unwrap();
    let sums: String = fs::read_to_string(copy.join("SHA256SUMS"))
        .unwrap()
        .lines()
        .filter(|l| !l.ends_with(&last))
        .map(|l| format!("{l}\n"))
        .collect();
    fs::write(copy.join("SHA256SUMS"), sums).unwrap();
    let (code, stdout, _) = verify_sh(&copy);
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("OK SHA256SUMS"), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "FAILED chain: key {key_id}: gap: sequence 4 is missing up to the anchored head"
        )),
        "{stdout}"
    );
    assert!(!stdout.contains("all 4 files verified"), "{stdout}");
}

#[test]
fn the_report_names_every_record_and_its_trusted_time_and_no_customer_data() {
    let t = TestDir::new();
    let tsa = Tsa::start();
    let (sealed, anchor) = evidence(&t, &tsa);
    let (code, stdout, stderr) = bundle(&t, &tsa, "court", &["--json", "out"]);
    assert_eq!(code, 0, "{stderr}");
    let lines = json_lines(stdout.as_bytes());
    assert_eq!(lines.len(), 2, "{stdout}");
    assert_eq!(lines[0]["type"], "bundle");
    assert_eq!(lines[0]["path"], "court");
    assert_eq!(lines[0]["files"], 5);
    assert_eq!(lines[1]["type"], "summary");
    assert_eq!(lines[1]["verified"], 5);
    assert_eq!(lines[1]["anchored"], 4);

    // What callrec-verify says of the same files: the record ids and the TSA's time.
    let (code, verified, _) = run(t
        .cmd("callrec-verify")
        .args(["--json", "-p", "keys/seal.pub", "--tsa-ca"])
        .arg(tsa.ca_pem())
        .arg("out"));
    assert_eq!(code, 0);
    let verified = json_lines(verified.as_bytes());
    let ids: Vec<String> = verified
        .iter()
        .filter(|l| l["type"] == "verdict")
        .map(|l| l["record_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), sealed.len());
    let distinct: std::collections::BTreeSet<&String> = ids.iter().collect();
    assert_eq!(distinct.len(), ids.len(), "{ids:?}");
    let time: chrono::DateTime<chrono::Utc> = verified
        .iter()
        .find(|l| l["type"] == "anchor")
        .and_then(|l| l["time"].as_str())
        .unwrap()
        .parse()
        .unwrap();

    let report = fs::read_to_string(t.join("court/report.html")).unwrap();
    for id in &ids {
        assert!(
            report.contains(id.as_str()),
            "record {id} is not in the report"
        );
    }
    let shown = time.format("%Y-%m-%d %H:%M:%S UTC").to_string();
    assert!(
        report.contains(&shown),
        "the TSA time {shown} is not in the report"
    );
    assert!(report.contains("记录编号 <span class=\"en\">Record ID</span>"));
    assert!(
        report.contains("更正"),
        "the correction is shown with its original"
    );
    let anchor_name = anchor.file_name().unwrap().to_string_lossy().into_owned();
    assert!(report.contains(&anchor_name));
    for secret in [CUSTOMER, CORRECTED_CUSTOMER, ACCOUNT] {
        assert!(
            !report.contains(secret),
            "customer data {secret} in the report"
        );
    }
    // Self-contained and printable: no script, nothing fetched.
    for forbidden in ["<script", "<link", "src=", "@import", "url("] {
        assert!(!report.contains(forbidden), "{forbidden} in the report");
    }
    assert!(report.contains("@page { size: A4"));
}

#[test]
fn evidence_that_does_not_verify_makes_no_bundle() {
    let t = TestDir::new();
    let tsa = Tsa::start();
    let (sealed, anchor) = evidence(&t, &tsa);

    // A changed byte: refused with exit 1, nothing written, nothing left beside it.
    let mut bytes = fs::read(&sealed[1]).unwrap();
    let at = parts(&bytes).media_len / 2 + 1;
    bytes[at] ^= 0x01;
    t.write("bad/call-2.sealed.wav", &bytes);
    let files = [
        sealed[0].to_str().unwrap(),
        "bad/call-2.sealed.wav",
        sealed[2].to_str().unwrap(),
        sealed[3].to_str().unwrap(),
        anchor.to_str().unwrap(),
    ];
    let (code, stdout, stderr) = bundle(&t, &tsa, "court", &files);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(stdout, "");
    assert!(
        stderr.contains("\"bad/call-2.sealed.wav\": FAILED"),
        "{stderr}"
    );
    assert!(stderr.contains("no bundle written"), "{stderr}");
    assert!(!t.join("court").exists());
    assert!(
        !file_names(t.path())
            .iter()
            .any(|n| n.starts_with(".callrec")),
        "{:?}",
        file_names(t.path())
    );

    // A record missing up to the anchored head: a chain issue, refused.
    let files = [
        sealed[0].to_str().unwrap(),
        sealed[1].to_str().unwrap(),
        sealed[2].to_str().unwrap(),
        anchor.to_str().unwrap(),
    ];
    let (code, _, stderr) = bundle(&t, &tsa, "court", &files);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("chain: key"), "{stderr}");
    assert!(!t.join("court").exists());

    // Two files of one name, a directory that is not empty, anchors with no trusted TSA.
    t.write("other/call-1.sealed.wav", fs::read(&sealed[0]).unwrap());
    let (code, _, stderr) = bundle(&t, &tsa, "court", &["out", "other/call-1.sealed.wav"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("have the same name"), "{stderr}");
    t.write("full/x", "x");
    let (code, _, stderr) = bundle(&t, &tsa, "full", &["out"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("is not an empty directory"), "{stderr}");
    let (code, _, stderr) =
        run(t
            .cmd("callrec-verify")
            .args(["-p", "keys/seal.pub", "--bundle", "court", "out"]));
    assert_eq!(code, 2);
    assert!(stderr.contains("--tsa-ca"), "{stderr}");
    assert!(!t.join("court").exists());

    // An empty directory is fine.
    fs::create_dir(t.join("empty")).unwrap();
    let (code, stdout, stderr) = bundle(&t, &tsa, "empty", &["out"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, "empty\n");
    assert!(t.join("empty/verify.sh").exists());
}

#[test]
fn verify_sh_fails_every_bad_vector_at_the_check_callrec_names() {
    let t = TestDir::new();
    let vectors = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/format-v1");
    let good = [
        "good-age.sealed.wav",
        "good-table.sealed.wav",
        "good-head.anchor",
    ];
    let (code, _, stderr) = run(t
        .cmd("callrec-verify")
        .arg("-p")
        .arg(vectors.join("seal.pub"))
        .arg("--tsa-ca")
        .arg(vectors.join("tsa-ca.pem"))
        .args(["--bundle", "court"])
        .args(good.map(|name| vectors.join(name))));
    assert_eq!(code, 0, "{stderr}");
    let court = t.join("court");
    let (code, stdout, stderr) = verify_sh(&court);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("OK chain 68A21A08A10E6976: sequences 1 to 2, anchored up to 2"));

    // Each bad vector beside the good ones: its line names the check its name starts with
    // (FORMAT.md section 10), as callrec-verify does.
    const CHECKS: [&str; 8] = [
        "footer",
        "media-checksum",
        "check-byte",
        "manifest",
        "signature",
        "media-sha256",
        "anchor",
        "timestamp",
    ];
    let mut bad: Vec<String> = fs::read_dir(&vectors)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("bad-"))
        .collect();
    bad.sort();
    assert!(bad.len() >= 15, "{bad:?}");
    for name in &bad {
        let check = CHECKS
            .iter()
            .filter(|c| name["bad-".len()..].starts_with(*c))
            .max_by_key(|c| c.len())
            .unwrap_or_else(|| panic!("{name} names no check"));
        let copy = fresh_copy(&t, &court, name);
        fs::copy(vectors.join(name), copy.join("evidence").join(name)).unwrap();
        let (code, stdout, _) = verify_sh(&copy);
        assert_eq!(code, 1, "{name}: {stdout}");
        assert!(
            stdout.contains(&format!("FAILED evidence/{name}: the {check} check")),
            "{name}: {stdout}"
        );
        assert!(
            stdout.contains(&format!("FAILED evidence/{name}: not listed in SHA256SUMS")),
            "{name}: {stdout}"
        );
    }
}
