//! The clap definitions of every callrec binary. They live in the library so that man pages
//! and completions are generated from them (`scripts/gen-docs`) and checked for staleness by
//! the tests. Binaries turn them into the engine's plain option structs.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// A section of a tool's manual beyond its options: shown after `--help` and as its own
/// section of the man page.
pub struct Section {
    pub title: &'static str,
    pub lines: &'static [&'static str],
}

/// The sections as `--help` shows them.
pub fn after_help(sections: &[Section]) -> String {
    let mut text = String::new();
    for section in sections {
        text.push_str(section.title);
        text.push_str(":\n");
        for line in section.lines {
            text.push_str("  ");
            text.push_str(line);
            text.push('\n');
        }
        text.push('\n');
    }
    text.trim_end().to_string()
}

const SEE_ALSO: &str = "callrec-capture(1), callrec-annotate(1), callrec-seal(1), callrec-verify(1), callrec-push(1), callrec-query(1), minisign(1), age(1)";

pub const SEAL_SECTIONS: &[Section] = &[
    Section {
        title: "EXIT STATUS",
        lines: &[
            "0  every input sealed (or already sealed; an empty spool too), anchored or not",
            "1  some input could not be sealed (each is reported on stderr); anchor: no TSA gave a good token",
            "2  usage error, the keys could not be used, or the chain state is damaged",
            "75 anchor: no TSA could be reached (try again later)",
        ],
    },
    Section {
        title: "EXAMPLES",
        lines: &[
            "callrec-seal keygen -o ~/.config/callrec/keys",
            "callrec-seal -o sealed/ call.wav",
            "callrec-seal -o sealed/ --remove-source spool/",
            "find spool -name '*.mkv' -print0 | callrec-seal -0 -o sealed/",
            "callrec-seal --cipher table -o sealed/ spool/",
            "callrec-seal -o sealed/ --tsa https://tsa.example.com/tsr spool/",
            "callrec-seal anchor -o sealed/ --tsa https://tsa.example.com/tsr",
        ],
    },
    Section {
        title: "SEE ALSO",
        lines: &[SEE_ALSO],
    },
];

pub const VERIFY_SECTIONS: &[Section] = &[
    Section {
        title: "CHECKS",
        lines: &[
            "In order; each failure names its check:",
            "footer, media-checksum, check-byte   the document's quick checks (--quick stops here)",
            "manifest, signature                  the signed manifest, by a trusted key (both Ed25519",
            "                                     signatures strict, as RFC 8032 section 5.1.7 asks)",
            "text-sha256, text                    the text block's hash; its payload is what text-cipher",
            "                                     says (with --show: the manifest's record)",
            "media-sha256                         the hash of the media",
            "chain                                gaps and forks in each key's sequence across the files",
            "anchor, timestamp                    FILE.anchor: its form, its head's manifest and",
            "                                     signature, the RFC 3161 token over it (--tsa-ca);",
            "                                     an anchored head makes a missing last record a gap,",
            "                                     and a record sealed after its anchor's time fails",
        ],
    },
    Section {
        title: "EXIT STATUS",
        lines: &[
            "0  every file verified",
            "1  some file is proven bad (a seal by a key not trusted included), or the chain has a gap",
            "   or a fork",
            "2  nothing proven bad, but some file could not be checked (unreadable), or no --pubkey,",
            "   or an unusable or ambiguous key set",
        ],
    },
    Section {
        title: "EXAMPLES",
        lines: &[
            "callrec-verify --pubkey seal.pub archive/",
            "callrec-verify --quick call.sealed.wav",
            "callrec-verify --explain call.sealed.wav > check.sh && PUB=seal.pub sh check.sh",
            "callrec-verify -p seal.pub --tsa-ca tsa-ca.pem sealed/",
            "callrec-verify --pubkey seal.pub --extract-media call.sealed.wav -o media.wav",
            "callrec-verify --pubkey seal.pub --extract-audio call.sealed.mkv -o call.mka",
            "callrec-verify --pubkey seal.pub --show --identity ~/.config/callrec/keys call.sealed.wav",
            "callrec-verify --pubkey seal.pub --tsa-ca tsa-ca.pem --bundle court sealed/ && sh court/verify.sh",
        ],
    },
    Section {
        title: "SEE ALSO",
        lines: &[SEE_ALSO, "docs/FORMAT.md: the sealed file format"],
    },
];

const KEYDIR_HELP: &str = "Key directory [default: $CALLREC_KEYDIR, else $XDG_CONFIG_HOME/callrec/keys, else ~/.config/callrec/keys]";

/// How the text info is encoded inside a sealed file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CipherArg {
    /// age (X25519) encryption to the recipients: confidential (default)
    Age,
    /// The document's byte substitution table: tamper-evident, NOT confidential
    Table,
}

