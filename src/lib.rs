//! callrec: turn telephone verification calls into sealed, court-grade evidence.
//!
//! The library holds all logic; the `callrec-*` binaries parse arguments, call one function
//! here and map the result to an exit code. Nothing in the library prints, prompts or exits.
//!
//! - [`record`]: the call record (the document's text info), its JSON and figure 3C line.
//! - [`format`](mod@format): the sealed file format's byte-level pieces (footer, quick checks, manifest).
//! - [`keys`]: the key directory: signing key, trusted keys, age keys, substitution table.
//! - [`chain`]: each sealing key's hash chain and its crash-safe state.
//! - [`anchor`] and [`tsp`]: RFC 3161 time stamps over a chain's head, and their checks.
//! - [`seal`] and [`verify`]: making and checking sealed files.
//! - [`evidence`]: a set of sealed and anchor files verified together (chains, times, histories).
//! - [`bundle`]: the court bundle: verified evidence, keys, `verify.sh` and a printable report.
//! - [`media`]: media facts read with FFmpeg.
//! - [`archive`]: the server archive (a directory or S3): pushing records, reading them back.
//! - [`spool`]: pushing spools to the archive (lock, `sent/`, journal, when a run stops).
//! - [`query`]: the index of an archive: search, workload, fetch.
//! - [`places`]: where callrec keeps things by default (keys, journal, index, vocabulary).
//! - [`cli`] and [`args`]: command-line plumbing and clap definitions shared by the binaries.
//! - [`wire`]: the JSON Lines each tool writes with `--json`.

pub mod anchor;
pub mod annotate;
pub mod archive;
pub mod args;
pub mod bundle;
pub mod capture;
pub mod chain;
pub mod cli;
pub mod ed25519;
pub mod evidence;
pub mod format;
pub mod fsutil;
pub mod hid;
pub mod keys;
pub mod media;
pub mod places;
pub mod query;
pub mod record;
pub mod seal;
pub mod spool;
pub mod transcode;
pub mod tsp;
pub mod usb;
pub mod validate;
pub mod verify;
pub mod vocab;
pub mod watermark;
pub mod wire;
