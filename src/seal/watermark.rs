//! The visible watermark: device number, phone number and the wall-clock time of each frame
//! (the call's start plus the frame's timestamp) drawn on the video with libavfilter's
//! `drawtext`, white on a dark translucent box so it stays legible on any background. Video is
//! re-encoded with libx264; audio and other streams are copied untouched.

use std::path::{Path, PathBuf};

use ffmpeg_next as ff;

use crate::media;
use crate::record::Record;
use crate::transcode::{VideoPipe, X264};

/// Debian's `fonts-dejavu-core`: a monospaced font with clear digits.
pub const DEFAULT_FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf";

#[derive(Debug, Clone)]
pub struct WatermarkOptions {
    pub x264: X264,
    pub font: PathBuf,
}

impl WatermarkOptions {
    /// What the manifest's `watermark` fact says about this overlay.
    pub fn describe(&self) -> String {
        format!(
            "drawtext libx264 preset={} crf={}",
            self.x264.preset, self.x264.crf
        )
    }
}

#[derive(Debug, thiserror::Error)]
#[error("cannot watermark {path:?}: {what}: {source}")]
pub struct WatermarkError {
    pub path: PathBuf,
    pub what: &'static str,
    #[source]
    pub source: ff::Error,
}

/// Keep only characters that can pass through a filter description and drawtext's text
/// expansion unchanged: letters, digits, space and `+-._#`.
fn overlay_safe(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_ascii_alphanumeric() || " +-._#".contains(*c))
        .collect()
}

/// The drawtext filter for a record, for video `height` pixels high.
pub fn drawtext(record: &Record, font: &Path, height: u32) -> String {
    let size = (height / 18).max(12);
    let pad = size / 3;
    // The clock: the call's start in its own UTC offset, plus the frame's timestamp. Rendered
    // with gmtime from a shifted epoch so the server's time zone does not matter.
    let clock = match record.times.call_start {
        Some(start) => {
            let offset = start.offset().local_minus_utc();
            format!(
                "%{{pts\\:gmtime\\:{}}} UTC{}",
                start.timestamp() + i64::from(offset),
                // Colons inside the text must be escaped for the filter's option parser.
                start.format("%:z").to_string().replace(':', "\\:")
            )
        }
        None => "T+%{pts\\:hms}".to_string(),
    };
    let ids = format!(
        "DEV {}  TEL {}",
        overlay_safe(&record.phone.device.number),
        overlay_safe(&record.phone.number)
    );
    let font = overlay_safe_path(font);
    // Two lines, each in its own box: the identities, then the clock.
    let line = |text: &str, row: u32| {
        format!(
            "drawtext=fontfile='{font}':text='{text}':fontsize={size}:fontcolor=white:box=1:boxcolor=black@0.85:boxborderw={pad}:x={pad}:y={}",
            pad + row * (size + 3 * pad)
        )
    };
    format!("{},{}", line(&ids, 0), line(&clock, 1))
}

fn overlay_safe_path(path: &Path) -> String {
    path.to_string_lossy()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "/+-._".contains(*c))
        .collect()
}

/// Does the record's media have a video stream?
pub fn has_video(record: &Record) -> bool {
    record
        .media
        .as_ref()
        .is_some_and(|m| m.streams.iter().any(|s| s.kind == "video"))
}

/// The muxer for a watermarked copy: the input's own container where we can write it.
fn muxer_for(input_format: &str) -> &'static str {
    match input_format.split(',').next().unwrap_or_default() {
        "mov" => "mp4",
        "avi" => "avi",
        _ => "matroska",
    }
}

/// Write a watermarked copy of the media at `input` to `output`.
pub fn watermark(
    input: &Path,
    output: &Path,
    record: &Record,
    opts: &WatermarkOptions,
) -> Result<(), WatermarkError> {
    media::init_ffmpeg();
    let err = |what: &'static str| {
        move |source| WatermarkError {
            path: input.to_path_buf(),
            what,
            source,
        }
    };
    let mut ictx = ff::format::input(&input).map_err(err("open"))?;
    let muxer = muxer_for(ictx.format().name());
    let mut octx = ff::format::output_as(&output, muxer).map_err(err("create output"))?;

    enum Handling {
        Pipe(Box<VideoPipe>),
        Copy { out: usize, time_base: ff::Rational },
        Drop,
    }
    let mut handling = Vec::new();
    for stream in ictx.streams() {
        let medium = stream.parameters().medium();
        let h = match medium {
            ff::media::Type::Video => {
                // SAFETY: the parameters of a stream of the open input.
                let height = unsafe { (*stream.parameters().as_ptr()).height }.max(1) as u32;
                let filters = drawtext(record, &opts.font, height);
                Handling::Pipe(Box::new(
                    VideoPipe::new(&stream, &mut octx, &filters, &opts.x264)
                        .map_err(err("set up the overlay"))?,
                ))
            }
            ff::media::Type::Audio | ff::media::Type::Subtitle => {
                let mut out = octx
                    .add_stream(ff::encoder::find(ff::codec::Id::None))
                    .map_err(err("add a stream"))?;
                out.set_parameters(stream.parameters());
                // SAFETY: clearing the codec tag lets the muxer choose its own.
                unsafe { (*out.parameters().as_mut_ptr()).codec_tag = 0 };
                Handling::Copy {
                    out: out.index(),
                    time_base: stream.time_base(),
                }
            }
            _ => Handling::Drop,
        };
        handling.push(h);
    }
    octx.write_header().map_err(err("write header"))?;
    let out_time_bases: Vec<ff::Rational> = octx.streams().map(|s| s.time_base()).collect();
    let mut write_error = None;
    let mut write = |mut packet: ff::Packet,
                     from: ff::Rational,
                     out: usize,
                     octx: &mut ff::format::context::Output| {
        packet.set_stream(out);
        packet.rescale_ts(from, out_time_bases[out]);
        if let Err(e) = packet.write_interleaved(octx) {
            write_error.get_or_insert(e);
            return false;
        }
        true
    };
    for (stream, packet) in ictx.packets() {
        match &mut handling[stream.index()] {
            Handling::Pipe(pipe) => {
                let (tb, out) = (pipe.time_base, pipe.out_stream);
                pipe.push(Some(&packet), &mut |p| write(p, tb, out, &mut octx));
            }
            Handling::Copy { out, time_base } => {
                let (out, tb) = (*out, *time_base);
                write(packet, tb, out, &mut octx);
            }
            Handling::Drop => {}
        }
    }
    for h in &mut handling {
        if let Handling::Pipe(pipe) = h {
            let (tb, out) = (pipe.time_base, pipe.out_stream);
            pipe.push(None, &mut |p| write(p, tb, out, &mut octx));
        }
    }
    if let Some(e) = write_error {
        return Err(err("write")(e));
    }
    octx.write_trailer().map_err(err("write trailer"))?;
    Ok(())
}
