//! The court bundle (`callrec-verify --bundle`, docs/FORMAT.md section 12): a folder of
//! verified evidence that a court, a regulator or a customer can check without callrec, with
//! coreutils, minisign and OpenSSL (`verify.sh`), and read as a printed chain-of-custody
//! report (`report.html`).
//!
//! Invariants:
//! - A bundle holds only evidence that verified as a set: every sealed file and anchor, each
//!   key's chain (gaps up to the anchored heads, forks) and the records' times against their
//!   anchors, as `callrec-verify` checks them ([`evidence::verify_set`]). The files are copied
//!   first and the copies are what is verified, so the bundle holds exactly the bytes that
//!   passed, whatever happens to the originals meanwhile.
//! - A bundle directory is complete or absent: it is written into a hidden temporary sibling
//!   (`.callrec-bundle-*.tmp`), every file and directory fsynced, and renamed into place last,
//!   only onto nothing or an empty directory.
//! - Nothing is decrypted: the report shows the signed manifests' facts and the files' hashes,
//!   never the text info (personal data). Every value in it is escaped for HTML.
//! - File names are kept, so two inputs of one name are refused rather than renamed, and a name
//!   the scripts cannot carry (not UTF-8, a control character, a bidirectional formatting
//!   character, a backslash, a leading dot) is refused.
//! - The report is a rendering for people, made from what was verified; it proves nothing by
//!   itself (SHA256SUMS, which covers it, is as easy to remake). `verify.sh` prints the facts it
//!   verified of each file, for a reader to compare with the report.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use chrono::{DateTime, FixedOffset, Utc};
use sha2::{Digest, Sha256};

use crate::anchor::tsp::TsaTrust;
use crate::anchor::{self, VerifiedAnchor};
use crate::fsutil::{self, PathContext, PathError, TEMP_SUFFIX};
use crate::keys::{self, TrustedKeys};
use crate::verify::evidence::{self, SetOptions, SetReport};
use crate::verify::{self, ChainIssue, History, Verified, VerifyError};

/// The bundle's evidence directory: the sealed files and anchors, byte for byte.
pub const EVIDENCE: &str = "evidence";
/// The bundle's key directory: `KEYID.pub` per seal key used, and `tsa-ca.pem`.
pub const KEYS: &str = "keys";
/// The trusted TSA certificates, in [`KEYS`].
pub const TSA_CA: &str = "tsa-ca.pem";
/// The checksums of every other file, in coreutils `sha256sum` form.
pub const SHA256SUMS: &str = "SHA256SUMS";
/// The by-hand verifier.
pub const VERIFY_SH: &str = "verify.sh";
/// The chain-of-custody report.
pub const REPORT: &str = "report.html";

/// Who made a bundle, where and when: for the report.
#[derive(Debug, Clone)]
pub struct Maker {
    pub host: String,
    pub user: String,
    /// The callrec version.
    pub version: String,
    pub at: DateTime<Utc>,
}

impl Maker {
    /// This machine, its user and callrec's version, now (to the second).
    pub fn here() -> Maker {
        use chrono::Timelike;
        let terminal = crate::annotate::terminal_identity();
        let now = Utc::now();
        Maker {
            host: terminal.host_name,
            user: terminal.user,
            version: env!("CARGO_PKG_VERSION").to_string(),
            at: now.with_nanosecond(0).unwrap_or(now),
        }
    }
}

/// What to bundle and what to trust.
pub struct Options<'a> {
    /// Sealed files and anchor files (named like them; directories already walked).
    pub files: &'a [PathBuf],
    /// The trusted public keys as given: key files, or key directories (their `seal.pub`). The
    /// files of the keys the evidence was sealed with are copied into the bundle.
    pub pubkeys: &'a [PathBuf],
    /// The same keys, loaded.
    pub trusted: &'a TrustedKeys,
    /// The trusted TSA certificates; needed when the evidence holds anchors.
    pub tsa: &'a TsaTrust,
    pub maker: &'a Maker,
}

/// A bundle written.
#[derive(Debug, Clone)]
pub struct Bundle {
    pub path: PathBuf,
    /// Evidence files: sealed files and anchors.
    pub files: usize,
    pub records: usize,
    pub anchors: usize,
    /// Sealed files covered by a trusted anchor.
    pub anchored: usize,
    /// Findings that prove nothing bad (a record first anchored long after it was sealed);
    /// the report shows them too.
    pub warnings: Vec<String>,
}

/// Why the evidence given is not a bundle's: what did not verify.
#[derive(Debug)]
pub struct Rejection {
    /// Each file that did not verify, by the path it was given as.
    pub files: Vec<(PathBuf, VerifyError)>,
    /// The chain's issues, and records whose times contradict their anchors.
    pub chain: Vec<String>,
}

