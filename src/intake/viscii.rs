//! VISCII (RFC 1456, VISCII 1.1): the Vietnamese 8-bit charset of older
//! mailers, which mail-parser does not know. Every byte is one character:
//! ASCII except six C0 controls, and 0x80–0xFF, all Vietnamese letters.

/// Characters for bytes 0x80–0xFF (RFC 1456, checked against glibc iconv).
const HIGH: [char; 128] = [
    '\u{1EA0}', '\u{1EAE}', '\u{1EB0}', '\u{1EB6}', '\u{1EA4}', '\u{1EA6}', '\u{1EA8}', '\u{1EAC}',
    '\u{1EBC}', '\u{1EB8}', '\u{1EBE}', '\u{1EC0}', '\u{1EC2}', '\u{1EC4}', '\u{1EC6}', '\u{1ED0}',
    '\u{1ED2}', '\u{1ED4}', '\u{1ED6}', '\u{1ED8}', '\u{1EE2}', '\u{1EDA}', '\u{1EDC}', '\u{1EDE}',
    '\u{1ECA}', '\u{1ECE}', '\u{1ECC}', '\u{1EC8}', '\u{1EE6}', '\u{0168}', '\u{1EE4}', '\u{1EF2}',
    '\u{00D5}', '\u{1EAF}', '\u{1EB1}', '\u{1EB7}', '\u{1EA5}', '\u{1EA7}', '\u{1EA9}', '\u{1EAD}',
    '\u{1EBD}', '\u{1EB9}', '\u{1EBF}', '\u{1EC1}', '\u{1EC3}', '\u{1EC5}', '\u{1EC7}', '\u{1ED1}',
    '\u{1ED3}', '\u{1ED5}', '\u{1ED7}', '\u{1EE0}', '\u{01A0}', '\u{1ED9}', '\u{1EDD}', '\u{1EDF}',
    '\u{1ECB}', '\u{1EF0}', '\u{1EE8}', '\u{1EEA}', '\u{1EEC}', '\u{01A1}', '\u{1EDB}', '\u{01AF}',
    '\u{00C0}', '\u{00C1}', '\u{00C2}', '\u{00C3}', '\u{1EA2}', '\u{0102}', '\u{1EB3}', '\u{1EB5}',
    '\u{00C8}', '\u{00C9}', '\u{00CA}', '\u{1EBA}', '\u{00CC}', '\u{00CD}', '\u{0128}', '\u{1EF3}',
    '\u{0110}', '\u{1EE9}', '\u{00D2}', '\u{00D3}', '\u{00D4}', '\u{1EA1}', '\u{1EF7}', '\u{1EEB}',
    '\u{1EED}', '\u{00D9}', '\u{00DA}', '\u{1EF9}', '\u{1EF5}', '\u{00DD}', '\u{1EE1}', '\u{01B0}',
    '\u{00E0}', '\u{00E1}', '\u{00E2}', '\u{00E3}', '\u{1EA3}', '\u{0103}', '\u{1EEF}', '\u{1EAB}',
    '\u{00E8}', '\u{00E9}', '\u{00EA}', '\u{1EBB}', '\u{00EC}', '\u{00ED}', '\u{0129}', '\u{1EC9}',
    '\u{0111}', '\u{1EF1}', '\u{00F2}', '\u{00F3}', '\u{00F4}', '\u{00F5}', '\u{1ECF}', '\u{1ECD}',
    '\u{1EE5}', '\u{00F9}', '\u{00FA}', '\u{0169}', '\u{1EE7}', '\u{00FD}', '\u{1EE3}', '\u{1EEE}',
];

/// Decodes VISCII bytes. Every byte maps to a character, so this never
/// fails; the result is precomposed (NFC) already.
pub fn decode(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| match b {
            0x02 => '\u{1EB2}',
            0x05 => '\u{1EB4}',
            0x06 => '\u{1EAA}',
            0x14 => '\u{1EF6}',
            0x19 => '\u{1EF8}',
            0x1E => '\u{1EF4}',
            0x80.. => HIGH[usize::from(b - 0x80)],
            _ => char::from(b),
        })
        .collect()
}

/// True for a charset name that means VISCII (`viscii`, `x-viscii`,
/// `csVISCII`, `VISCII1.1-1`).
pub fn is_viscii(charset: &str) -> bool {
    let name: String = charset
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_ascii_lowercase();
    matches!(
        name.as_str(),
        "viscii" | "xviscii" | "csviscii" | "viscii111" | "viscii11"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_vietnamese_text() {
        // Bytes from `iconv -f UTF-8 -t VISCII`.
        let phrase = [
            0x59, 0xea, 0x75, 0x20, 0x63, 0xa5, 0x75, 0x20, 0x68, 0xfc, 0x79, 0x20, 0x74, 0xe0,
            0x69, 0x20, 0x6b, 0x68, 0x6f, 0xe4, 0x6e,
        ];
        assert_eq!(decode(&phrase), "Yêu cầu hủy tài khoản");
        let name = [
            0x48, 0xf7, 0x20, 0x76, 0xe0, 0x20, 0x74, 0xea, 0x6e, 0x3a, 0x20, 0x4e, 0x67, 0x75,
            0x79, 0xad, 0x6e, 0x20, 0x56, 0xe5, 0x6e, 0x20, 0x41, 0x6e,
        ];
        assert_eq!(decode(&name), "Họ và tên: Nguyễn Văn An");
        assert_eq!(decode(&[0x02, 0x05, 0x06, 0x14, 0x19, 0x1e]), "ẲẴẪỶỸỴ");
        assert!(is_viscii("VISCII") && is_viscii("x-viscii") && !is_viscii("utf-8"));
    }
}
