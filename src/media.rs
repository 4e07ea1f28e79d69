//! Facts about media files, read with FFmpeg (libavformat).
//!
//! Probing never fails a seal: a file FFmpeg does not recognise is still evidence, and is
//! described by its name and size alone.

use std::path::{Path, PathBuf};
use std::sync::Once;

use crate::record::{MediaInfo, Stream};

/// The demuxers a recording may use. Without this list FFmpeg may take arbitrary bytes for a
/// text format (lyrics, subtitles) and read the whole file: 17 s for 1 GiB of random data.
const CONTAINERS: &str =
    "matroska,mov,wav,w64,ogg,flac,mp3,aac,avi,mpegts,mpeg,amr,caf,aiff,au,h264,hevc,mjpeg,alaw,mulaw,g722";

/// Make FFmpeg quiet: the library must not write to the caller's stderr.
pub fn init_ffmpeg() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        let _ = ffmpeg_next::init();
        ffmpeg_next::util::log::set_level(ffmpeg_next::util::log::Level::Quiet);
    });
}

/// Describe a media file: container, duration and streams where FFmpeg can read them.
pub fn probe(path: &Path, size: u64) -> MediaInfo {
    init_ffmpeg();
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut info = MediaInfo {
        file_name,
        size,
        ..MediaInfo::default()
    };
    let mut options = ffmpeg_next::Dictionary::new();
    options.set("format_whitelist", CONTAINERS);
    let Ok(input) = ffmpeg_next::format::input_with_dictionary(&path, options) else {
        return info;
    };
    info.format = input.format().name().to_string();
    let duration = input.duration();
    if duration > 0 {
        info.duration_ms = u64::try_from(duration / 1000).ok();
    }
    for stream in input.streams() {
        let params = stream.parameters();
        let medium = params.medium();
        let codec = params.id();
        // SAFETY: `params` wraps a valid AVCodecParameters owned by `input` for this scope.
        let raw = unsafe { &*params.as_ptr() };
        let positive = |v: i32| u32::try_from(v).ok().filter(|&v| v > 0);
        let mut entry = Stream {
            index: stream.index() as u32,
            kind: match medium {
                ffmpeg_next::media::Type::Audio => "audio",
                ffmpeg_next::media::Type::Video => "video",
                ffmpeg_next::media::Type::Subtitle => "subtitle",
                ffmpeg_next::media::Type::Data => "data",
                _ => "other",
            }
            .to_string(),
            codec: codec.name().to_string(),
            ..Stream::default()
        };
        match medium {
            ffmpeg_next::media::Type::Audio => {
                entry.sample_rate = positive(raw.sample_rate);
                entry.channels = positive(raw.ch_layout.nb_channels);
            }
            ffmpeg_next::media::Type::Video => {
                entry.width = positive(raw.width);
                entry.height = positive(raw.height);
            }
            _ => {}
        }
        info.streams.push(entry);
    }
    info
}

/// Which streams to take out of a recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    Audio,
    Video,
}

#[derive(Debug, thiserror::Error)]
pub enum RemuxError {
    #[error("{path:?} has no {kind} stream")]
    NoStream { path: PathBuf, kind: &'static str },
    #[error("cannot remux {path:?}: {what}: {source}")]
    Ffmpeg {
        path: PathBuf,
        what: &'static str,
        #[source]
        source: ffmpeg_next::Error,
    },
}

/// The muxer FFmpeg would choose for a file name (`.mka` → `matroska`, `.opus` → `opus`).
pub fn container_for(name: &Path) -> Option<String> {
    init_ffmpeg();
    let cname = std::ffi::CString::new(name.as_os_str().as_encoded_bytes()).ok()?;
    // SAFETY: av_guess_format only reads the name and returns a static description or null.
    let format = unsafe {
        ffmpeg_next::ffi::av_guess_format(std::ptr::null(), cname.as_ptr(), std::ptr::null())
    };
    if format.is_null() {
        return None;
    }
    // SAFETY: a non-null static AVOutputFormat with a NUL-terminated name.
    let name = unsafe { std::ffi::CStr::from_ptr((*format).name) };
    Some(name.to_string_lossy().into_owned())
}

/// Copy the audio or the video streams of `input` into a new file `output` in `container`
/// (see [`container_for`]), without re-encoding.
pub fn remux(
    input: &Path,
    output: &Path,
    kind: StreamKind,
    container: &str,
) -> Result<(), RemuxError> {
    init_ffmpeg();
    let err = |what: &'static str| {
        move |source| RemuxError::Ffmpeg {
            path: input.to_path_buf(),
            what,
            source,
        }
    };
    let (medium, name) = match kind {
        StreamKind::Audio => (ffmpeg_next::media::Type::Audio, "audio"),
        StreamKind::Video => (ffmpeg_next::media::Type::Video, "video"),
    };
    let mut ictx = ffmpeg_next::format::input(&input).map_err(err("open"))?;
    let mut octx =
        ffmpeg_next::format::output_as(&output, container).map_err(err("create the output"))?;
    let mut map = vec![None; ictx.streams().count()];
    for stream in ictx.streams().filter(|s| s.parameters().medium() == medium) {
        let mut out = octx
            .add_stream(ffmpeg_next::encoder::find(ffmpeg_next::codec::Id::None))
            .map_err(err("add a stream"))?;
        out.set_parameters(stream.parameters());
        // SAFETY: clearing the codec tag lets the muxer choose its own.
        unsafe { (*out.parameters().as_mut_ptr()).codec_tag = 0 };
        map[stream.index()] = Some((out.index(), stream.time_base()));
    }
    if map.iter().all(Option::is_none) {
        return Err(RemuxError::NoStream {
            path: input.to_path_buf(),
            kind: name,
        });
    }
    octx.write_header().map_err(err("write header"))?;
    let time_bases: Vec<_> = octx.streams().map(|s| s.time_base()).collect();
    for (stream, mut packet) in ictx.packets() {
        if let Some((out, time_base)) = map[stream.index()] {
            packet.rescale_ts(time_base, time_bases[out]);
            packet.set_position(-1);
            packet.set_stream(out);
            packet.write_interleaved(&mut octx).map_err(err("write"))?;
        }
    }
    octx.write_trailer().map_err(err("write trailer"))?;
    Ok(())
}
