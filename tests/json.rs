//! Every tool's `--json` output held to `docs/JSON.md`: each line has a documented `type`, only
//! documented fields, every field not marked optional, and the last line is the summary.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;

use crate::util::*;

/// Per tool, per type: each field and whether it may be absent.
type Schema = BTreeMap<String, BTreeMap<String, BTreeMap<String, bool>>>;

/// Read the tables of docs/JSON.md: `## callrec-TOOL`, then rows `| \`type\` | fields |` whose
/// fields are the backticked names at the start of each comma-separated item (`?` after the
/// name: optional).
fn schema() -> Schema {
    let text = fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/JSON.md")).unwrap();
    let mut schema = Schema::new();
    let mut tool = None;
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("## ") {
            tool = Some(name.trim().to_string());
            continue;
        }
        let (Some(tool), Some(row)) = (&tool, line.strip_prefix("| `")) else {
            continue;
        };
        let (kind, rest) = row.split_once('`').unwrap();
        let fields_text = rest.trim_start_matches([' ', '|']);
        let mut fields = BTreeMap::new();
        let mut depth = 0;
        let mut item = String::new();
        // Split on commas outside parentheses.
        for c in fields_text.chars().chain([',']) {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                ',' if depth == 0 => {
                    let item_text = std::mem::take(&mut item);
                    let item_text = item_text.trim();
                    if let Some(rest) = item_text.strip_prefix('`') {
                        let (name, after) = rest.split_once('`').unwrap();
                        fields.insert(name.to_string(), after.starts_with('?'));
                    }
                    continue;
                }
                _ => {}
            }
            if depth == 0 || c != ',' {
                item.push(c);
            }
        }
        schema
            .entry(tool.clone())
            .or_default()
            .insert(kind.to_string(), fields);
    }
    schema
}

/// Check one run's output against the tool's tables; returns the types seen.
fn check(schema: &Schema, tool: &str, stdout: &[u8]) -> BTreeSet<String> {
    let tables = schema
        .get(tool)
        .unwrap_or_else(|| panic!("docs/JSON.md has no section for {tool}"));
    let lines = json_lines(stdout);
    assert!(!lines.is_empty(), "{tool} printed no JSON");
    let mut seen = BTreeSet::new();
    for line in &lines {
        let object = line
            .as_object()
            .unwrap_or_else(|| panic!("{tool}: not an object: {line}"));
        let kind = object["type"]
            .as_str()
            .unwrap_or_else(|| panic!("{tool}: a line without a type: {line}"));
        let fields = tables
            .get(kind)
            .unwrap_or_else(|| panic!("{tool}: type {kind} is not in docs/JSON.md"));
        for key in object.keys().filter(|k| *k != "type") {
            assert!(
                fields.contains_key(key),
                "{tool} {kind}: field {key} is not in docs/JSON.md"
            );
        }
        for (field, optional) in fields {
            assert!(
                *optional || object.contains_key(field),
                "{tool} {kind}: documented field {field} is missing: {line}"
            );
        }
        seen.insert(kind.to_string());
    }
    assert_eq!(
        lines.last().unwrap()["type"],
        "summary",
        "{tool}: the last line is not the summary"
    );
    seen
}

