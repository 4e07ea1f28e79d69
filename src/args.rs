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
            "0  every input sealed (or already sealed)",
            "1  some input could not be sealed (each is reported on stderr)",
            "2  usage error, or the keys could not be used",
        ],
    },
    Section {
        title: "EXAMPLES",
        lines: &[
            "callrec-seal keygen -o ~/.config/callrec/keys",
            "callrec-seal -o sealed/ call.wav",
            "find spool -name '*.mkv' -print0 | callrec-seal -0 -o sealed/",
            "callrec-seal --cipher table -o sealed/ spool/",
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
            "manifest, signature                  the signed manifest, by a trusted key",
            "text-sha256, media-sha256            the hashes of the text block and of the media",
            "chain                                gaps and forks in each key's sequence across the files",
        ],
    },
    Section {
        title: "EXIT STATUS",
        lines: &[
            "0  every file verified",
            "1  some file is proven bad, or the chain has a gap or a fork",
            "2  nothing proven bad, but some file could not be checked (unreadable, no trusted key)",
        ],
    },
    Section {
        title: "EXAMPLES",
        lines: &[
            "callrec-verify --pubkey seal.pub archive/",
            "callrec-verify --quick call.sealed.wav",
            "callrec-verify --explain call.sealed.wav > check.sh && PUB=seal.pub sh check.sh",
            "callrec-verify --pubkey seal.pub --extract-media call.sealed.wav -o call.wav",
            "callrec-verify --pubkey seal.pub --show --identity keys/ call.sealed.wav",
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

/// Seal call recordings into tamper-evident, signed evidence files.
///
/// Each INPUT is a media file or its sidecar (MEDIA.callrec.json); a directory is walked
/// recursively. With no INPUT and stdin not a terminal, paths are read from stdin, one per
/// line (or NUL-separated with -0). Each sealed file is written beside its input (or under
/// --output-dir) as STEM.sealed.EXT and its path printed on stdout.
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
}

#[derive(Debug, Subcommand)]
pub enum SealCommand {
    /// Create a key directory: signing key, public key, age identity and recipients, substitution table
    Keygen(KeygenArgs),
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

    /// Run only the document's quick checks (no key needed; reads O(1) bytes of media)
    #[arg(long)]
    pub quick: bool,

    /// Print the shell commands that verify FILE by hand with coreutils, minisign and age
    #[arg(long, group = "mode")]
    pub explain: bool,

    /// Write the media of FILE alone to --output (after verifying it)
    #[arg(long, group = "mode", requires = "output")]
    pub extract_media: bool,

    /// Decrypt and print the text info of FILE as JSON and as the document's line
    #[arg(long, group = "mode", requires = "identity")]
    pub show: bool,

    /// The key that reads the text info: an age identity file, a substitution table, or a
    /// key directory
    #[arg(short, long, value_name = "ID")]
    pub identity: Option<PathBuf>,

    /// Where --extract-media writes ('-' for stdout, if it is not a terminal)
    #[arg(short, long, value_name = "OUT")]
    pub output: Option<PathBuf>,

    /// Read and write path lists NUL-separated instead of one per line
    #[arg(short = '0', long = "null")]
    pub null: bool,

    /// Print one JSON object per line (JSON Lines): a verdict per file, chain issues, a summary
    #[arg(long)]
    pub json: bool,
}