impl Rejection {
    /// 1 when something is proven bad (a failed check, a chain issue), 2 when files could
    /// only not be read.
    pub fn exit_code(&self) -> u8 {
        let proven = !self.chain.is_empty()
            || self
                .files
                .iter()
                .any(|(_, e)| matches!(e, VerifyError::Failed { .. }));
        if proven {
            1
        } else {
            2
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if !self.files.is_empty() {
            parts.push(format!("{} files did not verify", self.files.len()));
        }
        if !self.chain.is_empty() {
            parts.push(format!("{} chain issues", self.chain.len()));
        }
        f.write_str(&parts.join(", "))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("no evidence to bundle: name sealed files, anchor files or directories holding them")]
    NoInput,
    /// The bundle directory exists and holds something, or is not a directory.
    #[error("{0:?} exists and is not an empty directory: a bundle is written into a new or empty directory")]
    NotEmpty(PathBuf),
    /// Two inputs share a file name; the bundle keeps names.
    #[error("{first:?} and {second:?} have the same name: a bundle keeps the files' names, so it cannot hold both")]
    SameName { first: PathBuf, second: PathBuf },
    /// A file name the bundle's scripts and checksums cannot carry as it is.
    #[error("{0:?}: a bundle cannot keep this file name (it must be UTF-8 without control characters, bidirectional formatting characters or backslashes, and not start with '.'): copy the file to a plainer name")]
    Name(PathBuf),
    /// Anchors without trusted TSA certificates prove no time, and `verify.sh` needs them.
    #[error("the evidence holds anchors but no TSA certificate is trusted: give --tsa-ca (without one an anchor proves no time, and the bundle's verify.sh could not check it)")]
    NoTsaTrust,
    /// A trusted key file could not be read as a minisign public key.
    #[error("{path:?}: not a minisign public key: {reason}")]
    PublicKey { path: PathBuf, reason: String },
    /// The evidence was sealed with a key no key file given holds.
    #[error("key {0} signed the evidence but no --pubkey file holds it")]
    KeyFile(String),
    /// Some evidence did not verify: nothing was written.
    #[error("refusing to write a bundle of evidence that does not verify: {0}")]
    NotVerified(Rejection),
    #[error(transparent)]
    Io(#[from] PathError),
}

impl BundleError {
    /// 1 for evidence proven bad, 2 for anything else.
    pub fn exit_code(&self) -> u8 {
        match self {
            BundleError::NotVerified(r) => r.exit_code(),
            _ => 2,
        }
    }
}

/// One evidence file copied into the bundle.
struct Copied {
    /// As given.
    source: PathBuf,
    /// Its name in `evidence/`.
    name: String,
    /// The copy, inside the temporary bundle.
    copy: PathBuf,
    size: u64,
    sha256: [u8; 32],
}

/// Write a bundle of `opts.files` into `out`, which must not exist or be an empty directory.
/// Everything is verified first (on the copies the bundle will hold); if anything fails,
/// nothing is written and the error says what failed.
pub fn make(out: &Path, opts: &Options) -> Result<Bundle, BundleError> {
    let names = evidence_names(opts.files)?;
    if names.is_empty() {
        return Err(BundleError::NoInput);
    }
    if opts.tsa.is_empty()
        && names
            .iter()
            .any(|(source, _)| anchor::is_anchor_name(source))
    {
        return Err(BundleError::NoTsaTrust);
    }
    let key_files = key_files(opts.pubkeys)?;
    check_out(out)?;
    let parent = fsutil::parent_dir(out);
    fs::create_dir_all(parent).at("cannot create", parent)?;
    let temp = tempfile::Builder::new()
        .prefix(".callrec-bundle-")
        .suffix(TEMP_SUFFIX)
        .tempdir_in(parent)
        .at("cannot create a directory in", parent)?;
    let root = temp.path();
    let mut sums: BTreeMap<String, [u8; 32]> = BTreeMap::new();
    // It holds recordings, personal data: for its owner alone, as the sealed files are.
    fs::set_permissions(root, fs::Permissions::from_mode(0o700)).at("cannot create", root)?;
    for dir in [EVIDENCE, KEYS] {
        let path = root.join(dir);
        fs::create_dir(&path).at("cannot create", &path)?;
    }

    let mut copied = Vec::with_capacity(names.len());
    for (source, name) in names {
        let copy = root.join(EVIDENCE).join(&name);
        let (sha256, size) = copy_new(&source, &copy)?;
        sums.insert(format!("{EVIDENCE}/{name}"), sha256);
        copied.push(Copied {
            source,
            name,
            copy,
            size,
            sha256,
        });
    }
    let set = SetOptions {
        trusted: opts.trusted,
        tsa: opts.tsa,
        quick: false,
    };
    let report = evidence::verify_set(copied.iter().map(|c| c.copy.clone()).collect(), &set, || {});
    let source_of = |copy: &Path| -> PathBuf {
        copied
            .iter()
            .find(|c| c.copy == copy)
            .map_or_else(|| copy.to_path_buf(), |c| c.source.clone())
    };
    if !report.intact() {
        return Err(BundleError::NotVerified(rejection(&report, &source_of)));
    }
    let warnings: Vec<String> = report
        .times
        .iter()
        .map(|t| {
            let mut t = t.clone();
            t.path = source_of(&t.path);
            t.to_string()
        })
        .collect();

    let records = report.records();
    let anchors = report.verified_anchors();
    let used: BTreeSet<&str> = records
        .iter()
        .map(|(_, v)| v.manifest.key_id.as_str())
        .chain(anchors.iter().map(|a| a.anchor.key_id.as_str()))
        .collect();
    let mut keys_used = Vec::new();
    for id in used {
        let bytes = key_files
            .get(id)
            .ok_or_else(|| BundleError::KeyFile(id.to_string()))?;
        write_new(root, &format!("{KEYS}/{id}.pub"), bytes, &mut sums)?;
        keys_used.push((id.to_string(), public_key_line(bytes)));
    }
    if !opts.tsa.is_empty() {
        let pem = opts.tsa.to_pem();
        write_new(root, &format!("{KEYS}/{TSA_CA}"), pem.as_bytes(), &mut sums)?;
    }
    write_new(root, VERIFY_SH, verify_script().as_bytes(), &mut sums)?;
    let contents = Contents {
        maker: opts.maker,
        keys: &keys_used,
        certificates: certificates(opts.tsa),
        copied: &copied,
        report: &report,
        warnings: &warnings,
    };
    write_new(root, REPORT, contents.html().as_bytes(), &mut sums)?;
    let listing: String = sums
        .iter()
        .map(|(path, sha)| format!("{}  {path}\n", hex::encode(sha)))
        .collect();
    write_new(root, SHA256SUMS, listing.as_bytes(), &mut BTreeMap::new())?;
    for dir in [root.join(EVIDENCE), root.join(KEYS), root.to_path_buf()] {
        fsutil::sync_dir(&dir).at("cannot write", &dir)?;
    }

    let anchored = records
        .iter()
        .filter(|(_, v)| report.anchor_of(v).is_some())
        .count();
    let kept = temp.keep();
    if let Err(e) = fs::rename(&kept, out) {
        let _ = fs::remove_dir_all(&kept);
        return Err(match e.raw_os_error() {
            Some(libc::ENOTEMPTY | libc::EEXIST | libc::ENOTDIR) => {
                BundleError::NotEmpty(out.to_path_buf())
            }
            _ => PathError {
                action: "cannot rename the finished bundle to",
                path: out.to_path_buf(),
                source: e,
            }
            .into(),
        });
    }
    fsutil::sync_dir(parent).at("cannot write", parent)?;
    Ok(Bundle {
        path: out.to_path_buf(),
        files: copied.len(),
        records: records.len(),
        anchors: anchors.len(),
        anchored,
        warnings,
    })
}

/// Each input and its name in the bundle, in the order given; one path named twice counts
/// once, two files of one name are refused.
fn evidence_names(files: &[PathBuf]) -> Result<Vec<(PathBuf, String)>, BundleError> {
    let mut seen: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut names = Vec::new();
    for path in files {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .filter(|n| {
                !n.is_empty()
                    && !n.starts_with('.')
                    && !n
                        .chars()
                        .any(|c| c.is_control() || is_bidi_control(c) || c == '\\')
            })
            .ok_or_else(|| BundleError::Name(path.clone()))?;
        if let Some(first) = seen.get(name) {
            let same = match (fs::canonicalize(first), fs::canonicalize(path)) {
                (Ok(a), Ok(b)) => a == b,
                _ => first == path,
            };
            if same {
                continue;
            }
            return Err(BundleError::SameName {
                first: first.clone(),
                second: path.clone(),
            });
        }
        seen.insert(name.to_string(), path.clone());
        names.push((path.clone(), name.to_string()));
    }
    Ok(names)
}

/// A Unicode bidirectional formatting character: it reorders the text around it when shown, so
/// a name holding one can print as another (the embeddings and overrides U+202A-U+202E, the
/// isolates U+2066-U+2069, the marks U+200E, U+200F and U+061C).
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}

/// The trusted key files given, by key id: the bytes of each file (a key directory's
/// `seal.pub`), to be copied as they are.
fn key_files(pubkeys: &[PathBuf]) -> Result<BTreeMap<String, Vec<u8>>, BundleError> {
    let mut files = BTreeMap::new();
    for path in pubkeys {
        let file = if path.is_dir() {
            path.join(keys::PUBLIC_KEY)
        } else {
            path.clone()
        };
        let bytes = fsutil::read_regular(&file).at("cannot read", &file)?;
        let bad = |reason: String| BundleError::PublicKey {
            path: file.clone(),
            reason,
        };
        let text = std::str::from_utf8(&bytes).map_err(|_| bad("not text".into()))?;
        let pk = minisign::PublicKeyBox::from_string(text)
            .and_then(|b| b.into_public_key())
            .map_err(|e| bad(e.to_string()))?;
        files.entry(keys::key_id(pk.keynum())).or_insert(bytes);
    }
    Ok(files)
}

/// The public key's line of a minisign key file (its base64), for the report.
fn public_key_line(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .lines()
        .find(|l| !l.is_empty() && !l.starts_with("untrusted comment:"))
        .unwrap_or_default()
        .to_string()
}

/// `out` must not exist, or be an empty directory.
fn check_out(out: &Path) -> Result<(), BundleError> {
    match fs::symlink_metadata(out) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(PathError {
            action: "cannot read",
            path: out.to_path_buf(),
            source: e,
        }
        .into()),
        Ok(meta) if meta.is_dir() => {
            let mut entries = fs::read_dir(out).at("cannot read", out)?;
            if entries.next().is_none() {
                Ok(())
            } else {
                Err(BundleError::NotEmpty(out.to_path_buf()))
            }
        }
        Ok(_) => Err(BundleError::NotEmpty(out.to_path_buf())),
    }
}

/// Copy `source` (a regular file) to the new file `dest`, fsynced; its SHA-256 and size.
fn copy_new(source: &Path, dest: &Path) -> Result<([u8; 32], u64), PathError> {
    let from = fsutil::open_regular(source).at("cannot open", source)?;
    let mut to = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(dest)
        .at("cannot create", dest)?;
    let copied = fsutil::copy_hashing(from, &mut to).at("cannot copy", source)?;
    to.sync_all().at("cannot write", dest)?;
    Ok(copied)
}

/// Write the new file `root/name`, fsynced, and note its SHA-256 in `sums`.
fn write_new(
    root: &Path,
    name: &str,
    bytes: &[u8],
    sums: &mut BTreeMap<String, [u8; 32]>,
) -> Result<(), PathError> {
    let path = root.join(name);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .at("cannot create", &path)?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .at("cannot write", &path)?;
    sums.insert(name.to_string(), Sha256::digest(bytes).into());
    Ok(())
}