/// When `callrec-seal --tsa` time-stamps the chain head.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TimestampArg {
    /// Once, at the end of the run, over the head after it (default)
    Run,
    /// After each record sealed, over the head that record made
    Each,
}

/// Seal call recordings into tamper-evident, signed evidence files.
///
/// Each INPUT is a media file or its sidecar (MEDIA.callrec.json); a directory is walked
/// recursively. With no INPUT and stdin not a terminal, paths are read from stdin, one per
/// line (or NUL-separated with -0). Each sealed file is written beside its input (or under
/// --output-dir) as STEM.sealed.EXT and its path printed on stdout.
///
/// Video gets a visible watermark first: the device number, the phone number and each frame's
/// wall-clock time, re-encoded with libx264; audio is copied untouched.
#[derive(Debug, Parser)]
#[command(
    name = "callrec-seal",
    version,
    args_conflicts_with_subcommands = true,
    after_help = after_help(SEAL_SECTIONS)
)]
pub struct SealArgs {
    #[command(subcommand)]
    pub command: Option<SealCommand>,

    /// Media files, sidecars or directories to seal
    #[arg(value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,

    #[arg(short, long, value_name = "KEYDIR", help = KEYDIR_HELP)]
    pub key: Option<PathBuf>,

    /// Also encrypt the text info to this age recipient (age1...); repeatable. The key
    /// directory's age-recipients.txt is always used too
    #[arg(short, long, value_name = "RECIPIENT")]
    pub recipient: Vec<String>,

    /// How to encode the text info
    #[arg(long, value_enum, default_value_t = CipherArg::Age)]
    pub cipher: CipherArg,

    /// Write sealed files here instead of beside their inputs
    #[arg(short, long, value_name = "DIR")]
    pub output_dir: Option<PathBuf>,

    /// At the end of the run, time-stamp the key's chain head with this RFC 3161 TSA (one
    /// round trip per run, at most 10 s); repeatable, each TSA gives its own anchor
    /// [env: CALLREC_TSA, URLs separated by spaces]
    #[arg(long = "tsa", value_name = "URL", help_heading = "Anchors")]
    pub tsa: Vec<String>,

    /// When to time-stamp with --tsa: once per run, or after each record sealed (one round
    /// trip each, for high-value calls)
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = TimestampArg::Run, help_heading = "Anchors")]
    pub timestamp: TimestampArg,

    /// Remove each input (media and sidecar) once its sealed file has passed a full verification
    #[arg(long)]
    pub remove_source: bool,

    /// Read and write path lists NUL-separated instead of one per line
    #[arg(short = '0', long = "null")]
    pub null: bool,

    /// Seal this many files at once [default: number of CPUs]
    #[arg(short, long, value_name = "N")]
    pub jobs: Option<usize>,

    /// Print one JSON object per line (JSON Lines) instead of paths
    #[arg(long)]
    pub json: bool,

    /// Seal video as it is, without the visible watermark (the manifest says so)
    #[arg(long, help_heading = "Watermark")]
    pub no_watermark: bool,
    /// libx264 preset for watermarked video
    #[arg(
        long,
        value_name = "PRESET",
        default_value = "veryfast",
        value_parser = ["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow", "placebo"],
        help_heading = "Watermark"
    )]
    pub preset: String,
    /// libx264 constant rate factor for watermarked video (lower is better quality)
    #[arg(long, value_name = "CRF", default_value_t = 23, value_parser = clap::value_parser!(u8).range(0..=51), help_heading = "Watermark")]
    pub crf: u8,
    /// TrueType font for the watermark
    #[arg(long, value_name = "FILE", default_value = crate::watermark::DEFAULT_FONT, help_heading = "Watermark")]
    pub watermark_font: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum SealCommand {
    /// Create a key directory: signing key, public key, age identity and recipients, substitution table
    Keygen(KeygenArgs),
    /// Time-stamp the key's chain head now with the TSAs (if it is not anchored yet)
    Anchor(AnchorArgs),
}

#[derive(Debug, Args)]
pub struct AnchorArgs {
    #[arg(short, long, value_name = "KEYDIR", help = KEYDIR_HELP)]
    pub key: Option<PathBuf>,

    /// The RFC 3161 TSA to ask; repeatable [env: CALLREC_TSA, URLs separated by spaces]
    #[arg(long = "tsa", value_name = "URL")]
    pub tsa: Vec<String>,

    /// Write the anchor files here
    #[arg(short, long, value_name = "DIR", default_value = ".")]
    pub output_dir: PathBuf,

    /// Anchor the head even if it is anchored already (to add another TSA's witness)
    #[arg(long)]
    pub again: bool,

    /// Print one JSON object per line (JSON Lines) instead of paths
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// The key directory to create (created 0700 if missing; existing keys are never overwritten)
    #[arg(short, long, value_name = "KEYDIR")]
    pub output: PathBuf,
}

