//! callrec-query: search the archive's index, report workloads, fetch verified records. See
//! `callrec-query --help`.

use std::io::{self, IsTerminal, Seek, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use clap::Parser;
use unicode_width::UnicodeWidthStr;

use callrec::archive::{Archive, Target};
use callrec::args::{
    QueryArgs, QueryCommand, QueryGetArgs, QueryIndexArgs, QueryStatsArgs, TableOutput,
};
use callrec::cli::{self, escape_control, EXIT_FAILED, EXIT_OK};
use callrec::keys::TrustedKeys;
use callrec::media::StreamKind;
use callrec::query::{self, Entry, Filter, Index as _, SqliteIndex, StatsQuery, Workload};
use callrec::verify::{self, SealedFile, VerifyError};
use callrec::vocab::{Kind, Vocabulary};
use callrec::wire::{self, QuerySummary};

mod common;

const PROG: &str = "callrec-query";

fn main() -> ExitCode {
    let args = QueryArgs::parse();
    // Results are written straight to stdout as they are made; write errors come back through
    // `?`, and the shared main judges them (a closed pipe is quiet, anything else fails).
    common::main(PROG, |_| run(args))
}

fn run(args: QueryArgs) -> anyhow::Result<u8> {
    let db = args.db.clone().unwrap_or_else(callrec::places::index);
    let endpoint = args.endpoint.as_deref();
    if let QueryCommand::Index(a) = &args.command {
        return index_archives(&mut SqliteIndex::open(&db)?, a, endpoint);
    }
    // Every other command only reads: it never creates an index.
    let index = SqliteIndex::open_existing(&db)?;
    let vocab = Vocabulary::configured(args.vocabulary.as_deref())?;
    match args.command {
        QueryCommand::Index(_) => unreachable!("handled above"),
        QueryCommand::Search(a) => {
            let a = *a;
            let filter = Filter {
                from: a.from,
                to: a.to,
                collection_flag: a.collection_flag,
                institution: a.institution,
                phone: a.phone,
                customer: a.customer,
                account: a.account,
                role: a.role,
                business_type: a.business_type,
                results: a.result,
                device: a.device,
                operator: a.operator,
                failed: a.failed,
                all_versions: a.all_versions,
                sort: a.sort,
                descending: a.reverse,
                limit: a.limit,
            }
            .resolve(&vocab)?;
            print_entries(&index.search(&filter)?, &a.output, &vocab)?;
            Ok(EXIT_OK)
        }
        QueryCommand::History(a) => {
            let versions = index.history(&a.id)?;
            if versions.is_empty() {
                eprintln!("{PROG}: no record {} in the index", escape_control(&a.id));
                return Ok(EXIT_FAILED);
            }
            print_entries(&versions, &a.output, &vocab)?;
            Ok(EXIT_OK)
        }
        QueryCommand::Stats(a) => stats(&index, &a, &vocab),
        QueryCommand::Get(a) => get(&index, &a, endpoint, &vocab),
    }
}

fn index_archives(
    index: &mut SqliteIndex,
    args: &QueryIndexArgs,
    endpoint: Option<&str>,
) -> anyhow::Result<u8> {
    let pubkeys = callrec::places::pubkeys(&args.pubkey);
    let trusted = if pubkeys.is_empty() {
        None
    } else {
        Some(TrustedKeys::load(&pubkeys)?)
    };
    if let Some(identity) = &args.identity {
        if !identity.exists() {
            bail!("--identity {identity:?} does not exist");
        }
    }
    let text_keys = query::TextKeys::new(args.identity.as_deref());
    // Counts over every archive; records that failed a check or entries that could not be
    // taken make the run exit 1.
    let (mut archives, mut listed, mut read, mut failed, mut skipped) = (0, 0, 0, 0, 0);
    let mut out = io::stdout().lock();
    for name in &args.archives {
        let target: Target = name.parse().map_err(anyhow::Error::msg)?;
        if let Target::Dir(dir) = &target {
            if !dir.is_dir() {
                bail!("archive {dir:?} is not a directory");
            }
        }
        let archive = Archive::open(&target, endpoint, 4, None)?;
        let progress = if io::stderr().is_terminal() && !args.json {
            indicatif::ProgressBar::new(0)
        } else {
            indicatif::ProgressBar::hidden()
        };
        let indexed = query::index_archive(
            index,
            &archive,
            trusted.as_ref(),
            &text_keys,
            &|n, total| {
                progress.set_length(total as u64);
                progress.set_position(n as u64);
            },
        )?;
        progress.finish_and_clear();
        let summary = &indexed.summary;
        archives += 1;
        listed += summary.listed;
        read += summary.read;
        failed += summary.failed;
        skipped += summary.skipped;
        if args.json {
            out.write_all(&wire::json_line(&wire::Query::Indexed { summary }))?;
            for entry in &indexed.flagged {
                out.write_all(&wire::json_line(&wire::Query::Flagged {
                    archive: &entry.archive,
                    key: &entry.key,
                    record_id: &entry.record_id,
                    problem: entry.problem.as_deref(),
                }))?;
            }
            for skipped in &indexed.skipped {
                out.write_all(&wire::json_line(&wire::Query::Skipped {
                    archive: &summary.archive,
                    path: skipped.path.as_path().into(),
                    reason: &skipped.reason,
                }))?;
            }
        } else {
            eprintln!(
                "{PROG}: {}: {} records, {} read, {} unchanged, {} failed a check, {} without text info, {} skipped",
                escape_control(&summary.archive),
                summary.listed,
                summary.read,
                summary.unchanged,
                summary.failed,
                summary.text_unread,
                summary.skipped,
            );
            for entry in &indexed.flagged {
                eprintln!(
                    "{PROG}: FLAGGED {}: {}",
                    escape_control(&entry.key),
                    escape_control(entry.problem.as_deref().unwrap_or(""))
                );
            }
            for skipped in &indexed.skipped {
                eprintln!(
                    "{PROG}: SKIPPED {}: {}",
                    escape_control(&skipped.path.to_string_lossy()),
                    escape_control(&skipped.reason)
                );
            }
        }
    }
    if args.json {
        out.write_all(&wire::json_line(&wire::Query::Summary(QuerySummary {
            archives: Some(archives),
            records: Some(listed),
            read: Some(read),
            failed: Some(failed),
            skipped: Some(skipped),
            ..QuerySummary::default()
        })))?;
    }
    Ok(if failed + skipped > 0 {
        EXIT_FAILED
    } else {
        EXIT_OK
    })
}

/// A result code with its label.
fn result_label(vocab: &Vocabulary, result: Option<u8>) -> String {
    match result {
        None => String::new(),
        Some(code) => match vocab.by_code(Kind::Result, code) {
            Some(term) => format!("{code} {}", term.label),
            None => code.to_string(),
        },
    }
}

/// Print rows as an aligned table (columns sized by display width, so Chinese text lines up).
/// Control characters in cells are shown escaped, so no value can drive the terminal.
fn print_table(out: &mut impl Write, header: &[&str], rows: &[Vec<String>]) -> io::Result<()> {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            row.iter()
                .map(|cell| escape_control(cell).replace('\n', "\\n"))
                .collect()
        })
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.width()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.width());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut text = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            text.push_str(cell);
            if i + 1 < cells.len() {
                text.push_str(&" ".repeat(w - cell.width() + 2));
            }
        }
        text.push('\n');
        text
    };
    out.write_all(line(header.to_vec()).as_bytes())?;
    for row in &rows {
        out.write_all(line(row.iter().map(String::as_str).collect()).as_bytes())?;
    }
    Ok(())
}

