//! Interoperability with the real tools an auditor has: minisign, sha256sum, age, ffprobe, sh.

use std::fs;
use std::path::Path;

use crate::util::*;

fn manifest_field(manifest: &str, name: &str) -> String {
    manifest
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .unwrap_or_else(|| panic!("no {name} in manifest"))
        .to_string()
}

#[test]
fn minisign_verifies_the_manifest_signature() {
    let t = TestDir::new();
    t.keygen("keys");
    t.wav("call.wav");
    let sealed = t.seal("keys", &["call.wav"]);
    let bytes = fs::read(&sealed[0]).unwrap();
    let p = parts(&bytes);
    t.write("manifest", &bytes[p.manifest.clone()]);
    t.write("manifest.minisig", &bytes[p.signature.clone()]);
    let out = tool(
        "minisign",
        &["-V", "-p", "keys/seal.pub", "-m", "manifest"],
        t.path(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("Trusted comment: record:"), "{said}");
    // And it rejects a changed manifest.
    let mut changed = bytes[p.manifest.clone()].to_vec();
    changed[40] ^= 1;
    t.write("manifest", changed);
    let out = tool(
        "minisign",
        &["-V", "-p", "keys/seal.pub", "-m", "manifest"],
        t.path(),
    );
    assert!(!out.status.success());
}

#[test]
fn sha256sum_of_extracted_media_equals_the_manifest_hash() {
    let t = TestDir::new();
    t.keygen("keys");
    let media = t.wav("call.wav");
    let sealed = t.seal("keys", &["call.wav"]);
    run_ok(
        t.cmd("callrec-verify")
            .args(["-p", "keys", "--extract-media", "-o", "out.wav"])
            .arg(&sealed[0]),
    );
    assert_eq!(
        fs::read(t.join("out.wav")).unwrap(),
        fs::read(&media).unwrap()
    );
    let out = tool("sha256sum", &["out.wav"], t.path());
    let sum = String::from_utf8(out.stdout).unwrap();
    let bytes = fs::read(&sealed[0]).unwrap();
    let manifest = String::from_utf8(bytes[parts(&bytes).manifest].to_vec()).unwrap();
    assert_eq!(
        sum.split_whitespace().next().unwrap(),
        manifest_field(&manifest, "media-sha256")
    );
    // Extraction never overwrites, and refuses a tampered file without writing anything.
    let (code, _, _) = run(t
        .cmd("callrec-verify")
        .args(["-p", "keys", "--extract-media", "-o", "out.wav"])
        .arg(&sealed[0]));
    assert_eq!(code, 2);
    let mut bad = bytes.clone();
    bad[100] ^= 1;
    t.write("bad.sealed.wav", bad);
    let (code, _, stderr) = run(t.cmd("callrec-verify").args([
        "-p",
        "keys",
        "--extract-media",
        "-o",
        "bad.wav",
        "bad.sealed.wav",
    ]));
    assert_eq!(code, 1, "{stderr}");
    assert!(!t.join("bad.wav").exists());
}

#[test]
fn age_decrypts_the_text_info() {
    let t = TestDir::new();
    t.keygen("keys");
    t.write("call.bin", "media");
    t.write(
        "call.bin.callrec.json",
        r#"{"schema": 1, "id": "rec-1", "call": {"id_number": "110108197712281810"}}"#,
    );
    let sealed = t.seal("keys", &["call.bin"]);
    let bytes = fs::read(&sealed[0]).unwrap();
    let p = parts(&bytes);
    // Personal data is not readable in the sealed file.
    assert!(!String::from_utf8_lossy(&bytes).contains("110108197712281810"));
    t.write("text.age", &bytes[p.text.start..p.text.end - 1]);
    let out = tool(
        "age",
        &["-d", "-i", "keys/age-identity.txt", "text.age"],
        t.path(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let record: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(record["id"], "rec-1");
    assert_eq!(record["call"]["id_number"], "110108197712281810");
}

#[test]
fn extra_recipients_can_decrypt() {
    let t = TestDir::new();
    t.keygen("keys");
    t.keygen("auditor");
    let recipient = fs::read_to_string(t.join("auditor/age-recipients.txt")).unwrap();
    let recipient = recipient.lines().find(|l| l.starts_with("age1")).unwrap();
    t.write("call.bin", "media");
    let sealed = t.seal("keys", &["-r", recipient, "call.bin"]);
    for identity in ["keys", "auditor"] {
        run_ok(
            t.cmd("callrec-verify")
                .args(["-p", "keys", "--show", "--identity", identity])
                .arg(&sealed[0]),
        );
    }
}

fn ffprobe_streams(dir: &Path, file: &Path) -> String {
    tool_ok(
        "ffprobe",
        &[
            "-v".as_ref(),
            "error".as_ref(),
            "-show_entries".as_ref(),
            "stream=codec_type".as_ref(),
            "-of".as_ref(),
            "csv=p=0".as_ref(),
            file.as_os_str(),
        ],
        dir,
    )
}

#[test]
fn ffprobe_reads_sealed_audio_and_video() {
    let t = TestDir::new();
    t.keygen("keys");
    t.wav("call.wav");
    t.ffmpeg(
        "call.mkv",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=160x120:rate=10:duration=1",
            "-f",
            "lavfi",
            "-i",
            "sine=duration=1",
            "-c:v",
            "mjpeg",
            "-c:a",
            "flac",
        ],
    );
    t.seal("keys", &["call.wav", "call.mkv"]);
    let (audio, video) = (t.join("call.sealed.wav"), t.join("call.sealed.mkv"));
    assert_eq!(ffprobe_streams(t.path(), &audio).trim(), "audio");
    let mut kinds: Vec<String> = ffprobe_streams(t.path(), &video)
        .lines()
        .map(str::to_string)
        .collect();
    kinds.sort();
    assert_eq!(kinds, ["audio", "video"]);
    // The record knows the streams too (probed with libavformat at sealing).
    let out = run_ok(
        t.cmd("callrec-verify")
            .args(["--json", "-p", "keys", "--show", "--identity", "keys"])
            .arg(&video),
    );
    let text = json_lines(&out.stdout).remove(0);
    assert_eq!(text["record"]["media"]["format"], "matroska,webm");
    assert_eq!(
        text["record"]["media"]["streams"].as_array().unwrap().len(),
        2
    );
}

#[test]
fn explain_commands_pass_on_a_good_file_and_fail_on_each_tampering() {
    let t = TestDir::new();
    t.keygen("keys");
    t.wav("call.wav");
    let sealed = t.seal("keys", &["call.wav"]);
    let out = run_ok(
        t.cmd("callrec-verify")
            .args(["--explain", "call.sealed.wav"]),
    );
    let script = String::from_utf8(out.stdout).unwrap();
    t.write("check.sh", &script);
    let run_script = || {
        let out = std::process::Command::new("sh")
            .arg("check.sh")
            .current_dir(t.path())
            .env("PUB", "keys/seal.pub")
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, stderr) = run_script();
    assert!(ok, "explain script failed on the good file: {stderr}");

    let good = fs::read(&sealed[0]).unwrap();
    let p = parts(&good);
    let tamperings = [
        ("media", p.media_len / 2),
        ("media-checksum-byte", p.media_len / 7),
        ("text", p.text.start + 5),
        ("check-byte", p.text.end - 1),
        ("manifest", p.manifest.start + 30),
        ("untrusted-comment", p.signature.start + 25),
        ("signature", p.signature.start + 60),
        ("footer-size", p.footer.start),
        ("footer-nsign", p.footer.end - 1),
    ];
    for (what, offset) in tamperings {
        let mut bad = good.clone();
        bad[offset] ^= 0x04;
        t.write("tampered.wav", &bad);
        assert!(script.contains("F='call.sealed.wav'"));
        t.write(
            "check.sh",
            script.replacen("F='call.sealed.wav'", "F='tampered.wav'", 1),
        );
        let (ok, _) = run_script();
        assert!(!ok, "explain script passed a file with tampered {what}");
    }
}
