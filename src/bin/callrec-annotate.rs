//! callrec-annotate: the operator's remarks on a call. See `callrec-annotate --help`.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use clap::Parser;

use callrec::annotate::{self, Annotated, Context, Fields, Row};
use callrec::args::AnnotateArgs;
use callrec::cli::{self, EXIT_FAILED, EXIT_OK};
use callrec::record::Record;
use callrec::vocab::{Kind, Vocabulary};
use callrec::wire;

mod common;

use common::Stdout;

const PROG: &str = "callrec-annotate";

fn main() -> ExitCode {
    let args = AnnotateArgs::parse();
    common::main(PROG, |stdout| run(args, stdout))
}

struct Output<'a> {
    stdout: &'a Stdout,
    print_line: bool,
    json: bool,
    null: bool,
    vocab: Vocabulary,
    annotated: usize,
    corrections: usize,
    failed: usize,
}

impl Output<'_> {
    fn done(&mut self, annotated: &Annotated) {
        let bytes = if self.json {
            wire::json_line(&wire::Annotate::Record {
                path: annotated.media().into(),
                correction: matches!(annotated, Annotated::Correction { .. }),
                record: annotated.record(),
            })
        } else if self.print_line {
            match annotated.record().to_line(&self.vocab) {
                Ok(line) => format!("{line}\n").into_bytes(),
                Err(e) => {
                    self.fail(&format!("{:?}: {e}", annotated.media()));
                    return;
                }
            }
        } else {
            cli::path_line(annotated.media(), self.null)
        };
        self.stdout.write(&bytes);
        match annotated {
            Annotated::Correction { .. } => self.corrections += 1,
            _ => self.annotated += 1,
        }
    }

    fn fail(&mut self, message: &str) {
        eprintln!("{PROG}: {message}");
        if self.json {
            self.stdout.write(&wire::json_line(&wire::Annotate::Error {
                message: message.to_string(),
            }));
        }
        self.failed += 1;
    }

    fn summary(&self) {
        if self.json {
            self.stdout
                .write(&wire::json_line(&wire::Annotate::Summary {
                    annotated: self.annotated,
                    corrections: self.corrections,
                    failed: self.failed,
                }));
        }
    }
}

fn run(args: AnnotateArgs, stdout: &Stdout) -> anyhow::Result<u8> {
    let vocab = Vocabulary::configured(args.vocabulary.as_deref())?;
    let identity = args
        .identity
        .clone()
        .or_else(|| Some(callrec::places::key_dir()).filter(|d| d.is_dir()));
    let ctx = Context {
        terminal: annotate::terminal_identity(),
        now: chrono::Local::now().fixed_offset(),
        vocab: vocab.clone(),
        identity,
        correction_dir: args.output_dir.clone(),
    };
    let mut flags = Fields::default();
    for (name, value) in args.fields() {
        flags.set(name, value).map_err(anyhow::Error::msg)?;
    }
    let inputs = cli::expand_dirs(
        cli::input_paths(&args.records, args.null)?,
        cli::Walk::Recordings,
    )?;
    if inputs.is_empty() {
        bail!("no record: name media files, sidecars or directories, or pipe a list of paths on stdin");
    }
    let mut out = Output {
        stdout,
        print_line: args.print_line,
        json: args.json,
        null: args.null,
        vocab,
        annotated: 0,
        corrections: 0,
        failed: 0,
    };

    let batch = match (&args.from_csv, &args.from_json) {
        (Some(csv), _) => Some(annotate::read_csv(csv)?),
        (_, Some(json)) => Some(annotate::read_json_lines(json)?),
        _ => None,
    };
    if let Some(rows) = batch {
        run_batch(rows, &inputs, &flags, &ctx, &mut out);
    } else {
        let mut terminal = if args.interactive {
            Some(Terminal::open()?)
        } else {
            None
        };
        for input in &inputs {
            let fields = match terminal.as_mut() {
                Some(tty) => match ask(tty, input, &flags, &ctx)? {
                    Some(answers) => flags.merged(&answers),
                    None => continue,
                },
                None => flags.clone(),
            };
            match annotate::annotate(input, &fields, &ctx) {
                Ok(annotated) => out.done(&annotated),
                Err(e) => out.fail(&cli::error_chain(&e)),
            }
        }
    }
    out.summary();
    Ok(if out.failed > 0 { EXIT_FAILED } else { EXIT_OK })
}