/// Verify sealed call records: the document's quick checks, the hashes, the signature, and
/// the hash chain across the files given.
///
/// Each FILE is a sealed file; a directory is walked recursively. With no FILE and stdin not
/// a terminal, paths are read from stdin. The path of every file that verifies is printed on
/// stdout; every failure is reported on stderr naming the check that failed.
#[derive(Debug, Parser)]
#[command(
    name = "callrec-verify",
    version,
    after_help = after_help(VERIFY_SECTIONS)
)]
pub struct VerifyArgs {
    /// Sealed files or directories
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,

    /// A trusted public key (seal.pub, or a key directory); repeatable [env: CALLREC_PUBKEY]
    #[arg(short, long, value_name = "PUB")]
    pub pubkey: Vec<PathBuf>,

    /// Trusted TSA certificates (PEM: a TSA's root or its own certificate); repeatable
    /// [env: CALLREC_TSA_CA]. Without one, anchors are checked in every other way but give
    /// no trusted time
    #[arg(long, value_name = "PEM")]
    pub tsa_ca: Vec<PathBuf>,

    /// Run only the document's quick checks (no key needed; reads O(1) bytes of media)
    #[arg(long)]
    pub quick: bool,

    /// Print the shell commands that verify FILE by hand with coreutils, minisign and age
    #[arg(long, group = "mode")]
    pub explain: bool,

    /// Write the media of FILE alone to --output (after verifying it)
    #[arg(long, group = "mode", requires = "output")]
    pub extract_media: bool,

    /// Write the audio of FILE alone to --output, as a playable file (no re-encoding; the
    /// container follows the name: .mka, .opus, .ogg, .mkv)
    #[arg(long, group = "mode", requires = "output")]
    pub extract_audio: bool,

    /// Write the video of FILE alone to --output, as a playable file (no re-encoding; the
    /// container follows the name: .mkv, .mp4)
    #[arg(long, group = "mode", requires = "output")]
    pub extract_video: bool,

    /// Decrypt and print the text info of FILE as JSON and as the document's line
    #[arg(long, group = "mode", requires = "identity")]
    pub show: bool,

    /// Verify every FILE as one set, then write the court bundle into OUTDIR (new or empty):
    /// the evidence, the keys, SHA256SUMS, verify.sh (checks it all without callrec) and
    /// report.html (a printable chain-of-custody report). Refused unless everything verifies
    #[arg(long, group = "mode", value_name = "OUTDIR", conflicts_with = "quick")]
    pub bundle: Option<PathBuf>,

    /// The key that reads the text info: an age identity file, a substitution table, or a
    /// key directory
    #[arg(short, long, value_name = "ID")]
    pub identity: Option<PathBuf>,

    /// Where --extract-media, --extract-audio or --extract-video write ('-' for stdout, for
    /// --extract-media, if it is not a terminal)
    #[arg(short, long, value_name = "OUT")]
    pub output: Option<PathBuf>,

    /// Vocabulary file for --show's figure 3C line [default: as callrec-annotate:
    /// $CALLREC_VOCABULARY, else ~/.config/callrec/vocabulary.json]
    #[arg(long, value_name = "FILE")]
    pub vocabulary: Option<PathBuf>,

    /// Read and write path lists NUL-separated instead of one per line
    #[arg(short = '0', long = "null")]
    pub null: bool,

    /// Print one JSON object per line (JSON Lines): a verdict per file, chain issues, a summary
    #[arg(long)]
    pub json: bool,
}

pub const ANNOTATE_SECTIONS: &[Section] = &[
    Section {
        title: "FIELDS",
        lines: &[
            "--role, --business and --result take a code or a label from the vocabulary:",
            "roles: 1 法定代表人/单位负责人, 2 财务负责人, 3 财务人员, 4 对账人员, 5 其他人员",
            "business: 1 大额支付, 2 对公账户, 3 对私业务, 4 银企对账, 5 其他",
            "results: 1 核实成功 (success); 2-7 核实失败 (failed: vacant number, busy or off,",
            "  no answer, number wrong or contact changed, party unaware, other reason)",
            "A vocabulary file extends or replaces these: --vocabulary, else $CALLREC_VOCABULARY,",
            "else $XDG_CONFIG_HOME/callrec/vocabulary.json, else ~/.config/callrec/vocabulary.json.",
            "Values are validated: ID numbers (GB 11643), credit codes (GB 32100), card numbers",
            "(Luhn), account numbers (8-32 digits), phone numbers; text may not hold '|' or control",
            "characters, so the document's figure 3C line and terminals stay intact.",
        ],
    },
    Section {
        title: "BATCH FILES",
        lines: &[
            "--from-csv: a header row naming the columns, then one row per record. Columns:",
            "record_id, or phone and call_time (matched within a minute), to name the record;",
            "operator, operator_name, institution, institution_name, customer, role, business,",
            "account, card, credit_code, id_number, result, remark, flag, phone to set fields.",
            "--from-json: JSON Lines with the same keys. Bad rows are reported with their line",
            "numbers and change nothing; good rows are applied.",
        ],
    },
    Section {
        title: "CORRECTIONS",
        lines: &[
            "A sealed record is never changed. Annotating one writes a correction in --output-dir:",
            "ID.correction (empty media) and ID.correction.callrec.json, the whole record as",
            "corrected, naming the original's record id and manifest hash. Seal it in turn (with",
            "--remove-source to clean up); callrec-verify lists the original and its corrections",
            "as the record's history.",
        ],
    },
    Section {
        title: "EXIT STATUS",
        lines: &[
            "0  every record annotated",
            "1  some record or row was invalid (each is reported; it changed nothing)",
            "2  usage error, or a batch or vocabulary file could not be read",
        ],
    },
    Section {
        title: "EXAMPLES",
        lines: &[
            "callrec-annotate --operator 130002 --customer 李霞 --role 3 --result 1 call.mkv",
            "callrec-capture -o spool | callrec-annotate --interactive | callrec-seal -o sealed",
            "callrec-annotate --from-csv today.csv spool/",
            "callrec-annotate --print-line spool/*.mkv",
            "callrec-annotate --result 1 sealed/call.sealed.mkv | callrec-seal -o sealed --remove-source",
        ],
    },
    Section {
        title: "SEE ALSO",
        lines: &[SEE_ALSO],
    },
];