/// CSV for spreadsheets: UTF-8 with a byte-order mark, which tells them the encoding.
fn csv_writer(out: impl Write) -> io::Result<csv::Writer<impl Write>> {
    let mut out = out;
    out.write_all("\u{feff}".as_bytes())?;
    Ok(csv::Writer::from_writer(out))
}

/// A text value for a spreadsheet cell: one that a spreadsheet would take as a formula (it
/// starts with `=`, `+`, `-`, `@`, a tab or a carriage return) gets a leading `'`, as OWASP
/// advises against CSV injection, so it is shown as text and never run.
fn spreadsheet_text(value: &str) -> String {
    if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_string()
    }
}

/// One entry as a CSV row of [`query::FIELDS`], text values made safe for spreadsheets.
fn csv_row(entry: &Entry) -> Vec<String> {
    let fields = serde_json::to_value(entry).expect("entries serialise");
    query::FIELDS
        .iter()
        .map(|name| match &fields[name] {
            serde_json::Value::String(s) => spreadsheet_text(s),
            serde_json::Value::Null => String::new(),
            other => other.to_string(),
        })
        .collect()
}

fn print_entries(entries: &[Entry], how: &TableOutput, vocab: &Vocabulary) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    if how.json {
        for entry in entries {
            out.write_all(&wire::json_line(&wire::Query::Record { entry }))?;
        }
        out.write_all(&wire::json_line(&wire::Query::Summary(QuerySummary {
            records: Some(entries.len()),
            ..QuerySummary::default()
        })))?;
    } else if how.csv {
        let mut csv = csv_writer(&mut out)?;
        csv.write_record(query::FIELDS)?;
        for entry in entries {
            csv.write_record(csv_row(entry))?;
        }
        csv.flush()?;
    } else if io::stdout().is_terminal() {
        let rows: Vec<Vec<String>> = entries
            .iter()
            .map(|e| {
                vec![
                    e.call_start
                        .as_deref()
                        .map(|s| s.get(..19).unwrap_or(s).replace('T', " "))
                        .unwrap_or_default(),
                    e.record_id.clone(),
                    e.operator_id.clone(),
                    e.institution_name.clone(),
                    e.phone.clone(),
                    e.customer_name.clone(),
                    e.business_type.clone(),
                    result_label(vocab, e.result),
                    match (&e.corrects, e.verdict.as_str()) {
                        (_, "failed") => "FAILED".to_string(),
                        (Some(_), _) => "corrected".to_string(),
                        _ => "ok".to_string(),
                    },
                ]
            })
            .collect();
        print_table(
            &mut out,
            &[
                "CALL TIME",
                "RECORD",
                "OPERATOR",
                "INSTITUTION",
                "PHONE",
                "CUSTOMER",
                "BUSINESS",
                "RESULT",
                "SEAL",
            ],
            &rows,
        )?;
        eprintln!("{PROG}: {} records", entries.len());
    } else {
        for entry in entries {
            writeln!(out, "{}", entry.record_id)?;
        }
    }
    Ok(())
}

