//! Every example command in README.md (its ```sh blocks) and in the man pages (the EXAMPLES
//! sections of `src/args.rs`, from which `man/` is generated) runs as written against
//! fixtures, so that a documented command cannot silently break.
//!
//! Each example runs with `sh -c` in a fresh copy of one fixture directory: HOME is the copy,
//! so the keys are at `~/.config/callrec/keys` as the README puts them, and the index at
//! `~/.local/share/callrec/index.sqlite`. The fixture holds what the examples name: `call.mkv`
//! and `call.wav` with their sealed files (in `sealed/` and beside them), a capture spool with
//! a captured and annotated call and a sealed record waiting to be pushed, `spool-in/`,
//! `today.csv`, `check.sh`, `seal.pub`, an archive holding the record the query examples
//! name, and its index. The callrec tools are the built binaries, each behind a wrapper that
//! logs a non-zero exit, so a failure inside a pipeline or before `||` fails the example too.
//!
//! What a fixture cannot have (hardware, the network, a printer, system paths) is handled by
//! three explicit tables below: [`SUBSTITUTIONS`], [`PRELUDES`] and [`SKIPS`], each entry
//! with its reason. An example in none of them must exit 0; an entry that no example uses
//! fails the test, so the tables cannot go stale.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use callrec::args::{
    Section, ANNOTATE_SECTIONS, CAPTURE_SECTIONS, PUSH_SECTIONS, QUERY_SECTIONS, SEAL_SECTIONS,
    VERIFY_SECTIONS,
};

use crate::util::TestDir;

/// Text replaced in every command, in this order: (documented, in the fixture, why).
const SUBSTITUTIONS: &[(&str, &str, &str)] = &[
    (
        "/var/spool/callrec",
        "spool",
        "cron's capture spool: the fixture's spool/",
    ),
    (
        "/var/spool/sealed",
        "sealed",
        "cron's sealed spool: the fixture's sealed/",
    ),
    (
        "/mnt/archive",
        "mnt/archive",
        "a mounted share: a directory in the fixture (created by the push)",
    ),
    (
        "/srv/archive",
        "archive",
        "the server's archive: the fixture's, holding the record the query examples name",
    ),
    (
        "/etc/callrec/server-keys",
        "server-keys",
        "the query server's identity: a copy of the fixture's key directory",
    ),
    (
        "/etc/callrec/seal.pub",
        "seal.pub",
        "the server's trusted public key: the fixture's seal.pub",
    ),
    (
        "https://tsa.example.com/tsr",
        "\"$EXAMPLE_TSA\"",
        "a public RFC 3161 TSA: OpenSSL's TSA on loopback (tests/tsa.rs), whose root the \
         fixture's tsa-ca.pem is",
    ),
    (
        "s3://calls",
        "s3/calls",
        "object storage: a directory archive through the same object_store interface \
         (S3 itself is tested against Garage in push:: and query::)",
    ),
];

/// A shell command run before the example in its fixture copy: (example, prelude, why).
const PRELUDES: &[(&str, &str, &str)] = &[
    (
        "callrec-seal keygen -o ~/.config/callrec/keys # the default key directory",
        "rm -rf ~/.config/callrec/keys",
        "keygen creates the key directory; the fixture's keys stand for an earlier keygen",
    ),
    (
        "callrec-seal keygen -o ~/.config/callrec/keys",
        "rm -rf ~/.config/callrec/keys",
        "keygen creates the key directory; the fixture's keys stand for an earlier keygen",
    ),
    (
        "callrec-seal -o sealed/ call.mkv # prints sealed/call.sealed.mkv",
        "rm -rf sealed",
        "a first seal: sealed/ does not exist yet (-o creates it)",
    ),
    (
        "callrec-seal -o sealed/ call.wav",
        "rm -rf sealed",
        "a first seal: sealed/ does not exist yet (-o creates it)",
    ),
    (
        "callrec-capture --audio lavfi:sine --video lavfi:testsrc2=size=640x480:rate=25 --duration 5 -o spool",
        "rm -rf spool",
        "a first capture: spool/ does not exist yet (-o creates it)",
    ),
    (
        "callrec-capture --audio lavfi:sine --video lavfi:testsrc2 --duration 5 -o spool",
        "rm -rf spool",
        "a first capture: spool/ does not exist yet (-o creates it)",
    ),
];

