//! callrec-query: search the archive's index, report workloads, fetch verified records. See
//! `callrec-query --help`.

use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use clap::Parser;
use unicode_width::UnicodeWidthStr;

use callrec::anchor::tsp::TsaTrust;
use callrec::archive::Target;
use callrec::args::{
    QueryArgs, QueryCommand, QueryGetArgs, QueryIndexArgs, QueryStatsArgs, TableOutput,
};
use callrec::cli::{self, escape_control, EXIT_FAILED, EXIT_OK};
use callrec::keys::TrustedKeys;
use callrec::media::StreamKind;
use callrec::query::{
    self, Entry, Filter, GetRequest, Got, Index as _, IndexOptions, Indexed, Part, SqliteIndex,
    StatsQuery, Verdict,
};
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
    let archives = args
        .archives
        .iter()
        .map(|name| name.parse::<Target>().map_err(anyhow::Error::msg))
        .collect::<anyhow::Result<Vec<Target>>>()?;
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
    let options = IndexOptions {
        archives,
        endpoint: endpoint.map(str::to_string),
        trusted,
        text_keys: query::TextKeys::new(args.identity.as_deref()),
        tsa: TsaTrust::load(&callrec::places::tsa_ca(&args.tsa_ca))?,
    };
    let progress = if io::stderr().is_terminal() && !args.json {
        indicatif::ProgressBar::new(0)
    } else {
        indicatif::ProgressBar::hidden()
    };
    let mut out = io::stdout().lock();
    // The first failed write to stdout; the run goes on, and its error is judged at the end.
    let mut written: io::Result<()> = Ok(());
    let totals = query::index_archives(
        index,
        &options,
        &|_, done, total| {
            progress.set_length(total as u64);
            progress.set_position(done as u64);
        },
        &mut |indexed| {
            progress.finish_and_clear();
            progress.reset();
            if written.is_ok() {
                written = report_indexed(&mut out, indexed, args.json);
            }
        },
    )?;
    written?;
    if args.json {
        out.write_all(&wire::json_line(&wire::Query::Summary(QuerySummary {
            archives: Some(totals.archives),
            records: Some(totals.listed),
            read: Some(totals.read),
            failed: Some(totals.failed + totals.anchors_failed),
            skipped: Some(totals.skipped),
            ..QuerySummary::default()
        })))?;
    }
    Ok(totals.exit_code())
}

/// Report one archive indexed: its counts, its flagged records and anchors and its skipped
/// entries, as JSON Lines on stdout or as messages on stderr.
fn report_indexed(out: &mut impl Write, indexed: &Indexed, json: bool) -> io::Result<()> {
    let summary = &indexed.summary;
    if json {
        out.write_all(&wire::json_line(&wire::Query::Indexed { summary }))?;
        for entry in &indexed.flagged {
            out.write_all(&wire::json_line(&wire::Query::Flagged {
                archive: &entry.archive,
                key: &entry.key,
                record_id: &entry.record_id,
                problem: entry.problem.as_deref(),
            }))?;
        }
        for anchor in &indexed.flagged_anchors {
            out.write_all(&wire::json_line(&wire::Query::Flagged {
                archive: &anchor.archive,
                key: &anchor.key,
                record_id: anchor.record_id.as_deref().unwrap_or(""),
                problem: anchor.problem.as_deref(),
            }))?;
        }
        for skipped in &indexed.skipped {
            out.write_all(&wire::json_line(&wire::Query::Skipped {
                archive: &summary.archive,
                path: skipped.path.as_path().into(),
                reason: &skipped.reason,
            }))?;
        }
        return Ok(());
    }
    eprintln!(
        "{PROG}: {}: {} records, {} read, {} unchanged, {} failed a check, {} without text info, {} skipped; {} anchors, {} read, {} failed a check",
        escape_control(&summary.archive),
        summary.listed,
        summary.read,
        summary.unchanged,
        summary.failed,
        summary.text_unread,
        summary.skipped,
        summary.anchors,
        summary.anchors_read,
        summary.anchors_failed,
    );
    let flagged = indexed
        .flagged
        .iter()
        .map(|e| (&e.key, &e.problem))
        .chain(indexed.flagged_anchors.iter().map(|a| (&a.key, &a.problem)));
    for (key, problem) in flagged {
        eprintln!(
            "{PROG}: FLAGGED {}: {}",
            escape_control(key),
            escape_control(problem.as_deref().unwrap_or(""))
        );
    }
    for skipped in &indexed.skipped {
        eprintln!(
            "{PROG}: SKIPPED {}: {}",
            escape_control(&skipped.path.to_string_lossy()),
            escape_control(&skipped.reason)
        );
    }
    Ok(())
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
        query::write_entries_csv(&mut out, entries)?;
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
                    match (&e.corrects, e.verdict) {
                        (_, Verdict::Failed) => "FAILED".to_string(),
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
        query::write_workload_csv(&mut out, &stats.rows)?;
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
    let output = || args.output.clone().expect("clap requires --output");
    let part = if args.audio {
        Part::Media(StreamKind::Audio, output())
    } else if args.video {
        Part::Media(StreamKind::Video, output())
    } else if args.sealed {
        Part::Sealed(output())
    } else {
        Part::Text {
            identity: args.identity.clone().expect("clap requires --identity"),
            page: !args.text,
            output: args.output.clone(),
        }
    };
    // Only a printed page shows a trusted time, checked against the TSA certificates.
    let tsa = match &part {
        Part::Text { page: true, .. } => TsaTrust::load(&callrec::places::tsa_ca(&args.tsa_ca))?,
        _ => TsaTrust::default(),
    };
    let request = GetRequest {
        id: &args.id,
        part,
        trusted: &trusted,
        tsa: &tsa,
        vocab,
        endpoint,
    };
    match query::get(index, &request, &mut io::stdout().lock())? {
        Got::NotIndexed => {
            eprintln!(
                "{PROG}: no record {} in the index (run callrec-query index)",
                escape_control(&args.id)
            );
            Ok(EXIT_FAILED)
        }
        Got::Refused { key, failure } => {
            eprintln!(
                "{PROG}: refused: {} ({}): {}",
                escape_control(&args.id),
                escape_control(&key),
                escape_control(&failure.to_string())
            );
            Ok(EXIT_FAILED)
        }
        Got::Handed {
            written,
            corrected_by,
        } => {
            if let Some(correction) = corrected_by {
                eprintln!(
                    "{PROG}: note: {} was corrected by {} (the current version)",
                    escape_control(&args.id),
                    escape_control(&correction)
                );
            }
            if let Some(out) = written {
                io::stdout().write_all(&cli::path_line(&out, false))?;
            }
            Ok(EXIT_OK)
        }
    }
}
