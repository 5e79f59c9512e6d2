//! IMAP's modified UTF-7 for folder names (RFC 3501 §5.1.3): "Khác" is
//! `Kh&AOE-c` on the wire.

use base64::Engine;

const ALPHABET: base64::alphabet::Alphabet = match base64::alphabet::Alphabet::new(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,",
) {
    Ok(a) => a,
    Err(_) => panic!("valid alphabet"),
};

/// Encodes a folder name.
pub fn encode(name: &str) -> String {
    let engine =
        base64::engine::GeneralPurpose::new(&ALPHABET, base64::engine::general_purpose::NO_PAD);
    let mut out = String::new();
    let mut pending: Vec<u16> = Vec::new();
    let flush = |pending: &mut Vec<u16>, out: &mut String| {
        if !pending.is_empty() {
            let bytes: Vec<u8> = pending.iter().flat_map(|u| u.to_be_bytes()).collect();
            out.push('&');
            out.push_str(&engine.encode(bytes));
            out.push('-');
            pending.clear();
        }
    };
    for c in name.chars() {
        if (' '..='~').contains(&c) {
            flush(&mut pending, &mut out);
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            let mut buf = [0u16; 2];
            pending.extend_from_slice(c.encode_utf16(&mut buf));
        }
    }
    flush(&mut pending, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::encode;

    #[test]
    fn encodes_vietnamese_and_ampersand() {
        assert_eq!(encode("INBOX"), "INBOX");
        assert_eq!(encode("Khác"), "Kh&AOE-c");
        assert_eq!(encode("A&B"), "A&-B");
        assert_eq!(encode("Đã xử lý"), "&ARAA4w- x&Hu0- l&AP0-");
    }
}
