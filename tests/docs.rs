//! Man pages and shell completions are generated from the clap definitions; the committed
//! copies must match. Regenerate with `scripts/gen-docs`.

use std::path::{Path, PathBuf};

use clap::CommandFactory;
use clap_complete::Shell;

use callrec::args::{SealArgs, VerifyArgs};

fn commands() -> Vec<clap::Command> {
    vec![SealArgs::command(), VerifyArgs::command()]
}

/// Every generated file: (path relative to the package, content).
fn generated() -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    for cmd in commands() {
        let name = cmd.get_name().to_string();
        let mut page = Vec::new();
        clap_mangen::Man::new(cmd.clone())
            .render(&mut page)
            .unwrap();
        files.push((PathBuf::from(format!("man/{name}.1")), page));
        for sub in cmd.get_subcommands() {
            let sub_name = format!("{name}-{}", sub.get_name());
            let mut page = Vec::new();
            clap_mangen::Man::new(sub.clone().name(sub_name.clone()))
                .render(&mut page)
                .unwrap();
            files.push((PathBuf::from(format!("man/{sub_name}.1")), page));
        }
        for (shell, file) in [
            (Shell::Bash, format!("{name}.bash")),
            (Shell::Zsh, format!("_{name}")),
            (Shell::Fish, format!("{name}.fish")),
        ] {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut cmd.clone(), name.clone(), &mut out);
            files.push((PathBuf::from(format!("completions/{file}")), out));
        }
    }
    files
}

#[test]
fn clap_definitions_are_consistent() {
    for cmd in commands() {
        cmd.debug_assert();
    }
}

#[test]
fn man_pages_and_completions_are_current() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let bless = std::env::var_os("CALLREC_BLESS").is_some();
    let mut stale = Vec::new();
    for (path, content) in generated() {
        let full = root.join(&path);
        if bless {
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::fs::write(&full, &content).unwrap();
        } else if std::fs::read(&full).ok().as_deref() != Some(&content[..]) {
            stale.push(path);
        }
    }
    assert!(
        stale.is_empty(),
        "stale generated docs {stale:?}: run scripts/gen-docs and commit the result"
    );
}