/// Examples not run: (example, why). Bugs in the tools are listed here as "bug: ..." until
/// fixed, so that the gap stays visible.
const SKIPS: &[(&str, &str)] = &[
    (
        "scripts/demo # install what is needed, build, and run the main job end to end",
        "the end-to-end demo: installs packages and builds; not a tool example",
    ),
    (
        "scripts/test # install what is needed and pass the tests (CI runs this: .ci/run)",
        "the test suite itself",
    ),
    (
        "callrec-capture --on-hook --number 13321150748 -o spool # record while the handset is lifted",
        "needs a USB desk phone with a HID hook switch",
    ),
    (
        "callrec-capture --on-hook --number 13321150748 -o spool",
        "needs a USB desk phone with a HID hook switch",
    ),
    (
        "callrec-capture --audio alsa:hw:1,0 --video v4l2:/dev/video0 --duration 300 -o spool",
        "needs an ALSA card and a V4L2 camera; the same libavdevice path runs in the lavfi example",
    ),
    (
        "callrec-capture --audio alsa:hw:1,0 --video v4l2:/dev/video0 --number 13321150748 -o spool",
        "needs an ALSA card and a V4L2 camera; the same libavdevice path runs in the lavfi example",
    ),
    (
        "callrec-capture -o spool | callrec-annotate --interactive | callrec-seal -o sealed",
        "records from a USB phone and asks on a terminal (--interactive is tested on a pty in annotate::)",
    ),
    (
        "callrec-capture --audio pulse:default -o spool | callrec-annotate -i | callrec-seal -o sealed",
        "needs PulseAudio and a terminal (--interactive is tested on a pty in annotate::)",
    ),
    (
        "callrec-annotate --interactive spool/call.mkv # asks for each missing field on the terminal",
        "asks on a terminal (--interactive is tested on a pty in annotate::)",
    ),
    (
        "callrec-push --to s3://calls/branch-0068 --retain-days 2557 --legal-hold --require-retention spool/",
        "S3 Object Lock needs a bucket with Object Lock (tested against moto in push::); a \
         directory cannot keep a lock, so --require-retention fails there by design",
    ),
    (
        "callrec-push --to s3://calls --retain-days 2557 --require-retention spool/ # 7 years, WORM",
        "S3 Object Lock needs a bucket with Object Lock (tested against moto in push::); a \
         directory cannot keep a lock, so --require-retention fails there by design",
    ),
];

/// The fixture, built once by the tools themselves (`set -eu`: every step must work).
const FIXTURE: &str = r#"set -eu
callrec-seal keygen -o ~/.config/callrec/keys >/dev/null
cp ~/.config/callrec/keys/seal.pub seal.pub
cp -R ~/.config/callrec/keys server-keys
ffmpeg -v error -f lavfi -i sine=frequency=440:duration=1:sample_rate=8000 -ac 1 call.wav
ffmpeg -v error -f lavfi -i testsrc2=size=320x240:rate=25:duration=1 \
    -f lavfi -i sine=frequency=440:duration=1:sample_rate=48000 -c:v mjpeg -c:a libopus call.mkv
cat > call.mkv.callrec.json <<'EOF'
{"schema": 1, "id": "20261127T093000Z-0a1b2c3d4e5f",
 "phone": {"number": "13321150748", "device": {"number": "8001"}},
 "times": {"call_start": "2026-11-27T17:30:00+08:00", "call_end": "2026-11-27T17:30:01+08:00"}}
EOF
callrec-annotate --operator 130002 --institution 0068 --customer 李霞 --role 3 --business 1 \
    --account 32150100100065711 --id-number 110108197712281810 --result 1 call.mkv >/dev/null
