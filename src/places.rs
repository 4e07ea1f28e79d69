//! Where callrec keeps things by default, resolved one way for every tool: its directories
//! under the XDG base directories, the key directory, the trusted public keys, the
//! vocabulary file, the push journal and the index. An explicit flag always wins; then the
//! environment variable; then the XDG location.

use std::path::PathBuf;

/// callrec's place in an XDG base directory: `$VAR/callrec`, else `$HOME/HOME_DEFAULT/callrec`
/// (`xdg_dir("XDG_CONFIG_HOME", ".config")` is `~/.config/callrec`); `callrec` (relative)
/// without either.
fn xdg_dir(var: &str, home_default: &str) -> PathBuf {
    std::env::var_os(var)
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(home_default)))
        .map_or_else(|| PathBuf::from("callrec"), |d| d.join("callrec"))
}

/// A path from an environment variable, if it is set and not empty.
fn from_env(var: &str) -> Option<PathBuf> {
    std::env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// The key directory: `$CALLREC_KEYDIR`, else `$XDG_CONFIG_HOME/callrec/keys`, else
/// `~/.config/callrec/keys`.
pub fn key_dir() -> PathBuf {
    from_env("CALLREC_KEYDIR").unwrap_or_else(|| xdg_dir("XDG_CONFIG_HOME", ".config").join("keys"))
}

/// The trusted public keys to verify with: those given, else `$CALLREC_PUBKEY` if set.
pub fn pubkeys(given: &[PathBuf]) -> Vec<PathBuf> {
    if !given.is_empty() {
        return given.to_vec();
    }
    from_env("CALLREC_PUBKEY").into_iter().collect()
}

/// The RFC 3161 TSAs to anchor with: those given, else `$CALLREC_TSA` (URLs separated by
/// spaces).
pub fn tsa_urls(given: &[String]) -> Vec<String> {
    if !given.is_empty() {
        return given.to_vec();
    }
    std::env::var("CALLREC_TSA")
        .map(|v| v.split_whitespace().map(String::from).collect())
        .unwrap_or_default()
}

/// The trusted TSA certificate files: those given, else `$CALLREC_TSA_CA` if set.
pub fn tsa_ca(given: &[PathBuf]) -> Vec<PathBuf> {
    if !given.is_empty() {
        return given.to_vec();
    }
    from_env("CALLREC_TSA_CA").into_iter().collect()
}

/// The vocabulary file named by the environment, `$CALLREC_VOCABULARY`, which must exist.
pub fn vocabulary_from_env() -> Option<PathBuf> {
    from_env("CALLREC_VOCABULARY")
}

/// The optional vocabulary file of the configuration directory:
/// `$XDG_CONFIG_HOME/callrec/vocabulary.json`, else `~/.config/callrec/vocabulary.json`.
pub fn vocabulary() -> PathBuf {
    xdg_dir("XDG_CONFIG_HOME", ".config").join("vocabulary.json")
}

/// The push journal: `$XDG_STATE_HOME/callrec/push-journal.jsonl`, else
/// `~/.local/state/callrec/push-journal.jsonl`.
pub fn journal() -> PathBuf {
    xdg_dir("XDG_STATE_HOME", ".local/state").join("push-journal.jsonl")
}

/// The index: `$XDG_DATA_HOME/callrec/index.sqlite`, else
/// `~/.local/share/callrec/index.sqlite`.
pub fn index() -> PathBuf {
    xdg_dir("XDG_DATA_HOME", ".local/share").join("index.sqlite")
}
