//! `callrec-capture`: its options and its manual's sections.

use std::path::PathBuf;

use clap::{Parser, ValueEnum};

use super::{after_help, Section, SEE_ALSO};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AudioCodecArg {
    /// Opus at 32 kbit/s, 48 kHz (default): small, clear speech
    Opus,
    /// FLAC: lossless
    Flac,
}

pub const CAPTURE_SECTIONS: &[Section] = &[
    Section {
        title: "SOURCES",
        lines: &[
            "FORMAT:SPEC as libavdevice names them: alsa:hw:1,0  pulse:default  v4l2:/dev/video0",
            "lavfi:sine=frequency=440:sample_rate=16000  lavfi:testsrc2=size=640x480:rate=25",
            "(lavfi graphs are paced to real time, like a device), or file:PATH.",
            "Compressed camera video (MJPEG, H.264) is copied; raw video is encoded with libx264",
            "(ultrafast, a keyframe each second); audio is encoded to Opus or FLAC.",
        ],
    },
    Section {
        title: "OUTPUT",
        lines: &[
            "DIR/ID.mkv (Matroska) and its sidecar DIR/ID.mkv.callrec.json, both 0600; the media",
            "path is printed. DIR is created if missing. While recording the file is",
            "DIR/ID.mkv.part, locked by this process: a killed recording leaves it playable up to",
            "about its last second, and the next capture into DIR (or callrec-seal DIR) completes it",
            "with the flag interrupted. Stop with Ctrl-C (SIGINT), SIGTERM or --duration.",
            "The sidecar is written when recording starts (phone number, device info, start) and",
            "completed at the end (end time, streams, health flags: silent-audio,",
            "silent-channel-N, missing-audio, missing-video, duration-drift, interrupted).",
            "Flags are also reported on stderr, and callrec-seal seals them.",
        ],
    },
    Section {
        title: "EXIT STATUS",
        lines: &[
            "0  recorded (health flags, if any, are reported but do not fail the recording)",
            "1  the recording failed",
            "2  usage error, or a source could not be opened",
        ],
    },
    Section {
        title: "EXAMPLES",
        lines: &[
            "callrec-capture --list",
            "callrec-capture --on-hook --number 13321150748 -o spool",
            "callrec-capture --audio alsa:hw:1,0 --video v4l2:/dev/video0 --number 13321150748 -o spool",
            "callrec-capture --audio lavfi:sine --video lavfi:testsrc2 --duration 5 -o spool",
            "callrec-capture --audio pulse:default -o spool | callrec-annotate -i | callrec-seal -o sealed",
        ],
    },
    Section {
        title: "SEE ALSO",
        lines: &[SEE_ALSO],
    },
];

/// Record a call's audio and video from capture devices into a crash-tolerant Matroska file,
/// with the record's sidecar beside it.
#[derive(Debug, Parser)]
#[command(
    name = "callrec-capture",
    version,
    after_help = after_help(CAPTURE_SECTIONS)
)]
pub struct CaptureArgs {
    /// List the phones attached by USB, with their audio, video and hook-switch devices
    #[arg(long, conflicts_with_all = ["audio", "video", "on_hook", "duration"])]
    pub list: bool,
    /// Record from this phone: auto (the first found), or VID:PID. Used when neither --audio
    /// nor --video is given. Phones are devices with a USB Audio Class interface, or whose
    /// VID:PID is listed in $CALLREC_PHONE_IDS (comma-separated)
    #[arg(long, value_name = "auto|VID:PID")]
    pub phone: Option<String>,
    /// Wait for the handset to be lifted, and stop when it is put down (needs a phone with a
    /// HID Telephony hook switch)
    #[arg(long)]
    pub on_hook: bool,
    /// Audio source, FORMAT:SPEC (alsa:hw:1,0, pulse:default, lavfi:sine, file:PATH)
    #[arg(long, value_name = "FMT:SPEC")]
    pub audio: Option<String>,
    /// Video source, FORMAT:SPEC (v4l2:/dev/video0, lavfi:testsrc2, file:PATH)
    #[arg(long, value_name = "FMT:SPEC")]
    pub video: Option<String>,
    /// Stop after this many seconds of media
    #[arg(short, long, value_name = "SECONDS")]
    pub duration: Option<f64>,
    /// The other party's phone number
    #[arg(short, long, value_name = "NUMBER")]
    pub number: Option<String>,
    /// The phone's local device number (shown in the watermark and the figure 3C line)
    #[arg(long, value_name = "NUMBER")]
    pub device_number: Option<String>,
    /// How audio is stored
    #[arg(long, value_enum, default_value_t = AudioCodecArg::Opus)]
    pub audio_codec: AudioCodecArg,
    /// Flag audio whose peak stays below this level, in dBFS
    #[arg(long, value_name = "DB", default_value_t = -50.0, allow_negative_numbers = true)]
    pub silence_db: f64,
    /// Read file: sources at their native rate, as a device delivers media (for tests and
    /// benchmarks)
    #[arg(long)]
    pub realtime: bool,
    /// Directory for the recording and its sidecar
    #[arg(short, long, value_name = "DIR", required_unless_present = "list")]
    pub output_dir: Option<PathBuf>,
    /// Print JSON Lines: the record ({"type":"record",...}), or with --list one
    /// {"type":"phone",...} per phone
    #[arg(long)]
    pub json: bool,
}