fn stats(index: &SqliteIndex, args: &QueryStatsArgs, vocab: &Vocabulary) -> anyhow::Result<u8> {
    let stats = index.stats(&StatsQuery {
        from: args.from.clone(),
        to: args.to.clone(),
        operator: args.operator.clone(),
        period: args.by,
        quota: args.quota,
    })?;
    let mut out = io::stdout().lock();
    if args.output.json {
        for workload in &stats.rows {
            out.write_all(&wire::json_line(&wire::Query::Workload { workload }))?;
        }
        for &(result, calls) in &stats.results {
            out.write_all(&wire::json_line(&wire::Query::Result { result, calls }))?;
        }
        out.write_all(&wire::json_line(&wire::Query::Summary(QuerySummary {
            rows: Some(stats.rows.len()),
            flagged: Some(stats.flagged),
            ..QuerySummary::default()
        })))?;
        return Ok(EXIT_OK);
    }
    if args.output.csv {
        let mut csv = csv_writer(&mut out)?;
        for row in &stats.rows {
            csv.serialize(Workload {
                operator_id: spreadsheet_text(&row.operator_id),
                operator_name: spreadsheet_text(&row.operator_name),
                ..row.clone()
            })?;
        }
        csv.flush()?;
        return Ok(EXIT_OK);
    }
    let rows: Vec<Vec<String>> = stats
        .rows
        .iter()
        .map(|r| {
            vec![
                r.operator_id.clone(),
                r.operator_name.clone(),
                r.period.clone(),
                r.calls.to_string(),
                r.quota.map(|q| q.to_string()).unwrap_or_default(),
                match r.quota {
                    None => String::new(),
                    Some(_) if r.behind => "BEHIND".into(),
                    Some(_) => "met".into(),
                },
                r.confirmed.to_string(),
                r.not_confirmed.to_string(),
                format!("{:.1}%", r.not_confirmed_rate * 100.0),
            ]
        })
        .collect();
    print_table(
        &mut out,
        &[
            "OPERATOR",
            "NAME",
            "PERIOD",
            "CALLS",
            "QUOTA",
            "STATUS",
            "CONFIRMED",
            "NOT CONFIRMED",
            "NOT CONFIRMED RATE",
        ],
        &rows,
    )?;
    writeln!(out)?;
    let results: Vec<Vec<String>> = stats
        .results
        .iter()
        .map(|(result, calls)| {
            vec![
                if result.is_some() {
                    result_label(vocab, *result)
                } else {
                    "(none)".into()
                },
                calls.to_string(),
            ]
        })
        .collect();
    print_table(&mut out, &["RESULT", "CALLS"], &results)?;
    if stats.flagged > 0 {
        writeln!(
            out,
            "\n{} records failed a check and are not counted (search --failed lists them)",
            stats.flagged
        )?;
    }
    if let Some(quota) = args.quota {
        let behind = stats.rows.iter().filter(|r| r.behind).count();
        writeln!(
            out,
            "\n{behind} of {} operator-periods below the quota of {quota}",
            stats.rows.len()
        )?;
    }
    Ok(EXIT_OK)
}

