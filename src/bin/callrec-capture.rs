//! callrec-capture: record a call. See `callrec-capture --help`.

use std::io::{self, Write};
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;
use clap::Parser;
use serde::Serialize;

use callrec::args::{AudioCodecArg, CaptureArgs};
use callrec::capture::{self, AudioCodec, CaptureError, CaptureOptions};
use callrec::cli::{self, WirePath, EXIT_ERROR, EXIT_FAILED, EXIT_OK};
use callrec::record::{PhoneDevice, Record};
use callrec::validate;

const PROG: &str = "callrec-capture";

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
enum Wire<'a> {
    Record { path: WirePath, record: &'a Record },
}

fn main() -> ExitCode {
    let args = CaptureArgs::parse();
    match run(args) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            let code = match err.downcast_ref::<CaptureError>() {
                Some(CaptureError::Record(_) | CaptureError::Io(_)) => EXIT_FAILED,
                _ => EXIT_ERROR,
            };
            eprintln!("{PROG}: error: {}", cli::error_chain(err.as_ref()));
            ExitCode::from(code)
        }
    }
}

fn run(args: CaptureArgs) -> anyhow::Result<u8> {
    let parse = |s: &Option<String>| {
        s.as_deref()
            .map(str::parse::<capture::SourceSpec>)
            .transpose()
            .map_err(anyhow::Error::msg)
    };
    let number = match &args.number {
        Some(n) => validate::phone(n).map_err(|e| anyhow::anyhow!("--number: {e}"))?,
        None => String::new(),
    };
    if !args.output_dir.is_dir() {
        bail!("output directory {:?} does not exist", args.output_dir);
    }
    let options = CaptureOptions {
        audio: parse(&args.audio)?,
        video: parse(&args.video)?,
        audio_codec: match args.audio_codec {
            AudioCodecArg::Opus => AudioCodec::Opus,
            AudioCodecArg::Flac => AudioCodec::Flac,
        },
        duration: args
            .duration
            .map(|s| {
                Duration::try_from_secs_f64(s)
                    .map_err(|_| anyhow::anyhow!("--duration: give seconds"))
            })
            .transpose()?,
        out_dir: args.output_dir.clone(),
        number,
        device: PhoneDevice {
            number: args.device_number.clone().unwrap_or_default(),
            ..PhoneDevice::default()
        },
        silence_db: args.silence_db,
        realtime: args.realtime,
    };
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop))?;
    }
    let captured = capture::capture(&options, &stop)?;
    if let Some(health) = captured
        .record
        .media
        .as_ref()
        .and_then(|m| m.health.as_ref())
    {
        if !health.is_empty() {
            eprintln!(
                "{PROG}: {:?}: recording flagged: {}",
                captured.media,
                health.join(", ")
            );
        }
    }
    let bytes = if args.json {
        cli::json_line(&Wire::Record {
            path: captured.media.as_path().into(),
            record: &captured.record,
        })
    } else {
        cli::path_line(&captured.media, false)
    };
    let _ = io::stdout().write_all(&bytes);
    Ok(EXIT_OK)
}