/// Record what a call was about: the operator's remarks, validated, with the terminal's
/// identity and the time.
///
/// Each RECORD is a media file or its sidecar (MEDIA.callrec.json); a directory is walked.
/// With no RECORD and stdin not a terminal, paths are read from stdin. The sidecar is replaced
/// atomically, or not at all if any value is invalid. Record paths are printed on stdout, so
/// callrec-annotate sits between callrec-capture and callrec-seal in a pipeline.
#[derive(Debug, Parser)]
#[command(
    name = "callrec-annotate",
    version,
    after_help = after_help(ANNOTATE_SECTIONS)
)]
pub struct AnnotateArgs {
    /// Records (media files or sidecars) or directories
    #[arg(value_name = "RECORD")]
    pub records: Vec<PathBuf>,

    /// Operator (teller) number
    #[arg(long, value_name = "ID", help_heading = "Fields")]
    pub operator: Option<String>,
    /// Operator's name
    #[arg(long, value_name = "NAME", help_heading = "Fields")]
    pub operator_name: Option<String>,
    /// Institution code
    #[arg(long, value_name = "CODE", help_heading = "Fields")]
    pub institution: Option<String>,
    /// Institution name
    #[arg(long, value_name = "NAME", help_heading = "Fields")]
    pub institution_name: Option<String>,
    /// Name of the customer called
    #[arg(long, value_name = "NAME", help_heading = "Fields")]
    pub customer: Option<String>,
    /// Role of the person called (code or label)
    #[arg(long, value_name = "ROLE", help_heading = "Fields")]
    pub role: Option<String>,
    /// Business type (code or label)
    #[arg(long, value_name = "TYPE", help_heading = "Fields")]
    pub business: Option<String>,
    /// Account number (8-32 digits)
    #[arg(
        long,
        value_name = "NUMBER",
        help_heading = "Fields",
        conflicts_with = "card"
    )]
    pub account: Option<String>,
    /// Bank card number (Luhn-checked); stored as the account
    #[arg(long, value_name = "NUMBER", help_heading = "Fields")]
    pub card: Option<String>,
    /// Unified social credit code of the company
    #[arg(long, value_name = "CODE", help_heading = "Fields")]
    pub credit_code: Option<String>,
    /// Personal ID number (18 characters)
    #[arg(long, value_name = "NUMBER", help_heading = "Fields")]
    pub id_number: Option<String>,
    /// Verification result, 1-7 (code or label)
    #[arg(long, value_name = "CODE", help_heading = "Fields")]
    pub result: Option<String>,
    /// Free remark
    #[arg(long, value_name = "TEXT", help_heading = "Fields")]
    pub remark: Option<String>,
    /// Collection flag, e.g. 01
    #[arg(long, value_name = "FLAG", help_heading = "Fields")]
    pub flag: Option<String>,
    /// Phone number of the call (normally set by callrec-capture)
    #[arg(long, value_name = "NUMBER", help_heading = "Fields")]
    pub phone: Option<String>,

    /// Fields for many records from a CSV file with a header row
    #[arg(long, value_name = "FILE", conflicts_with = "from_json")]
    pub from_csv: Option<PathBuf>,
    /// Fields for many records from a JSON Lines file
    #[arg(long, value_name = "FILE")]
    pub from_json: Option<PathBuf>,
    /// Ask for each missing field on the terminal, with the vocabulary as numbered choices
    #[arg(short, long, conflicts_with_all = ["from_csv", "from_json"])]
    pub interactive: bool,

    /// Reads sealed records' text info, to correct them: an age identity, a table key or a key
    /// directory [default: the key directory, as for callrec-seal]
    #[arg(long, value_name = "ID")]
    pub identity: Option<PathBuf>,
    /// Vocabulary file extending or replacing the built-in terms
    #[arg(long, value_name = "FILE")]
    pub vocabulary: Option<PathBuf>,
    /// Where corrections of sealed records are written
    #[arg(short, long, value_name = "DIR", default_value = ".")]
    pub output_dir: PathBuf,

    /// Print each record's figure 3C line instead of its path
    #[arg(long, conflicts_with = "json")]
    pub print_line: bool,
    /// Print each record as JSON Lines ({"type":"record","path":...,"record":{...}})
    #[arg(long)]
    pub json: bool,
    /// Read and write path lists NUL-separated instead of one per line
    #[arg(short = '0', long = "null")]
    pub null: bool,
}

