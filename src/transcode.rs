//! Re-encoding video with FFmpeg: decode, run a filter graph, encode with libx264. Shared by
//! callrec-capture (raw camera video) and callrec-seal (the visible watermark), so both make
//! video the same way.

use ffmpeg_next as ff;

/// libx264 settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct X264 {
    pub preset: String,
    pub crf: u8,
    /// `zerolatency` for live capture; `None` otherwise.
    pub tune: Option<String>,
}

/// One video stream on its way from decoder through filters to encoder.
pub struct VideoPipe {
    decoder: ff::decoder::Video,
    filter: ff::filter::Graph,
    encoder: ff::encoder::Video,
    /// Time base of the packets the pipe produces.
    pub time_base: ff::Rational,
    /// Index of the output stream the pipe feeds.
    pub out_stream: usize,
}

impl VideoPipe {
    /// A pipe for `stream`, adding its output stream to `output`. `filters` is a filter graph
    /// description applied after conversion to the stream's frame rate, e.g. `drawtext=...`
    /// (empty for none). A keyframe is placed every second.
    pub fn new(
        stream: &ff::format::stream::Stream,
        output: &mut ff::format::context::Output,
        filters: &str,
        x264: &X264,
    ) -> Result<VideoPipe, ff::Error> {
        let in_time_base = stream.time_base();
        // Threads as the ffmpeg CLI uses them: as many as there are cores.
        let threads = || ff::codec::threading::Config {
            kind: ff::codec::threading::Type::Frame,
            count: 0,
            ..Default::default()
        };
        let mut context = ff::codec::context::Context::from_parameters(stream.parameters())?;
        context.set_threading(threads());
        let decoder = context.decoder().video()?;
        let codec = ff::encoder::find_by_name("libx264").ok_or(ff::Error::EncoderNotFound)?;
        let rate = stream.avg_frame_rate();
        let rate = if rate.numerator() > 0 {
            rate
        } else {
            ff::Rational::new(25, 1)
        };
        let time_base = rate.invert();
        let global = output
            .format()
            .flags()
            .contains(ff::format::Flags::GLOBAL_HEADER);
        let mut out = output.add_stream(codec)?;
        let out_stream = out.index();
        let mut encoder = ff::codec::context::Context::new_with_codec(codec)
            .encoder()
            .video()?;
        encoder.set_width(decoder.width());
        encoder.set_height(decoder.height());
        encoder.set_format(ff::format::Pixel::YUV420P);
        encoder.set_time_base(time_base);
        encoder.set_frame_rate(Some(rate));
        encoder
            .set_gop((f64::from(rate.numerator()) / f64::from(rate.denominator())).ceil() as u32);
        if global {
            encoder.set_flags(ff::codec::Flags::GLOBAL_HEADER);
        }
        let mut options = ff::Dictionary::new();
        options.set("preset", &x264.preset);
        options.set("crf", &x264.crf.to_string());
        if let Some(tune) = &x264.tune {
            options.set("tune", tune);
        }
        let encoder = encoder.open_as_with(codec, options)?;
        out.set_parameters(&encoder);
        out.set_time_base(time_base);

        let mut filter = ff::filter::Graph::new();
        let args = format!(
            "video_size={}x{}:pix_fmt={}:time_base={}:pixel_aspect=1/1",
            decoder.width(),
            decoder.height(),
            decoder
                .format()
                .descriptor()
                .map_or("yuv420p", |d| d.name()),
            in_time_base,
        );
        filter.add(
            &ff::filter::find("buffer").expect("buffer filter"),
            "in",
            &args,
        )?;
        filter.add(
            &ff::filter::find("buffersink").expect("buffersink filter"),
            "out",
            "",
        )?;
        let mut spec = format!("fps={rate}");
        if !filters.is_empty() {
            spec.push(',');
            spec.push_str(filters);
        }
        spec.push_str(",format=yuv420p");
        filter.output("in", 0)?.input("out", 0)?.parse(&spec)?;
        filter.validate()?;
        Ok(VideoPipe {
            decoder,
            filter,
            encoder,
            time_base,
            out_stream,
        })
    }

    /// Feed one packet (in the stream's time base), or `None` to flush everything out. Encoded
    /// packets go to `send`, in [`VideoPipe::time_base`]; `send` returns false to stop.
    pub fn push(
        &mut self,
        packet: Option<&ff::Packet>,
        send: &mut dyn FnMut(ff::Packet) -> bool,
    ) -> bool {
        let flush = packet.is_none();
        let sent = match packet {
            Some(packet) => self.decoder.send_packet(packet),
            None => self.decoder.send_eof(),
        };
        if sent.is_err() && !flush {
            return true; // a damaged packet is skipped, as players do
        }
        let mut decoded = ff::frame::Video::empty();
        while self.decoder.receive_frame(&mut decoded).is_ok() {
            let ts = decoded.timestamp();
            decoded.set_pts(ts);
            if self
                .filter
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
            let _ = self.filter.get("in").expect("source").source().flush();
        }
        let mut filtered = ff::frame::Video::empty();
        while self
            .filter
            .get("out")
            .expect("sink")
            .sink()
            .frame(&mut filtered)
            .is_ok()
        {
            if self.encoder.send_frame(&filtered).is_ok()
                && !receive_packets(&mut self.encoder, send)
            {
                return false;
            }
        }
        if flush {
            let _ = self.encoder.send_eof();
            return receive_packets(&mut self.encoder, send);
        }
        true
    }
}

/// Hand every packet the encoder has ready to `send`.
pub fn receive_packets(
    encoder: &mut ff::encoder::Encoder,
    send: &mut dyn FnMut(ff::Packet) -> bool,
) -> bool {
    let mut packet = ff::Packet::empty();
    while encoder.receive_packet(&mut packet).is_ok() {
        if !send(std::mem::replace(&mut packet, ff::Packet::empty())) {
            return false;
        }
    }
    true
}
