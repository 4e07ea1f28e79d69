//! Recording a call: audio and video from capture devices (or any libavdevice source) into a
//! crash-tolerant Matroska file, with the record skeleton beside it and health flags.
//!
//! Each source is read in its own thread: audio is decoded, checked for level and encoded to
//! Opus (or FLAC); compressed camera video (MJPEG, H.264) is copied as it comes; raw video is
//! encoded with libx264 at low-CPU settings. Packets meet in one muxer that flushes after every
//! packet and closes a Matroska cluster every second, so a process killed at any moment leaves a
//! file that plays up to about its last second. While recording, the file is `ID.mkv.part`,
//! locked by the recording process; it is renamed to `ID.mkv` when the recording ends. The
//! sidecar (0600: it holds personal data) is written when recording starts and completed at
//! the end. A `.part` no live process holds is a killed recording: [`recover`] completes it,
//! flagged `interrupted`; the next capture and `callrec-seal` do so.

pub mod hid;
pub mod usb;

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Local, Utc};
use ffmpeg_next as ff;

use crate::fsutil::{self, PathContext, PathError};
use crate::media;
use crate::record::{sidecar_path, PhoneDevice, Record, RecordId};
use crate::transcode::{receive_packets, VideoPipe, X264};

/// A media source: `FORMAT:SPEC` as libavdevice names them (`alsa:hw:1,0`,
/// `v4l2:/dev/video0`, `pulse:default`, `lavfi:sine=frequency=440`), or `file:PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceSpec {
    /// libavformat input format name; `None` for `file:` (probed).
    pub format: Option<String>,
    pub url: String,
}

impl SourceSpec {
    /// Live sources deliver media at the rate it happens; files and lavfi graphs do not.
    fn is_file(&self) -> bool {
        self.format.is_none()
    }
}

impl FromStr for SourceSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<SourceSpec, String> {
        let (format, url) = s
            .split_once(':')
            .ok_or_else(|| format!("{s:?}: give FORMAT:SPEC, e.g. alsa:hw:1,0 or lavfi:sine"))?;
        if url.is_empty() {
            return Err(format!("{s:?}: nothing after {format:?}"));
        }
        match format {
            "file" => Ok(SourceSpec {
                format: None,
                url: url.to_string(),
            }),
            "alsa" | "pulse" | "v4l2" | "lavfi" | "oss" | "jack" | "x11grab" => Ok(SourceSpec {
                format: Some(format.to_string()),
                url: url.to_string(),
            }),
            other => Err(format!(
                "{other:?} is not a source format: use alsa, pulse, v4l2, lavfi or file"
            )),
        }
    }
}

/// How audio is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioCodec {
    Opus,
    Flac,
}