impl AnnotateArgs {
    /// The field flags given, by field name.
    pub fn fields(&self) -> Vec<(&'static str, &str)> {
        [
            ("operator", &self.operator),
            ("operator_name", &self.operator_name),
            ("institution", &self.institution),
            ("institution_name", &self.institution_name),
            ("customer", &self.customer),
            ("role", &self.role),
            ("business", &self.business),
            ("account", &self.account),
            ("card", &self.card),
            ("credit_code", &self.credit_code),
            ("id_number", &self.id_number),
            ("result", &self.result),
            ("remark", &self.remark),
            ("flag", &self.flag),
            ("phone", &self.phone),
        ]
        .into_iter()
        .filter_map(|(name, value)| value.as_deref().map(|v| (name, v)))
        .collect()
    }
}

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

pub const PUSH_SECTIONS: &[Section] = &[
    Section {
        title: "ARCHIVE",
        lines: &[
            "TARGET is a directory or mounted share (PATH or file://PATH), or s3://BUCKET/PREFIX for",
            "S3-compatible storage: endpoint, region and credentials from AWS_ENDPOINT_URL, AWS_REGION,",
            "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_PROFILE and the AWS profile files, as the AWS",
            "SDK resolves them (--endpoint overrides); path-style requests.",
            "Keys are [PREFIX/]YYYY/MM/DD/RECORD-ID.HASH.sealed.EXT, from the signed manifest (sealing",
            "date, UTC; HASH: the first 16 hex digits of the manifest's SHA-256, so two seals of a record",
            "never share a key). An existing key is never overwritten: the same seal there means already",
            "archived, other bytes are a conflict. After upload the seal is read back (--verify full:",
            "all of it); a directory archive is fsynced with its directories before the record is done.",
            "Done records are moved to SPOOL/sent/ (or removed with --remove-source), and a receipt is",
            "appended (and fsynced) to the journal: --journal, else $XDG_STATE_HOME/callrec/push-journal.jsonl,",
            "else ~/.local/state/callrec/push-journal.jsonl.",
        ],
    },
    Section {
        title: "RETENTION",
        lines: &[
            "--retain-days/--retain-until (with --lock-mode) and --legal-hold set S3 Object Lock on each",
            "object right after its upload, before it counts as done; the bucket must have Object Lock",
            "enabled. The lock is read back and recorded in the receipt. If the archive did not keep it",
            "(a directory, a store without Object Lock, a bucket without it) the push says so and the",
            "record is archived without it; --require-retention makes that a failure (exit 1) and the",
            "record stays in the spool. An existing longer retention is left as it is.",
        ],
    },
    Section {
        title: "EXIT STATUS",
        lines: &[
            "0   every record archived (or already archived)",
            "1   some record failed: not sealed, a conflict, a mismatch after upload, or (with",
            "    --require-retention) a lock the archive did not keep",
            "2   usage error, or the archive cannot be used: it cannot be opened or created, the store",
            "    refused the credentials (HTTP 401/403), or the bucket does not exist",
            "75  the archive could not be reached or is failing or busy (connection refused or reset,",
            "    timeout, HTTP 5xx, 429/SlowDown), or another push holds the spool: nothing was lost;",
            "    try again",
        ],
    },
    Section {
        title: "EXAMPLES",
        lines: &[
            "callrec-push --pubkey seal.pub --to /mnt/archive spool/",
            "AWS_ENDPOINT_URL=http://127.0.0.1:3900 callrec-push --to s3://calls/branch-0068 spool/",
            "callrec-push --to s3://calls --retain-days 2557 --require-retention spool/   # 7 years, WORM",
            "callrec-seal -o spool spool-in/ && callrec-push --to s3://calls spool/ || [ $? -eq 75 ]",
        ],
    },
    Section {
        title: "SEE ALSO",
        lines: &[SEE_ALSO],
    },
];

