//! A set of evidence files verified together, as `callrec-verify` and a court bundle do: each
//! sealed file and anchor file on its own, then across the set the keys' chains (gaps up to
//! the anchored heads, forks), the records' times against their anchors, and the records'
//! histories of corrections.

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::anchor::tsp::TsaTrust;
use crate::anchor::{self, TimeFinding, VerifiedAnchor};
use crate::keys::TrustedKeys;
use crate::verify::{self, ChainIssue, History, SealedFile, Verified, VerifyError};

/// How to verify a set.
pub struct SetOptions<'a> {
    pub trusted: &'a TrustedKeys,
    pub tsa: &'a TsaTrust,
    /// The document's quick checks only: no key, no anchors, no chain.
    pub quick: bool,
}

/// What verifying a set found.
pub struct SetReport {
    /// Each sealed file, in the order given: `Ok(None)` when only the quick checks ran.
    pub sealed: Vec<(PathBuf, Result<Option<Verified>, VerifyError>)>,
    /// Each anchor file, in the order given (none with `quick`).
    pub anchors: Vec<(PathBuf, Result<VerifiedAnchor, VerifyError>)>,
    pub chain: Vec<ChainIssue>,
    /// Times that contradict an anchor (failures) or are loosely bound by one (warnings).
    pub times: Vec<TimeFinding>,
    pub histories: Vec<History>,
}

impl SetReport {
    /// The sealed files that verified fully.
    pub fn records(&self) -> Vec<(PathBuf, Verified)> {
        self.sealed
            .iter()
            .filter_map(|(p, r)| match r {
                Ok(Some(v)) => Some((p.clone(), v.clone())),
                _ => None,
            })
            .collect()
    }

    /// The anchors that verified.
    pub fn verified_anchors(&self) -> Vec<VerifiedAnchor> {
        self.anchors
            .iter()
            .filter_map(|(_, r)| r.as_ref().ok().cloned())
            .collect()
    }

    /// The trusted anchor covering a verified record, if any (see [`anchor::covering`]).
    pub fn anchor_of(&self, v: &Verified) -> Option<&VerifiedAnchor> {
        let verified = self.anchors.iter().filter_map(|(_, r)| r.as_ref().ok());
        anchor::covering(verified, &v.manifest.key_id, v.manifest.sequence)
    }

    /// Every file's error, sealed files first.
    pub fn errors(&self) -> impl Iterator<Item = (&Path, &VerifyError)> {
        let sealed = self
            .sealed
            .iter()
            .filter_map(|(p, r)| r.as_ref().err().map(|e| (p.as_path(), e)));
        let anchors = self
            .anchors
            .iter()
            .filter_map(|(p, r)| r.as_ref().err().map(|e| (p.as_path(), e)));
        sealed.chain(anchors)
    }

    /// Files proven bad (a failed check).
    pub fn failed(&self) -> usize {
        self.errors()
            .filter(|(_, e)| matches!(e, VerifyError::Failed { .. }))
            .count()
    }

    /// Files that could not be checked.
    pub fn unreadable(&self) -> usize {
        self.errors()
            .filter(|(_, e)| matches!(e, VerifyError::Io(_)))
            .count()
    }

    /// Files that verified.
    pub fn verified(&self) -> usize {
        self.sealed.len() + self.anchors.len() - self.failed() - self.unreadable()
    }

    /// Chain issues, a record sealed after its anchor included.
    pub fn chain_issues(&self) -> usize {
        self.chain.len() + self.times.iter().filter(|t| t.contradiction).count()
    }

    /// Whether the whole set is intact: every file verified, no chain issue.
    pub fn intact(&self) -> bool {
        self.failed() + self.unreadable() + self.chain_issues() == 0
    }
}

/// Verify `files` (sealed files and anchor files, named like them) as one set; `progress` is
/// called once per sealed file checked (they are checked in parallel).
pub fn verify_set(files: Vec<PathBuf>, opts: &SetOptions, progress: impl Fn() + Sync) -> SetReport {
    let (anchor_files, sealed_files): (Vec<PathBuf>, Vec<PathBuf>) =
        files.into_iter().partition(|p| anchor::is_anchor_name(p));
    let sealed: Vec<(PathBuf, Result<Option<Verified>, VerifyError>)> = sealed_files
        .into_par_iter()
        .map(|path| {
            let result = check_sealed(&path, opts);
            progress();
            (path, result)
        })
        .collect();
    let anchors: Vec<(PathBuf, Result<VerifiedAnchor, VerifyError>)> = if opts.quick {
        Vec::new()
    } else {
        anchor_files
            .into_iter()
            .map(|path| {
                let result = anchor::verify(&path, opts.trusted, opts.tsa);
                (path, result)
            })
            .collect()
    };
    let mut report = SetReport {
        sealed,
        anchors,
        chain: Vec::new(),
        times: Vec::new(),
        histories: Vec::new(),
    };
    let records = report.records();
    let anchors = report.verified_anchors();
    let heads: Vec<(PathBuf, Verified)> = anchors
        .iter()
        .map(|a| (a.path.clone(), a.head.clone()))
        .collect();
    report.chain = verify::check_chain(&records, &heads);
    report.times = anchor::check_times(&records, &anchors);
    report.histories = verify::histories(&records);
    report
}

/// One sealed file: every check, or with `quick` the document's quick checks only.
pub fn check_sealed(path: &Path, opts: &SetOptions) -> Result<Option<Verified>, VerifyError> {
    let sealed = SealedFile::open(path)?;
    if opts.quick {
        verify::quick(&sealed)?;
        return Ok(None);
    }
    verify::full(&sealed, opts.trusted, None).map(Some)
}
