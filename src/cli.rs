//! Command-line plumbing shared by every callrec binary: input lists, exit codes, error text,
//! JSON Lines wire types. Nothing here prints; the binaries do.

use std::error::Error;
use std::ffi::OsString;
use std::io::{self, BufRead, IsTerminal};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use crate::anchor;
use crate::fsutil::{TEMP_PREFIX, TEMP_SUFFIX};
use crate::record::RecordFiles;

/// Exit status: everything succeeded.
pub const EXIT_OK: u8 = 0;
/// Exit status: some input failed (for `callrec-verify`: proven bad).
pub const EXIT_FAILED: u8 = 1;
/// Exit status: usage error, or nothing could be checked or done.
pub const EXIT_ERROR: u8 = 2;

/// The paths to work on: the arguments, or, with no arguments and stdin not a terminal, one
/// path a line on stdin (NUL-separated with `null`). `-` as an argument also reads stdin.
pub fn input_paths(args: &[PathBuf], null: bool) -> io::Result<Vec<PathBuf>> {
    let read_stdin = (args.is_empty() && !io::stdin().is_terminal())
        || args.iter().any(|a| a.as_os_str() == "-");
    let mut paths: Vec<PathBuf> = args
        .iter()
        .filter(|a| a.as_os_str() != "-")
        .cloned()
        .collect();
    if read_stdin {
        paths.extend(read_path_list(io::stdin().lock(), null)?);
    }
    Ok(paths)
}

/// Paths from a list: one a line (a trailing `\r` is kept: it is part of a Unix file name),
/// or NUL-separated. Empty entries are skipped.
pub fn read_path_list(mut reader: impl BufRead, null: bool) -> io::Result<Vec<PathBuf>> {
    let sep = if null { b'\0' } else { b'\n' };
    let mut paths = Vec::new();
    let mut entry = Vec::new();
    while reader.read_until(sep, &mut entry)? > 0 {
        if entry.last() == Some(&sep) {
            entry.pop();
        }
        if !entry.is_empty() {
            paths.push(PathBuf::from(OsString::from_vec(std::mem::take(
                &mut entry,
            ))));
        }
        entry.clear();
    }
    Ok(paths)
}

/// Is this one of callrec's own temporary files?
pub fn is_temp_file(path: &Path) -> bool {
    path.file_name().is_some_and(|n| {
        let n = n.as_bytes();
        n.starts_with(TEMP_PREFIX.as_bytes()) && n.ends_with(TEMP_SUFFIX.as_bytes())
    })
}

/// What a directory walk collects: each tool takes only the files it can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Walk {
    /// Recordings to annotate or seal: every file that is not a sealed file, a sidecar or
    /// a working file (see [`is_working_file`]).
    Recordings,
    /// Sealed files to push or index: names of the form `*.sealed` or `*.sealed.EXT`, as
    /// `callrec-seal` gives them.
    Sealed,
    /// Everything that verifies: sealed files and anchor files (`*.anchor`).
    Evidence,
}

/// Is this a file no walk ever takes as a record: a hidden name (`.callrec-push.lock`,
/// `.callrec-*.tmp` temporary files, journals), a recording in progress (`*.part`), or a
/// staging file of a directory archive (`KEY#N`)?
pub fn is_working_file(path: &Path) -> bool {
    path.file_name().is_none_or(|n| {
        let n = n.as_bytes();
        n.starts_with(b".") || n.ends_with(b".part") || is_staging_name(n)
    })
}

/// `NAME#DIGITS`: the staging name a directory archive writes before renaming into place.
fn is_staging_name(name: &[u8]) -> bool {
    match name.iter().rposition(|&b| b == b'#') {
        Some(i) => i + 1 < name.len() && name[i + 1..].iter().all(u8::is_ascii_digit),
        None => false,
    }
}

/// Is this named like a sealed file (`*.sealed` or `*.sealed.EXT`)?
pub fn is_sealed_name(path: &Path) -> bool {
    path.file_name().is_some_and(|n| {
        let n = n.as_bytes();
        n.ends_with(b".sealed")
            || n.rsplitn(2, |&b| b == b'.')
                .nth(1)
                .is_some_and(|stem| stem.ends_with(b".sealed"))
    })
}

