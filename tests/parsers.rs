//! Property tests: the parsers of untrusted bytes never panic and never allocate beyond the
//! format's limits, whatever they are fed.

use std::io::Write;

use callrec::format::{Cipher, Footer, Manifest, FOOTER_LEN, TEXT_MAX};
use callrec::keys::TrustedKeys;
use callrec::verify::{self, SealedFile};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn footer_decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64), len in any::<u64>()) {
        let _ = Footer::decode(&bytes, len);
    }

    #[test]
    fn footer_with_nsign_and_random_fields_never_panics(fields in proptest::collection::vec(any::<u8>(), 32), len in any::<u64>()) {
        let mut bytes = fields;
        bytes.extend_from_slice(b"CRECSEAL");
        if let Ok(footer) = Footer::decode(&bytes, len) {
            // Whatever it accepts is bounded and accounts for the whole file.
            prop_assert!(footer.text_len <= TEXT_MAX);
            prop_assert_eq!(footer.footer_offset() + FOOTER_LEN, len);
        }
    }

    #[test]
    fn manifest_parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = Manifest::parse(&bytes);
    }

    #[test]
    fn hid_report_descriptor_parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Some(switch) = callrec::capture::hid::find_hook_switch(&bytes) {
            let _ = callrec::capture::hid::hook_state(&switch, &bytes);
        }
    }

    #[test]
    fn manifest_like_text_never_panics(lines in proptest::collection::vec("[a-z-]{0,14}: [ -~]{0,70}", 0..16)) {
        let text = format!("callrec-manifest: 1\n{}\n", lines.join("\n"));
        let _ = Manifest::parse(text.as_bytes());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Random parts behind a footer whose lengths are right drive the verifier through every
    /// check; it must answer, not panic.
    #[test]
    fn verifying_random_well_framed_files_never_panics(
        media in proptest::collection::vec(any::<u8>(), 0..300),
        text in proptest::collection::vec(any::<u8>(), 1..300),
        manifest in proptest::collection::vec(any::<u8>(), 1..300),
        signature in proptest::collection::vec(any::<u8>(), 1..300),
        checksum in any::<u64>(),
        table in any::<bool>(),
    ) {
        let footer = Footer {
            media_len: media.len() as u64,
            checksum,
            text_len: text.len() as u32,
            manifest_len: manifest.len() as u32,
            signature_len: signature.len() as u32,
            cipher: if table { Cipher::Table } else { Cipher::Age },
        };
        let mut file = tempfile::NamedTempFile::new().unwrap();
        for part in [&media[..], &text, &manifest, &signature, &footer.encode()] {
            file.write_all(part).unwrap();
        }
        let sealed = SealedFile::open(file.path()).unwrap();
        prop_assert!(verify::full(&sealed, &TrustedKeys::default(), None).is_err());
        let _ = verify::explain(&sealed);
    }
}
