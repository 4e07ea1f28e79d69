//! callrec: turn telephone verification calls into sealed, court-grade evidence.
//!
//! The library holds all logic; the `callrec-*` binaries parse arguments, call one function
//! here and map the result to an exit code. Nothing in the library prints, prompts or exits.
//!
//! The modules follow the pipeline, one folder per step, on a common foundation:
//!
//! - [`capture`]: a call recorded from a USB desk phone ([`capture::usb`], [`capture::hid`])
//!   into a crash-tolerant spool file and its sidecar.
//! - [`annotate`]: the operator's remarks, validated ([`validate`], [`vocab`]), into the sidecar.
//! - [`seal`]: media and record into one sealed file: the watermark ([`seal::watermark`]) and
//!   each key's hash chain with its crash-safe state ([`seal::chain`]).
//! - [`anchor`]: RFC 3161 time stamps over a chain's head ([`anchor::tsp`]: the protocol and
//!   the token checks).
//! - [`verify`]: checking sealed files one by one, a set of them with their anchors
//!   ([`verify::evidence`]), and the court bundle ([`verify::bundle`]).
//! - [`archive`]: the server archive (a directory or S3): pushing records and anchors, reading
//!   them back, and the spools a push empties ([`archive::spool`]).
//! - [`query`]: the index of an archive: search, workload, fetch, print.
//!
//! The foundation: [`record`] (the call record, the document's text info), [`format`](mod@format)
//! (the sealed file format's byte-level pieces), [`keys`] and [`ed25519`] (the key directory,
//! strict signatures), [`media`] and [`transcode`] (FFmpeg), [`fsutil`] (durable files),
//! [`places`] (where callrec keeps things by default), [`cli`] and [`args`] (command-line
//! plumbing and the clap definitions), [`wire`] (the JSON Lines each tool writes).

pub mod capture;

pub mod annotate;
pub mod validate;
pub mod vocab;

pub mod seal;

pub mod anchor;

pub mod verify;

pub mod archive;

pub mod query;

pub mod args;
pub mod cli;
pub mod ed25519;
pub mod format;
pub mod fsutil;
pub mod keys;
pub mod media;
pub mod places;
pub mod record;
pub mod transcode;
pub mod wire;
