//! The clap definitions of every callrec binary. They live in the library so that man pages
//! and completions are generated from them (`scripts/gen-docs`) and checked for staleness by
//! the tests. Binaries turn them into the engine's plain option structs. One file per tool.

mod annotate;
mod capture;
mod push;
mod query;
mod seal;
mod verify;

pub use annotate::*;
pub use capture::*;
pub use push::*;
pub use query::*;
pub use seal::*;
pub use verify::*;

/// A section of a tool's manual beyond its options: shown after `--help` and as its own
/// section of the man page.
pub struct Section {
    pub title: &'static str,
    pub lines: &'static [&'static str],
}

/// The sections as `--help` shows them.
pub fn after_help(sections: &[Section]) -> String {
    let mut text = String::new();
    for section in sections {
        text.push_str(section.title);
        text.push_str(":\n");
        for line in section.lines {
            text.push_str("  ");
            text.push_str(line);
            text.push('\n');
        }
        text.push('\n');
    }
    text.trim_end().to_string()
}

pub(crate) const SEE_ALSO: &str = "callrec-capture(1), callrec-annotate(1), callrec-seal(1), callrec-verify(1), callrec-push(1), callrec-query(1), minisign(1), age(1)";

pub(crate) const KEYDIR_HELP: &str = "Key directory [default: $CALLREC_KEYDIR, else $XDG_CONFIG_HOME/callrec/keys, else ~/.config/callrec/keys]";