/// What did not verify, named by the paths given rather than the copies'.
fn rejection(report: &SetReport, source_of: &dyn Fn(&Path) -> PathBuf) -> Rejection {
    let files = report
        .errors()
        .map(|(copy, err)| {
            let err = match err {
                VerifyError::Failed { check, reason } => VerifyError::Failed {
                    check: *check,
                    reason: reason.clone(),
                },
                VerifyError::Io(e) => VerifyError::Io(PathError {
                    action: e.action,
                    path: source_of(&e.path),
                    source: std::io::Error::new(e.source.kind(), e.source.to_string()),
                }),
            };
            (source_of(copy), err)
        })
        .collect();
    let mut chain: Vec<String> = report
        .chain
        .iter()
        .map(|issue| {
            let issue = match issue.clone() {
                ChainIssue::Fork {
                    key_id,
                    sequence,
                    paths,
                } => ChainIssue::Fork {
                    key_id,
                    sequence,
                    paths: paths.iter().map(|p| source_of(p)).collect(),
                },
                ChainIssue::BrokenLink {
                    key_id,
                    sequence,
                    path,
                } => ChainIssue::BrokenLink {
                    key_id,
                    sequence,
                    path: source_of(&path),
                },
                gap => gap,
            };
            issue.to_string()
        })
        .collect();
    chain.extend(report.times.iter().filter(|t| t.contradiction).map(|t| {
        let mut t = t.clone();
        t.path = source_of(&t.path);
        t.to_string()
    }));
    Rejection { files, chain }
}

/// The line that picks a sealed file's key in `verify.sh`: by the key id its manifest names.
const PICK_SEALED_KEY: &str = "PUB=$(key_file \"$(field key-id)\")\n";
/// The same for an anchor's head.
const PICK_ANCHOR_KEY: &str = "PUB=$(key_file \"$(m key-id)\")\n";

/// Indent every non-empty line by two spaces (a function body).
fn indent(text: &str) -> String {
    text.lines()
        .map(|l| {
            if l.is_empty() {
                "\n".to_string()
            } else {
                format!("  {l}\n")
            }
        })
        .collect()
}

/// The chain check of `verify.sh` (FORMAT.md sections 8 and 12), an awk program over the lines
/// the file checks leave, sorted by key and sequence:
/// `R KEY SEQUENCE MANIFEST-SHA256 PREVIOUS SEALED-AT-SECONDS RECORD-ID FILE-SHA256 SEALED-AT
/// FILE` per sealed file and `A KEY SEQUENCE MANIFEST-SHA256 PREVIOUS TSA-SECONDS TSA-TIME FILE`
/// per anchor (the file name last: it may hold spaces). It checks what
/// [`verify::check_chain`] and the records' times against their anchors check: forks and links
/// over records and anchored heads alike, gaps only where a key has a sealed file. It prints
/// `OK chain` or `FAILED chain` lines, then the facts verified of each record and anchor, and
/// exits 1 when the chain failed. (It is inside single quotes: no `'` in it.)
const CHAIN_AWK: &str = r#"
function issue(k, msg) { print "FAILED chain: key " k ": " msg; bad = 1; broken[k] = 1 }
function missing(a, b) { return a == b ? "sequence " a " is missing" : "sequences " a " to " b " are missing" }
# The fields from the n-th on, as they are (a file name may hold spaces).
function from(n,   s, i) { s = $0; for (i = 1; i < n; i++) sub(/^[^ ]+ /, "", s); return s }
# A place of the key (a sequence) read in full. Two manifests there, of records or anchored
# heads, are a fork; one that does not follow the one manifest of the sequence before is one
# too. Only sealed files fill a place: a gap between them means records were removed.
function close_place() {
  if (place < 0) return
  if (claims > 1) issue(key, "fork: " claims " different records or anchored heads claim sequence " place)
  else if (before >= 0 && before + 1 == place && bhash != "" && pprev != bhash) issue(key, "fork: sequence " place " does not follow sequence " before)
  if (held) {
    if (lastheld >= 0 && place > lastheld + 1) issue(key, "gap: " missing(lastheld + 1, place - 1) " (records were removed)")
    if (!(key in lo)) lo[key] = place
    hi[key] = place; lastheld = place
  }
  before = place; bhash = claims == 1 ? phash : ""
}
# The key read in full: a gap from its last sealed file up to its highest anchored head. A key
# with no sealed file here has no gap: its anchors stand alone.
function close_key() {
  close_place()
  if (lastheld >= 0 && place > lastheld) issue(key, "gap: " missing(lastheld + 1, place) " up to the anchored head (the last records were removed)")
}
NR == 1 || $2 != key { if (NR > 1) close_key(); key = $2; place = -1; before = -1; lastheld = -1 }
$3 + 0 != place { close_place(); place = $3 + 0; claims = 0; held = 0; split("", seen); phash = $4; pprev = $5 }
!($4 in seen) { seen[$4] = 1; claims++ }
$1 == "R" { held = 1; nr++; rk[nr] = key; rs[nr] = place; rt[nr] = $6 + 0; rid[nr] = $7; rsha[nr] = $8; rat[nr] = $9; rfile[nr] = from(10) }
$1 == "A" {
  na++; ak[na] = key; as[na] = place; ah[na] = $4; at[na] = $6 + 0; aiso[na] = $7; afile[na] = from(8)
  if (!(key in top) || place > top[key]) top[key] = place
}
END {
  if (NR > 0) close_key()
  for (r = 1; r <= nr; r++) {
    # Not sealed after the time of an anchor at or above it; the anchor covering it: of those,
    # the first stamped.
    c = 0; late = 0
    for (j = 1; j <= na; j++) if (ak[j] == rk[r] && as[j] >= rs[r]) {
      if (rt[r] > at[j]) late = 1
      if (c == 0 || at[j] < at[c] || (at[j] == at[c] && as[j] < as[c])) c = j
    }
    if (late) issue(rk[r], "time: sequence " rs[r] " says it was sealed after an anchor of its chain was stamped")
    covered[r] = c
  }
  for (k in hi) if (!(k in broken)) {
    line = "OK chain " k ": sequences " lo[k] " to " hi[k]
    if ((k in top) && top[k] >= lo[k]) line = line ", anchored up to " top[k]
    print line
  }
  if (nr + na > 0) print "Verified, per file (report.html renders these facts; this is what was checked):"
  for (r = 1; r <= nr; r++) {
    c = covered[r]
    tsa = c ? "TSA time " aiso[c] " (" afile[c] ")" : "not anchored"
    print "  record " rid[r] ": key " rk[r] ", sequence " rs[r] ", sealed-at " rat[r] ", file " rfile[r] ", SHA-256 " rsha[r] ", " tsa
  }
  for (j = 1; j <= na; j++)
    print "  anchor " afile[j] ": key " ak[j] ", head sequence " as[j] ", head manifest SHA-256 " ah[j] ", TSA time " aiso[j]
  exit bad
}
"#;

