//! The visible watermark: really there (read back by OCR), a running clock, audio untouched.

use std::fs;
use std::path::Path;

use crate::util::*;

const AUDIO: &str = "lavfi:sine=frequency=440:sample_rate=16000";
const VIDEO: &str = "lavfi:testsrc2=size=640x480:rate=25";

fn manifest(sealed: &Path) -> String {
    let bytes = fs::read(sealed).unwrap();
    String::from_utf8(bytes[parts(&bytes).manifest].to_vec()).unwrap()
}

/// OCR the overlay of the frame at `second`: cropped, enlarged, turned black on white.
fn read_overlay(dir: &Path, file: &str, second: u32) -> String {
    let png = format!("frame{second}.png");
    let out = tool(
        "ffmpeg",
        &[
            "-v",
            "error",
            "-ss",
            &second.to_string(),
            "-i",
            file,
            "-frames:v",
            "1",
            "-vf",
            "crop=iw:ih/5:0:0,scale=iw*2:-1,format=gray,lutyuv=y='if(gt(val\\,150)\\,0\\,255)'",
            "-y",
            &png,
        ],
        dir,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = tool("tesseract", &[png.as_str(), "stdout", "--psm", "6"], dir);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The `HH:MM:SS` the overlay shows, as seconds of the day.
fn clock(text: &str) -> u32 {
    let found = text
        .split_whitespace()
        .find(|w| w.len() == 8 && w.as_bytes()[2] == b':' && w.as_bytes()[5] == b':')
        .unwrap_or_else(|| panic!("no clock in {text:?}"));
    let parts: Vec<u32> = found.split(':').map(|p| p.parse().unwrap()).collect();
    parts[0] * 3600 + parts[1] * 60 + parts[2]
}

fn stream_md5(dir: &Path, file: &str, map: &str) -> String {
    tool_ok(
        "ffmpeg",
        &[
            "-v", "error", "-i", file, "-map", map, "-c", "copy", "-f", "md5", "-",
        ],
        dir,
    )
}

#[test]
fn the_overlay_is_legible_and_its_clock_runs() {
    let t = TestDir::new();
    t.keygen("keys");
    let out = run_ok(t.cmd("callrec-capture").args([
        "--audio",
        AUDIO,
        "--video",
        VIDEO,
        "--duration",
        "3.5",
        "--number",
        "13321150748",
        "--device-number",
        "8803880203",
        "-o",
        ".",
    ]));
    let media = lines(&out).remove(0);
    let sealed = t.seal("keys", &[&media]);
    let sealed_name = sealed[0].file_name().unwrap().to_str().unwrap().to_string();
    assert!(manifest(&sealed[0]).contains("\nwatermark: drawtext libx264 preset=veryfast crf=23\n"));

    let first = read_overlay(t.path(), &sealed_name, 1);
    let second = read_overlay(t.path(), &sealed_name, 2);
    for text in [&first, &second] {
        assert!(
            text.contains("8803880203"),
            "device number not legible: {text:?}"
        );
        assert!(
            text.contains("13321150748"),
            "phone number not legible: {text:?}"
        );
    }
    assert_eq!(
        clock(&second),
        clock(&first) + 1,
        "{first:?} then {second:?}"
    );

    // The capture's own hash is sealed beside the watermarked copy's, and a second run knows
    // the record is already sealed.
    let media_sha = tool_ok("sha256sum", &[media.as_str()], t.path());
    let media_sha = media_sha.split_whitespace().next().unwrap();
    assert!(manifest(&sealed[0]).contains(&format!("\nsource-sha256: {media_sha}\n")));
    let (code, stdout, stderr) = run(t.cmd("callrec-seal").args(["-k", "keys", &media]));
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("already sealed as"), "{stderr}");
    assert!(stdout.trim().ends_with(&sealed_name), "{stdout}");

    // Audio is copied untouched.
    assert_eq!(
        stream_md5(t.path(), &media, "0:a"),
        stream_md5(t.path(), &sealed_name, "0:a")
    );
}

#[test]
fn audio_only_and_unwatermarked_seals_say_so() {
    let t = TestDir::new();
    t.keygen("keys");
    t.wav("call.wav");
    t.ffmpeg(
        "clip.mkv",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=160x120:rate=10:duration=1",
            "-c:v",
            "mjpeg",
        ],
    );
    let sealed = t.seal("keys", &["call.wav"]);
    assert!(manifest(&sealed[0]).contains("\nwatermark: none\n"));
    let sealed = t.seal("keys", &["--no-watermark", "clip.mkv"]);
    assert!(manifest(&sealed[0]).contains("\nwatermark: none\n"));
    let original = fs::read(t.join("clip.mkv")).unwrap();
    assert_eq!(
        &fs::read(&sealed[0]).unwrap()[..original.len()],
        &original[..]
    );
}

#[test]
fn audio_and_video_come_out_as_playable_files() {
    let t = TestDir::new();
    t.keygen("keys");
    let out = run_ok(t.cmd("callrec-capture").args([
        "--audio",
        AUDIO,
        "--video",
        VIDEO,
        "--duration",
        "2",
        "-o",
        ".",
    ]));
    let media = lines(&out).remove(0);
    let sealed = t.seal("keys", &[&media]);
    for (flag, name, kind) in [
        ("--extract-audio", "call.mka", "audio"),
        ("--extract-video", "call.mkv", "video"),
    ] {
        let out = run_ok(
            t.cmd("callrec-verify")
                .args(["-p", "keys", flag, "-o", name])
                .arg(&sealed[0]),
        );
        assert_eq!(lines(&out), [name]);
        assert_eq!(stream_types(t.path(), name), kind, "{name}");
        let decode = tool(
            "ffmpeg",
            &["-v", "error", "-i", name, "-f", "null", "-"],
            t.path(),
        );
        assert!(
            decode.status.success() && decode.stderr.is_empty(),
            "{name} does not play"
        );
    }
    // Remuxed, not re-encoded: the audio packets are the capture's.
    assert_eq!(
        stream_md5(t.path(), &media, "0:a"),
        stream_md5(t.path(), "call.mka", "0:a")
    );
    // A tampered file gives nothing out.
    let mut bytes = fs::read(&sealed[0]).unwrap();
    bytes[2000] ^= 1;
    t.write("bad.sealed.mkv", bytes);
    let (code, _, _) = run(t.cmd("callrec-verify").args([
        "-p",
        "keys",
        "--extract-audio",
        "-o",
        "bad.mka",
        "bad.sealed.mkv",
    ]));
    assert_eq!(code, 1);
    assert!(!t.join("bad.mka").exists());
}