#[test]
fn every_tool_writes_the_json_lines_docs_json_md_lists() {
    let schema = schema();
    let t = TestDir::new();
    t.keygen("keys");
    let mut seen: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let mut record = |tool: &'static str, out: &[u8]| {
        seen.entry(tool)
            .or_default()
            .extend(check(&schema, tool, out));
    };

    // capture: a recording.
    let out = run_ok(t.cmd("callrec-capture").args([
        "--audio",
        "lavfi:sine=frequency=440:sample_rate=16000",
        "--duration",
        "0.3",
        "--json",
        "-o",
        "spool",
    ]));
    record("callrec-capture", &out.stdout);
    let media = json_lines(&out.stdout)[0]["path"]
        .as_str()
        .unwrap()
        .to_string();

    // annotate: a record, and an invalid value for another.
    t.wav("spool/b.wav");
    let (_, stdout, _) = run(t
        .cmd("callrec-annotate")
        .args(["--json", "--customer", "张三"])
        .arg(&media));
    record("callrec-annotate", stdout.as_bytes());
    let (code, stdout, _) =
        run(t
            .cmd("callrec-annotate")
            .args(["--json", "--id-number", "123", "spool/b.wav"]));
    assert_eq!(code, 1);
    record("callrec-annotate", stdout.as_bytes());

    // seal: sealed, already sealed, a correction of a changed sidecar, an error; the head not
    // anchored (the TSA down), then anchored.
    let tsa = crate::tsa::Tsa::start_with(crate::tsa::Alg::EcP256);
    tsa.set_mode(crate::tsa::Mode::Down);
    let out = run_ok(
        t.cmd("callrec-seal")
            .args(["-k", "keys", "-o", "sealed", "--json", "--tsa", &tsa.url()])
            .arg(&media),
    );
    record("callrec-seal", &out.stdout);
    tsa.set_mode(crate::tsa::Mode::Ok);
    run_ok(
        t.cmd("callrec-annotate")
            .args(["--customer", "李四"])
            .arg(&media),
    );
    t.write("spool/fake.sealed.bin", vec![0u8; 100]);
    t.write("fake.bin", b"tampered");
    let sealed = fs::read(
        t.join("sealed").join(
            fs::read_dir(t.join("sealed"))
                .unwrap()
                .next()
                .unwrap()
                .unwrap()
                .file_name(),
        ),
    )
    .unwrap();
    let mut fake = b"tampered".to_vec();
    fake.extend_from_slice(&sealed[8..]);
    t.write("fake.bin", fake);
    let (code, stdout, _) = run(t
        .cmd("callrec-seal")
        .args(["-k", "keys", "-o", "sealed", "--json", "spool", "fake.bin"]));
    assert_eq!(code, 1, "{stdout}");
    record("callrec-seal", stdout.as_bytes());
    let (_, stdout, _) = run(t.cmd("callrec-seal").args([
        "-k",
        "keys",
        "-o",
        "sealed",
        "--json",
        "--tsa",
        &tsa.url(),
        "spool",
    ]));
    record("callrec-seal", stdout.as_bytes());

    // verify: verdicts, a history, a gap (one record removed), a failure; --show.
    t.write("spool2/c.bin", "c");
    t.write("spool2/d.bin", "d");
    // One at a time, so c is not the last of the chain (a removed last record leaves no gap).
    for file in ["spool2/c.bin", "spool2/d.bin"] {
        run_ok(
            t.cmd("callrec-seal")
                .args(["-k", "keys", "-o", "sealed", file]),
        );
    }
    fs::remove_file(t.join("sealed/c.sealed.bin")).unwrap();
    let (code, stdout, _) = run(t.cmd("callrec-verify").args([
        "--json",
        "--pubkey",
        "keys/seal.pub",
        "sealed",
        "spool/fake.sealed.bin",
    ]));
    assert_eq!(code, 1);
    record("callrec-verify", stdout.as_bytes());
    let out = run_ok(
        t.cmd("callrec-verify")
            .args([
                "--json",
                "--show",
                "--identity",
                "keys",
                "--pubkey",
                "keys/seal.pub",
            ])
            .arg(t.join("sealed/d.sealed.bin")),
    );
    record("callrec-verify", &out.stdout);
    let out = run_ok(
        t.cmd("callrec-verify")
            .args(["--json", "--pubkey", "keys/seal.pub", "--bundle", "court"])
            .arg(t.join("sealed/d.sealed.bin")),
    );
    record("callrec-verify", &out.stdout);

    // push: archived, already archived, an error.
    let (_, stdout, _) = run(t.cmd("callrec-push").args([
        "--json",
        "--to",
        "archive",
        "sealed",
        "spool/fake.sealed.bin",
    ]));
    record("callrec-push", stdout.as_bytes());

    // query: an index with a tampered record and a link (flagged, skipped), a search, stats.
    let archived: Vec<std::path::PathBuf> = walkdir::WalkDir::new(t.join("archive"))
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| e.into_path())
        .collect();
    let mut tampered = fs::read(&archived[0]).unwrap();
    let n = tampered.len();
    tampered[n - 45] ^= 1; // in the signature block
    fs::write(t.join("archive/tampered.sealed.bin"), tampered).unwrap();
    std::os::unix::fs::symlink(&archived[0], t.join("archive/link.sealed.bin")).unwrap();
    let (code, stdout, _) = run(t.cmd("callrec-query").args([
        "index",
        "--json",
        "--pubkey",
        "keys/seal.pub",
        "--identity",
        "keys",
        "archive",
    ]));
    assert_eq!(code, 1);
    record("callrec-query", stdout.as_bytes());
    let out = run_ok(t.cmd("callrec-query").args(["search", "--json"]));
    record("callrec-query", &out.stdout);
    let out = run_ok(
        t.cmd("callrec-query")
            .args(["stats", "--by", "all", "--json"]),
    );
    record("callrec-query", &out.stdout);

    // Every documented type was seen (phone needs a USB phone, which no test machine has; a
    // warning, a record anchored a day after it was sealed).
    for (tool, tables) in &schema {
        let expected: BTreeSet<&String> = tables
            .keys()
            .filter(|k| !["phone", "warning"].contains(&k.as_str()))
            .collect();
        let got: BTreeSet<&String> = seen
            .get(tool.as_str())
            .map(|s| s.iter().collect())
            .unwrap_or_default();
        assert_eq!(
            got, expected,
            "{tool}: documented types never produced, or the reverse"
        );
    }
}
