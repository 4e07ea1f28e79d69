//! callrec-query: search the archive's index, report workloads, fetch verified records. See
//! `callrec-query --help`.

use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use clap::Parser;
use unicode_width::UnicodeWidthStr;

use callrec::archive::{Archive, PushError, Target};
use callrec::args::{
    QueryArgs, QueryCommand, QueryGetArgs, QueryIndexArgs, QueryStatsArgs, TableOutput,
};
use callrec::cli::{self, EXIT_ERROR, EXIT_FAILED, EXIT_OK};
use callrec::keys::TrustedKeys;
use callrec::media::StreamKind;
use callrec::query::{self, Entry, Filter, Index as _, SqliteIndex, StatsQuery};
use callrec::verify::{self, SealedFile, VerifyError};
use callrec::vocab::{Kind, Vocabulary};

const PROG: &str = "callrec-query";
/// EX_TEMPFAIL: try again later.
const EXIT_TEMPORARY: u8 = 75;

fn main() -> ExitCode {
    let args = QueryArgs::parse();
    match run(args) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("{PROG}: error: {}", cli::error_chain(err.as_ref()));
            let temporary = err
                .downcast_ref::<PushError>()
                .is_some_and(PushError::is_temporary)
                || matches!(
                    err.downcast_ref::<query::QueryError>(),
                    Some(query::QueryError::Archive(e)) if e.is_temporary()
                );
            ExitCode::from(if temporary {
                EXIT_TEMPORARY
            } else {
                EXIT_ERROR
            })
        }
    }
}

fn default_db() -> PathBuf {
    cli::xdg_dir("XDG_DATA_HOME", ".local/share")
        .unwrap_or_else(|| PathBuf::from("callrec"))
        .join("index.sqlite")
}

fn run(args: QueryArgs) -> anyhow::Result<u8> {
    let db = args.db.clone().unwrap_or_else(default_db);
    let mut index = SqliteIndex::open(&db)?;
    let endpoint = args.endpoint.as_deref();
    match args.command {
        QueryCommand::Index(a) => index_archives(&mut index, &a, endpoint),
        QueryCommand::Search(a) => {
            let a = *a;
            let vocab_path = a.vocabulary.clone().or_else(Vocabulary::default_path);
            let vocab = Vocabulary::load(vocab_path.as_deref(), a.vocabulary.is_some())?;
            let term = |kind, value: &Option<String>| {
                value.as_ref().map(|v| {
                    vocab
                        .find(kind, v)
                        .map(|t| t.label.clone())
                        .unwrap_or_else(|| v.clone())
                })
            };
            let filter = Filter {
                from: a.from,
                to: a.to,
                collection_flag: a.collection_flag,
                institution: a.institution,
                phone: a.phone,
                customer: a.customer,
                account: a.account,
                role: term(Kind::Role, &a.role),
                business_type: term(Kind::BusinessType, &a.business_type),
                results: a.result,
                device: a.device,
                operator: a.operator,
                failed: a.failed,
                all_versions: a.all_versions,
                sort: a.sort,
                descending: a.reverse,
                limit: a.limit,
            };
            print_entries(&index.search(&filter)?, &a.output, &vocab)?;
            Ok(EXIT_OK)
        }
        QueryCommand::History(a) => {
            let versions = index.history(&a.id)?;
            if versions.is_empty() {
                eprintln!("{PROG}: no record {} in the index", a.id);
                return Ok(EXIT_FAILED);
            }
            print_entries(&versions, &a.output, &Vocabulary::builtin())?;
            Ok(EXIT_OK)
        }
        QueryCommand::Stats(a) => stats(&index, &a),
        QueryCommand::Get(a) => get(&index, &a, endpoint),
    }
}