callrec-seal -j 1 -o sealed --tsa "$EXAMPLE_TSA" call.mkv call.wav >/dev/null
cp sealed/call.sealed.mkv sealed/call.sealed.wav .
callrec-capture --audio lavfi:sine --video lavfi:testsrc2=size=320x240:rate=25 --duration 1 \
    --number 13321150748 -o spool >/dev/null
callrec-annotate --operator 130002 --institution 0068 --customer 王伟 --role 1 --business 2 \
    --result 1 spool/ >/dev/null
printf 'record_id,result,remark\n%s,1,confirmed\n' "$(cd spool && ls *.mkv | sed 's/[.]mkv$//')" \
    > today.csv
cp sealed/call.sealed.mkv spool/
mkdir outbox && cp sealed/call.sealed.mkv outbox/ && callrec-push --to archive outbox/ >/dev/null
mkdir outbox2 && cp sealed/call.sealed.wav outbox2/
callrec-push --to s3/calls/branch-0068 outbox2/ >/dev/null
rm -r outbox outbox2
callrec-query index --identity server-keys --pubkey seal.pub archive s3/calls/branch-0068 2>/dev/null
callrec-verify --explain sealed/call.sealed.mkv > check.sh
mkdir spool-in && cp call.wav spool-in/
"#;

/// The record the query examples name. Every documented search must find it: a search that
/// finds nothing (a misspelt label, a wrong date) is a broken example even when it exits 0.
const RECORD_ID: &str = "20261127T093000Z-0a1b2c3d4e5f";

/// What a `callrec-query search` example printed: its stdout, or the file it redirects to.
fn search_output(command: &str, stdout: &str, home: &Path) -> Option<String> {
    if !command.starts_with("callrec-query search") {
        return None;
    }
    Some(match command.split_once("> ") {
        Some((_, file)) => {
            let file = file.split_whitespace().next().unwrap_or_default();
            std::fs::read_to_string(home.join(file)).unwrap_or_default()
        }
        None => stdout.to_string(),
    })
}

/// A tool's wrapper: runs the built binary and logs a non-zero exit.
const WRAPPER: &str = r#"#!/bin/sh
"$CALLREC_EXAMPLES_BIN/NAME" "$@"
rc=$?
[ "$rc" -eq 0 ] || echo "NAME exited $rc" >> "$CALLREC_EXAMPLES_LOG"
exit "$rc"
"#;

/// Stand-ins for commands that leave the machine: (name, script).
const STUBS: &[(&str, &str)] = &[
    // A printer: takes the page; an empty page means the command before it failed.
    (
        "lp",
        "#!/bin/sh\n[ \"$(wc -c)\" -gt 0 ] || { echo 'lp: nothing to print' >&2; exit 1; }\n",
    ),
    // An alarm mail: the command before `|| mail` failed, which an example never should.
    (
        "mail",
        "#!/bin/sh\ncat >/dev/null\necho \"mail: the alarm fired: $*\" >&2\nexit 1\n",
    ),
];

const TOOLS: &[&str] = &[
    "callrec-annotate",
    "callrec-capture",
    "callrec-push",
    "callrec-query",
    "callrec-seal",
    "callrec-verify",
];

#[derive(Debug)]
struct Example {
    /// Where it is documented: `README.md:LINE` or `callrec-seal(1)`.
    source: String,
    /// The command as documented, continuation lines joined, whitespace runs collapsed.
    command: String,
}

/// Collapse whitespace runs, so that table entries need not copy the alignment of comments.
fn normalise(command: &str) -> String {
    command.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Commands from lines of shell: comment lines and blank lines dropped, `\` continuations
/// joined. Returns (index of the first line, command).
fn commands<'a>(lines: impl IntoIterator<Item = &'a str>) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (i, line) in lines.into_iter().enumerate() {
        let (start, mut text) = match pending.take() {
            Some((start, text)) => (start, text + " " + line.trim()),
            None => {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                (i, line.to_string())
            }
        };
        if let Some(head) = text.strip_suffix('\\') {
            text = head.to_string();
            pending = Some((start, text));
        } else {
            out.push((start, normalise(&text)));
        }
    }
    assert!(pending.is_none(), "a documented command ends in '\\'");
    out
}

fn readme_examples() -> Vec<Example> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let readme = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = readme.lines().collect();
    let mut examples = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim() == "```sh" {
            let start = i + 1;
            let end = start
                + lines[start..]
                    .iter()
                    .position(|l| l.trim() == "```")
                    .unwrap_or_else(|| panic!("README.md:{start}: unterminated ```sh block"));
            for (at, command) in commands(lines[start..end].iter().copied()) {
                examples.push(Example {
                    source: format!("README.md:{}", start + at + 1),
                    command,
                });
            }
            i = end;
        }
        i += 1;
    }
    examples
}