/// A retention date: `YYYY-MM-DD` (midnight UTC) or RFC 3339, in the future.
fn parse_until(s: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    let until = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map(|d| d.and_time(chrono::NaiveTime::MIN).and_utc())
        .or_else(|_| chrono::DateTime::parse_from_rfc3339(s).map(|d| d.to_utc()))
        .map_err(|_| format!("{s:?} is not a date: use YYYY-MM-DD or RFC 3339"))?;
    if until <= chrono::Utc::now() {
        return Err(format!("{s:?} is not in the future"));
    }
    Ok(until)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum VerifyDepth {
    /// Read back the object's size, manifest, signature and footer (ranged read)
    Seal,
    /// Read back the whole object and compare its SHA-256
    Full,
}

/// Send sealed records to the archive: a directory or S3-compatible object storage. Never
/// overwrites, verifies after upload, loses nothing.
///
/// Each INPUT is a sealed file or a spool directory (walked, except its sent/ directory). With
/// no INPUT and stdin not a terminal, paths are read from stdin. Archive keys are printed on
/// stdout.
#[derive(Debug, Parser)]
#[command(name = "callrec-push", version, after_help = after_help(PUSH_SECTIONS))]
pub struct PushArgs {
    /// Sealed files or spool directories
    #[arg(value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,
    /// The archive: a directory, file://PATH, or s3://BUCKET/PREFIX
    #[arg(long, value_name = "TARGET")]
    pub to: String,
    /// S3 endpoint URL [default: $AWS_ENDPOINT_URL]
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,
    /// Fully verify each record against this trusted public key (seal.pub or a key directory)
    /// before pushing it; repeatable. Without it only the document's quick checks guard the push
    #[arg(short, long, value_name = "PUB")]
    pub pubkey: Vec<PathBuf>,
    /// How much of each object to read back after upload
    #[arg(long, value_enum, default_value_t = VerifyDepth::Seal)]
    pub verify: VerifyDepth,
    /// Remove each input once archived and verified, instead of moving it to SPOOL/sent/
    #[arg(long)]
    pub remove_source: bool,
    /// Journal of receipts (JSON Lines)
    #[arg(long, value_name = "FILE")]
    pub journal: Option<PathBuf>,
    /// Lock each object (S3 Object Lock) for N days from now
    #[arg(long, value_name = "N", conflicts_with = "retain_until")]
    pub retain_days: Option<u32>,
    /// Lock each object until DATE (YYYY-MM-DD, midnight UTC, or RFC 3339)
    #[arg(long, value_name = "DATE", value_parser = parse_until)]
    pub retain_until: Option<chrono::DateTime<chrono::Utc>>,
    /// Object Lock mode for --retain-days and --retain-until
    #[arg(long, value_enum, value_name = "MODE", default_value_t = crate::archive::LockMode::Compliance)]
    pub lock_mode: crate::archive::LockMode,
    /// Place a legal hold on each object
    #[arg(long)]
    pub legal_hold: bool,
    /// Fail a record whose Object Lock the archive did not keep (by default: a warning)
    #[arg(long)]
    pub require_retention: bool,
    /// Upload this many records at once (as many more are checked and read back meanwhile)
    #[arg(short, long, value_name = "N", default_value_t = 4)]
    pub jobs: usize,
    /// Read and write path lists NUL-separated instead of one per line
    #[arg(short = '0', long = "null")]
    pub null: bool,
    /// Print one receipt per line as JSON (JSON Lines) instead of keys
    #[arg(long)]
    pub json: bool,
}

pub const QUERY_SECTIONS: &[Section] = &[
    Section {
        title: "INDEX",
        lines: &[
            "The index is an SQLite file: --db, else $XDG_DATA_HOME/callrec/index.sqlite, else",
            "~/.local/share/callrec/index.sqlite. It is created readable by its owner only: it holds the",
            "decrypted text info. `index` lists each ARCHIVE (a directory, or s3://BUCKET/PREFIX with",
            "the same AWS_* settings as callrec-push), reads the seal and text block of every record it",
            "has not seen (ranged reads on S3; unchanged records, by key and ETag, are not read again,",
            "unless the keys given now check them differently: --pubkey, --identity),",
            "checks them (the document's quick checks, the manifest and the text's SHA-256; with",
            "--pubkey also the signature), decrypts the text info with --identity, and flags records",
            "that fail. The schema is in docs/QUERY.md.",
        ],
    },
    Section {
        title: "SEARCH",
        lines: &[
            "Every condition of the document's figure 7; all given ones must hold. Values match",
            "literally (quotes, % and _ are themselves); --customer matches a part of the name;",
            "--institution an institution's code, or else a part of institution names. --from/--to",
            "take a day (YYYY-MM-DD, in each call's own time zone, inclusive) or an RFC 3339 time.",
            "Searches within a date range are fast whatever else they ask; a customer or institution",
            "name without one reads every record. Only the latest version of a corrected record is",
            "shown (--all-versions shows every one; `history ID` lists one record's versions).",
            "Output: an aligned table on a terminal, record ids one per line in a pipe, --csv (UTF-8",
            "with a byte-order mark, so spreadsheets keep the Chinese text) or --json (JSON Lines).",
            "A role, business type or result not in the vocabulary, --from after --to, or a --phone",
            "that is not a number is a usage error (exit 2) naming the valid values. Phone numbers",
            "match however they are written (+86, 0086, spaces, hyphens). Only `index` creates an",
            "index; search, history, stats and get open an existing one read-only.",
        ],
    },
    Section {
        title: "WORKLOAD",
        lines: &[
            "`stats` counts each operator's calls per day, week or month (--by), with --quota N marking",
            "who is behind, the result distribution, and each operator's confirmed (result 1) and not",
            "confirmed (results 2 and up) calls with the not-confirmed rate among calls with a result.",
            "Records that failed a check are counted apart, never as work done.",
        ],
    },
    Section {
        title: "FETCH",
        lines: &[
            "`get ID` fetches the record from its archive and verifies it fully (--pubkey, or",
            "$CALLREC_PUBKEY) before handing anything out: --sealed the sealed file, --audio or --video",
            "the stream in the format the name asks for (copied when the container holds its codec,",
            "else transcoded: .wav, .flac, .mp3, .m4a, .opus, .mka; .mp4, .webm, .mkv), --text the text",
            "info as JSON, --print a printable page of every field and the verification verdict. A",
            "record that fails is refused, with the failed check named. A correction's media is its",
            "original's; --print of a superseded version names the correction.",
        ],
    },
    Section {
        title: "EXIT STATUS",
        lines: &[
            "0   done",
            "1   get: the record is not in the index, or failed verification; index: some record",
            "    failed a check (it is flagged in the index)",
            "2   usage error (a value not in the vocabulary, --from after --to, not a phone number),",
            "    no index (only `index` creates one), or the index or archive cannot be used (refused",
            "    credentials, a missing bucket)",
            "75  the archive could not be reached or is failing or busy: try again",
        ],
    },
    Section {
        title: "EXAMPLES",
        lines: &[
            "callrec-query index --identity /etc/callrec/server-keys --pubkey /etc/callrec/seal.pub /srv/archive",
            "callrec-query search --phone 13321150748 --result 1 --from 2026-11-01 --to 2026-11-30",
            "callrec-query search --customer 李 --business-type 大额支付 --csv > calls.csv",
            "callrec-query stats --by week --quota 50",
            "callrec-query get 20261127T093000Z-0a1b2c3d4e5f --audio -o call.opus --pubkey /etc/callrec/seal.pub",
            "callrec-query get 20261127T093000Z-0a1b2c3d4e5f --print --pubkey /etc/callrec/seal.pub \\",
            "    --identity /etc/callrec/server-keys | lp",
        ],
    },
    Section {
        title: "SEE ALSO",
        lines: &[SEE_ALSO, "docs/QUERY.md: the index"],
    },
];

/// Find any call in the archive, fetch its audio or video, print its text, report workloads.
#[derive(Debug, Parser)]
#[command(name = "callrec-query", version, after_help = after_help(QUERY_SECTIONS))]
pub struct QueryArgs {
    /// The index [default: $XDG_DATA_HOME/callrec/index.sqlite]
    #[arg(long, global = true, value_name = "PATH")]
    pub db: Option<PathBuf>,
    /// S3 endpoint URL [default: $AWS_ENDPOINT_URL]
    #[arg(long, global = true, value_name = "URL")]
    pub endpoint: Option<String>,
    /// Vocabulary file for roles, business types and results [default: as callrec-annotate:
    /// $CALLREC_VOCABULARY, else ~/.config/callrec/vocabulary.json]
    #[arg(long, global = true, value_name = "FILE")]
    pub vocabulary: Option<PathBuf>,
    #[command(subcommand)]
    pub command: QueryCommand,
}

#[derive(Debug, Subcommand)]
pub enum QueryCommand {
    /// Build or update the index of one or more archives
    Index(QueryIndexArgs),
    /// Search the index by the conditions of figure 7
    Search(Box<QuerySearchArgs>),
    /// Every version of one record: the original and its corrections
    History(QueryHistoryArgs),
    /// Operators' workload: calls per period, against a quota
    Stats(QueryStatsArgs),
    /// Fetch a record from the archive, fully verified
    Get(QueryGetArgs),
}

#[derive(Debug, Args)]
pub struct QueryIndexArgs {
    /// Archives: directories, or s3://BUCKET/PREFIX
    #[arg(value_name = "ARCHIVE", required = true)]
    pub archives: Vec<String>,
    /// The server's key for the text info: an age identity file, a table key, or a key directory
    #[arg(short, long, value_name = "KEY")]
    pub identity: Option<PathBuf>,
    /// Also check each record's signature against these trusted public keys; repeatable
    #[arg(short, long, value_name = "PUB")]
    pub pubkey: Vec<PathBuf>,
    /// Print a summary per archive and each flagged record as JSON Lines
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct QuerySearchArgs {
    /// From this day (YYYY-MM-DD) or time (RFC 3339)
    #[arg(long, value_name = "WHEN")]
    pub from: Option<crate::query::Bound>,
    /// To this day (inclusive) or time
    #[arg(long, value_name = "WHEN")]
    pub to: Option<crate::query::Bound>,
    /// Collection flag (采集标志)
    #[arg(long, value_name = "FLAG")]
    pub collection_flag: Option<String>,
    /// Institution: its code, or else a part of its name
    #[arg(long, value_name = "CODE|NAME")]
    pub institution: Option<String>,
    /// Phone number called
    #[arg(long, value_name = "NUMBER")]
    pub phone: Option<String>,
    /// Part of the customer's name
    #[arg(long, value_name = "NAME")]
    pub customer: Option<String>,
    /// Account or card number
    #[arg(long, value_name = "NUMBER")]
    pub account: Option<String>,
    /// Role of the person called: code, label or English name
    #[arg(long, value_name = "ROLE")]
    pub role: Option<String>,
    /// Business type: code, label or English name
    #[arg(long, value_name = "TYPE")]
    pub business_type: Option<String>,
    /// Verification result codes (1-7); repeatable or comma-separated
    #[arg(long, value_name = "CODE", value_delimiter = ',', value_parser = clap::value_parser!(u8).range(1..=99))]
    pub result: Vec<u8>,
    /// Local device number
    #[arg(long, value_name = "NUMBER")]
    pub device: Option<String>,
    /// Operator (teller) number
    #[arg(long, value_name = "ID")]
    pub operator: Option<String>,
    /// Only records that failed a check at indexing
    #[arg(long)]
    pub failed: bool,
    /// Every version of corrected records, not only the latest
    #[arg(long)]
    pub all_versions: bool,
    /// Order by
    #[arg(long, value_enum, default_value_t = crate::query::SortKey::Time)]
    pub sort: crate::query::SortKey,
    /// Reverse the order (newest first for time)
    #[arg(short, long)]
    pub reverse: bool,
    /// At most N records
    #[arg(long, value_name = "N")]
    pub limit: Option<u64>,
    #[command(flatten)]
    pub output: TableOutput,
}

/// How tables are printed.
#[derive(Debug, Args)]
pub struct TableOutput {
    /// CSV with a header (UTF-8 with a byte-order mark)
    #[arg(long, conflicts_with = "json")]
    pub csv: bool,
    /// JSON Lines
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct QueryHistoryArgs {
    /// The record id (of the original or of any correction)
    #[arg(value_name = "ID")]
    pub id: String,
    #[command(flatten)]
    pub output: TableOutput,
}

#[derive(Debug, Args)]
pub struct QueryStatsArgs {
    /// From this day (YYYY-MM-DD) or time (RFC 3339)
    #[arg(long, value_name = "WHEN")]
    pub from: Option<crate::query::Bound>,
    /// To this day (inclusive) or time
    #[arg(long, value_name = "WHEN")]
    pub to: Option<crate::query::Bound>,
    /// One operator's own view
    #[arg(long, value_name = "ID")]
    pub operator: Option<String>,
    /// Count per
    #[arg(long, value_enum, default_value_t = crate::query::Period::Day)]
    pub by: crate::query::Period,
    /// Calls each operator should make per period
    #[arg(long, value_name = "N")]
    pub quota: Option<u64>,
    #[command(flatten)]
    pub output: TableOutput,
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("what").required(true))]
pub struct QueryGetArgs {
    /// The record id
    #[arg(value_name = "ID")]
    pub id: String,
    /// The audio, as a playable file in the format its name asks for: .mka/.opus/.ogg copy
    /// Opus; .wav, .flac, .mp3, .m4a transcode when needed
    #[arg(long, group = "what", requires = "output")]
    pub audio: bool,
    /// The video (.mkv copies; .mp4 H.264, .webm VP9 transcode when needed)
    #[arg(long, group = "what", requires = "output")]
    pub video: bool,
    /// The sealed file itself
    #[arg(long, group = "what", requires = "output")]
    pub sealed: bool,
    /// The text info as JSON (needs --identity)
    #[arg(long, group = "what", requires = "identity")]
    pub text: bool,
    /// A printable page of every field and the verdict (needs --identity)
    #[arg(long, group = "what", requires = "identity")]
    pub print: bool,
    /// Write here (never over an existing file) [default for --text and --print: stdout]
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Trusted public key (seal.pub or a key directory); repeatable [default: $CALLREC_PUBKEY]
    #[arg(short, long, value_name = "PUB")]
    pub pubkey: Vec<PathBuf>,
    /// The key for the text info: an age identity file, a table key, or a key directory
    #[arg(short, long, value_name = "KEY")]
    pub identity: Option<PathBuf>,
}
