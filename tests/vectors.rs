//! Format v1 test vectors (tests/data/format-v1): good files verify, each bad file fails at the
//! check its name gives, and the text info decodes to the document's figure 3C line.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::util::*;

const CHECKS: [&str; 9] = [
    "footer",
    "media-checksum",
    "check-byte",
    "manifest",
    "signature",
    "text-sha256",
    "media-sha256",
    "anchor",
    "timestamp",
];

const FIGURE_3C: &str = "01|1573890531|大额核实|0068|大旺路分理处|13321150748|李霞|财务人员|2018年12月25日|10时12分20秒|8803880203|911101140924495254|110108197712281810|32150100100065711|130002|核实成功。(因李静产假,现整改2016年8月2日122.1万大额补核实。)";

fn vectors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/format-v1")
}

/// The check a vector's name says it fails: `bad-media-sha256.sealed.wav` → `media-sha256`.
fn expected_check(name: &str) -> Option<&'static str> {
    let rest = name.strip_prefix("bad-")?;
    CHECKS
        .iter()
        .filter(|c| rest.starts_with(*c))
        .max_by_key(|c| c.len())
        .copied()
}

/// Sealed files and anchors: good ones verify (the anchor with the test TSA's certificate
/// trusted), each bad one fails at the check its name says.
#[test]
fn good_vectors_verify_and_bad_ones_fail_at_their_check() {
    let t = TestDir::new();
    let (_, stdout, _) = run(t
        .cmd("callrec-verify")
        .arg("--json")
        .arg("-p")
        .arg(vectors().join("seal.pub"))
        .arg("--tsa-ca")
        .arg(vectors().join("tsa-ca.pem"))
        .arg(vectors()));
    let mut seen = 0;
    let mut anchored = 0;
    for line in parse_verify_json(&stdout) {
        let (path, status, check) = match line {
            VerifyLine::Verdict {
                path,
                status,
                check,
                anchored_at,
                ..
            } => {
                anchored += usize::from(anchored_at.is_some());
                (path, status, check)
            }
            VerifyLine::Anchor {
                path,
                status,
                check,
                ..
            } => (path, status, check),
            VerifyLine::Chain { message, .. } => panic!("chain issue: {message}"),
            _ => continue,
        };
        let name = Path::new(&path)
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        if !name.contains(".sealed.") && !name.ends_with(".anchor") {
            continue; // keys and README
        }
        seen += 1;
        match expected_check(&name) {
            None => assert_eq!(status, "verified", "{name}"),
            Some(expected) => {
                assert_eq!(status, "failed", "{name}");
                assert_eq!(check.as_deref(), Some(expected), "{name}");
            }
        }
    }
    assert_eq!(seen, 18, "{stdout}");
    // good-head.anchor anchors good-table (sequence 2), and through it good-age (sequence 1).
    assert_eq!(anchored, 2, "{stdout}");
}

#[test]
fn text_info_of_the_vectors_decodes_to_the_figure_3c_line() {
    let t = TestDir::new();
    fs::create_dir(t.join("keys")).unwrap();
    fs::set_permissions(t.join("keys"), fs::Permissions::from_mode(0o700)).unwrap();
    for key in ["age-identity.txt", "table.key"] {
        let dest = t.join("keys").join(key);
        fs::copy(vectors().join(key), &dest).unwrap();
        fs::set_permissions(&dest, fs::Permissions::from_mode(0o600)).unwrap();
    }
    for file in ["good-age.sealed.wav", "good-table.sealed.wav"] {
        let out = run_ok(
            t.cmd("callrec-verify")
                .arg("-p")
                .arg(vectors().join("seal.pub"))
                .args(["--show", "--identity", "keys"])
                .arg(vectors().join(file)),
        );
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert_eq!(stdout.lines().last(), Some(FIGURE_3C), "{file}");
    }
}