pub struct CaptureOptions {
    pub audio: Option<SourceSpec>,
    pub video: Option<SourceSpec>,
    pub audio_codec: AudioCodec,
    /// Stop after this much media; `None` records until stopped.
    pub duration: Option<Duration>,
    pub out_dir: PathBuf,
    /// The other party's number.
    pub number: String,
    pub device: PhoneDevice,
    /// Audio whose peak stays below this level (dBFS) is flagged silent.
    pub silence_db: f64,
    /// Read `file:` sources at their native rate, as a device delivers media.
    pub realtime: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("cannot open {what} source {spec:?}: {source}")]
    Open {
        what: &'static str,
        spec: String,
        source: ff::Error,
    },
    #[error("{what} source {spec:?} has no {what} stream")]
    NoStream { what: &'static str, spec: String },
    #[error("cannot set up {0}")]
    Setup(String, #[source] ff::Error),
    #[error("recording failed: {0}")]
    Record(String),
    #[error("no source: give --audio and/or --video, or attach a phone")]
    NoSource,
    #[error(transparent)]
    Io(#[from] PathError),
}

fn setup<T>(what: &str, r: Result<T, ff::Error>) -> Result<T, CaptureError> {
    r.map_err(|e| CaptureError::Setup(what.to_string(), e))
}

/// The outcome of a recording.
#[derive(Debug)]
pub struct Captured {
    pub media: PathBuf,
    pub sidecar: PathBuf,
    pub record: Record,
}

fn open_source(
    what: &'static str,
    spec: &SourceSpec,
) -> Result<ff::format::context::Input, CaptureError> {
    media::init_ffmpeg();
    let open_error = |source| CaptureError::Open {
        what,
        spec: format!("{}:{}", spec.format.as_deref().unwrap_or("file"), spec.url),
        source,
    };
    match &spec.format {
        None => ff::format::input(&spec.url).map_err(open_error),
        Some(name) => {
            // lavfi graphs run as fast as the CPU allows; pace them like a device.
            let url = match (name.as_str(), what) {
                ("lavfi", "audio") => format!("{},arealtime", spec.url),
                ("lavfi", _) => format!("{},realtime", spec.url),
                _ => spec.url.clone(),
            };
            let cname = std::ffi::CString::new(name.as_str()).expect("no NUL in a format name");
            // SAFETY: av_find_input_format returns a static format description or null.
            let format = unsafe { ff::ffi::av_find_input_format(cname.as_ptr()) };
            if format.is_null() {
                return Err(open_error(ff::Error::DemuxerNotFound));
            }
            // SAFETY: non-null pointer to a static AVInputFormat.
            let format = unsafe { ff::format::format::Input::wrap(format as *mut _) };
            match ff::format::open_with(&url, &ff::Format::Input(format), ff::Dictionary::new())
                .map_err(open_error)?
            {
                ff::format::context::Context::Input(input) => Ok(input),
                ff::format::context::Context::Output(_) => unreachable!("opened as input"),
            }
        }
    }
}

/// What happens to one source's packets on the way to the muxer.
enum Route {
    Copy,
    Audio {
        decoder: ff::decoder::Audio,
        filter: ff::filter::Graph,
        encoder: ff::encoder::Audio,
    },
    Video(VideoPipe),
}

/// One source and its output stream.
struct Track {
    input: ff::format::context::Input,
    in_stream: usize,
    in_time_base: ff::Rational,
    out_stream: usize,
    /// Time base of the packets this track sends to the muxer.
    send_time_base: ff::Rational,
    route: Route,
    is_audio: bool,
    is_file: bool,
}

/// Levels seen on each audio channel: the peak absolute sample.
#[derive(Debug, Default, Clone)]
struct Levels {
    peaks: Vec<u16>,
}

impl Levels {
    fn add_s16(&mut self, frame: &ff::frame::Audio) {
        let channels = frame.channels() as usize;
        if self.peaks.len() < channels {
            self.peaks.resize(channels, 0);
        }
        let samples: &[i16] = frame.plane(0);
        for (i, s) in samples.iter().take(frame.samples() * channels).enumerate() {
            let peak = &mut self.peaks[i % channels];
            *peak = (*peak).max(s.unsigned_abs());
        }
    }
}

fn dbfs(peak: u16) -> f64 {
    if peak == 0 {
        f64::NEG_INFINITY
    } else {
        20.0 * (f64::from(peak) / 32768.0).log10()
    }
}

fn audio_track(
    input: ff::format::context::Input,
    spec: &SourceSpec,
    output: &mut ff::format::context::Output,
    codec: AudioCodec,
) -> Result<Track, CaptureError> {
    let stream = input
        .streams()
        .best(ff::media::Type::Audio)
        .ok_or(CaptureError::NoStream {
            what: "audio",
            spec: spec.url.clone(),
        })?;
    let in_stream = stream.index();
    let in_time_base = stream.time_base();
    let context = setup(
        "audio decoder",
        ff::codec::context::Context::from_parameters(stream.parameters()),
    )?;
    let decoder = setup("audio decoder", context.decoder().audio())?;
    let (codec_id, rate) = match codec {
        AudioCodec::Opus => ("libopus", 48000),
        AudioCodec::Flac => ("flac", decoder.rate().max(8000) as i32),
    };
    let encoder_codec = ff::encoder::find_by_name(codec_id)
        .ok_or_else(|| CaptureError::Record(format!("FFmpeg has no {codec_id} encoder")))?;
    let channels = decoder.channels().clamp(1, 2);
    let layout = ff::ChannelLayout::default(i32::from(channels));
    let global = output
        .format()
        .flags()
        .contains(ff::format::Flags::GLOBAL_HEADER);
    let mut out = setup("output stream", output.add_stream(encoder_codec))?;
    let out_stream = out.index();
    let context = ff::codec::context::Context::new_with_codec(encoder_codec);
    let mut encoder = setup("audio encoder", context.encoder().audio())?;
    encoder.set_rate(rate);
    encoder.set_channel_layout(layout);
    encoder.set_format(ff::format::Sample::I16(ff::format::sample::Type::Packed));
    encoder.set_time_base((1, rate));
    if codec == AudioCodec::Opus {
        encoder.set_bit_rate(32_000);
    }
    if global {
        encoder.set_flags(ff::codec::Flags::GLOBAL_HEADER);
    }
    let encoder = setup("audio encoder", encoder.open_as(encoder_codec))?;
    out.set_parameters(&encoder);
    out.set_time_base((1, rate));

    let mut filter = ff::filter::Graph::new();
    let args = format!(
        "time_base={}:sample_rate={}:sample_fmt={}:channel_layout=0x{:x}",
        decoder.time_base(),
        decoder.rate(),
        decoder.format().name(),
        if decoder.channel_layout().bits() == 0 {
            ff::ChannelLayout::default(i32::from(decoder.channels())).bits()
        } else {
            decoder.channel_layout().bits()
        }
    );
    setup(
        "audio filter",
        filter.add(&ff::filter::find("abuffer").expect("abuffer"), "in", &args),
    )?;
    setup(
        "audio filter",
        filter.add(
            &ff::filter::find("abuffersink").expect("abuffersink"),
            "out",
            "",
        ),
    )?;
    let spec_text = format!(
        "aresample={rate},aformat=sample_fmts=s16:channel_layouts={}",
        if channels == 1 { "mono" } else { "stereo" }
    );
    setup(
        "audio filter",
        filter
            .output("in", 0)
            .and_then(|p| p.input("out", 0))
            .and_then(|p| p.parse(&spec_text)),
    )?;
    setup("audio filter", filter.validate())?;
    if encoder.frame_size() > 0 {
        filter
            .get("out")
            .expect("sink")
            .sink()
            .set_frame_size(encoder.frame_size());
    }
    Ok(Track {
        input,
        in_stream,
        in_time_base,
        out_stream,
        send_time_base: ff::Rational::new(1, rate),
        route: Route::Audio {
            decoder,
            filter,
            encoder,
        },
        is_audio: true,
        is_file: spec.is_file(),
    })
}

fn video_track(
    input: ff::format::context::Input,
    spec: &SourceSpec,
    output: &mut ff::format::context::Output,
) -> Result<Track, CaptureError> {
    let stream = input
        .streams()
        .best(ff::media::Type::Video)
        .ok_or(CaptureError::NoStream {
            what: "video",
            spec: spec.url.clone(),
        })?;
    let in_stream = stream.index();
    let in_time_base = stream.time_base();
    let params = stream.parameters();
    let copy = matches!(params.id(), ff::codec::Id::MJPEG | ff::codec::Id::H264);
    if copy {
        let mut out = setup(
            "output stream",
            output.add_stream(ff::encoder::find(ff::codec::Id::None)),
        )?;
        out.set_parameters(params);
        // SAFETY: clearing the codec tag lets Matroska choose its own.
        unsafe { (*out.parameters().as_mut_ptr()).codec_tag = 0 };
        return Ok(Track {
            input,
            in_stream,
            in_time_base,
            out_stream: out.index(),
            send_time_base: in_time_base,
            route: Route::Copy,
            is_audio: false,
            is_file: spec.is_file(),
        });
    }
    let x264 = X264 {
        preset: "ultrafast".into(),
        crf: 26,
        tune: Some("zerolatency".into()),
    };
    let pipe = setup("video encoding", VideoPipe::new(&stream, output, "", &x264))?;
    Ok(Track {
        input,
        in_stream,
        in_time_base,
        out_stream: pipe.out_stream,
        send_time_base: pipe.time_base,
        route: Route::Video(pipe),
        is_audio: false,
        is_file: spec.is_file(),
    })
}

/// A packet on its way to the muxer, in its track's time base.
struct Sent {
    out_stream: usize,
    time_base: ff::Rational,
    packet: ff::Packet,
}

/// What a track reports when it ends.
#[derive(Default)]
struct TrackEnd {
    packets: u64,
    /// Media time covered, in seconds.
    seconds: f64,
    levels: Option<Levels>,
    error: Option<String>,
}

/// Read, convert and send one track's packets until stopped, out of input or past `limit`.
fn run_track(
    mut track: Track,
    tx: mpsc::Sender<Sent>,
    stop: &AtomicBool,
    limit: Option<Duration>,
    realtime: bool,
) -> TrackEnd {
    let mut end = TrackEnd::default();
    let mut levels = track.is_audio.then(Levels::default);
    let mut first_pts: Option<i64> = None;
    let send_tb = track.send_time_base;
    let limit_ts = limit.map(|d| {
        (d.as_secs_f64() * f64::from(send_tb.denominator()) / f64::from(send_tb.numerator())) as i64
    });
    let mut send = |mut packet: ff::Packet, end: &mut TrackEnd| -> bool {
        let Some(pts) = packet.pts() else { return true };
        let start = *first_pts.get_or_insert(pts);
        packet.set_pts(Some(pts - start));
        packet.set_dts(packet.dts().map(|d| d - start));
        if limit_ts.is_some_and(|l| pts - start >= l) {
            return false;
        }
        let duration = packet.duration().max(0);
        end.seconds = (pts - start + duration) as f64 * f64::from(send_tb.numerator())
            / f64::from(send_tb.denominator());
        end.packets += 1;
        packet.set_stream(track.out_stream);
        tx.send(Sent {
            out_stream: track.out_stream,
            time_base: send_tb,
            packet,
        })
        .is_ok()
    };

    let mut running = true;
    let paced_from = (track.is_file && realtime).then(Instant::now);
    let mut first_input_pts = None;
    let mut input_packets = track.input.packets();
    while running && !stop.load(Ordering::Relaxed) {
        let Some((stream, mut packet)) = input_packets.next() else {
            break;
        };
        if stream.index() != track.in_stream {
            continue;
        }
        // A file read at its native rate, as a device would deliver it.
        if let (Some(started), Some(pts)) = (paced_from, packet.pts()) {
            let first = *first_input_pts.get_or_insert(pts);
            let tb = track.in_time_base;
            let at = (pts - first) as f64 * f64::from(tb.numerator()) / f64::from(tb.denominator());
            if let Some(wait) = Duration::try_from_secs_f64(at)
                .ok()
                .and_then(|at| at.checked_sub(started.elapsed()))
            {
                std::thread::sleep(wait);
            }
        }
        match &mut track.route {
            Route::Copy => {
                packet.rescale_ts(track.in_time_base, send_tb);
                running = send(packet, &mut end);
            }
            Route::Audio {
                decoder,
                filter,
                encoder,
            } => {
                if decoder.send_packet(&packet).is_err() {
                    continue;
                }
                running = drain_audio(
                    decoder,
                    filter,
                    encoder,
                    levels.as_mut(),
                    &mut |p| send(p, &mut end),
                    false,
                );
            }
            Route::Video(pipe) => {
                running = pipe.push(Some(&packet), &mut |p| send(p, &mut end));
            }
        }
    }
    // Flush decoders, filters and encoders so the last moments are kept.
    match &mut track.route {
        Route::Copy => {}
        Route::Audio {
            decoder,
            filter,
            encoder,
        } => {
            let _ = decoder.send_eof();
            drain_audio(
                decoder,
                filter,
                encoder,
                levels.as_mut(),
                &mut |p| send(p, &mut end),
                true,
            );
        }
        Route::Video(pipe) => {
            pipe.push(None, &mut |p| send(p, &mut end));
        }
    }
    end.levels = levels;
    end
}

/// Pass decoded audio through the filter to the encoder; `flush` ends each stage.
fn drain_audio(
    decoder: &mut ff::decoder::Audio,
    filter: &mut ff::filter::Graph,
    encoder: &mut ff::encoder::Audio,
    mut levels: Option<&mut Levels>,
    send: &mut dyn FnMut(ff::Packet) -> bool,
    flush: bool,
) -> bool {
    let mut decoded = ff::frame::Audio::empty();
    while decoder.receive_frame(&mut decoded).is_ok() {
        let ts = decoded.timestamp();
        decoded.set_pts(ts);
        if filter
            .get("in")
            .expect("source")
            .source()
            .add(&decoded)
            .is_err()
        {
            return true;
        }
    }
    if flush {
        let _ = filter.get("in").expect("source").source().flush();
    }
    let mut filtered = ff::frame::Audio::empty();
    while filter
        .get("out")
        .expect("sink")
        .sink()
        .frame(&mut filtered)
        .is_ok()
    {
        if let Some(levels) = levels.as_deref_mut() {
            levels.add_s16(&filtered);
        }
        if encoder.send_frame(&filtered).is_err() {
            continue;
        }
        if !receive_packets(encoder, send) {
            return false;
        }
    }
    if flush {
        let _ = encoder.send_eof();
        return receive_packets(encoder, send);
    }
    true
}

/// Record until `stop` is set, `duration` is reached or the sources end.
pub fn capture(opts: &CaptureOptions, stop: &AtomicBool) -> Result<Captured, CaptureError> {
    if opts.audio.is_none() && opts.video.is_none() {
        return Err(CaptureError::NoSource);
    }
    let started_wall = Instant::now();
    let start: DateTime<Local> = Local::now();
    let id = RecordId::new_random(start.to_utc());
    let media = opts.out_dir.join(format!("{id}.mkv"));
    let part = opts.out_dir.join(format!("{id}{PART_SUFFIX}"));

    let audio_in = opts
        .audio
        .as_ref()
        .map(|s| open_source("audio", s))
        .transpose()?;
    let video_in = opts
        .video
        .as_ref()
        .map(|s| open_source("video", s))
        .transpose()?;
    // The `.part` file is created here, 0600 (a voice is personal data), and locked for as
    // long as this process lives: a `.part` nobody holds is a killed recording ([`recover`]).
    // It is created locked under a temporary name and only then given its name, so no
    // other process ever sees it unlocked while this one lives.
    let part_lock = fsutil::temp_in(&opts.out_dir)
        .at("cannot create a file in", &opts.out_dir)?
        .persist_noclobber(&part)
        .map_err(|e| e.error)
        .at("cannot create", &part)?;
    let mut output = match ff::format::output_as(&part, "matroska") {
        Ok(output) => output,
        Err(e) => {
            let _ = std::fs::remove_file(&part);
            return Err(CaptureError::Setup("the output file".into(), e));
        }
    };
    // Until recording starts, a failure leaves no file behind; once it has, a partial
    // recording is evidence and is kept.
    let prepared = (|| {
        let mut tracks = Vec::new();
        if let (Some(input), Some(spec)) = (audio_in, &opts.audio) {
            tracks.push(audio_track(input, spec, &mut output, opts.audio_codec)?);
        }
        if let (Some(input), Some(spec)) = (video_in, &opts.video) {
            tracks.push(video_track(input, spec, &mut output)?);
        }
        let mut options = ff::Dictionary::new();
        options.set("cluster_time_limit", "1000");
        options.set("flush_packets", "1");
        // SAFETY: setting a flag on the open output context before its header is written.
        unsafe { (*output.as_mut_ptr()).flags |= ff::ffi::AVFMT_FLAG_FLUSH_PACKETS };
        setup(
            "the output file",
            output.write_header_with(options).map(|_| ()),
        )?;
        Ok(tracks)
    })();
    // The sidecar is written as soon as recording starts, so a killed capture still leaves
    // the number, the phone and the start time; it is completed at the end.
    let sidecar = sidecar_path(&media);
    let mut record = Record::new(id);
    record.phone.number = opts.number.clone();
    record.phone.device = opts.device.clone();
    record.times.call_start = Some(start.fixed_offset());
    let prepared = prepared.and_then(|tracks| {
        fsutil::write_atomic(&sidecar, &record.to_json(), true).at("cannot write", &sidecar)?;
        Ok(tracks)
    });
    let tracks = match prepared {
        Ok(tracks) => tracks,
        Err(e) => {
            drop(output);
            let _ = std::fs::remove_file(&part);
            return Err(e);
        }
    };
    let out_time_bases: Vec<ff::Rational> = output.streams().map(|s| s.time_base()).collect();
    let has_live = tracks.iter().any(|t| !t.is_file || opts.realtime);

    let (tx, rx) = mpsc::channel::<Sent>();
    let ends: Vec<(bool, TrackEnd)> = std::thread::scope(|scope| {
        let handles: Vec<_> = tracks
            .into_iter()
            .map(|track| {
                let tx = tx.clone();
                let is_audio = track.is_audio;
                (
                    is_audio,
                    scope.spawn(move || run_track(track, tx, stop, opts.duration, opts.realtime)),
                )
            })
            .collect();
        drop(tx);
        let mut write_error = None;
        for mut sent in rx {
            sent.packet
                .rescale_ts(sent.time_base, out_time_bases[sent.out_stream]);
            if let Err(e) = sent.packet.write_interleaved(&mut output) {
                write_error.get_or_insert(e);
                stop.store(true, Ordering::Relaxed);
            }
        }
        handles
            .into_iter()
            .map(|(is_audio, h)| {
                let mut end = h.join().unwrap_or_else(|_| TrackEnd {
                    error: Some("a recording thread panicked".into()),
                    ..TrackEnd::default()
                });
                if let Some(e) = write_error {
                    end.error
                        .get_or_insert(format!("cannot write {part:?}: {e}"));
                }
                (is_audio, end)
            })
            .collect()
    });
    setup("the output file", output.write_trailer())?;
    drop(output);
    if let Some(error) = ends.iter().find_map(|(_, e)| e.error.clone()) {
        return Err(CaptureError::Record(error));
    }
    let wall = started_wall.elapsed().as_secs_f64();
    let end_time: DateTime<Local> = Local::now();

    // Health: a defective recording is flagged, never passed silently.
    let mut health = Vec::new();
    for (is_audio, end) in &ends {
        let kind = if *is_audio { "audio" } else { "video" };
        if end.packets == 0 {
            health.push(format!("missing-{kind}"));
        }
        if let Some(levels) = &end.levels {
            let silent: Vec<usize> = levels
                .peaks
                .iter()
                .enumerate()
                .filter(|(_, &p)| dbfs(p) < opts.silence_db)
                .map(|(i, _)| i + 1)
                .collect();
            if !levels.peaks.is_empty() && silent.len() == levels.peaks.len() {
                health.push("silent-audio".to_string());
            } else {
                health.extend(silent.iter().map(|c| format!("silent-channel-{c}")));
            }
        }
    }
    let media_seconds = ends.iter().map(|(_, e)| e.seconds).fold(0.0, f64::max);
    if has_live && (media_seconds - wall).abs() > (0.05 * wall).max(1.5) {
        health.push("duration-drift".to_string());
    }

    let record = finish(&part, &media, record, Some(end_time), health)?;
    drop(part_lock);
    Ok(Captured {
        media,
        sidecar,
        record,
    })
}

/// Suffix of a recording in progress.
pub const PART_SUFFIX: &str = ".mkv.part";

/// Give a recording its final name and complete its sidecar: media facts, end, health. The
/// sidecar is read again first, as the operator may have annotated it during the call.
fn finish(
    part: &Path,
    media: &Path,
    mut record: Record,
    end: Option<DateTime<Local>>,
    health: Vec<String>,
) -> Result<Record, CaptureError> {
    // The sidecar is complete before the recording takes its final name, so nothing ever
    // finds a finished recording with a half-made record.
    let meta = std::fs::metadata(part).at("cannot read", part)?;
    let sidecar = sidecar_path(media);
    if let Some(current) = own_sidecar(media, &record.id) {
        record = current;
    }
    let end = end.unwrap_or_else(|| {
        meta.modified()
            .map(DateTime::from)
            .unwrap_or_else(|_| Local::now())
    });
    record.times.call_end = Some(end.fixed_offset());
    let mut info = media::probe(part, meta.len());
    info.file_name = media
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    info.health = Some(health);
    record.media = Some(info);
    fsutil::write_atomic(&sidecar, &record.to_json(), true).at("cannot write", &sidecar)?;
    // One step, and never over an existing file.
    fsutil::rename_noreplace(part, media).at("cannot rename", part)?;
    fsutil::sync_dir(fsutil::parent_dir(media)).at("cannot sync", media)?;
    Ok(record)
}

/// The sidecar of `media`, if it is there and is record `id`'s.
fn own_sidecar(media: &Path, id: &RecordId) -> Option<Record> {
    Record::load(&sidecar_path(media))
        .ok()
        .filter(|r| &r.id == id)
}

/// Complete a recording whose capture was killed: an `ID.mkv.part` that no live process holds
/// becomes `ID.mkv`, playable up to about its last second, with its sidecar completed and the
/// health flag `interrupted`. Returns `None` when a live capture holds it (or it is gone).
pub fn recover(part: &Path) -> Result<Option<Captured>, CaptureError> {
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(part)
    {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(PathError {
                action: "cannot open",
                path: part.to_path_buf(),
                source: e,
            }
            .into())
        }
    };
    if !file.metadata().at("cannot read", part)?.is_file() || file.try_lock().is_err() {
        return Ok(None);
    }
    let name = part.file_name().unwrap_or_default().to_string_lossy();
    let Some(stem) = name.strip_suffix(PART_SUFFIX) else {
        return Ok(None);
    };
    let media = part.with_file_name(format!("{stem}.mkv"));
    let id = RecordId::parse(stem).unwrap_or_else(|_| RecordId::new_random(Utc::now()));
    let record = own_sidecar(&media, &id).unwrap_or_else(|| Record::new(id));
    let mut health = record
        .media
        .as_ref()
        .and_then(|m| m.health.clone())
        .unwrap_or_default();
    health.push("interrupted".to_string());
    let record = finish(part, &media, record, None, health)?;
    let sidecar = sidecar_path(&media);
    Ok(Some(Captured {
        media,
        sidecar,
        record,
    }))
}

/// Recover every killed recording in `dir` and below it (see [`recover`]).
pub fn recover_all(dir: &Path) -> Vec<Result<Captured, CaptureError>> {
    walkdir::WalkDir::new(dir)
        .sort_by_file_name()
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_type().is_file() && e.file_name().to_string_lossy().ends_with(PART_SUFFIX)
        })
        .filter_map(|e| recover(e.path()).transpose())
        .collect()
}
