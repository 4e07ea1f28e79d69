//! Integration tests: one test binary, a module per concern. The tools under test are the real
//! built binaries; the tools we promise interop with (minisign, age, sha256sum, ffprobe) are
//! the real ones, installed by `.ci/run`.

mod anchors;
mod anchors_archive;
mod annotate;
mod bundle;
mod capture;
mod contract;
mod docs;
mod examples;
mod faults;
mod hostile_anchors;
mod interop;
mod json;
mod parsers;
mod push;
mod query;
mod query_contract;
mod record;
mod seal;
mod seams;
mod seams_annotate;
mod seams_push;
mod seams_query;
mod strict;
mod tsa;
mod tsa_harness;
mod usb;
mod util;
mod validate;
mod vectors;
mod verify;
mod watermark;
