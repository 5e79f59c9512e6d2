//! Vietnamese mobile numbers, kept in E.164 (`+84…`).

use regex::Regex;
use std::fmt;
use std::sync::LazyLock;

/// libphonenumber's metadata pattern for Vietnamese mobile national numbers
/// (territory VN, `mobile`, possible length 9).
static VN_MOBILE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:(?:5(?:2[238]|59)|89[6-9]|99[013-9])\d{6}|(?:3\d|5[1689]|7[06-9]|8[1-8]|9[0-8])\d{7})$")
        .expect("static pattern")
});

/// Why a string is not a Vietnamese mobile number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    /// Characters other than digits, `+`, spaces, dots, dashes, parentheses.
    #[error("a phone number has digits only")]
    NotDigits,
    /// The digits are not `0`/`84`/`+84`/`0084` followed by 9 digits.
    #[error("a Vietnamese mobile number is 0 or +84 followed by 9 digits")]
    WrongShape,
    /// Right shape, but not in a mobile range.
    #[error("{0} is not a Vietnamese mobile number")]
    NotMobile(String),
}

/// A Vietnamese mobile number in E.164 form, e.g. `+84912345678`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Phone(String);

impl Phone {
    /// Parses a number as a citizen writes it: spaces, dots, dashes and
    /// parentheses are dropped; `+84`, `0084`, `84` + 9 digits or `0` + 9
    /// digits are accepted (and the common `+84 0…` slip).
    pub fn parse(input: &str) -> Result<Phone, PhoneError> {
        let mut s = String::with_capacity(input.len());
        for c in input.trim().chars() {
            match c {
                '0'..='9' => s.push(c),
                '+' if s.is_empty() => s.push(c),
                ' ' | '.' | '-' | '(' | ')' | '\u{a0}' | '\t' => {}
                _ => return Err(PhoneError::NotDigits),
            }
        }
        let national = if let Some(rest) = s.strip_prefix("+84") {
            rest.strip_prefix('0')
                .filter(|r| r.len() == 9)
                .unwrap_or(rest)
        } else if let Some(rest) = s.strip_prefix("0084") {
            rest
        } else if s.len() == 11 && s.starts_with("84") {
            &s[2..]
        } else if let Some(rest) = s.strip_prefix('0') {
            rest
        } else {
            return Err(PhoneError::WrongShape);
        };
        if national.len() != 9 || !national.bytes().all(|b| b.is_ascii_digit()) {
            return Err(PhoneError::WrongShape);
        }
        if !VN_MOBILE.is_match(national) {
            return Err(PhoneError::NotMobile(format!("0{national}")));
        }
        Ok(Phone(format!("+84{national}")))
    }

    /// The E.164 form.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The national form with the leading 0, as Vietnamese people write it.
    pub fn national(&self) -> String {
        format!("0{}", &self.0[3..])
    }
}

impl fmt::Display for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_every_written_form() {
        for s in [
            "0912345678",
            "0912 345 678",
            "0912.345.678",
            "0912-345-678",
            "+84 912 345 678",
            "+84912345678",
            "84912345678",
            "0084912345678",
            "(+84) 912345678",
            "+84 0912 345 678",
        ] {
            assert_eq!(Phone::parse(s).unwrap().as_str(), "+84912345678", "{s}");
        }
        assert_eq!(Phone::parse("0355111222").unwrap().as_str(), "+84355111222");
        assert_eq!(Phone::parse("0775888999").unwrap().national(), "0775888999");
    }

    #[test]
    fn rejects_landlines_old_numbers_and_junk() {
        assert!(matches!(
            Phone::parse("02438234567"),
            Err(PhoneError::WrongShape)
        ));
        assert!(matches!(
            Phone::parse("0243823456"),
            Err(PhoneError::NotMobile(_))
        ));
        assert!(matches!(
            Phone::parse("01669123456"),
            Err(PhoneError::WrongShape)
        ));
        assert!(matches!(
            Phone::parse("091234567"),
            Err(PhoneError::WrongShape)
        ));
        assert!(matches!(
            Phone::parse("0912abc678"),
            Err(PhoneError::NotDigits)
        ));
        assert!(matches!(
            Phone::parse("+1 415 555 0100"),
            Err(PhoneError::WrongShape)
        ));
        assert!(Phone::parse("").is_err());
    }

    proptest! {
        #[test]
        fn every_form_gives_the_same_e164(n in "(3[0-9]|5[1689]|7[06-9]|8[1-8]|9[0-8])[0-9]{7}") {
            let e164 = format!("+84{n}");
            for form in [format!("0{n}"), format!("+84{n}"), format!("84{n}"), format!("0084{n}"),
                         format!("0{} {} {}", &n[..3], &n[3..6], &n[6..])] {
                let parsed = Phone::parse(&form).unwrap();
                prop_assert_eq!(parsed.as_str(), e164.as_str());
            }
        }

        #[test]
        fn parsed_numbers_are_always_e164_mobile(s in "[+0-9 .-]{0,16}") {
            if let Ok(p) = Phone::parse(&s) {
                prop_assert!(p.as_str().starts_with("+84"));
                prop_assert_eq!(p.as_str().len(), 12);
                prop_assert!(VN_MOBILE.is_match(&p.as_str()[3..]));
            }
        }
    }
}
