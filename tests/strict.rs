//! Strict verification (issue 12): seals signed by the right key whose text payload or key set
//! is wrong are refused. The seals are forged with the library and a real key, as an insider
//! who holds the signing key could.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use callrec::format::{self, Cipher, Footer, Manifest};
use callrec::keys::SealKey;
use callrec::record::{Record, RecordId};

use crate::util::*;

/// Write a sealed file of `media` whose text block is `payload` (plus its check byte), with a
/// manifest for `record_id` (changed by `tweak`) signed by the key in `keys`.
fn forge(
    t: &TestDir,
    keys: &Path,
    name: &str,
    record_id: &str,
    cipher: Cipher,
    payload: &[u8],
    tweak: impl FnOnce(&mut Manifest),
) -> PathBuf {
    let key = SealKey::load(keys).unwrap();
    let media = b"recorded media bytes".to_vec();
    let path = t.join(name);
    fs::write(&path, &media).unwrap();
    let checksum =
        format::quick_checksum(&fs::File::open(&path).unwrap(), media.len() as u64).unwrap();
    let mut text = payload.to_vec();
    text.push(format::check_byte(&text));
    let mut manifest = Manifest {
        record_id: RecordId::parse(record_id).unwrap(),
        key_id: key.key_id.clone(),
        sealed_at: chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
        sequence: 1,
        previous: [0; 32],
        media_size: media.len() as u64,
        media_checksum: checksum,
        media_sha256: Sha256::digest(&media).into(),
        text_cipher: cipher,
        text_size: text.len() as u32,
        text_sha256: Sha256::digest(&text).into(),
        extra: vec![],
    };
    tweak(&mut manifest);
    let manifest_bytes = manifest.to_bytes();
    let signature = key.sign(&manifest, &manifest_bytes).unwrap();
    let footer = Footer {
        media_len: media.len() as u64,
        checksum,
        text_len: text.len() as u32,
        manifest_len: manifest_bytes.len() as u32,
        signature_len: signature.len() as u32,
        cipher,
    };
    let mut file = fs::OpenOptions::new().append(true).open(&path).unwrap();
    for part in [
        &text[..],
        &manifest_bytes,
        signature.as_bytes(),
        &footer.encode(),
    ] {
        file.write_all(part).unwrap();
    }
    path
}

/// The record's JSON encrypted to the key directory's age recipient, binary or armored.
fn age_payload(keys: &Path, record_id: &str, armored: bool) -> Vec<u8> {
    let recipients = fs::read_to_string(keys.join("age-recipients.txt")).unwrap();
    let recipient: age::x25519::Recipient = recipients
        .lines()
        .find(|l| l.starts_with("age1"))
        .unwrap()
        .parse()
        .unwrap();
    let plain = Record::new(RecordId::parse(record_id).unwrap()).to_json();
    let encryptor =
        age::Encryptor::with_recipients(std::iter::once(&recipient as &dyn age::Recipient))
            .unwrap();
    if armored {
        // The real age tool's ASCII armor.
        let mut child = std::process::Command::new("age")
            .args(["-a", "-r", &recipient.to_string()])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("age is installed");
        child.stdin.take().unwrap().write_all(&plain).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        return out.stdout;
    }
    let mut out = Vec::new();
    let mut writer = encryptor.wrap_output(&mut out).unwrap();
    writer.write_all(&plain).unwrap();
    writer.finish().unwrap();
    out
}

/// `callrec-verify --json` on one file: (exit code, failed check).
fn verdict(t: &TestDir, file: &Path, extra: &[&str]) -> (i32, Option<String>) {
    let (code, stdout, stderr) = run(t
        .cmd("callrec-verify")
        .args(["--json", "-p", "keys/seal.pub"])
        .args(extra)
        .arg(file));
    let check = json_lines(stdout.as_bytes())
        .iter()
        .find(|l| l["type"] == "verdict")
        .and_then(|l| l["check"].as_str().map(str::to_string));
    let check = check.or_else(|| stderr.contains("text check failed").then(|| "text".into()));
    (code, check)
}

#[test]
fn a_text_payload_that_is_not_what_the_cipher_says_fails() {
    let t = TestDir::new();
    let keys = t.keygen("keys");
    let id = "20261127T093000Z-0a1b2c3d4e5f";
    let good = forge(
        &t,
        &keys,
        "good.sealed.bin",
        id,
        Cipher::Age,
        &age_payload(&keys, id, false),
        |_| {},
    );
    assert_eq!(verdict(&t, &good, &[]), (0, None));
    let bad = [
        ("empty.sealed.bin", Vec::new()),
        (
            "garbage.sealed.bin",
            b"this is not an age file at all".to_vec(),
        ),
        ("armored.sealed.bin", age_payload(&keys, id, true)),
    ];
    for (name, payload) in bad {
        let file = forge(&t, &keys, name, id, Cipher::Age, &payload, |_| {});
        assert_eq!(
            verdict(&t, &file, &[]),
            (1, Some("text".to_string())),
            "{name}"
        );
    }
    // The table cipher needs the manifest to name its table.
    let file = forge(
        &t,
        &keys,
        "table.sealed.bin",
        id,
        Cipher::Table,
        b"\x01\x02",
        |_| {},
    );
    assert_eq!(verdict(&t, &file, &[]), (1, Some("text".to_string())));
}