/// `verify.sh`: checks the bundle it sits in with coreutils, minisign and OpenSSL: SHA256SUMS,
/// each sealed file and anchor with the same steps `--explain` prints
/// (`verify::shell_checks`, `anchor::shell_checks`), then each key's chain
/// (`CHAIN_AWK`), and prints the facts it verified of each file.
pub fn verify_script() -> String {
    format!(
        r#"#!/bin/sh
# Check this callrec evidence bundle by hand, without callrec: sh verify.sh
#
# Needs GNU coreutils, minisign and openssl (and sed, grep and awk, which every Debian system
# has). It checks SHA256SUMS; each sealed file in evidence/ as docs/FORMAT.md section 8 of
# callrec says (the footer, the document's checksum and check byte, the signed manifest, its
# signature by the key it names, the hashes of the text info and of the media); each anchor as
# section 11 says (its head's signature, and the RFC 3161 time stamp over that head, with
# openssl ts, its certificates valid at the stamped time); and then the chain of each key
# across the files. It prints OK or FAILED for each, then the facts it verified of each record
# (id, key, sequence, sealed-at, the file's SHA-256, the TSA time of its anchor) and anchor, and
# exits 0 only when everything verified. report.html is a rendering of those facts for people,
# not itself proven: compare it with what this prints.
#
# What it trusts: the public keys in KEYS (KEYID.pub, default: keys/ here) and the TSA
# certificates in TSA_CA (default: keys/tsa-ca.pem). They came with the bundle: compare them
# with copies obtained from the sealer and the TSA yourself, or name those copies:
#   KEYS=/path/to/keys TSA_CA=/path/to/tsa-ca.pem sh verify.sh
set -u
HERE=$(pwd)
abs() {{ case $1 in /*) echo "$1" ;; *) echo "$HERE/$1" ;; esac; }}
if [ -n "${{KEYS:-}}" ]; then KEYS=$(abs "$KEYS"); else KEYS=keys; fi
if [ -n "${{TSA_CA:-}}" ]; then TSA_CA=$(abs "$TSA_CA"); else TSA_CA=keys/tsa-ca.pem; fi
cd "$(dirname "$0")" || exit 2
for tool in minisign openssl sha256sum od stat base64 date sort awk sed grep; do
  if ! command -v "$tool" > /dev/null 2>&1; then
    echo "verify.sh: $tool is needed: install it (Debian: apt-get install coreutils minisign openssl)" >&2
    exit 2
  fi
done
W=$(mktemp -d) || exit 2
trap 'rm -rf "$W"' EXIT
trap 'exit 2' HUP INT TERM
: > "$W/sealed"
: > "$W/anchor"
bad=0
n=0

# The trusted public key of a key id: KEYS/KEYID.pub.
key_file() {{
  case $1 in '' | *[!0-9A-F]*) return 1 ;; esac
  [ "${{#1}}" -eq 16 ] || return 1
  [ -f "$KEYS/$1.pub" ] || return 1
  echo "$KEYS/$1.pub"
}}

# A file name that cannot be printed as it is: a control character (a line break would forge
# lines of this output), or a Unicode bidirectional control (it reorders what is shown).
odd_name() {{
  case $1 in *[[:cntrl:]]*) return 0 ;; esac
  printf '%s' "$1" | LC_ALL=C grep -Eq "$(printf '\342\200[\216\217\252-\256]|\342\201[\246-\251]|\330\234')"
}}

# A sealed file, $1 (FORMAT.md section 8). Its place in its key's chain goes to $D/chain:
# R KEY-ID SEQUENCE MANIFEST-SHA256 PREVIOUS SEALED-AT(Unix seconds) RECORD-ID FILE-SHA256
# SEALED-AT FILE.
check_sealed() {{
  F=$1
{sealed}
  STEP=chain
  AT=$(date -u -d "$(field sealed-at)" +%s)
  FILE_SHA256=$(sha256sum < "$F" | cut -d ' ' -f 1)
  test "${{#FILE_SHA256}}" -eq 64
  echo "R $(field key-id) $(field sequence) $(sha256sum < "$D/manifest" | cut -d ' ' -f 1) $(field previous) $AT $(field record-id) $FILE_SHA256 $(field sealed-at) $F" > "$D/chain"
}}

# An anchor file, $1 (FORMAT.md section 11). Its head goes to $D/chain:
# A KEY-ID SEQUENCE MANIFEST-SHA256 PREVIOUS TSA-TIME(Unix seconds) TSA-TIME FILE.
check_anchor() {{
  A=$1
{anchor}
  echo "A $(m key-id) $(m sequence) $H $(m previous) $TS $(date -u -d "@$TS" +%Y-%m-%dT%H:%M:%SZ) $A" > "$D/chain"
}}

# 1. SHA256SUMS: no file of the bundle changed, and every file is listed.
if sha256sum --quiet --strict -c {sums}; then
  echo "OK {sums}"
else
  echo "FAILED {sums}: a file of the bundle was changed or is missing"
  bad=1
fi
for f in {evidence}/* {keys}/* {report} {verify}; do
  [ -e "$f" ] || continue
  if odd_name "$f"; then
    echo "FAILED: a file's name holds a control or bidirectional character"
    bad=1
  elif ! awk -v f="$f" 'substr($0, 67) == f {{ found = 1 }} END {{ exit !found }}' {sums}; then
    echo "FAILED $f: not listed in {sums}"
    bad=1
  fi
done

# 2. Each file, one line each: OK, or FAILED and the check that failed.
for f in {evidence}/*; do
  [ -e "$f" ] || continue
  n=$((n + 1))
  odd_name "$f" && continue
  D="$W/$n"
  mkdir "$D"
  case $f in *.anchor) kind=anchor ;; *) kind=sealed ;; esac
  (
    trap 'echo "$STEP" > "$D/step"' EXIT
    set -eu
    STEP=start
    "check_$kind" "$f"
  ) > "$D/log" 2>&1
  if [ "$?" -eq 0 ]; then
    echo "OK $f"
    cat "$D/chain" >> "$W/$kind"
  else
    echo "FAILED $f: the $(cat "$D/step" 2> /dev/null) check"
    sed -e '/^Signature and comment signature verified$/d' -e '/^Trusted comment: /d' \
      -e '/^Verification: OK$/d' -e 's/^/    /' "$D/log" | tail -n 3
    bad=1
  fi
done
if [ "$n" -eq 0 ]; then
  echo "FAILED: no evidence files"
  bad=1
fi

# 3. The chain of each key (FORMAT.md section 8), over the records and the anchored heads: no
# two different manifests claim one sequence; each manifest's previous is the SHA-256 of the
# manifest at the sequence before it, when there is one; every sequence from the lowest record
# present to the highest present or anchored is a record present (a key with no record here
# has no gap: its anchors stand alone); no record says it was sealed after the TSA time of an
# anchor at or above it. Then what was verified of each file.
cat "$W/sealed" "$W/anchor" | sort -k2,2 -k3,3n | awk '{chain}' || bad=1

if [ "$bad" -eq 0 ]; then
  echo "all $n files verified"
  exit 0
fi
echo "FAILED: this bundle does not verify"
exit 1
"#,
        sealed = indent(&verify::shell_checks(PICK_SEALED_KEY, None)),
        anchor = indent(&anchor::shell_checks(PICK_ANCHOR_KEY)),
        chain = CHAIN_AWK.trim(),
        sums = SHA256SUMS,
        evidence = EVIDENCE,
        keys = KEYS,
        report = REPORT,
        verify = VERIFY_SH,
    )
}

/// A trusted TSA certificate, as the report shows it.
struct Certificate {
    subject: String,
    issuer: String,
    not_before: String,
    not_after: String,
    sha256: [u8; 32],
}

fn certificates(tsa: &TsaTrust) -> Vec<Certificate> {
    use der::Encode;
    if tsa.is_empty() {
        // (x509-cert 0.2.5's load_pem_chain panics on empty input.)
        return Vec::new();
    }
    let pem = tsa.to_pem();
    x509_cert::Certificate::load_pem_chain(pem.as_bytes())
        .unwrap_or_default()
        .iter()
        .map(|c| {
            let tbs = &c.tbs_certificate;
            Certificate {
                subject: tbs.subject.to_string(),
                issuer: tbs.issuer.to_string(),
                not_before: tbs.validity.not_before.to_string(),
                not_after: tbs.validity.not_after.to_string(),
                sha256: Sha256::digest(c.to_der().unwrap_or_default()).into(),
            }
        })
        .collect()
}

/// Escape text for HTML (element content and quoted attributes).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A label: the Chinese first, the English beside it (both trusted constants).
fn label(zh: &str, en: &str) -> String {
    format!(r#"{zh} <span class="en">{en}</span>"#)
}

/// A time in UTC, with Beijing time beside it.
fn when(t: DateTime<Utc>) -> String {
    let beijing = FixedOffset::east_opt(8 * 3600).expect("UTC+8 is an offset");
    format!(
        r#"{} UTC <span class="en">（北京时间 {}）</span>"#,
        t.format("%Y-%m-%d %H:%M:%S"),
        t.with_timezone(&beijing).format("%Y-%m-%d %H:%M:%S")
    )
}

/// A count of bytes with thousands separated.
fn bytes(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    format!(r#"{out} 字节 <span class="en">bytes</span>"#)
}

fn code(text: &str) -> String {
    format!("<code>{}</code>", escape(text))
}

fn hash(bytes: &[u8]) -> String {
    format!(r#"<code class="hash">{}</code>"#, hex::encode(bytes))
}

/// The manifest's `health` fact in words.
fn health(value: Option<&str>) -> String {
    let Some(value) = value else {
        return label("未检查", "not checked (not recorded by callrec-capture)");
    };
    if value == "ok" {
        return label("正常", "ok");
    }
    value
        .split(' ')
        .map(|flag| match flag {
            "silent-audio" => label("音频无声", "silent audio"),
            "missing-audio" => label("缺少音频", "no audio stream"),
            "missing-video" => label("缺少视频", "no video stream"),
            "duration-drift" => label("时长与时钟不符", "duration far from the wall clock"),
            "interrupted" => label(
                "录制被中断",
                "capture killed; completed from what it had written",
            ),
            other => match other.strip_prefix("silent-channel-") {
                Some(n) => format!(
                    r#"第 {n} 声道无声 <span class="en">channel {n} silent</span>"#,
                    n = escape(n)
                ),
                None => code(other),
            },
        })
        .collect::<Vec<_>>()
        .join("；")
}

/// The manifest's `watermark` fact in words.
fn watermark(value: Option<&str>) -> String {
    match value {
        None => label("未说明", "not stated"),
        Some("none") => label("无", "none: the media is as recorded"),
        Some(how) => format!(
            "{}：{}",
            label("已烧录可见水印", "visible watermark burnt in"),
            code(how)
        ),
    }
}

/// What is in a bundle, for its report.
struct Contents<'a> {
    maker: &'a Maker,
    /// Key ids and their public keys (base64).
    keys: &'a [(String, String)],
    certificates: Vec<Certificate>,
    copied: &'a [Copied],
    report: &'a SetReport,
    warnings: &'a [String],
}

/// One sealed file of the bundle.
struct Item<'a> {
    copied: &'a Copied,
    verified: &'a Verified,
}

const STYLE: &str = r#"
@page { size: A4; margin: 16mm 14mm 18mm 14mm; }
html { font-family: "Noto Sans CJK SC", "Source Han Sans SC", "PingFang SC", "Microsoft YaHei", "WenQuanYi Micro Hei", sans-serif; font-size: 10pt; line-height: 1.45; color: #111; background: #fff; }
body { max-width: 182mm; margin: 0 auto; padding: 8mm 0; }
h1 { font-size: 17pt; margin: 0 0 2mm; }
h1 .en { display: block; font-size: 12pt; font-weight: normal; }
h2 { font-size: 12.5pt; border-bottom: 1.5px solid #111; padding-bottom: 1mm; margin: 7mm 0 3mm; break-after: avoid; page-break-after: avoid; }
h3 { font-size: 10.5pt; margin: 4mm 0 1.5mm; break-after: avoid; page-break-after: avoid; }
.en { color: #444; font-weight: normal; }
table { border-collapse: collapse; width: 100%; margin: 0 0 3mm; }
th, td { border: 0.6pt solid #777; padding: 0.7mm 1.8mm; text-align: left; vertical-align: top; }
th { background: #eee; font-weight: bold; }
table.facts { font-size: 8.8pt; }
table.facts th { width: 32%; }
tr { break-inside: avoid; page-break-inside: avoid; }
code { font-family: "DejaVu Sans Mono", "Noto Sans Mono", Consolas, monospace; font-size: 8.6pt; }
code.hash, code.key { word-break: break-all; }
.verdict { border: 1.5pt solid #111; padding: 2.5mm 3mm; margin: 4mm 0; font-size: 11pt; }
.ok { font-weight: bold; }
.record { break-inside: avoid; page-break-inside: avoid; }
h3.history { border-top: 1pt solid #777; padding-top: 2mm; margin-top: 5mm; }
.history-note { margin: 0 0 1mm; }
.sign { break-inside: avoid; page-break-inside: avoid; }
.note { font-size: 9pt; color: #333; }
.sign td { height: 12mm; }
footer { margin-top: 8mm; font-size: 8.5pt; color: #444; border-top: 0.6pt solid #777; padding-top: 2mm; }
@media print {
  body { max-width: none; padding: 0; }
  th { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
"#;

impl Contents<'_> {
    /// The sealed files, by key and sequence.
    fn items(&self) -> Vec<Item<'_>> {
        let mut items: Vec<Item> = self
            .report
            .sealed
            .iter()
            .filter_map(|(copy, result)| {
                let verified = result.as_ref().ok()?.as_ref()?;
                let copied = self.copied.iter().find(|c| &c.copy == copy)?;
                Some(Item { copied, verified })
            })
            .collect();
        items.sort_by(|a, b| {
            let key = |i: &Item| {
                (
                    i.verified.manifest.key_id.clone(),
                    i.verified.manifest.sequence,
                    i.copied.name.clone(),
                )
            };
            key(a).cmp(&key(b))
        });
        items
    }

    fn name_of(&self, copy: &Path) -> String {
        self.copied
            .iter()
            .find(|c| c.copy == copy)
            .map_or_else(|| copy.display().to_string(), |c| c.name.clone())
    }

    fn html(&self) -> String {
        let items = self.items();
        let anchors = self.report.verified_anchors();
        let files = self.copied.len();
        format!(
            r#"<!DOCTYPE html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="generator" content="callrec {version}">
<title>通话录音证据包 保管链报告 Call recording evidence bundle: chain-of-custody report</title>
<style>{STYLE}</style>
</head>
<body>
<h1>通话录音证据包 · 保管链报告<span class="en">Call recording evidence bundle · chain-of-custody report</span></h1>
<p class="verdict ok">验证结论：本证据包的全部 {files} 个文件均验证通过，各签名密钥的记录链完整。<br><span class="en">Verdict: all {files} files of this bundle verified, and the chain of every signing key is complete.</span></p>
{made}
{trust}
{records}
{anchors}
{chains}
{check}
{handover}
<footer>{footer}</footer>
</body>
</html>
"#,
            version = escape(&self.maker.version),
            made = self.made(items.len(), anchors.len()),
            trust = self.trust(),
            records = self.records(&items),
            anchors = self.anchors(&anchors),
            chains = self.chains(&items, &anchors),
            check = self.how_to_check(),
            handover = HANDOVER,
            footer = label(
                "本报告由 callrec 生成；只列出经签名的清单事实与文件哈希，不含加密的文本信息（个人数据）。",
                "Made by callrec from the signed manifests and the files' hashes; the encrypted text info (personal data) is not in it."
            ),
        )
    }

    fn made(&self, records: usize, anchors: usize) -> String {
        let m = self.maker;
        let row = |l: String, v: String| format!("<tr><th>{l}</th><td>{v}</td></tr>\n");
        let empty = |s: &str| {
            if s.is_empty() {
                label("未知", "unknown")
            } else {
                code(s)
            }
        };
        format!(
            "<h2>一、制作信息 <span class=\"en\">Bundle made</span></h2>\n<table class=\"facts\">\n{}{}{}{}{}</table>\n",
            row(label("制作时间", "Made at"), when(m.at)),
            row(label("主机", "Host"), empty(&m.host)),
            row(label("操作用户", "User"), empty(&m.user)),
            row(label("软件", "Software"), format!("callrec {}", escape(&m.version))),
            row(
                label("文件", "Files"),
                format!(
                    r#"{records} 条封存记录，{anchors} 个锚定文件 <span class="en">{records} sealed records, {anchors} anchor files</span>"#
                )
            ),
        )
    }

    fn trust(&self) -> String {
        let mut out = String::from(
            "<h2>二、信任的密钥与证书 <span class=\"en\">Trusted keys and certificates</span></h2>\n",
        );
        out.push_str(&format!(
            "<p class=\"note\">{}</p>\n",
            label(
                "核验结果依赖这些密钥与证书：请与封存单位及时间戳机构另行提供的副本比对。",
                "The verdict rests on these keys and certificates: compare them with copies obtained from the sealer and the TSA independently."
            )
        ));
        out.push_str(&format!(
            "<h3>{}</h3>\n<table>\n<tr><th>{}</th><th>{}</th><th>{}</th></tr>\n",
            label("封存签名公钥", "Seal signing keys (minisign, Ed25519)"),
            label("密钥编号", "Key ID"),
            label("公钥", "Public key"),
            label("文件", "File"),
        ));
        for (id, line) in self.keys {
            out.push_str(&format!(
                "<tr><td>{}</td><td><code class=\"key\">{}</code></td><td>{}</td></tr>\n",
                code(id),
                escape(line),
                code(&format!("{KEYS}/{id}.pub"))
            ));
        }
        out.push_str("</table>\n");
        if self.certificates.is_empty() {
            out.push_str(&format!(
                "<p>{}</p>\n",
                label(
                    "未提供可信时间戳机构证书（本证据包不含锚定）。",
                    "No trusted TSA certificate (this bundle holds no anchor)."
                )
            ));
            return out;
        }
        out.push_str(&format!(
            "<h3>{} <span class=\"en\">({})</span></h3>\n",
            label(
                "可信时间戳机构证书",
                "Trusted time-stamp authority (TSA) certificates"
            ),
            code(&format!("{KEYS}/{TSA_CA}"))
        ));
        for c in &self.certificates {
            out.push_str(&format!(
                "<table class=\"facts\">\n<tr><th>{}</th><td>{}</td></tr>\n<tr><th>{}</th><td>{}</td></tr>\n<tr><th>{}</th><td>{} — {}</td></tr>\n<tr><th>{}</th><td>{}</td></tr>\n</table>\n",
                label("主题", "Subject"),
                code(&c.subject),
                label("颁发者", "Issuer"),
                code(&c.issuer),
                label("有效期", "Valid"),
                escape(&c.not_before),
                escape(&c.not_after),
                label("SHA-256 指纹", "SHA-256 fingerprint"),
                hash(&c.sha256),
            ));
        }
        out
    }

    /// The records, each history of corrections together, in key and sequence order.
    fn records(&self, items: &[Item]) -> String {
        let histories = &self.report.histories;
        let history_of = |item: &Item| {
            histories
                .iter()
                .position(|h| h.versions.iter().any(|v| v.path == item.copied.copy))
        };
        let mut out = format!(
            "<h2>三、记录 <span class=\"en\">Records</span></h2>\n<p class=\"note\">{}</p>\n",
            label(
                "每条记录的媒体与文本信息均由签名清单中的 SHA-256 保护；“封存时间”取自封存计算机的时钟，可信时间见“时间戳”。更正记录与其原始记录列在一起。",
                "Each record's media and text info are bound by SHA-256 in its signed manifest. \"Sealed at\" is the sealing computer's clock; the trusted time is the time stamp's. Corrections are listed with their original."
            )
        );
        let mut shown = BTreeSet::new();
        for item in items {
            match history_of(item) {
                Some(h) if shown.insert(h) => out.push_str(&self.history(&histories[h], items)),
                Some(_) => {}
                None => out.push_str(&self.record(item, None, "")),
            }
        }
        out
    }

    fn history(&self, history: &History, items: &[Item]) -> String {
        // The history's title goes into its first record's block, so no page break parts them.
        let mut lead = format!(
            "<h3 class=\"history\">{}：{}</h3>\n<p class=\"note history-note\">{}</p>\n",
            label("记录历史", "History of record"),
            code(&history.record_id),
            label(
                "原始记录在前，其后为各次更正，按封存先后排列；原始记录从不被修改。",
                "The original first, then each correction in the order sealed; the original is never changed."
            )
        );
        let mut out = String::new();
        for version in &history.versions {
            if let Some(item) = items.iter().find(|i| i.copied.copy == version.path) {
                let role = match version.corrects() {
                    Some(_) => label("更正记录", "Correction"),
                    None => label("原始记录", "Original"),
                };
                out.push_str(&self.record(item, Some(role), &std::mem::take(&mut lead)));
            }
        }
        out
    }

    /// One record's block; `lead` goes first in it (a history's title).
    fn record(&self, item: &Item, role: Option<String>, lead: &str) -> String {
        let m = &item.verified.manifest;
        let row = |l: String, v: String| format!("<tr><th>{l}</th><td>{v}</td></tr>\n");
        let mut rows = String::new();
        rows += &row(label("记录编号", "Record ID"), code(m.record_id.as_str()));
        rows += &row(
            label("文件名", "File name"),
            code(&format!("{EVIDENCE}/{}", item.copied.name)),
        );
        rows += &row(label("文件大小", "File size"), bytes(item.copied.size));
        rows += &row(
            label("文件 SHA-256", "File SHA-256"),
            hash(&item.copied.sha256),
        );
        if m.media_size == 0 {
            rows += &row(
                label("媒体", "Media"),
                label(
                    "无（更正记录不含媒体）",
                    "none (a correction holds no media)",
                ),
            );
        } else {
            rows += &row(label("媒体大小", "Media size"), bytes(m.media_size));
            rows += &row(
                label("媒体 SHA-256", "Media SHA-256"),
                hash(&m.media_sha256),
            );
        }
        rows += &row(label("签名密钥", "Signing key"), code(&m.key_id));
        rows += &row(label("链序号", "Sequence"), m.sequence.to_string());
        rows += &row(label("封存时间", "Sealed at"), when(m.sealed_at));
        rows += &row(
            label("录制状态", "Recording health"),
            health(m.extra("health")),
        );
        rows += &row(
            label("可见水印", "Watermark"),
            watermark(m.extra("watermark")),
        );
        if let Some(source) = m.extra("source-sha256") {
            rows += &row(
                label(
                    "水印前录音 SHA-256",
                    "Source SHA-256 (before the watermark)",
                ),
                format!(r#"<code class="hash">{}</code>"#, escape(source)),
            );
        }
        let cipher = match m.text_cipher {
            crate::format::Cipher::Age => label(
                "age 加密；本报告不含其内容",
                "encrypted with age; not shown in this report",
            ),
            crate::format::Cipher::Table => label(
                "替换表编码（不保密）；本报告不含其内容",
                "substitution table (not confidential); not shown in this report",
            ),
        };
        rows += &row(label("文本信息", "Text info"), cipher);
        if let Some(corrects) = m.extra("corrects") {
            let (id, manifest) = corrects.split_once(' ').unwrap_or((corrects, ""));
            rows += &row(
                label("更正对象", "Corrects"),
                format!(
                    "{} <span class=\"en\">(清单 manifest SHA-256</span> <code class=\"hash\">{}</code><span class=\"en\">)</span>",
                    code(id),
                    escape(manifest)
                ),
            );
        }
        // sidecar-mac is the sealer's own check of its spool, which no reader can use.
        let shown = [
            "health",
            "watermark",
            "source-sha256",
            "corrects",
            "sidecar-mac",
        ];
        let others: Vec<String> = m
            .extra
            .iter()
            .filter(|(name, _)| !shown.contains(&name.as_str()))
            .map(|(name, value)| {
                format!(
                    r#"<code>{}</code>: <code class="hash">{}</code>"#,
                    escape(name),
                    escape(value)
                )
            })
            .collect();
        if !others.is_empty() {
            rows += &row(label("其他清单事实", "Other facts"), others.join("<br>"));
        }
        rows += &row(
            label("时间戳", "Trusted time"),
            match self.report.anchor_of(item.verified) {
                Some(a) => format!(
                    "{}<br>{} {}<br>{} {}",
                    when(a.stamp.time),
                    label("机构", "TSA"),
                    code(&a.stamp.tsa),
                    label("锚定文件", "anchor"),
                    code(&format!("{EVIDENCE}/{}", self.name_of(&a.path)))
                ),
                None => label("未锚定", "not anchored"),
            },
        );
        rows += &row(
            label("验证结果", "Verification"),
            format!(
                r#"<span class="ok">通过</span> <span class="en">verified</span>：{}"#,
                code("footer, media-checksum, check-byte, manifest, signature, text-sha256, text, media-sha256, chain")
            ),
        );
        let title = match role {
            Some(role) => format!("{role}：{}", code(m.record_id.as_str())),
            None => format!(
                "{}：{}",
                label("记录", "Record"),
                code(m.record_id.as_str())
            ),
        };
        format!("<div class=\"record\">\n{lead}<h3>{title}</h3>\n<table class=\"facts\">\n{rows}</table>\n</div>\n")
    }

    fn anchors(&self, anchors: &[VerifiedAnchor]) -> String {
        let mut out = format!(
            "<h2>四、锚定 <span class=\"en\">Anchors</span></h2>\n<p class=\"note\">{}</p>\n",
            label(
                "锚定文件含时间戳机构（RFC 3161）对某密钥链头清单哈希的时间戳：证明该链头及其之前的全部记录不晚于该时间已存在，且其后的记录未被删除。",
                "An anchor holds a time-stamp authority's RFC 3161 token over the manifest hash of a key's chain head: the head, and every earlier record of the key, existed by that time, and no record up to the head was removed."
            )
        );
        if anchors.is_empty() {
            out.push_str(&format!("<p>{}</p>\n", label("无", "none")));
            return out;
        }
        let mut anchors: Vec<&VerifiedAnchor> = anchors.iter().collect();
        anchors.sort_by(|a, b| {
            (&a.anchor.key_id, a.anchor.sequence, a.stamp.time).cmp(&(
                &b.anchor.key_id,
                b.anchor.sequence,
                b.stamp.time,
            ))
        });
        for a in anchors {
            let row = |l: String, v: String| format!("<tr><th>{l}</th><td>{v}</td></tr>\n");
            out.push_str(&format!(
                "<div class=\"record\">\n<table class=\"facts\">\n{}{}{}{}{}{}{}{}</table>\n</div>\n",
                row(
                    label("锚定文件", "Anchor file"),
                    code(&format!("{EVIDENCE}/{}", self.name_of(&a.path)))
                ),
                row(label("签名密钥", "Key"), code(&a.anchor.key_id)),
                row(label("链头序号", "Head sequence"), a.anchor.sequence.to_string()),
                row(
                    label("链头清单 SHA-256", "Head manifest SHA-256"),
                    hash(&a.anchor.manifest_sha256)
                ),
                row(label("时间戳时间", "TSA time"), when(a.stamp.time)),
                row(label("时间戳机构", "TSA"), code(&a.stamp.tsa)),
                row(label("请求地址", "Asked at"), code(&a.anchor.tsa)),
                row(
                    label("验证结果", "Verification"),
                    format!(
                        r#"<span class="ok">通过</span> <span class="en">verified</span>：{}"#,
                        code("anchor, manifest, signature, timestamp (trusted TSA)")
                    )
                ),
            ));
        }
        out
    }

    fn chains(&self, items: &[Item], anchors: &[VerifiedAnchor]) -> String {
        let mut out = format!(
            "<h2>五、记录链 <span class=\"en\">Chains</span></h2>\n<p class=\"note\">{}</p>\n<table>\n<tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>\n",
            label(
                "每个签名密钥的记录按序号成链，每条记录含前一条清单的 SHA-256：删除或插入记录都会留下缺口或分叉。",
                "Each key's seals form a chain by sequence, each holding the SHA-256 of the manifest before it: a record removed or inserted leaves a gap or a fork."
            ),
            label("签名密钥", "Key"),
            label("序号", "Sequences"),
            label("记录数", "Records"),
            label("锚定至", "Anchored up to"),
            label("结果", "Result"),
        );
        let mut keys: BTreeMap<&str, (u64, u64, usize)> = BTreeMap::new();
        for item in items {
            let m = &item.verified.manifest;
            let entry = keys
                .entry(m.key_id.as_str())
                .or_insert((m.sequence, m.sequence, 0));
            entry.0 = entry.0.min(m.sequence);
            entry.1 = entry.1.max(m.sequence);
            entry.2 += 1;
        }
        for (key, (low, high, count)) in keys {
            let top = anchors
                .iter()
                .filter(|a| a.anchor.key_id == key)
                .max_by_key(|a| (a.anchor.sequence, std::cmp::Reverse(a.stamp.time)));
            let anchored = match top {
                // An anchor below every record here dates none of them.
                Some(a) if a.anchor.sequence < low => format!(
                    "{}<br><span class=\"note\">锚定的链头（序号 {s}）早于这些记录 <span class=\"en\">the anchored head (sequence {s}) is before these records</span></span>",
                    label("未锚定", "not anchored"),
                    s = a.anchor.sequence
                ),
                Some(a) => format!(
                    "{}<br><span class=\"note\">{}</span>",
                    a.anchor.sequence,
                    when(a.stamp.time)
                ),
                None => label("未锚定", "not anchored"),
            };
            out.push_str(&format!(
                "<tr><td>{}</td><td>{low} – {high}</td><td>{count}</td><td>{anchored}</td><td><span class=\"ok\">完整</span> <span class=\"en\">complete</span></td></tr>\n",
                code(key),
            ));
        }
        out.push_str("</table>\n");
        for warning in self.warnings {
            out.push_str(&format!(
                "<p class=\"note\">{}：{}</p>\n",
                label("注意", "Note"),
                escape(warning)
            ));
        }
        out
    }

    fn how_to_check(&self) -> String {
        format!(
            r#"<h2>六、自行核验 <span class="en">How to check this bundle</span></h2>
<p>{}</p>
<p><b>{}</b></p>
<table class="facts">
<tr><th>{}</th><td><code>sh {VERIFY_SH}</code></td></tr>
<tr><th>{}</th><td><code>sha256sum -c {SHA256SUMS}</code></td></tr>
<tr><th>{}</th><td><code>KEYS=/path/to/keys TSA_CA=/path/to/tsa-ca.pem sh {VERIFY_SH}</code></td></tr>
</table>
<p class="note">{}</p>
"#,
            label(
                "无需 callrec：在任何装有 GNU coreutils、minisign 与 openssl 的计算机上，于本目录运行以下命令。每个文件输出一行 OK 或 FAILED，最后一行为 “all N files verified”。",
                "No callrec needed: on any computer with GNU coreutils, minisign and openssl, run these in this directory. It prints OK or FAILED for each file and ends with \"all N files verified\"."
            ),
            label(
                "本报告只是对已验证事实的呈现，本身不构成证明：任何人都可以修改它并重新生成 SHA256SUMS。经证明的是 verify.sh 的输出（使用您信任的密钥与证书）：它逐条列出所核验的事实（记录编号、签名密钥、链序号、封存时间、文件 SHA-256 及其锚定的时间戳时间），请与本报告逐项比对。",
                "This report is a rendering of the verified facts and proves nothing by itself: anyone can edit it and remake SHA256SUMS. What is proven is what verify.sh prints, with keys and certificates you trust: it lists the facts it verified of each record (record ID, key, sequence, sealed-at, the file's SHA-256 and the TSA time of its anchor). Compare them with this report."
            ),
            label("全部核验", "Check everything"),
            label("仅核对文件完整", "File checksums only"),
            label("使用自备的密钥与证书", "With your own copies of the keys"),
            label(
                "格式说明见 callrec 的 docs/FORMAT.md（第 8、11、12 节）：封存文件可由任何人独立实现的程序核验。",
                "The format is specified in callrec's docs/FORMAT.md (sections 8, 11 and 12): anyone can write an independent verifier from it."
            ),
        )
    }
}

const HANDOVER: &str = r#"<h2>七、移交签收 <span class="en">Hand-over</span></h2>
<table class="sign">
<tr><th style="width:25%">移交人 <span class="en">Handed over by</span></th><td></td><th style="width:15%">日期 <span class="en">Date</span></th><td style="width:22%"></td></tr>
<tr><th>接收人 <span class="en">Received by</span></th><td></td><th>日期 <span class="en">Date</span></th><td></td></tr>
</table>
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_everything_html_gives_meaning_to() {
        assert_eq!(
            escape(r#"<script>alert('x') & "y"</script>"#),
            "&lt;script&gt;alert(&#39;x&#39;) &amp; &quot;y&quot;&lt;/script&gt;"
        );
        assert_eq!(escape("李霞"), "李霞");
    }

    #[test]
    fn health_and_watermark_read_in_both_languages() {
        assert!(health(Some("ok")).starts_with("正常"));
        let flags = health(Some("silent-channel-2 interrupted"));
        assert!(flags.contains("第 2 声道无声"), "{flags}");
        assert!(flags.contains("录制被中断"), "{flags}");
        assert!(health(Some("<b>")).contains("&lt;b&gt;"));
        assert!(health(None).starts_with("未检查"));
        assert!(watermark(Some("drawtext libx264 preset=veryfast crf=23")).contains("crf=23"));
    }

    #[test]
    fn numbers_and_times_are_printed_for_people() {
        assert!(bytes(1234567).starts_with("1,234,567 字节"));
        assert!(bytes(12).starts_with("12 字节"));
        let t: DateTime<Utc> = "2026-11-27T16:30:00Z".parse().unwrap();
        let shown = when(t);
        assert!(shown.starts_with("2026-11-27 16:30:00 UTC"), "{shown}");
        assert!(shown.contains("北京时间 2026-11-28 00:30:00"), "{shown}");
    }

    #[test]
    fn names_a_bundle_cannot_keep_are_refused() {
        let t = tempfile::tempdir().unwrap();
        let a = t.path().join("a");
        let b = t.path().join("b");
        fs::create_dir_all(&a).unwrap();
        fs::create_dir_all(&b).unwrap();
        for p in [a.join("x.sealed.wav"), b.join("x.sealed.wav")] {
            fs::write(&p, "x").unwrap();
        }
        // One file named twice is one file; two files of one name are refused.
        let once = evidence_names(&[a.join("x.sealed.wav"), a.join("../a/x.sealed.wav")]).unwrap();
        assert_eq!(once.len(), 1);
        assert!(matches!(
            evidence_names(&[a.join("x.sealed.wav"), b.join("x.sealed.wav")]),
            Err(BundleError::SameName { .. })
        ));
        for bad in [
            "a\\b.sealed",
            "a\nb.sealed",
            ".hidden.sealed",
            "call-\u{202E}vaw.sealed",
            "a\u{2066}b.sealed",
            "a\u{200F}b.sealed",
        ] {
            assert!(
                matches!(
                    evidence_names(&[t.path().join(bad)]),
                    Err(BundleError::Name(_))
                ),
                "{bad:?}"
            );
        }
        assert!(evidence_names(&[t.path().join("通话 1.sealed.wav")]).is_ok());
    }

    #[test]
    fn the_bundle_directory_must_be_new_or_empty() {
        let t = tempfile::tempdir().unwrap();
        assert!(check_out(&t.path().join("new")).is_ok());
        assert!(check_out(t.path()).is_ok());
        fs::write(t.path().join("f"), "x").unwrap();
        assert!(matches!(check_out(t.path()), Err(BundleError::NotEmpty(_))));
        assert!(matches!(
            check_out(&t.path().join("f")),
            Err(BundleError::NotEmpty(_))
        ));
    }

    /// verify.sh's chain check on the lines its file checks leave, sorted as it sorts them:
    /// its exit code and output.
    fn chain(lines: &[String]) -> (i32, String) {
        use std::process::{Command, Stdio};
        let mut child = Command::new("sh")
            .args(["-c", "sort -k2,2 -k3,3n | awk \"$1\"", "sh", CHAIN_AWK])
            .env("LC_ALL", "C")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let input: String = lines.iter().map(|l| format!("{l}\n")).collect();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        (
            out.status.code().unwrap(),
            String::from_utf8(out.stdout).unwrap(),
        )
    }

    /// A sealed file's line: key K, `sequence`, its manifest `hash`, `previous`, sealed at
    /// `at` (Unix seconds).
    fn r(sequence: u64, hash: &str, previous: &str, at: u64) -> String {
        format!("R K {sequence} {hash} {previous} {at} rec-{sequence} f{sequence} T{at} evidence/call {sequence}.sealed.wav")
    }

    /// An anchor's line: key K, the head's `sequence`, `hash` and `previous`, stamped at `at`.
    fn a(sequence: u64, hash: &str, previous: &str, at: u64, name: &str) -> String {
        format!("A K {sequence} {hash} {previous} {at} TSA{at} evidence/{name}.anchor")
    }

    #[test]
    fn verify_sh_checks_the_chain_as_callrec_does() {
        let ok = |lines: &[String]| {
            let (code, out) = chain(lines);
            assert_eq!(code, 0, "{lines:?}\n{out}");
            assert!(!out.contains("FAILED"), "{out}");
            out
        };
        let failed = |lines: &[String], what: &str| {
            let (code, out) = chain(lines);
            assert_eq!(code, 1, "{lines:?}\n{out}");
            assert!(
                out.contains(&format!("FAILED chain: key K: {what}")),
                "{what}: {out}"
            );
            out
        };
        // Intact, anchored; identical copies of one record count once.
        let out = ok(&[
            r(2, "m2", "m1", 20),
            r(1, "m1", "z", 10),
            r(1, "m1", "z", 10),
            a(2, "m2", "m1", 30, "k.2"),
        ]);
        assert!(
            out.contains("OK chain K: sequences 1 to 2, anchored up to 2\n"),
            "{out}"
        );
        assert!(
            out.contains("  record rec-1: key K, sequence 1, sealed-at T10, file evidence/call 1.sealed.wav, SHA-256 f1, TSA time TSA30 (evidence/k.2.anchor)\n"),
            "{out}"
        );
        assert!(out.contains("  anchor evidence/k.2.anchor: key K, head sequence 2, head manifest SHA-256 m2, TSA time TSA30\n"), "{out}");
        // The first-stamped anchor at or above a record covers it.
        let out = ok(&[
            r(1, "m1", "z", 10),
            r(2, "m2", "m1", 20),
            a(2, "m2", "m1", 40, "late"),
            a(1, "m1", "z", 30, "early"),
        ]);
        assert!(out.contains("sequence 2, sealed-at T20, file evidence/call 2.sealed.wav, SHA-256 f2, TSA time TSA40 (evidence/late.anchor)"), "{out}");
        assert!(out.contains("sequence 1, sealed-at T10, file evidence/call 1.sealed.wav, SHA-256 f1, TSA time TSA30 (evidence/early.anchor)"), "{out}");
        // An anchor alone: no gap, nothing to compare (callrec bundles it).
        ok(&[a(2, "m2", "m1", 30, "alone")]);
        // Records after the anchored head: it dates none of them.
        let out = ok(&[
            r(5, "m5", "m4", 50),
            r(6, "m6", "m5", 60),
            a(3, "m3", "m2", 30, "k.3"),
        ]);
        assert!(out.contains("OK chain K: sequences 5 to 6\n"), "{out}");
        assert!(out.contains("sequence 5, sealed-at T50, file evidence/call 5.sealed.wav, SHA-256 f5, not anchored"), "{out}");
        // A record following the anchored head before it.
        ok(&[a(4, "m4", "m3", 45, "k.4"), r(5, "m5", "m4", 40)]);

        // Forks: two records, two anchored heads (with or without a record of the key), a
        // record and an anchored head; a record not following the record or the anchored head
        // before it; an anchored head not following the record before it.
        failed(
            &[
                r(2, "m2", "m1", 20),
                r(2, "m2b", "m1", 20),
                r(1, "m1", "z", 10),
            ],
            "fork: 2 different records or anchored heads claim sequence 2",
        );
        failed(
            &[a(2, "x", "m1", 30, "ax"), a(2, "y", "m1", 30, "ay")],
            "fork: 2 different",
        );
        failed(
            &[
                r(3, "z", "y", 40),
                a(2, "x", "m1", 30, "ax"),
                a(2, "y", "m1", 30, "ay"),
            ],
            "fork: 2 different",
        );
        failed(
            &[r(3, "z", "y", 40), a(2, "x", "m1", 30, "ax")],
            "fork: sequence 3 does not follow sequence 2",
        );
        failed(
            &[r(2, "m2", "m1", 20), a(2, "other", "m1", 30, "k.2")],
            "fork: 2 different",
        );
        failed(
            &[r(1, "m1", "z", 10), r(2, "m2", "other", 20)],
            "fork: sequence 2 does not follow sequence 1",
        );
        failed(
            &[r(1, "m1", "z", 10), a(2, "m2", "other", 20, "k.2")],
            "fork: sequence 2 does not follow sequence 1",
        );
        // Gaps: between records (an anchored head does not fill one), after the last record up
        // to an anchored head.
        failed(
            &[r(1, "m1", "z", 10), r(4, "m4", "m3", 40)],
            "gap: sequences 2 to 3 are missing (records were removed)",
        );
        failed(
            &[
                r(1, "m1", "z", 10),
                a(2, "m2", "m1", 25, "k.2"),
                r(3, "m3", "m2", 30),
            ],
            "gap: sequence 2 is missing (records were removed)",
        );
        failed(
            &[r(1, "m1", "z", 10), a(3, "m3", "m2", 30, "k.3")],
            "gap: sequences 2 to 3 are missing up to the anchored head",
        );
        // Time: sealed after an anchor at or above it was stamped.
        failed(
            &[r(1, "m1", "z", 31), a(1, "m1", "z", 30, "k.1")],
            "time: sequence 1 says it was sealed after",
        );
        failed(
            &[
                r(1, "m1", "z", 31),
                r(2, "m2", "m1", 20),
                a(2, "m2", "m1", 30, "k.2"),
            ],
            "time: sequence 1",
        );
        // Another key's anchor proves nothing of K.
        let out = ok(&[
            r(1, "m1", "z", 10),
            a(9, "m9", "m8", 5, "other").replacen("A K", "A L", 1),
        ]);
        assert!(out.contains("OK chain K: sequences 1 to 1\n"), "{out}");
    }

    #[test]
    fn verify_sh_carries_the_same_checks_as_explain() {
        let script = verify_script();
        for step in [
            "STEP=footer",
            "STEP=media-checksum",
            "STEP=check-byte",
            "STEP=manifest",
            "STEP=signature",
            "STEP=text-sha256",
            "STEP=text",
            "STEP=media-sha256",
            "STEP=anchor",
            "STEP=timestamp",
        ] {
            assert!(script.contains(step), "{step}");
        }
        assert!(script.contains(PICK_SEALED_KEY.trim_end()));
        assert!(script.contains(PICK_ANCHOR_KEY.trim_end()));
        assert!(
            !CHAIN_AWK.contains('\''),
            "verify.sh quotes it in single quotes"
        );
        for tool in ["callrec-verify", "callrec-seal", "python"] {
            assert!(!script.contains(tool), "verify.sh runs no {tool}");
        }
    }
}
