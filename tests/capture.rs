//! callrec-capture with lavfi sources, through the same libavdevice path as a phone's devices.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::util::*;

const AUDIO: &str = "lavfi:sine=frequency=440:sample_rate=16000";
const VIDEO: &str = "lavfi:testsrc2=size=320x240:rate=25";

fn ffprobe(dir: &Path, file: &Path, entries: &str) -> String {
    tool_ok(
        "ffprobe",
        &[
            "-v",
            "error",
            "-show_entries",
            entries,
            "-of",
            "csv=p=0",
            file.to_str().unwrap(),
        ],
        dir,
    )
}

/// Seconds of media FFmpeg decodes from a file, failing on any decoding error.
fn decoded_seconds(dir: &Path, file: &Path) -> f64 {
    let out = tool(
        "ffmpeg",
        &[
            "-v",
            "error",
            "-i",
            file.to_str().unwrap(),
            "-f",
            "null",
            "-",
        ],
        dir,
    );
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    ffprobe(dir, file, "packet=pts_time")
        .lines()
        .filter_map(|l| l.trim().trim_end_matches(',').parse::<f64>().ok())
        .fold(0.0, f64::max)
}

fn the_file(dir: &Path, suffix: &str) -> PathBuf {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(suffix))
        .unwrap_or_else(|| panic!("no *{suffix} in {dir:?}"))
}

#[test]
fn a_five_second_capture_has_both_streams_and_its_record() {
    let t = TestDir::new();
    let out = run_ok(t.cmd("callrec-capture").args([
        "--audio",
        AUDIO,
        "--video",
        VIDEO,
        "--duration",
        "5",
        "--number",
        "13321150748",
        "--device-number",
        "8803880203",
        "-o",
        ".",
    ]));
    let media = t.join(lines(&out)[0].as_str());
    let mut kinds: Vec<String> = ffprobe(t.path(), &media, "stream=codec_type")
        .lines()
        .map(str::to_string)
        .collect();
    kinds.sort();
    assert_eq!(kinds, ["audio", "video"]);
    let duration: f64 = ffprobe(t.path(), &media, "format=duration")
        .trim()
        .parse()
        .unwrap();
    assert!((duration - 5.0).abs() <= 0.5, "duration {duration}");

    let record: serde_json::Value =
        serde_json::from_slice(&fs::read(format!("{}.callrec.json", media.display())).unwrap())
            .unwrap();
    assert_eq!(record["phone"]["number"], "13321150748");
    assert_eq!(record["phone"]["device"]["number"], "8803880203");
    assert!(record["times"]["call_start"].is_string() && record["times"]["call_end"].is_string());
    assert_eq!(record["media"]["streams"].as_array().unwrap().len(), 2);
    assert_eq!(record["media"]["health"], serde_json::json!([]));
}

#[test]
fn a_killed_capture_leaves_a_playable_file() {
    let t = TestDir::new();
    let mut child = t
        .cmd("callrec-capture")
        .args(["--audio", AUDIO, "--video", VIDEO, "-o", "."])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(3200));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let part = the_file(t.path(), ".mkv.part");
    let seconds = decoded_seconds(t.path(), &part);
    assert!(seconds >= 2.0, "only {seconds} s survived");
}

#[test]
fn sigint_ends_a_capture_cleanly() {
    let t = TestDir::new();
    let child = t
        .cmd("callrec-capture")
        .args(["--audio", AUDIO, "--video", VIDEO, "-o", "."])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let media = t.join(String::from_utf8(out.stdout).unwrap().trim());
    assert!(media.to_string_lossy().ends_with(".mkv"));
    let duration: f64 = ffprobe(t.path(), &media, "format=duration")
        .trim()
        .parse()
        .unwrap();
    assert!(duration >= 1.5, "duration {duration}");
    assert!(decoded_seconds(t.path(), &media) >= 1.5);
    assert!(!t.path().read_dir().unwrap().any(|e| e
        .unwrap()
        .path()
        .to_string_lossy()
        .ends_with(".part")));
}

#[test]
fn silent_audio_is_flagged_and_the_flag_is_sealed() {
    let t = TestDir::new();
    t.keygen("keys");
    let (code, stdout, stderr) = run(t.cmd("callrec-capture").args([
        "--audio",
        "lavfi:anullsrc=r=16000:cl=mono",
        "--audio-codec",
        "flac",
        "--duration",
        "1.5",
        "-o",
        ".",
    ]));
    assert_eq!(code, 0);
    assert!(
        stderr.contains("recording flagged: silent-audio"),
        "{stderr}"
    );
    let media = stdout.trim().to_string();
    let codec = tool_ok(
        "ffprobe",
        &[
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name",
            "-of",
            "csv=p=0",
            &media,
        ],
        t.path(),
    );
    assert_eq!(codec.trim(), "flac", "lossless on request");
    let sealed = t.seal("keys", &[&media]);
    let bytes = fs::read(&sealed[0]).unwrap();
    let manifest = String::from_utf8(bytes[parts(&bytes).manifest].to_vec()).unwrap();
    assert!(manifest.contains("\nhealth: silent-audio\n"), "{manifest}");
}

#[test]
fn a_source_that_cannot_be_used_leaves_nothing_behind() {
    let t = TestDir::new();
    t.ffmpeg(
        "video.mkv",
        &["-f", "lavfi", "-i", "testsrc2=duration=1", "-c:v", "mjpeg"],
    );
    fs::create_dir(t.join("spool")).unwrap();
    let (code, stdout, stderr) =
        run(t
            .cmd("callrec-capture")
            .args(["--audio", "file:video.mkv", "-o", "spool"]));
    assert_eq!(code, 2, "{stderr}");
    assert!(stdout.is_empty());
    assert!(stderr.contains("has no audio stream"), "{stderr}");
    assert_eq!(fs::read_dir(t.join("spool")).unwrap().count(), 0);
}