#[test]
fn a_text_info_of_another_record_fails_when_read() {
    let t = TestDir::new();
    let keys = t.keygen("keys");
    let file = forge(
        &t,
        &keys,
        "moved.sealed.bin",
        "20261127T093000Z-0a1b2c3d4e5f",
        Cipher::Age,
        &age_payload(&keys, "20261127T093000Z-ffffffffffff", false),
        |_| {},
    );
    // The index, a reader of the text too, flags it as a failed check.
    fs::create_dir(t.join("archive")).unwrap();
    fs::copy(&file, t.join("archive/moved.sealed.bin")).unwrap();
    let (code, stdout, stderr) = run(t.cmd("callrec-query").args([
        "index",
        "--json",
        "--identity",
        "keys",
        "--pubkey",
        "keys/seal.pub",
        "archive",
    ]));
    assert_eq!(code, 1, "{stderr}");
    let flagged: Vec<_> = json_lines(stdout.as_bytes())
        .into_iter()
        .filter(|l| l["type"] == "flagged")
        .collect();
    assert_eq!(flagged.len(), 1, "{stdout}");
    assert!(
        flagged[0]["problem"].as_str().unwrap().starts_with("text:"),
        "{stdout}"
    );
    // The seal itself is intact; the text names another record, which only a reader sees.
    assert_eq!(verdict(&t, &file, &[]), (0, None));
    let (code, stdout, stderr) = run(t
        .cmd("callrec-verify")
        .args(["-p", "keys/seal.pub", "--show", "--identity", "keys"])
        .arg(&file));
    assert_eq!(code, 1, "{stderr}");
    assert!(stdout.is_empty());
    assert!(stderr.contains("text check failed"), "{stderr}");
    assert!(stderr.contains("20261127T093000Z-ffffffffffff"), "{stderr}");
}

#[test]
fn two_trusted_keys_with_one_key_number_are_refused() {
    let t = TestDir::new();
    t.keygen("keys");
    t.keygen("other");
    t.write("a.bin", "evidence");
    let sealed = t.seal("keys", &["a.bin"]);
    // A second public key carrying the first key's number.
    let mine = fs::read_to_string(t.join("keys/seal.pub")).unwrap();
    let theirs = fs::read_to_string(t.join("other/seal.pub")).unwrap();
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let decode = |text: &str| b64.decode(text.lines().nth(1).unwrap()).unwrap();
    let (mine_raw, mut theirs_raw) = (decode(&mine), decode(&theirs));
    theirs_raw[2..10].copy_from_slice(&mine_raw[2..10]);
    let first = theirs.lines().next().unwrap();
    t.write(
        "twin.pub",
        format!("{first}\n{}\n", b64.encode(&theirs_raw)),
    );
    for order in [["keys/seal.pub", "twin.pub"], ["twin.pub", "keys/seal.pub"]] {
        let (code, _, stderr) = run(t
            .cmd("callrec-verify")
            .args(["-p", order[0], "-p", order[1]])
            .arg(&sealed[0]));
        assert_eq!(code, 2, "{stderr}");
        assert!(stderr.contains("ambiguous key set"), "{stderr}");
    }
    // The same key given twice is one key.
    run_ok(
        t.cmd("callrec-verify")
            .args(["-p", "keys/seal.pub", "-p", "keys"])
            .arg(&sealed[0]),
    );
}

#[test]
fn known_optional_facts_must_have_their_defined_form() {
    let t = TestDir::new();
    let keys = t.keygen("keys");
    let id = "20261127T093000Z-0a1b2c3d4e5f";
    let payload = age_payload(&keys, id, false);
    let fact = |name: &str, value: &str| vec![(name.to_string(), value.to_string())];
    let upper = "A".repeat(64);
    let cases: Vec<(&str, Vec<(String, String)>)> = vec![
        (
            "corrects-upper.sealed.bin",
            fact("corrects", &format!("{id} {upper}")),
        ),
        ("source-upper.sealed.bin", fact("source-sha256", &upper)),
        (
            "table-id-upper.sealed.bin",
            fact("table-id", "ABCDEF0123456789"),
        ),
        ("watermark-foo.sealed.bin", fact("watermark", "foo")),
        ("health-odd.sealed.bin", fact("health", "sounds-fine")),
    ];
    for (name, extra) in cases {
        let file = forge(&t, &keys, name, id, Cipher::Age, &payload, |m| {
            m.extra = extra
        });
        assert_eq!(
            verdict(&t, &file, &[]),
            (1, Some("manifest".to_string())),
            "{name}"
        );
    }
    // Facts this version does not define pass, and are shown.
    let file = forge(
        &t,
        &keys,
        "future.sealed.bin",
        id,
        Cipher::Age,
        &payload,
        |m| m.extra = fact("future-fact", "anything"),
    );
    assert_eq!(verdict(&t, &file, &[]), (0, None));
    // A leap second, and a first seal that names a previous one.
    let leap = forge(
        &t,
        &keys,
        "leap.sealed.bin",
        id,
        Cipher::Age,
        &payload,
        |m| {
            let day = chrono::NaiveDate::from_ymd_opt(2026, 12, 31).unwrap();
            let time = chrono::NaiveTime::from_hms_milli_opt(23, 59, 59, 1000).unwrap();
            m.sealed_at = chrono::NaiveDateTime::new(day, time).and_utc();
        },
    );
    assert_eq!(verdict(&t, &leap, &[]), (1, Some("manifest".to_string())));
    let first = forge(
        &t,
        &keys,
        "first.sealed.bin",
        id,
        Cipher::Age,
        &payload,
        |m| {
            m.previous = [7; 32];
        },
    );
    assert_eq!(verdict(&t, &first, &[]), (1, Some("manifest".to_string())));
}
