//! `callrec-verify`: its options and its manual's sections.

use std::path::PathBuf;

use clap::Parser;

use super::{after_help, Section, SEE_ALSO};

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
