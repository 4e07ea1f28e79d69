//! Validator vectors: known-good and known-bad values for every identifier kind.

use callrec::validate;
use chrono::NaiveDate;

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 27).unwrap()
}

#[test]
fn id_numbers() {
    for good in [
        "110108197712281810", // the source document's example
        "11010519491231002X", // check character X
        "11010519491231002x", // lower-case x is accepted and normalised
        "110105199602291233", // born on a leap day
        "110105 19960229 1233",
    ] {
        assert!(validate::id_number(good, today()).is_ok(), "{good}");
    }
    assert_eq!(
        validate::id_number("11010519491231002x", today()).unwrap(),
        "11010519491231002X"
    );
    for (bad, why) in [
        ("110108197712281811", "check digit"),
        ("110105199702291230", "birth date"), // 1997 is not a leap year: valid check, bad date
        ("110105209912311232", "birth date"), // born in the future
        ("110108771228181", "15-digit"),      // legacy IDs are refused, as documented
        ("11010819771228181", "17 digits"),
        ("1101081977122818100", "17 digits"),
        ("11010819771228181A", "17 digits"),
        ("010108197712281810", "start with 0"),
        ("", "17 digits"),
    ] {
        let err = validate::id_number(bad, today()).unwrap_err();
        assert!(err.contains(why), "{bad}: {err}");
        assert!(
            !err.contains(bad.trim()) || bad.is_empty(),
            "the value is echoed: {err}"
        );
    }
}

#[test]
fn credit_codes() {
    for good in [
        "911101140924495254",
        "91350100M000100Y43",
        "91350100m000100y43",
    ] {
        assert!(validate::credit_code(good).is_ok(), "{good}");
    }
    for (bad, why) in [
        ("911101140924495253", "check character"),
        ("91110000600037304J", "check character"),
        ("91110114092449525", "18 characters"),
        ("91110114092449525I", "without I"),
        ("9111011409244952O4", "without I"),
    ] {
        let err = validate::credit_code(bad).unwrap_err();
        assert!(err.contains(why), "{bad}: {err}");
    }
}

#[test]
fn cards_and_accounts() {
    assert_eq!(
        validate::card("6222 0212 3456 7890 128").unwrap(),
        "6222021234567890128"
    );
    assert!(validate::card("4111111111111111").is_ok());
    assert!(validate::card("6222021234567890123")
        .unwrap_err()
        .contains("Luhn"));
    assert!(validate::card("12345678901")
        .unwrap_err()
        .contains("12 to 19"));
    assert!(validate::card("62220212345678901281").is_err());
    // Account numbers are not card numbers: no Luhn check, digits and length only.
    assert_eq!(
        validate::account("32150100100065711").unwrap(),
        "32150100100065711"
    );
    assert_eq!(
        validate::account("3215-0100-1000-65711").unwrap(),
        "32150100100065711"
    );
    assert!(validate::account("1234567").is_err());
    assert!(validate::account(&"1".repeat(33)).is_err());
    assert!(validate::account("3215010010006571A").is_err());
}

#[test]
fn phone_numbers() {
    for good in [
        "13321150748",
        "19912345678",
        "010-12345678",
        "0755-1234567",
        "01012345678",
        "+8613321150748",
        "+14155550123",
    ] {
        assert!(validate::phone(good).is_ok(), "{good}");
    }
    for bad in [
        "12321150748",
        "1332115074",
        "133211507480",
        "010-123456",
        "10-12345678",
        "+0123456789",
        "+86",
        "phone",
        "133 2115 074x",
    ] {
        assert!(validate::phone(bad).is_err(), "{bad}");
    }
}

#[test]
fn free_text_and_codes() {
    assert_eq!(validate::text("  李霞 ", 50).unwrap(), "李霞");
    for bad in ["a|b", "line\nbreak", "esc\u{1b}[2J", "tab\t"] {
        assert!(validate::text(bad, 50).is_err(), "{bad:?}");
    }
    assert!(validate::text(&"字".repeat(51), 50).is_err());
    assert_eq!(validate::code("0068", 16).unwrap(), "0068");
    assert!(validate::code("00 68", 16).is_err());
    assert!(validate::code("", 16).is_err());
}