fn index_archives(
    index: &mut SqliteIndex,
    args: &QueryIndexArgs,
    endpoint: Option<&str>,
) -> anyhow::Result<u8> {
    let trusted = if args.pubkey.is_empty() {
        None
    } else {
        Some(TrustedKeys::load(&args.pubkey)?)
    };
    if let Some(identity) = &args.identity {
        if !identity.exists() {
            bail!("--identity {identity:?} does not exist");
        }
    }
    let text_keys = query::TextKeys::new(args.identity.as_deref());
    let mut failed = 0;
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
        let (summary, flagged) = query::index_archive(
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
        failed += summary.failed;
        if args.json {
            out.write_all(&cli::json_line(&serde_json::json!({
                "type": "summary",
                "summary": summary,
            })))?;
            for entry in &flagged {
                out.write_all(&cli::json_line(&serde_json::json!({
                    "type": "flagged",
                    "archive": entry.archive,
                    "key": entry.key,
                    "record_id": entry.record_id,
                    "problem": entry.problem,
                })))?;
            }
        } else {
            eprintln!(
                "{PROG}: {}: {} records, {} read, {} unchanged, {} failed a check, {} without text info",
                summary.archive,
                summary.listed,
                summary.read,
                summary.unchanged,
                summary.failed,
                summary.text_unread
            );
            for entry in &flagged {
                eprintln!(
                    "{PROG}: FLAGGED {}: {}",
                    entry.key,
                    entry.problem.as_deref().unwrap_or("")
                );
            }
        }
    }
    Ok(if failed > 0 { EXIT_FAILED } else { EXIT_OK })
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
fn print_table(out: &mut impl Write, header: &[&str], rows: &[Vec<String>]) -> io::Result<()> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.width()).collect();
    for row in rows {
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
    for row in rows {
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

fn print_entries(entries: &[Entry], how: &TableOutput, vocab: &Vocabulary) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    if how.json {
        for entry in entries {
            out.write_all(&cli::json_line(entry))?;
        }
    } else if how.csv {
        let mut csv = csv_writer(&mut out)?;
        for entry in entries {
            csv.serialize(entry)?;
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

fn stats(index: &SqliteIndex, args: &QueryStatsArgs) -> anyhow::Result<u8> {
    let stats = index.stats(&StatsQuery {
        from: args.from.clone(),
        to: args.to.clone(),
        operator: args.operator.clone(),
        period: args.by,
        quota: args.quota,
    })?;
    let vocab = Vocabulary::builtin();
    let mut out = io::stdout().lock();
    if args.output.json {
        for row in &stats.rows {
            out.write_all(&cli::json_line(
                &serde_json::json!({"type": "workload", "workload": row}),
            ))?;
        }
        for (result, calls) in &stats.results {
            out.write_all(&cli::json_line(
                &serde_json::json!({"type": "result", "result": result, "calls": calls}),
            ))?;
        }
        out.write_all(&cli::json_line(
            &serde_json::json!({"type": "flagged", "records": stats.flagged}),
        ))?;
        return Ok(EXIT_OK);
    }
    if args.output.csv {
        let mut csv = csv_writer(&mut out)?;
        for row in &stats.rows {
            csv.serialize(row)?;
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
                r.succeeded.to_string(),
                r.failed.to_string(),
                format!("{:.1}%", r.failure_rate * 100.0),
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
            "VERIFIED",
            "FAILED",
            "FAIL RATE",
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
                    result_label(&vocab, *result)
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
    let paths = cli::pubkey_paths(given);
    if paths.is_empty() {
        bail!("get verifies before it hands anything out: give --pubkey seal.pub (or set CALLREC_PUBKEY)");
    }
    Ok(TrustedKeys::load(&paths)?)
}

fn get(index: &SqliteIndex, args: &QueryGetArgs, endpoint: Option<&str>) -> anyhow::Result<u8> {
    let trusted = trusted_keys(&args.pubkey)?;
    let Some(entry) = index.locate(&args.id)? else {
        eprintln!(
            "{PROG}: no record {} in the index (run callrec-query index)",
            args.id
        );
        return Ok(EXIT_FAILED);
    };
    if let Some(out) = &args.output {
        if out.exists() {
            bail!("{out:?} exists; not overwritten");
        }
    }
    let target: Target = entry.archive.parse().map_err(anyhow::Error::msg)?;
    // A directory archive is read in place; an object is fetched into a private temporary file.
    let mut fetched = None;
    let path = match target.local_path(&entry.key)? {
        Some(path) => path,
        None => {
            let archive = Archive::open(&target, endpoint, 4, None)?;
            let temp = fetched
                .insert(tempfile::NamedTempFile::new().context("cannot create a temporary file")?);
            archive.fetch(&entry.key, temp.as_file_mut())?;
            temp.path().to_path_buf()
        }
    };
    match hand_out(&path, &trusted, args) {
        Ok(written) => {
            if let Some(out) = written {
                io::stdout().write_all(&cli::path_line(out, false))?;
            }
            Ok(EXIT_OK)
        }
        Err(err) => match verify::verify_error(err.as_ref()) {
            Some(e @ VerifyError::Failed { .. }) => {
                eprintln!("{PROG}: refused: {} ({}): {e}", args.id, entry.key);
                Ok(EXIT_FAILED)
            }
            _ => Err(err),
        },
    }
}

/// Verify the sealed file at `path` fully, then hand out what `args` asks for: to its
/// `--output` (returned), or to stdout.
fn hand_out<'a>(
    path: &Path,
    trusted: &TrustedKeys,
    args: &'a QueryGetArgs,
) -> anyhow::Result<Option<&'a Path>> {
    let sealed = SealedFile::open(path)?;
    let out = args.output.as_deref();
    let streams = match (args.audio, args.video) {
        (true, _) => Some(StreamKind::Audio),
        (_, true) => Some(StreamKind::Video),
        _ => None,
    };
    if let Some(kind) = streams {
        let out = out.expect("clap requires --output");
        verify::extract(&sealed, trusted, Some(kind), out)?;
        return Ok(Some(out));
    }
    let verified = verify::full(&sealed, trusted, None)?;
    if args.sealed {
        let out = out.expect("clap requires --output");
        copy_new(path, out)?;
        return Ok(Some(out));
    }
    let identity = args.identity.as_deref().expect("clap requires --identity");
    let record = verify::read_text(&sealed, identity)?;
    let bytes = if args.text {
        record.to_json()
    } else {
        query::print_page(&record, &verified, &Vocabulary::builtin()).into_bytes()
    };
    match out {
        None => io::stdout().write_all(&bytes)?,
        Some(out) => callrec::fsutil::copy_new(&bytes[..], out)
            .with_context(|| format!("cannot write {out:?}"))?,
    }
    Ok(out)
}

/// Copy a verified sealed file to a new file `out`, durably.
fn copy_new(from: &Path, out: &Path) -> Result<(), callrec::fsutil::PathError> {
    use callrec::fsutil::PathContext as _;
    let file = std::fs::File::open(from).at("cannot read", from)?;
    callrec::fsutil::copy_new(file, out).at("cannot write", out)
}
