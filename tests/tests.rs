//! Integration tests: one test binary, a module per concern. The tools under test are the real
//! built binaries; the tools we promise interop with (minisign, age, sha256sum, ffprobe) are
//! the real ones, installed by `.ci/run`.

mod annotate;
mod capture;
mod docs;
mod interop;
mod parsers;
mod push;
mod query;
mod record;
mod seal;
mod usb;
mod util;
mod validate;
mod vectors;
mod verify;
mod watermark;