fn trusted_keys(given: &[PathBuf]) -> anyhow::Result<TrustedKeys> {
    let paths = callrec::places::pubkeys(given);
    if paths.is_empty() {
        bail!("get verifies before it hands anything out: give --pubkey seal.pub (or set CALLREC_PUBKEY)");
    }
    Ok(TrustedKeys::load(&paths)?)
}

fn get(
    index: &SqliteIndex,
    args: &QueryGetArgs,
    endpoint: Option<&str>,
    vocab: &Vocabulary,
) -> anyhow::Result<u8> {
    let trusted = trusted_keys(&args.pubkey)?;
    let Some(entry) = index.locate(&args.id)? else {
        eprintln!(
            "{PROG}: no record {} in the index (run callrec-query index)",
            escape_control(&args.id)
        );
        return Ok(EXIT_FAILED);
    };
    if let Some(out) = &args.output {
        if out.exists() {
            bail!("{out:?} exists; not overwritten");
        }
    }
    let file = fetch(&entry, endpoint)?;
    let get = Get {
        index,
        endpoint,
        trusted: &trusted,
        args,
        vocab,
    };
    match get.hand_out(file, &entry) {
        Ok(written) => {
            if let Some(correction) = &entry.corrected_by {
                eprintln!(
                    "{PROG}: note: {} was corrected by {} (the current version)",
                    escape_control(&args.id),
                    escape_control(correction)
                );
            }
            if let Some(out) = written {
                io::stdout().write_all(&cli::path_line(out, false))?;
            }
            Ok(EXIT_OK)
        }
        Err(err) => match verify::verify_error(err.as_ref()) {
            Some(e @ VerifyError::Failed { .. }) => {
                eprintln!(
                    "{PROG}: refused: {} ({}): {}",
                    escape_control(&args.id),
                    escape_control(&entry.key),
                    escape_control(&e.to_string())
                );
                Ok(EXIT_FAILED)
            }
            _ => Err(err),
        },
    }
}

/// The archived file of an index entry: a directory archive's file is read in place, never
/// through a symbolic link; an object is fetched into a private temporary file.
fn fetch(entry: &Entry, endpoint: Option<&str>) -> anyhow::Result<std::fs::File> {
    let target: Target = entry.archive.parse().map_err(anyhow::Error::msg)?;
    Ok(match &target {
        Target::Dir(root) => query::open_archived(root, &entry.key)?,
        Target::S3 { .. } => {
            let archive = Archive::open(&target, endpoint, 4, None)?;
            let mut temp = tempfile::tempfile().context("cannot create a temporary file")?;
            archive.fetch(&entry.key, &mut temp)?;
            temp
        }
    })
}

/// Refuse a record that is not the one asked for (an index row edited to point elsewhere).
fn same_record(asked: &str, found: &str, what: &str) -> Result<(), VerifyError> {
    if asked == found {
        return Ok(());
    }
    Err(VerifyError::Failed {
        check: verify::Check::Manifest,
        reason: format!(
            "{what} names record {}, not {}",
            escape_control(found),
            escape_control(asked)
        ),
    })
}

/// The sealed file `file` (named `name` in messages) opened for verification.
fn open_sealed(file: &std::fs::File, name: &Path) -> anyhow::Result<SealedFile> {
    let len = file
        .metadata()
        .with_context(|| format!("cannot read {name:?}"))?
        .len();
    let source = file
        .try_clone()
        .with_context(|| format!("cannot read {name:?}"))?;
    Ok(SealedFile::from_source(name, Box::new(source), len)?)
}

/// The record a correction's signed manifest names as the one it corrects: its id and the
/// SHA-256 of its manifest.
fn corrected_seal(manifest: &callrec::format::Manifest) -> Option<(String, String)> {
    let (id, sha) = manifest.extra("corrects")?.split_once(' ')?;
    Some((id.to_string(), sha.to_string()))
}