/// Does a walk of kind `walk` take this file?
pub fn walk_takes(walk: Walk, path: &Path) -> bool {
    if is_working_file(path) || RecordFiles::is_sidecar(path) {
        return false;
    }
    match walk {
        Walk::Recordings => !is_sealed_name(path) && !anchor::is_anchor_name(path),
        Walk::Sealed => is_sealed_name(path),
        Walk::Evidence => is_sealed_name(path) || anchor::is_anchor_name(path),
    }
}

/// Expand directories into the regular files below them that a walk of kind `walk` takes
/// (sorted, recursively; hidden directories are not entered). Files named directly are kept
/// as given: the tool decides what to do with them.
pub fn expand_dirs(paths: Vec<PathBuf>, walk: Walk) -> Result<Vec<PathBuf>, walkdir::Error> {
    let mut out = Vec::new();
    for path in paths {
        if !path.is_dir() {
            out.push(path);
            continue;
        }
        let entries = walkdir::WalkDir::new(&path)
            .sort_by_file_name()
            .into_iter()
            .filter_entry(|e| e.depth() == 0 || !e.file_name().as_bytes().starts_with(b"."));
        for entry in entries {
            let entry = entry?;
            if entry.file_type().is_file() && walk_takes(walk, entry.path()) {
                out.push(entry.into_path());
            }
        }
    }
    Ok(out)
}

/// An error and its causes, joined as `error: cause: cause`.
pub fn error_chain(err: &dyn Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Replace control characters so untrusted text cannot drive the terminal.
pub fn escape_control(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() && c != '\n' {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// A path as a line of plain output: the raw bytes, newline- or NUL-terminated.
pub fn path_line(path: &Path, null: bool) -> Vec<u8> {
    let mut line = path.as_os_str().as_bytes().to_vec();
    line.push(if null { b'\0' } else { b'\n' });
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn working_files_are_never_records() {
        for name in [
            ".callrec-push.lock",
            ".callrec-abc123.tmp",
            ".callrec-0123456789abcdef.pending",
            "20261127T093000Z-0a1b2c3d4e5f.mkv.part",
            "2026/11/27/r.sealed.mkv#3",
            ".hidden.sealed.mkv",
        ] {
            let path = Path::new(name);
            assert!(is_working_file(path), "{name}");
            assert!(!walk_takes(Walk::Recordings, path), "{name}");
            assert!(!walk_takes(Walk::Sealed, path), "{name}");
        }
    }

    #[test]
    fn each_walk_takes_what_it_can_use() {
        let cases = [
            ("call.mkv", true, false),
            ("call.sealed.mkv", false, true),
            ("call.sealed", false, true),
            ("call.0123456789abcdef.sealed.correction", false, true),
            ("r.0123456789abcdef.sealed.wav", false, true),
            ("call.mkv.callrec.json", false, false),
            ("0123456789ABCDEF.7.0123456789abcdef.anchor", false, false),
            ("notes#draft", true, false),
            ("sealed.mkv", true, false),
        ];
        for (name, recording, sealed) in cases {
            let path = Path::new(name);
            assert_eq!(walk_takes(Walk::Recordings, path), recording, "{name}");
            assert_eq!(walk_takes(Walk::Sealed, path), sealed, "{name}");
            let evidence = sealed || name.ends_with(".anchor");
            assert_eq!(walk_takes(Walk::Evidence, path), evidence, "{name}");
        }
    }

    #[test]
    fn path_lists_split_on_newlines_or_nul_and_skip_empty_entries() {
        let list = b"a\n\nb c\nd\r\n";
        let paths = read_path_list(&list[..], false).unwrap();
        assert_eq!(paths, [Path::new("a"), Path::new("b c"), Path::new("d\r")]);
        let paths = read_path_list(&b"x\ny\0\0z"[..], true).unwrap();
        assert_eq!(paths, [Path::new("x\ny"), Path::new("z")]);
    }
}
