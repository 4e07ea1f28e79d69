//! Validators for the identifiers an operator types. Each returns the value in its normal form
//! (spaces removed, check letters upper-case) or says why it is wrong. A reason never repeats
//! the value, which may be personal data.

use chrono::{Datelike, NaiveDate};

/// PRC resident identity number (GB 11643-1999): 17 digits and a check character (`0-9` or
/// `X`, accepted in either case) computed with ISO 7064 MOD 11-2; digits 7-14 are a real birth
/// date no later than `today`. The 15-digit numbers issued before 1999 are refused: they carry
/// no check digit, and every holder has since been issued an 18-digit number.
pub fn id_number(value: &str, today: NaiveDate) -> Result<String, String> {
    let v: String = value
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_uppercase();
    if v.len() == 15 && v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(
            "15-digit ID numbers (issued before 1999) are not accepted: give the 18-digit number"
                .into(),
        );
    }
    let bytes = v.as_bytes();
    if bytes.len() != 18
        || !bytes[..17].iter().all(u8::is_ascii_digit)
        || !(bytes[17].is_ascii_digit() || bytes[17] == b'X')
    {
        return Err("an ID number is 17 digits and a check digit or X".into());
    }
    if bytes[0] == b'0' {
        return Err("an ID number does not start with 0".into());
    }
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = bytes[..17]
        .iter()
        .zip(WEIGHTS)
        .map(|(&d, w)| u32::from(d - b'0') * w)
        .sum();
    let check = b"10X98765432"[(sum % 11) as usize];
    if bytes[17] != check {
        return Err("the check digit is wrong (GB 11643): a digit was mistyped".into());
    }
    let birth = NaiveDate::parse_from_str(&v[6..14], "%Y%m%d")
        .map_err(|_| "digits 7-14 are not a real birth date".to_string())?;
    if birth > today || birth.year() < 1900 {
        return Err("digits 7-14 are not a possible birth date".into());
    }
    Ok(v)
}

/// Unified social credit code (GB 32100-2015): 18 characters from `0-9` and the capital
/// letters except I, O, S, V, Z; the last is a MOD 31 check character.
pub fn credit_code(value: &str) -> Result<String, String> {
    const CHARSET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
    const WEIGHTS: [u32; 17] = [
        1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
    ];
    let v: String = value
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_uppercase();
    if v.len() != 18 {
        return Err("a unified social credit code has 18 characters".into());
    }
    let mut values = Vec::with_capacity(18);
    for b in v.bytes() {
        match CHARSET.iter().position(|&c| c == b) {
            Some(i) => values.push(i as u32),
            None => {
                return Err(
                    "a unified social credit code uses 0-9 and A-Z without I, O, S, V, Z".into(),
                )
            }
        }
    }
    let sum: u32 = values[..17].iter().zip(WEIGHTS).map(|(v, w)| v * w).sum();
    let check = (31 - sum % 31) % 31;
    if values[17] != check {
        return Err("the check character is wrong (GB 32100): a character was mistyped".into());
    }
    Ok(v)
}

/// Digits only, after removing spaces and hyphens.
fn digits(value: &str) -> Option<String> {
    let v: String = value
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect();
    (!v.is_empty() && v.bytes().all(|b| b.is_ascii_digit())).then_some(v)
}

/// A bank account number: 8 to 32 digits (spaces and hyphens ignored).
pub fn account(value: &str) -> Result<String, String> {
    match digits(value) {
        Some(v) if (8..=32).contains(&v.len()) => Ok(v),
        _ => Err("an account number is 8 to 32 digits".into()),
    }
}

/// A bank card number: 12 to 19 digits passing the Luhn check (ISO/IEC 7812).
pub fn card(value: &str) -> Result<String, String> {
    let v = digits(value)
        .filter(|v| (12..=19).contains(&v.len()))
        .ok_or("a card number is 12 to 19 digits")?;
    let sum: u32 = v
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                let doubled = d * 2;
                if doubled > 9 {
                    doubled - 9
                } else {
                    doubled
                }
            } else {
                d
            }
        })
        .sum();
    if !sum.is_multiple_of(10) {
        return Err("the card number fails the Luhn check: a digit was mistyped".into());
    }
    Ok(v)
}

/// A phone number: a mainland mobile number (11 digits, `1[3-9]...`), a landline with its
/// area code (`0` + 2-3 digit area code + 7-8 digit number, a hyphen allowed after the area
/// code), or E.164 (`+` and 8 to 15 digits). Spaces are removed.
pub fn phone(value: &str) -> Result<String, String> {
    let v: String = value.chars().filter(|c| !c.is_whitespace()).collect();
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let ok = if let Some(rest) = v.strip_prefix('+') {
        all_digits(rest) && (8..=15).contains(&rest.len()) && !rest.starts_with('0')
    } else if v.starts_with('1') {
        all_digits(&v) && v.len() == 11 && matches!(v.as_bytes()[1], b'3'..=b'9')
    } else if v.starts_with('0') {
        match v.split_once('-') {
            Some((area, number)) => {
                all_digits(area)
                    && (3..=4).contains(&area.len())
                    && all_digits(number)
                    && (7..=8).contains(&number.len())
            }
            None => all_digits(&v) && (10..=12).contains(&v.len()),
        }
    } else {
        false
    };
    if ok {
        Ok(v)
    } else {
        Err("not a phone number: use a mainland mobile (13321150748), a landline with area code (010-12345678) or E.164 (+8613321150748)".into())
    }
}

/// Free text for the record: at most `max` characters, none of them `|` or a control
/// character (line breaks included), so the figure 3C line and terminals stay intact.
pub fn text(value: &str, max: usize) -> Result<String, String> {
    if value.contains('|') || value.chars().any(char::is_control) {
        return Err("'|', line breaks and control characters are not allowed".into());
    }
    if value.chars().count() > max {
        return Err(format!("at most {max} characters"));
    }
    Ok(value.trim().to_string())
}

/// A short code (operator id, institution code, collection flag): 1 to `max` ASCII letters
/// and digits.
pub fn code(value: &str, max: usize) -> Result<String, String> {
    let v = value.trim();
    if v.is_empty() || v.len() > max || !v.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(format!("1 to {max} letters or digits"));
    }
    Ok(v.to_string())
}
