//! `callrec-query`: its commands, their options, and its manual's sections.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use super::{after_help, Section, SEE_ALSO};

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
    /// Trusted TSA certificates (PEM); repeatable [env: CALLREC_TSA_CA]. Only anchors whose TSA
    /// chains to one date records (anchored_at)
    #[arg(long, value_name = "PEM")]
    pub tsa_ca: Vec<PathBuf>,
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
    /// Trusted TSA certificates (PEM) for --print's trusted time; repeatable
    /// [env: CALLREC_TSA_CA]
    #[arg(long, value_name = "PEM")]
    pub tsa_ca: Vec<PathBuf>,
}
