//! The journal of receipts a terminal keeps, so it can prove what it handed over.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::fsutil::{PathContext, PathError};

use super::Receipt;

/// The journal of receipts: JSON Lines, appended and fsynced, so the terminal can prove what
/// it handed over. One receipt per archived seal: a receipt whose key and manifest hash the
/// journal already holds (a push run again after a kill, the same seal in a second spool) is
/// not appended again. Shared by concurrent pushes, in this process and others: a line is
/// checked and written under a lock (a mutex here, `flock` between processes), and the
/// fsyncs, which need no lock, overlap.
pub struct Journal {
    path: PathBuf,
    file: File,
    read: std::sync::Mutex<JournalRead>,
}

/// What this process has read of the journal.
#[derive(Default)]
struct JournalRead {
    /// Bytes read (the journal only grows).
    len: u64,
    /// Whether they end in a line torn by a crash (no newline).
    torn: bool,
    /// Key and manifest hash of each receipt read or written.
    receipts: HashSet<(String, String)>,
}

/// The fields of a journal line that say which seal it is about.
#[derive(serde::Deserialize)]
struct Journaled {
    key: String,
    manifest_sha256: String,
}

impl Journal {
    pub fn open(path: &Path) -> Result<Journal, PathError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).at("cannot create", dir)?;
        }
        let file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)
            .at("cannot open", path)?;
        Ok(Journal {
            path: path.to_path_buf(),
            file,
            read: Default::default(),
        })
    }

    /// Append a receipt, unless the journal holds one for the same seal, and return once the
    /// journal is on disk.
    pub fn append(&self, receipt: &Receipt) -> Result<(), PathError> {
        {
            let mut read = self.read.lock().unwrap_or_else(|e| e.into_inner());
            self.file.lock().at("cannot lock", &self.path)?;
            let appended = self.append_new(&mut read, receipt);
            let unlocked = self.file.unlock().at("cannot unlock", &self.path);
            appended.and(unlocked)?;
        }
        self.file.sync_data().at("cannot sync", &self.path)
    }

    /// Read what others appended since the last call, then append `receipt` if it is new.
    fn append_new(&self, read: &mut JournalRead, receipt: &Receipt) -> Result<(), PathError> {
        let mut reader = BufReader::new(&self.file);
        reader
            .seek(SeekFrom::Start(read.len))
            .at("cannot read", &self.path)?;
        let mut line = Vec::new();
        loop {
            line.clear();
            let n = reader
                .read_until(b'\n', &mut line)
                .at("cannot read", &self.path)?;
            if n == 0 {
                break;
            }
            read.len += n as u64;
            read.torn = line.last() != Some(&b'\n');
            // A line that does not parse (one torn by a crash) names no seal.
            if let Ok(j) = serde_json::from_slice::<Journaled>(&line) {
                read.receipts.insert((j.key, j.manifest_sha256));
            }
        }
        let seal = (receipt.key.clone(), receipt.manifest_sha256.clone());
        if read.receipts.contains(&seal) {
            return Ok(());
        }
        // A line torn by a crash is ended first, so this one stays whole.
        let mut line = if read.torn {
            b"\n".to_vec()
        } else {
            Vec::new()
        };
        serde_json::to_writer(&mut line, receipt).expect("receipts serialise");
        line.push(b'\n');
        (&self.file)
            .write_all(&line)
            .at("cannot write", &self.path)?;
        read.len += line.len() as u64;
        read.torn = false;
        read.receipts.insert(seal);
        Ok(())
    }
}
