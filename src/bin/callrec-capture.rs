//! callrec-capture: record a call. See `callrec-capture --help`.

use std::fs::File;
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use clap::Parser;

use callrec::args::{AudioCodecArg, CaptureArgs};
use callrec::capture::hid::HookEvents;
use callrec::capture::usb::{self, Phone, UsbError};
use callrec::capture::{self, AudioCodec, CaptureOptions, SourceSpec};
use callrec::cli::{self, EXIT_OK};
use callrec::record::PhoneDevice;
use callrec::validate;
use callrec::wire;

mod common;

use common::Stdout;

const PROG: &str = "callrec-capture";
const SYSFS: &str = "/sys";

fn main() -> ExitCode {
    let args = CaptureArgs::parse();
    common::main(PROG, |stdout| run(args, stdout))
}

/// VID:PID pairs of known phones, from `$CALLREC_PHONE_IDS`.
fn known_phones() -> anyhow::Result<Vec<(u16, u16)>> {
    let list = std::env::var("CALLREC_PHONE_IDS").unwrap_or_default();
    list.split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| usb::parse_id(s).context("in $CALLREC_PHONE_IDS"))
        .collect()
}

fn list(json: bool, stdout: &Stdout) -> anyhow::Result<u8> {
    let devices = match usb::enumerate() {
        Ok(devices) => devices,
        Err(UsbError::NoUsb(why)) => {
            eprintln!("{PROG}: no USB on this machine ({why}); no phone can be attached");
            if json {
                stdout.write(&wire::json_line(&wire::Capture::Summary {
                    records: 0,
                    phones: 0,
                }));
            }
            return Ok(EXIT_OK);
        }
        Err(e) => return Err(e.into()),
    };
    let count = devices.len();
    let phones = usb::phones(devices, &known_phones()?, Path::new(SYSFS));
    for phone in &phones {
        if json {
            stdout.write(&wire::json_line(&wire::Capture::Phone(phone)));
        } else {
            let u = &phone.usb;
            let line = format!(
                "{:04x}:{:04x}  {}  {}  serial {}  usb {}  audio {}  video {}  hook {}\n",
                u.vendor_id,
                u.product_id,
                cli::escape_control(&u.manufacturer),
                cli::escape_control(&u.product),
                cli::escape_control(&u.serial),
                u.sysfs_name(),
                phone.audio.as_deref().unwrap_or("-"),
                phone.video.as_deref().unwrap_or("-"),
                phone
                    .hook_device
                    .as_deref()
                    .map_or("-".into(), |p| p.display().to_string()),
            );
            stdout.write(line.as_bytes());
        }
    }
    if count == 0 {
        eprintln!("{PROG}: no USB devices on this machine; no phone is attached");
    } else if phones.is_empty() {
        eprintln!("{PROG}: no phone among the {count} USB devices");
    }
    if json {
        stdout.write(&wire::json_line(&wire::Capture::Summary {
            records: 0,
            phones: phones.len(),
        }));
    }
    Ok(EXIT_OK)
}

/// The phone to record from: `auto` (the first) or `VID:PID`.
fn find_phone(choice: &str) -> anyhow::Result<Phone> {
    let devices = usb::enumerate()?;
    let phones = usb::phones(devices, &known_phones()?, Path::new(SYSFS));
    let wanted = (choice != "auto")
        .then(|| usb::parse_id(choice))
        .transpose()?;
    phones
        .into_iter()
        .find(|p| wanted.is_none_or(|id| (p.usb.vendor_id, p.usb.product_id) == id))
        .with_context(|| {
            format!(
                "no phone ({choice}) attached: callrec-capture --list shows USB phones; to record \
                 without one, give --audio and/or --video (e.g. --audio lavfi:sine)"
            )
        })
}

fn run(args: CaptureArgs, stdout: &Stdout) -> anyhow::Result<u8> {
    if args.list {
        return list(args.json, stdout);
    }
    let out_dir = args.output_dir.clone().expect("clap requires --output-dir");
    std::fs::create_dir_all(&out_dir)
        .with_context(|| format!("cannot create output directory {out_dir:?}"))?;
    // What a killed capture left is completed (a recording) or removed (a temporary file)
    // before anything else.
    callrec::fsutil::remove_stale_temps(&out_dir)
        .with_context(|| format!("cannot clean up {out_dir:?}"))?;
    for recovered in capture::recover_all(&out_dir) {
        match recovered {
            Ok(c) => eprintln!(
                "{PROG}: {:?}: completed a recording that was interrupted",
                c.media
            ),
            Err(e) => eprintln!("{PROG}: warning: {}", cli::error_chain(&e)),
        }
    }
    let parse = |s: &Option<String>| {
        s.as_deref()
            .map(str::parse::<SourceSpec>)
            .transpose()
            .map_err(anyhow::Error::msg)
    };
    let (mut audio, mut video) = (parse(&args.audio)?, parse(&args.video)?);
    let mut device = PhoneDevice::default();
    let mut hook = None;
    if (audio.is_none() && video.is_none()) || args.phone.is_some() || args.on_hook {
        let phone = find_phone(args.phone.as_deref().unwrap_or("auto"))?;
        device = phone.usb.phone_device();
        if audio.is_none() && video.is_none() {
            audio = phone
                .audio
                .as_deref()
                .map(str::parse)
                .transpose()
                .map_err(anyhow::Error::msg)?;
            video = phone
                .video
                .as_deref()
                .map(str::parse)
                .transpose()
                .map_err(anyhow::Error::msg)?;
        }
        hook = phone.hook;
    }
    if let Some(number) = &args.device_number {
        device.number = number.clone();
    }
    let number = match &args.number {
        Some(n) => validate::phone(n).map_err(|e| anyhow::anyhow!("--number: {e}"))?,
        None => String::new(),
    };
    let options = CaptureOptions {
        audio,
        video,
        audio_codec: match args.audio_codec {
            AudioCodecArg::Opus => AudioCodec::Opus,
            AudioCodecArg::Flac => AudioCodec::Flac,
        },
        duration: args
            .duration
            .map(|s| {
                Duration::try_from_secs_f64(s)
                    .ok()
                    .filter(|d| !d.is_zero())
                    .ok_or_else(|| anyhow::anyhow!("--duration: give a number of seconds above 0"))
            })
            .transpose()?,
        out_dir,
        number,
        device,
        silence_db: args.silence_db,
        realtime: args.realtime,
    };
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop))?;
    }
    if args.on_hook {
        let (node, switch) = hook.context("--on-hook: this phone has no HID hook switch")?;
        let file = File::open(&node).with_context(|| format!("cannot open {node:?}"))?;
        let mut events = HookEvents::new(file, switch);
        eprintln!("{PROG}: waiting for the handset to be lifted");
        loop {
            match events.next() {
                Some(Ok(true)) => break,
                Some(Ok(false)) => {}
                Some(Err(e)) => return Err(e).context(format!("reading {node:?}")),
                None => bail!("{node:?} closed before the handset was lifted"),
            }
        }
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            for event in events {
                if !matches!(event, Ok(true)) {
                    break; // put down, or the device went away
                }
            }
            stop.store(true, Ordering::Relaxed);
        });
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
    if args.json {
        stdout.write(&wire::json_line(&wire::Capture::Record {
            path: captured.media.as_path().into(),
            record: &captured.record,
        }));
        stdout.write(&wire::json_line(&wire::Capture::Summary {
            records: 1,
            phones: 0,
        }));
    } else {
        stdout.write(&cli::path_line(&captured.media, false));
    }
    Ok(EXIT_OK)
}