fn man_examples() -> Vec<Example> {
    let pages: [(&str, &[Section]); 6] = [
        ("callrec-capture", CAPTURE_SECTIONS),
        ("callrec-annotate", ANNOTATE_SECTIONS),
        ("callrec-seal", SEAL_SECTIONS),
        ("callrec-verify", VERIFY_SECTIONS),
        ("callrec-push", PUSH_SECTIONS),
        ("callrec-query", QUERY_SECTIONS),
    ];
    let mut examples = Vec::new();
    for (page, sections) in pages {
        let section = sections
            .iter()
            .find(|s| s.title == "EXAMPLES")
            .unwrap_or_else(|| panic!("{page}(1) has no EXAMPLES section"));
        for (_, command) in commands(section.lines.iter().copied()) {
            examples.push(Example {
                source: format!("{page}(1)"),
                command,
            });
        }
    }
    examples
}

/// The directory of the built binaries (target/debug).
fn bin_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_callrec-seal"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The wrappers and stubs, first on PATH.
fn tools_dir(dir: &TestDir) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    for tool in TOOLS {
        dir.write(tool, WRAPPER.replace("NAME", tool));
    }
    for (name, script) in STUBS {
        dir.write(name, script);
    }
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    dir.path().to_path_buf()
}

/// `sh -c SCRIPT` in `home` with a clean environment, the tools logging to `log`. Returns (exit code, stdout, stderr, tools that failed).
fn sh(
    tools: &Path,
    home: &Path,
    log: &Path,
    tsa: &str,
    script: &str,
) -> (i32, String, String, String) {
    let path = format!(
        "{}:{}:{}",
        tools.display(),
        bin_dir().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("timeout")
        .args(["--kill-after=5", "120", "sh", "-c", script])
        .current_dir(home)
        .env_clear()
        .env("PATH", path)
        .env("HOME", home)
        .env("LANG", "C.UTF-8")
        .env("TZ", "Asia/Shanghai")
        .env("CALLREC_EXAMPLES_BIN", bin_dir())
        .env("CALLREC_EXAMPLES_LOG", log)
        .env("EXAMPLE_TSA", tsa)
        .stdin(Stdio::null())
        .output()
        .expect("sh runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        std::fs::read_to_string(log).unwrap_or_default(),
    )
}

/// Apply the substitutions; returns the command and the indices of those used.
fn substitute(command: &str) -> (String, Vec<usize>) {
    let mut text = command.to_string();
    let mut used = Vec::new();
    for (i, (from, to, _)) in SUBSTITUTIONS.iter().enumerate() {
        if text.contains(from) {
            text = text.replace(from, to);
            used.push(i);
        }
    }
    (text, used)
}

#[test]
fn documented_commands_run_as_written() {
    let mut examples = readme_examples();
    let readme_count = examples.len();
    examples.extend(man_examples());
    assert!(
        readme_count >= 20 && examples.len() - readme_count >= 20,
        "too few examples found ({readme_count} in README.md, {} in the man pages): is the \
         parser broken?",
        examples.len() - readme_count
    );

    let tools = TestDir::new();
    let tools = tools_dir(&tools);
    let fixture = TestDir::new();
    let log = TestDir::new();
    let tsa = crate::tsa::Tsa::start_with(crate::tsa::Alg::EcP256);
    std::fs::copy(tsa.ca_pem(), fixture.join("tsa-ca.pem")).unwrap();
    let (code, _, stderr, failed) = sh(
        &tools,
        fixture.path(),
        &log.join("tools.log"),
        &tsa.url(),
        FIXTURE,
    );
    assert!(
        code == 0 && failed.is_empty(),
        "building the fixture failed ({code}): {failed}\n{stderr}"
    );

    let mut used_subs = BTreeSet::new();
    let mut used_preludes = BTreeSet::new();
    let mut used_skips = BTreeSet::new();
    let mut jobs = Vec::new();
    for example in &examples {
        if let Some(i) = SKIPS
            .iter()
            .position(|(c, _)| normalise(c) == example.command)
        {
            used_skips.insert(i);
            continue;
        }
        let (command, subs) = substitute(&example.command);
        used_subs.extend(subs.iter().copied());
        let prelude = PRELUDES
            .iter()
            .position(|(c, _, _)| normalise(c) == example.command);
        used_preludes.extend(prelude);
        jobs.push((example, command, prelude, !subs.is_empty()));
    }

    let next = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some((example, command, prelude, _)) = jobs.get(i) else {
                    break;
                };
                let run = TestDir::new();
                let home = run.join("home");
                let copied = Command::new("cp")
                    .arg("-a")
                    .arg(fixture.path())
                    .arg(&home)
                    .status()
                    .unwrap();
                assert!(copied.success(), "copying the fixture failed");
                let script = match prelude {
                    Some(p) => format!("{}\n{command}", PRELUDES[*p].1),
                    None => command.clone(),
                };
                let (code, stdout, stderr, failed) =
                    sh(&tools, &home, &run.join("tools.log"), &tsa.url(), &script);
                let found = search_output(command, &stdout, &home)
                    .is_none_or(|out| out.contains(RECORD_ID));
                if code != 0 || !failed.is_empty() || !found {
                    failures.lock().unwrap().push(format!(
                        "{}: {}\n  ran: {script}\n  exit {code}; {}{}\n  stdout: {}\n  stderr: {}",
                        example.source,
                        example.command,
                        if failed.is_empty() {
                            "no tool failed".to_string()
                        } else {
                            failed.trim().replace('\n', ", ")
                        },
                        if found {
                            ""
                        } else {
                            "; the search did not find the fixture's record"
                        },
                        stdout.trim().replace('\n', "\n          "),
                        stderr.trim().replace('\n', "\n          "),
                    ));
                }
            });
        }
    });

    let mut problems = failures.into_inner().unwrap();
    problems.sort();
    for (i, (from, _, _)) in SUBSTITUTIONS.iter().enumerate() {
        if !used_subs.contains(&i) {
            problems.push(format!("SUBSTITUTIONS entry {from:?} matches no example"));
        }
    }
    for (i, (c, _, _)) in PRELUDES.iter().enumerate() {
        if !used_preludes.contains(&i) {
            problems.push(format!("PRELUDES entry {c:?} matches no example"));
        }
    }
    for (i, (c, _)) in SKIPS.iter().enumerate() {
        if !used_skips.contains(&i) {
            problems.push(format!("SKIPS entry {c:?} matches no example"));
        }
    }
    let rewritten = jobs.iter().filter(|j| j.3).count();
    let prepared = jobs.iter().filter(|j| j.2.is_some()).count();
    eprintln!(
        "examples: {} found ({readme_count} in README.md, {} in the man pages), {} run \
         ({rewritten} with substitutions, {prepared} with a prelude), {} skipped",
        examples.len(),
        examples.len() - readme_count,
        jobs.len(),
        examples.len() - jobs.len(),
    );
    assert!(
        problems.is_empty(),
        "{} documented command(s) fail as written (fix the example in README.md or the \
         EXAMPLES in src/args.rs, or list it in tests/examples.rs with a reason):\n\n{}",
        problems.len(),
        problems.join("\n\n")
    );
}

#[test]
fn example_parser_joins_continuations_and_drops_comments() {
    let lines = [
        "# a comment",
        "",
        "a --x 1 \\",
        "    --y 2   # trailing",
        "b | c",
    ];
    assert_eq!(
        commands(lines),
        vec![
            (2, "a --x 1 --y 2 # trailing".to_string()),
            (4, "b | c".to_string())
        ]
    );
}