/// One `get`: what it reads with and what it was asked.
struct Get<'a> {
    index: &'a SqliteIndex,
    endpoint: Option<&'a str>,
    trusted: &'a TrustedKeys,
    args: &'a QueryGetArgs,
    vocab: &'a Vocabulary,
}

impl Get<'_> {
    /// Verify the archived file of `entry` fully and check that it is the record asked for,
    /// then hand out what was asked: to `--output` (returned), or to stdout. A correction holds
    /// no media: its audio and video are its original's, found by the seal the correction's
    /// signed manifest names, and verified in turn.
    fn hand_out(&self, mut file: std::fs::File, entry: &Entry) -> anyhow::Result<Option<&Path>> {
        let args = self.args;
        let name = Path::new(&entry.key);
        let sealed = open_sealed(&file, name)?;
        // The signed manifest says which record this is, before anything is written.
        let signed = verify::seal(&sealed, self.trusted)?;
        same_record(
            &args.id,
            signed.manifest.record_id.as_str(),
            "the archived manifest",
        )?;
        let out = args.output.as_deref();
        let streams = match (args.audio, args.video) {
            (true, _) => Some(StreamKind::Audio),
            (_, true) => Some(StreamKind::Video),
            _ => None,
        };
        if let Some(kind) = streams {
            let out = out.expect("clap requires --output");
            let holder = self.media_holder(sealed, &signed.manifest)?;
            verify::extract(&holder, self.trusted, Some(kind), out)?;
            return Ok(Some(out));
        }
        let verified = verify::full(&sealed, self.trusted, None)?;
        if args.sealed {
            let out = out.expect("clap requires --output");
            // The very file verified, from its start (verification reads at offsets only).
            file.seek(io::SeekFrom::Start(0))
                .with_context(|| format!("cannot read {name:?}"))?;
            callrec::fsutil::copy_new(file, out)
                .with_context(|| format!("cannot write {out:?}"))?;
            return Ok(Some(out));
        }
        let identity = args.identity.as_deref().expect("clap requires --identity");
        let record = verify::read_text(&sealed, identity)?;
        same_record(&args.id, record.id.as_str(), "the archived text info")?;
        let bytes = if args.text {
            record.to_json()
        } else {
            query::print_page(
                &record,
                &verified,
                self.vocab,
                entry.corrected_by.as_deref(),
            )
            .into_bytes()
        };
        match out {
            None => io::stdout().write_all(&bytes)?,
            Some(out) => callrec::fsutil::copy_new(&bytes[..], out)
                .with_context(|| format!("cannot write {out:?}"))?,
        }
        Ok(out)
    }

    /// The sealed file that holds the media of `sealed`: itself, or for a correction the seal
    /// it corrects (following corrections of corrections), each fetched from the archive and
    /// its seal verified, and refused unless it is the very seal named.
    fn media_holder(
        &self,
        sealed: SealedFile,
        manifest: &callrec::format::Manifest,
    ) -> anyhow::Result<SealedFile> {
        let mut sealed = sealed;
        let mut named = corrected_seal(manifest);
        // A chain of corrections is short; a loop in an edited index must still end.
        for _ in 0..64 {
            let Some((id, sha)) = named else {
                return Ok(sealed);
            };
            let Some(original) = self.index.seal_of(&id, &sha)? else {
                bail!(
                    "{} is a correction of {}, whose media is not in the index: index the archive that holds it (callrec-query index)",
                    escape_control(&self.args.id),
                    escape_control(&id)
                );
            };
            let file = fetch(&original, self.endpoint)?;
            sealed = open_sealed(&file, Path::new(&original.key))?;
            let signed = verify::seal(&sealed, self.trusted).map_err(|e| match e {
                VerifyError::Failed { check, reason } => VerifyError::Failed {
                    check,
                    reason: format!(
                        "the original {} ({}) it corrects: {reason}",
                        escape_control(&id),
                        escape_control(&original.key)
                    ),
                },
                e => e,
            })?;
            same_record(
                &id,
                signed.manifest.record_id.as_str(),
                "the archived original",
            )?;
            if hex::encode(signed.manifest_sha256) != sha.to_ascii_lowercase() {
                return Err(VerifyError::Failed {
                    check: verify::Check::Manifest,
                    reason: format!(
                        "the archived original {} is not the seal the correction names",
                        escape_control(&id)
                    ),
                }
                .into());
            }
            named = corrected_seal(&signed.manifest);
        }
        bail!("too many corrections of corrections")
    }
}
