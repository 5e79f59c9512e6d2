//! Citizen identity numbers: the 12-digit CCCD (căn cước) and the 9-digit
//! CMND (chứng minh nhân dân). Both identify old portal accounts.

use serde::Serialize;
use std::fmt;

/// Which card a number belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IdType {
    /// 12 digits: `PPP G YY NNNNNN`.
    Cccd,
    /// 9 digits, no checkable structure.
    Cmnd,
}

impl IdType {
    /// The lower-case name used in reports and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            IdType::Cccd => "cccd",
            IdType::Cmnd => "cmnd",
        }
    }
}

/// Why a string is not an identity number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdNumberError {
    /// Not made of digits only (after separators were removed).
    #[error("an ID number has digits only")]
    NotDigits,
    /// Neither 9 nor 12 digits.
    #[error("an ID number has 9 (CMND) or 12 (CCCD) digits, this one has {0}")]
    WrongLength(usize),
    /// The century digit and year give a birth year after `current_year`.
    #[error("the CCCD number gives birth year {birth_year}, which is in the future")]
    FutureBirthYear {
        /// The year the number encodes.
        birth_year: i32,
    },
}

/// A parsed identity number. Holds only 9 or 12 ASCII digits, and for a CCCD
/// a birth year that is not in the future (as of parsing).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdNumber(String);

/// The 63 province codes of birth registration (Circular 59/2021/TT-BCA,
/// annex), with the province's name.
pub const PROVINCES: [(u16, &str); 63] = [
    (1, "Hà Nội"),
    (2, "Hà Giang"),
    (4, "Cao Bằng"),
    (6, "Bắc Kạn"),
    (8, "Tuyên Quang"),
    (10, "Lào Cai"),
    (11, "Điện Biên"),
    (12, "Lai Châu"),
    (14, "Sơn La"),
    (15, "Yên Bái"),
    (17, "Hòa Bình"),
    (19, "Thái Nguyên"),
    (20, "Lạng Sơn"),
    (22, "Quảng Ninh"),
    (24, "Bắc Giang"),
    (25, "Phú Thọ"),
    (26, "Vĩnh Phúc"),
    (27, "Bắc Ninh"),
    (30, "Hải Dương"),
    (31, "Hải Phòng"),
    (33, "Hưng Yên"),
    (34, "Thái Bình"),
    (35, "Hà Nam"),
    (36, "Nam Định"),
    (37, "Ninh Bình"),
    (38, "Thanh Hóa"),
    (40, "Nghệ An"),
    (42, "Hà Tĩnh"),
    (44, "Quảng Bình"),
    (45, "Quảng Trị"),
    (46, "Thừa Thiên Huế"),
    (48, "Đà Nẵng"),
    (49, "Quảng Nam"),
    (51, "Quảng Ngãi"),
    (52, "Bình Định"),
    (54, "Phú Yên"),
    (56, "Khánh Hòa"),
    (58, "Ninh Thuận"),
    (60, "Bình Thuận"),
    (62, "Kon Tum"),
    (64, "Gia Lai"),
    (66, "Đắk Lắk"),
    (67, "Đắk Nông"),
    (68, "Lâm Đồng"),
    (70, "Bình Phước"),
    (72, "Tây Ninh"),
    (74, "Bình Dương"),
    (75, "Đồng Nai"),
    (77, "Bà Rịa - Vũng Tàu"),
    (79, "Hồ Chí Minh"),
    (80, "Long An"),
    (82, "Tiền Giang"),
    (83, "Bến Tre"),
    (84, "Trà Vinh"),
    (86, "Vĩnh Long"),
    (87, "Đồng Tháp"),
    (89, "An Giang"),
    (91, "Kiên Giang"),
    (92, "Cần Thơ"),
    (93, "Hậu Giang"),
    (94, "Sóc Trăng"),
    (95, "Bạc Liêu"),
    (96, "Cà Mau"),
];

/// The province name for a 3-digit code, if it is one of the 63.
pub fn province_name(code: u16) -> Option<&'static str> {
    PROVINCES
        .binary_search_by_key(&code, |(c, _)| *c)
        .ok()
        .map(|i| PROVINCES[i].1)
}