fn run_batch(
    rows: Vec<Result<Row, annotate::RowError>>,
    inputs: &[PathBuf],
    flags: &Fields,
    ctx: &Context,
    out: &mut Output,
) {
    let mut records: Vec<(PathBuf, Record)> = Vec::new();
    for input in inputs {
        if annotate::is_sealed(input) {
            continue; // sealed records are corrected one by one, by name
        }
        match annotate::load(input) {
            Ok((_, record)) => records.push((input.clone(), record)),
            Err(e) => out.fail(&cli::error_chain(&e)),
        }
    }
    for row in rows {
        let row = match row {
            Ok(row) => row,
            Err(e) => {
                out.fail(&e.to_string());
                continue;
            }
        };
        let path = match annotate::find_record(&row.key, &records) {
            Ok(path) => path.to_path_buf(),
            Err(reason) => {
                out.fail(&format!("{}: {reason}", row.place));
                continue;
            }
        };
        match annotate::annotate(&path, &flags.merged(&row.fields), ctx) {
            Ok(annotated) => out.done(&annotated),
            Err(annotate::AnnotateError::Invalid { errors, .. }) => {
                for e in errors {
                    out.fail(&format!("{}: {e}", row.place));
                }
            }
            Err(e) => out.fail(&format!("{}: {}", row.place, cli::error_chain(&e))),
        }
    }
}

/// The controlling terminal, for questions: stdin and stdout may be pipes in a pipeline.
struct Terminal {
    input: BufReader<File>,
    output: File,
}

impl Terminal {
    fn open() -> anyhow::Result<Terminal> {
        let tty = OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/tty")
            .context("--interactive needs a terminal")?;
        Ok(Terminal {
            input: BufReader::new(tty.try_clone()?),
            output: tty,
        })
    }

    /// Ask one question; `None` at end of input.
    fn ask(&mut self, prompt: &str) -> io::Result<Option<String>> {
        write!(self.output, "{prompt}")?;
        self.output.flush()?;
        let mut line = String::new();
        if self.input.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        Ok(Some(line.trim().to_string()))
    }
}

/// The fields asked for, in order, with their prompts.
const QUESTIONS: [(&str, &str, Option<Kind>); 10] = [
    ("operator", "Operator number", None),
    ("institution", "Institution code", None),
    ("customer", "Customer name", None),
    ("role", "Role of the person called", Some(Kind::Role)),
    ("business", "Business type", Some(Kind::BusinessType)),
    ("account", "Account number", None),
    ("id_number", "ID number", None),
    ("credit_code", "Company credit code", None),
    ("result", "Verification result", Some(Kind::Result)),
    ("remark", "Remark", None),
];

/// Ask for each field the record lacks and the flags do not give; an empty answer leaves a
/// field empty, an invalid one is asked again. `None` if the terminal closed.
fn ask(
    tty: &mut Terminal,
    input: &Path,
    flags: &Fields,
    ctx: &Context,
) -> anyhow::Result<Option<Fields>> {
    let (_, record) = annotate::load(input)?;
    let when = record
        .times
        .call_start
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| "unknown time".into());
    let number = if record.phone.number.is_empty() {
        "unknown number"
    } else {
        &record.phone.number
    };
    writeln!(
        tty.output,
        "\nCall to {} at {when} (record {})",
        cli::escape_control(number),
        record.id
    )?;
    let mut answers = Fields::default();
    let mut scratch = record.clone();
    for (name, prompt, kind) in QUESTIONS {
        if flags.get(name).is_some() || !annotate::current(&record, name).is_empty() {
            continue;
        }
        if let Some(kind) = kind {
            for term in ctx.vocab.list(kind) {
                writeln!(
                    tty.output,
                    "  {}  {}  ({})",
                    term.code, term.label, term.english
                )?;
            }
        }
        loop {
            let Some(answer) = tty.ask(&format!("{prompt}: "))? else {
                return Ok(None);
            };
            if answer.is_empty() {
                break;
            }
            match annotate::apply_field(
                &mut scratch,
                name,
                &answer,
                &ctx.vocab,
                ctx.now.date_naive(),
            ) {
                Ok(()) => {
                    answers.set(name, answer).map_err(anyhow::Error::msg)?;
                    break;
                }
                Err(e) => writeln!(tty.output, "  invalid {e}; try again (Enter to skip)")?,
            }
        }
    }
    Ok(Some(answers))
}
