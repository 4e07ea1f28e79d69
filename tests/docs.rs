//! Man pages and shell completions are generated from the clap definitions; the committed
//! copies must match. Regenerate with `scripts/gen-docs`.

use std::path::{Path, PathBuf};

use clap::CommandFactory;
use clap_complete::Shell;

use callrec::args::{
    AnnotateArgs, CaptureArgs, PushArgs, QueryArgs, SealArgs, Section, VerifyArgs,
    ANNOTATE_SECTIONS, CAPTURE_SECTIONS, PUSH_SECTIONS, QUERY_SECTIONS, SEAL_SECTIONS,
    VERIFY_SECTIONS,
};

fn commands() -> Vec<(clap::Command, &'static [Section])> {
    vec![
        (SealArgs::command(), SEAL_SECTIONS),
        (VerifyArgs::command(), VERIFY_SECTIONS),
        (AnnotateArgs::command(), ANNOTATE_SECTIONS),
        (CaptureArgs::command(), CAPTURE_SECTIONS),
        (PushArgs::command(), PUSH_SECTIONS),
        (QueryArgs::command(), QUERY_SECTIONS),
    ]
}

/// Escape a line for roff.
fn roff(line: &str) -> String {
    let escaped = line.replace('\\', "\\e").replace('-', "\\-");
    if escaped.starts_with('.') || escaped.starts_with('\'') {
        format!("\\&{escaped}")
    } else {
        escaped
    }
}

/// A man page: clap_mangen's sections, with the tool's own sections in place of "EXTRA".
fn man_page(cmd: clap::Command, sections: &[Section]) -> Vec<u8> {
    let has_subcommands = cmd.has_subcommands();
    let has_version = cmd.get_version().is_some();
    let man = clap_mangen::Man::new(cmd);
    let mut page = Vec::new();
    man.render_title(&mut page).unwrap();
    man.render_name_section(&mut page).unwrap();
    man.render_synopsis_section(&mut page).unwrap();
    man.render_description_section(&mut page).unwrap();
    man.render_options_section(&mut page).unwrap();
    if has_subcommands {
        man.render_subcommands_section(&mut page).unwrap();
    }
    for section in sections {
        page.extend_from_slice(format!(".SH \"{}\"\n.nf\n", section.title).as_bytes());
        for line in section.lines {
            page.extend_from_slice(roff(line).as_bytes());
            page.push(b'\n');
        }
        page.extend_from_slice(b".fi\n");
    }
    if has_version {
        man.render_version_section(&mut page).unwrap();
    }
    page
}

/// Every generated file: (path relative to the package, content).
fn generated() -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    for (cmd, sections) in commands() {
        let name = cmd.get_name().to_string();
        files.push((
            PathBuf::from(format!("man/{name}.1")),
            man_page(cmd.clone(), sections),
        ));
        for sub in cmd.get_subcommands() {
            let sub_name = format!("{name}-{}", sub.get_name());
            files.push((
                PathBuf::from(format!("man/{sub_name}.1")),
                man_page(sub.clone().name(sub_name.clone()), &[]),
            ));
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
    for (cmd, _) in commands() {
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