impl IdNumber {
    /// Parses a run of digits (separators already removed) as of
    /// `current_year`, which bounds the birth year a CCCD may encode.
    pub fn parse(digits: &str, current_year: i32) -> Result<IdNumber, IdNumberError> {
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(IdNumberError::NotDigits);
        }
        match digits.len() {
            9 => Ok(IdNumber(digits.to_owned())),
            12 => {
                let id = IdNumber(digits.to_owned());
                let birth_year = id.birth_year().expect("12 digits have a birth year");
                if birth_year > current_year {
                    Err(IdNumberError::FutureBirthYear { birth_year })
                } else {
                    Ok(id)
                }
            }
            n => Err(IdNumberError::WrongLength(n)),
        }
    }

    /// The digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// CCCD or CMND.
    pub fn id_type(&self) -> IdType {
        if self.0.len() == 12 {
            IdType::Cccd
        } else {
            IdType::Cmnd
        }
    }

    fn digit(&self, i: usize) -> u8 {
        self.0.as_bytes()[i] - b'0'
    }

    /// For a CCCD, the 3-digit province code of birth registration.
    pub fn province_code(&self) -> Option<u16> {
        (self.id_type() == IdType::Cccd).then(|| {
            u16::from(self.digit(0)) * 100
                + u16::from(self.digit(1)) * 10
                + u16::from(self.digit(2))
        })
    }

    /// For a CCCD, whether the province code is one of the 63.
    pub fn has_known_province(&self) -> bool {
        self.province_code().and_then(province_name).is_some()
    }

    /// For a CCCD, the birth year: century from digit 4 (0/1 → 1900s,
    /// 2/3 → 2000s, 4/5 → 2100s …), year from digits 5–6.
    pub fn birth_year(&self) -> Option<i32> {
        (self.id_type() == IdType::Cccd).then(|| {
            let g = i32::from(self.digit(3));
            1900 + (g / 2) * 100 + i32::from(self.digit(4)) * 10 + i32::from(self.digit(5))
        })
    }

    /// For a CCCD, "Nam" or "Nữ" from the parity of the century digit.
    pub fn sex(&self) -> Option<&'static str> {
        (self.id_type() == IdType::Cccd).then(|| {
            if self.digit(3).is_multiple_of(2) {
                "Nam"
            } else {
                "Nữ"
            }
        })
    }
}

impl fmt::Display for IdNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn sixty_three_sorted_province_codes() {
        assert_eq!(PROVINCES.len(), 63);
        assert!(PROVINCES.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(province_name(79), Some("Hồ Chí Minh"));
        assert_eq!(province_name(3), None);
    }

    #[test]
    fn parses_cccd_and_cmnd() {
        let id = IdNumber::parse("079203001234", 2026).unwrap();
        assert_eq!(id.id_type(), IdType::Cccd);
        assert_eq!(id.birth_year(), Some(2003));
        assert_eq!(id.sex(), Some("Nam"));
        assert!(id.has_known_province());
        let id = IdNumber::parse("001199012345", 2026).unwrap();
        assert_eq!(id.birth_year(), Some(1999));
        assert_eq!(id.sex(), Some("Nữ"));
        let id = IdNumber::parse("187389815", 2026).unwrap();
        assert_eq!(id.id_type(), IdType::Cmnd);
        assert_eq!(id.birth_year(), None);
        assert!(!id.has_known_province());
    }

    #[test]
    fn rejects_wrong_lengths_and_future_years() {
        assert_eq!(
            IdNumber::parse("07920300123", 2026),
            Err(IdNumberError::WrongLength(11))
        );
        assert_eq!(
            IdNumber::parse("07920300123a", 2026),
            Err(IdNumberError::NotDigits)
        );
        assert_eq!(
            IdNumber::parse("079230001234", 2026),
            Err(IdNumberError::FutureBirthYear { birth_year: 2030 })
        );
        assert_eq!(
            IdNumber::parse("079403001234", 2026),
            Err(IdNumberError::FutureBirthYear { birth_year: 2103 })
        );
        assert!(IdNumber::parse("079226001234", 2026).is_ok());
    }

    #[test]
    fn unknown_province_is_still_a_number() {
        let id = IdNumber::parse("003203001234", 2026).unwrap();
        assert!(!id.has_known_province());
    }

    proptest! {
        #[test]
        fn any_nine_digits_are_a_cmnd(s in "[0-9]{9}") {
            let id = IdNumber::parse(&s, 2026).unwrap();
            prop_assert_eq!(id.id_type(), IdType::Cmnd);
            prop_assert_eq!(id.as_str(), s.as_str());
        }

        #[test]
        fn twelve_digits_parse_exactly_when_birth_year_is_not_future(
            p in 0u16..1000, g in 0u8..10, yy in 0u8..100, rest in 0u32..1_000_000, year in 1900i32..2300
        ) {
            let s = format!("{p:03}{g}{yy:02}{rest:06}");
            let birth = 1900 + i32::from(g / 2) * 100 + i32::from(yy);
            let parsed = IdNumber::parse(&s, year);
            prop_assert_eq!(parsed.is_ok(), birth <= year);
            if let Ok(id) = parsed {
                prop_assert_eq!(id.birth_year(), Some(birth));
                prop_assert_eq!(id.province_code(), Some(p));
                prop_assert_eq!(id.has_known_province(), province_name(p).is_some());
            }
        }

        #[test]
        fn other_lengths_never_parse(s in "[0-9]{0,20}") {
            prop_assume!(s.len() != 9 && s.len() != 12);
            prop_assert!(IdNumber::parse(&s, 2026).is_err());
        }

        #[test]
        fn non_digits_never_parse(s in "[0-9]{0,6}[^0-9][0-9]{0,6}") {
            prop_assert_eq!(IdNumber::parse(&s, 2026), Err(IdNumberError::NotDigits));
        }
    }
}
