//! What every callrec main shares, and the only place besides the mains that prints: the
//! shape of `main` (parse, run, render the error, map it to an exit code) and standard output.
//!
//! Standard output is the tools' interface in pipelines, so writing to it follows one policy:
//! a closed pipe (`callrec-query search | head -1`) ends the output quietly, as coreutils and
//! ripgrep do, and the command's exit code stays what its work earned; any other failed write
//! (a full disk under `callrec-verify --json > file`) fails the command with exit 2, so a
//! truncated report never passes for a whole one.

// Each binary includes this module and uses part of it.
#![allow(dead_code)]

use std::error::Error;
use std::io::{self, Write};
use std::process::ExitCode;
use std::sync::Mutex;

use callrec::cli::{self, EXIT_ERROR, EXIT_FAILED, EXIT_OK};

/// Standard output, shared by the threads of one run.
pub struct Stdout {
    state: Mutex<State>,
}

struct State {
    out: io::Stdout,
    /// The reader went away: nothing more is written.
    closed: bool,
    /// The first write that failed for another reason.
    failed: Option<io::Error>,
}

impl Stdout {
    fn new() -> Stdout {
        Stdout {
            state: Mutex::new(State {
                out: io::stdout(),
                closed: false,
                failed: None,
            }),
        }
    }

    /// Write and flush `bytes` (one line or record), unless output has already ended.
    pub fn write(&self, bytes: &[u8]) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.closed || state.failed.is_some() {
            return;
        }
        let result = {
            let mut out = state.out.lock();
            out.write_all(bytes).and_then(|()| out.flush())
        };
        match result {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => state.closed = true,
            Err(e) => state.failed = Some(e),
        }
    }

    /// A writer for output made in one piece (a stream of media, a report): its errors are
    /// returned to the caller and judged like the others by [`main`].
    pub fn raw(&self) -> io::StdoutLock<'static> {
        io::stdout().lock()
    }

    fn finish(&self) -> Option<io::Error> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.closed {
            return None;
        }
        if let Err(e) = state.out.flush() {
            if e.kind() != io::ErrorKind::BrokenPipe {
                state.failed.get_or_insert(e);
            }
        }
        state.failed.take()
    }
}

/// Is a closed pipe somewhere in this error's chain?
fn broken_pipe(err: &(dyn Error + 'static)) -> bool {
    let mut next = Some(err);
    while let Some(e) = next {
        if e.downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
        {
            return true;
        }
        next = e.source();
    }
    false
}

/// Run one tool: `run` does the work and returns its exit code; an error is printed as
/// `PROG: error: cause: cause` and exits with the code [`exit_code`] gives it.
pub fn main(prog: &str, run: impl FnOnce(&Stdout) -> anyhow::Result<u8>) -> ExitCode {
    let stdout = Stdout::new();
    let code = match run(&stdout) {
        Ok(code) => code,
        Err(err) if broken_pipe(err.as_ref()) => EXIT_OK,
        Err(err) => {
            eprintln!("{prog}: error: {}", cli::error_chain(err.as_ref()));
            exit_code(err.as_ref())
        }
    };
    match stdout.finish() {
        Some(e) => {
            eprintln!("{prog}: error: cannot write to standard output: {e}");
            ExitCode::from(EXIT_ERROR)
        }
        None => ExitCode::from(code),
    }
}

/// The exit code of an error that ended a whole run, the one policy of every tool: the
/// archive unreachable or busy, 75 (try again later); a file proven not to be an intact seal,
/// or a recording that failed, 1; anything else (a usage error, keys, an archive that cannot
/// be used, an unreadable index), 2. The first error in the chain of causes that knows decides.
fn exit_code(err: &(dyn Error + 'static)) -> u8 {
    let mut next = Some(err);
    while let Some(e) = next {
        // (Errors that wrap another transparently pass on its causes, not itself: look inside.)
        let archive = e.downcast_ref::<callrec::archive::PushError>().or(
            match e.downcast_ref::<callrec::query::QueryError>() {
                Some(callrec::query::QueryError::Archive(e)) => Some(e),
                _ => None,
            },
        );
        if let Some(e) = archive {
            return if e.is_temporary() {
                callrec::archive::EXIT_TEMPORARY
            } else {
                EXIT_ERROR
            };
        }
        if let Some(e) = callrec::verify::verify_error(e) {
            return e.exit_code();
        }
        if let Some(
            callrec::capture::CaptureError::Record(_) | callrec::capture::CaptureError::Io(_),
        ) = e.downcast_ref::<callrec::capture::CaptureError>()
        {
            return EXIT_FAILED;
        }
        next = e.source();
    }
    EXIT_ERROR
}
