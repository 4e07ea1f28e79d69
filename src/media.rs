//! Media files: facts read with FFmpeg (libavformat), and streams copied out with the `ffmpeg`
//! program.
//!
//! Probing never fails a seal: a file FFmpeg does not recognise is still evidence, and is
//! described by its name and size alone.

use std::path::Path;
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
