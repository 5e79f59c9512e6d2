//! SMS text in GSM-7: Vietnamese folded to ASCII (`đ` → `d`, tones and
//! hats dropped), anything else outside the GSM 03.38 alphabet replaced,
//! and segments counted the way handsets count them (160 characters in one
//! SMS, 153 per part of a longer one; `^{}\[~]|€` take two).

use unicode_normalization::UnicodeNormalization;

/// The GSM 03.38 basic alphabet (characters that take one septet).
const BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// The extension table (two septets each: escape + character).
const EXTENDED: &str = "^{}\\[~]|€\u{c}";

/// Folds text to what GSM-7 carries: Vietnamese letters lose their marks
/// (`Đ` → `D`, `ư` → `u`), typographic quotes and dashes become plain ones,
/// whitespace runs become one space, and anything left over becomes `?`.
pub fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last_space = false;
    for ch in text.nfd() {
        let c = match ch {
            'đ' => 'd',
            'Đ' => 'D',
            '\u{2018}' | '\u{2019}' => '\'',
            '\u{201c}' | '\u{201d}' => '"',
            '\u{2013}' | '\u{2014}' => '-',
            '\u{2026}' => {
                out.push_str("...");
                last_space = false;
                continue;
            }
            c if unicode_normalization::char::is_combining_mark(c) => continue,
            c if c.is_whitespace() && c != '\n' => ' ',
            c => c,
        };
        if c == ' ' {
            if last_space {
                continue;
            }
            last_space = true;
        } else {
            last_space = false;
        }
        if BASIC.contains(c) || EXTENDED.contains(c) {
            out.push(c);
        } else {
            out.push('?');
        }
    }
    out.trim().to_owned()
}

/// Septets the text takes.
pub fn septets(text: &str) -> usize {
    text.chars()
        .map(|c| if EXTENDED.contains(c) { 2 } else { 1 })
        .sum()
}

/// How many SMS the text takes (0 for an empty text).
pub fn segments(text: &str) -> usize {
    match septets(text) {
        0 => 0,
        n if n <= 160 => 1,
        n => n.div_ceil(153),
    }
}

/// Whether every character is in the GSM-7 alphabet.
pub fn is_gsm7(text: &str) -> bool {
    text.chars()
        .all(|c| BASIC.contains(c) || EXTENDED.contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn vietnamese_folds_to_plain_letters() {
        assert_eq!(
            fold(
                "Tài khoản của bạn trên Cổng DVCQG đã bị xóa. ĐỀ NGHỊ liên hệ “tổng đài” 18001096…"
            ),
            "Tai khoan cua ban tren Cong DVCQG da bi xoa. DE NGHI lien he \"tong dai\" 18001096..."
        );
        // Decomposed input (NFD) folds the same.
        let nfd: String = "Nguyễn Thị Ánh".nfd().collect();
        assert_eq!(fold(&nfd), "Nguyen Thi Anh");
        assert_eq!(fold("emoji 😀 and 中文"), "emoji ? and ??");
    }

    #[test]
    fn segments_are_counted_as_handsets_do() {
        assert_eq!(segments(""), 0);
        assert_eq!(segments(&"a".repeat(160)), 1);
        assert_eq!(segments(&"a".repeat(161)), 2);
        assert_eq!(segments(&"a".repeat(306)), 2);
        assert_eq!(segments(&"a".repeat(307)), 3);
        // Extension characters take two septets.
        assert_eq!(segments(&"€".repeat(80)), 1);
        assert_eq!(segments(&"€".repeat(81)), 2);
    }

    proptest! {
        #[test]
        fn folded_text_is_always_gsm7(s in "\\PC{0,200}") {
            let f = fold(&s);
            prop_assert!(is_gsm7(&f), "{f:?}");
            prop_assert!(f.chars().count() <= s.nfd().count() * 3 + 3);
        }
    }
}
