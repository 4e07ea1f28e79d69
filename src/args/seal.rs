//! `callrec-seal`: its options, its `keygen` and `anchor` commands, and its manual's sections.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use super::{after_help, Section, KEYDIR_HELP, SEE_ALSO};

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

    /// Trusted TSA certificates (PEM); repeatable [env: CALLREC_TSA_CA]. A token that does
    /// not chain to one is refused, so whoever else answers at a TSA's address cannot anchor
    #[arg(long, value_name = "PEM", help_heading = "Anchors")]
    pub tsa_ca: Vec<PathBuf>,

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
    #[arg(long, value_name = "FILE", default_value = crate::seal::watermark::DEFAULT_FONT, help_heading = "Watermark")]
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

    /// Trusted TSA certificates (PEM); repeatable [env: CALLREC_TSA_CA]
    #[arg(long, value_name = "PEM")]
    pub tsa_ca: Vec<PathBuf>,

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
