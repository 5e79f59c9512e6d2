//! Vietnamese text folding: the form every matching rule works on.
//!
//! Citizens write the same words in many ways: precomposed (NFC) or
//! decomposed (NFD, macOS), windows-1258 with combining tone marks, upper
//! case, without diacritics at all, and with both tone placements
//! ("hủy"/"huỷ", "hòa"/"hoà"). Folding maps all of them to one ASCII-ish
//! lower-case form: diacritics stripped and đ→d.

use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

/// Returns `s` in Unicode NFC, the form all text leaves intake in.
pub fn nfc(s: &str) -> String {
    s.nfc().collect()
}

/// Folds one character to zero or more lower-case characters without
/// diacritics. Combining marks fold to nothing.
fn fold_char(c: char, out: &mut String) {
    if c.is_ascii() {
        out.push(c.to_ascii_lowercase());
        return;
    }
    match c {
        'đ' | 'Đ' | 'ð' | 'Ð' => {
            out.push('d');
            return;
        }
        // Non-breaking and other exotic spaces fold to a plain space so that
        // labels written with them still match.
        '\u{a0}' | '\u{2000}'..='\u{200a}' | '\u{202f}' | '\u{205f}' | '\u{3000}' => {
            out.push(' ');
            return;
        }
        // Zero-width characters carry nothing.
        '\u{200b}'..='\u{200d}' | '\u{feff}' => return,
        _ => {}
    }
    for d in std::iter::once(c).nfd() {
        if is_combining_mark(d) {
            continue;
        }
        for l in d.to_lowercase() {
            out.push(l);
        }
    }
}

/// Folds `s`: lower case, diacritics stripped, đ→d, exotic spaces to spaces.
///
/// ```
/// use huytk::domain::text::fold;
/// assert_eq!(fold("YÊU CẦU HUỶ TÀI KHOẢN"), "yeu cau huy tai khoan");
/// assert_eq!(fold("Đặng"), "dang");
/// ```
pub fn fold(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        fold_char(c, &mut out);
    }
    out
}

/// A folded copy of a text that remembers where each folded byte came from,
/// so a match found on the folded form can be cut out of the original.
#[derive(Debug, Clone)]
pub struct Folded<'a> {
    original: &'a str,
    folded: String,
    /// For every byte of `folded`, the byte offset of its source character
    /// in `original`; one extra entry at the end for `original.len()`.
    origin: Vec<usize>,
}

impl<'a> Folded<'a> {
    /// Folds `original`, which should already be NFC.
    pub fn new(original: &'a str) -> Self {
        let mut folded = String::with_capacity(original.len());
        let mut origin = Vec::with_capacity(original.len() + 1);
        for (i, c) in original.char_indices() {
            let before = folded.len();
            fold_char(c, &mut folded);
            origin.extend(std::iter::repeat_n(i, folded.len() - before));
        }
        origin.push(original.len());
        Folded {
            original,
            folded,
            origin,
        }
    }

    /// The folded text.
    pub fn as_str(&self) -> &str {
        &self.folded
    }

    /// The original text.
    pub fn original(&self) -> &'a str {
        self.original
    }

    /// Maps a byte offset in the folded text back to the original text.
    pub fn original_offset(&self, folded_offset: usize) -> usize {
        self.origin[folded_offset.min(self.origin.len() - 1)]
    }

    /// The original text behind the folded range `start..end`.
    pub fn original_slice(&self, start: usize, end: usize) -> &'a str {
        let s = self.original_offset(start);
        let e = if end >= self.folded.len() {
            self.original.len()
        } else {
            self.original_offset(end)
        };
        &self.original[s..e.max(s)]
    }
}

/// Collapses runs of whitespace to one space and trims the ends.
pub fn squash_spaces(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// True when two names are the same person's name as written: equal after
/// folding and collapsing spaces ("NGUYỄN VĂN AN" = "Nguyen Van An").
pub fn same_name(a: &str, b: &str) -> bool {
    squash_spaces(&fold(a)) == squash_spaces(&fold(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_every_spelling_of_the_request_phrase() {
        let nfc = "Yêu cầu hủy tài khoản";
        let nfd: String = nfc.nfd().collect();
        // windows-1258 style: base letters with combining tone marks.
        let cp1258 = "Yêu câ\u{300}u hu\u{309}y ta\u{300}i khoa\u{309}n";
        for s in [
            nfc,
            nfd.as_str(),
            cp1258,
            "YÊU CẦU HUỶ TÀI KHOẢN",
            "Yeu cau huy tai khoan",
            "yêu cầu huỷ tài khoản",
        ] {
            assert_eq!(fold(s), "yeu cau huy tai khoan", "{s:?}");
        }
    }

    #[test]
    fn folds_d_with_stroke_and_spaces() {
        assert_eq!(fold("ĐẶNG\u{a0}Trung Dũng"), "dang trung dung");
        assert_eq!(fold("a\u{200b}b"), "ab");
    }

    #[test]
    fn folded_offsets_map_back_to_original() {
        let s = "Họ và tên: Đặng Du";
        let f = Folded::new(s);
        let start = f.as_str().find("dang").unwrap();
        assert_eq!(f.original_slice(start, start + 4), "Đặng");
        assert_eq!(f.original_slice(start, f.as_str().len()), "Đặng Du");
    }

    proptest::proptest! {
        #[test]
        fn fold_is_the_same_for_nfc_nfd_and_upper_case(s in "[a-zA-ZàáảãạăằắẳẵặâầấẩẫậèéẻẽẹêềếểễệìíỉĩịòóỏõọôồốổỗộơờớởỡợùúủũụưừứửữựỳýỷỹỵđĐ ]{0,40}") {
            let nfd: String = s.nfd().collect();
            proptest::prop_assert_eq!(fold(&s), fold(&nfd));
            proptest::prop_assert_eq!(fold(&s), fold(&s.to_uppercase()));
        }

        #[test]
        fn folded_text_has_no_marks_and_is_stable(s in "\\PC{0,60}") {
            let f = fold(&s);
            proptest::prop_assert!(!f.chars().any(is_combining_mark));
            proptest::prop_assert!(!f.contains('đ'));
            proptest::prop_assert_eq!(fold(&f), f.clone());
        }

        #[test]
        fn folded_offsets_stay_on_char_boundaries(s in "\\PC{0,60}") {
            let f = Folded::new(&s);
            for i in 0..=f.as_str().len() {
                let o = f.original_offset(i);
                proptest::prop_assert!(s.is_char_boundary(o));
                let _ = f.original_slice(0, i);
            }
        }
    }

    #[test]
    fn same_name_ignores_case_marks_and_spacing() {
        assert!(same_name("NGUYỄN  VĂN AN", "Nguyen Van An"));
        assert!(!same_name("Nguyễn Văn An", "Nguyễn Văn Ân Bình"));
    }
}
