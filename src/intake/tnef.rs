//! Outlook's `winmail.dat` (TNEF, `application/ms-tnef`): the attachments
//! it carries, found without recursion and without copying their bytes.
//!
//! A TNEF stream is a signature (`0x223E9F78`), a 16-bit key, then
//! attribute records: level (1 message, 2 attachment), a 32-bit id (type
//! in the high half), a 32-bit length, the data and a 16-bit checksum
//! (the sum of the data bytes). An attachment starts at `attAttachRendData`;
//! its bytes are in `attAttachData`, its short name in `attAttachTitle`,
//! and the MAPI properties in `attAttachment` carry the long file name,
//! the MIME type and, for some senders, the data itself
//! (`PR_ATTACH_DATA_BIN`). Attachments that are themselves messages
//! (`PR_ATTACH_DATA_OBJ`) are not opened.

use std::borrow::Cow;

/// The TNEF signature, little-endian in the stream.
pub const SIGNATURE: u32 = 0x223E_9F78;
/// Most attribute records read from one stream.
pub const MAX_ATTRIBUTES: usize = 4_096;
/// Most attachments taken from one stream.
pub const MAX_ATTACHMENTS: usize = 64;
/// Most MAPI properties read from one attribute.
const MAX_PROPERTIES: u32 = 1_024;
/// Most values of one multi-valued property.
const MAX_VALUES: u32 = 1_024;

const LVL_ATTACHMENT: u8 = 2;
const ATT_ATTACH_DATA: u16 = 0x800F;
const ATT_ATTACH_TITLE: u16 = 0x8010;
const ATT_ATTACH_REND_DATA: u16 = 0x9002;
const ATT_ATTACHMENT: u16 = 0x9005;

const PR_ATTACH_DATA_BIN: u16 = 0x3701;
const PR_ATTACH_FILENAME: u16 = 0x3704;
const PR_ATTACH_LONG_FILENAME: u16 = 0x3707;
const PR_ATTACH_MIME_TAG: u16 = 0x370E;
const PR_DISPLAY_NAME: u16 = 0x3001;

/// Why a stream gave no attachments.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TnefError {
    /// It does not start with the TNEF signature.
    #[error("not a TNEF stream")]
    NotTnef,
    /// A record runs past the end of the data.
    #[error("TNEF record cut short at byte {at}")]
    Truncated {
        /// Offset of the record.
        at: usize,
    },
    /// More records or attachments than read from one stream.
    #[error("TNEF stream with more than {limit} {what}")]
    TooMany {
        /// What was counted.
        what: &'static str,
        /// The limit.
        limit: usize,
    },
}

/// One file carried in a TNEF stream.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TnefAttachment<'a> {
    /// The long file name if the properties give one, else the short title.
    pub filename: Option<String>,
    /// The MIME type the sender's Outlook recorded, lower case.
    pub mime_type: Option<String>,
    /// The file's bytes, a slice of the stream.
    pub data: &'a [u8],
    /// An embedded message (not opened).
    pub embedded_message: bool,
}

/// True when `b` starts like a TNEF stream.
pub fn is_tnef(b: &[u8]) -> bool {
    b.len() >= 6 && u32::from_le_bytes([b[0], b[1], b[2], b[3]]) == SIGNATURE
}

/// A bounds-checked little-endian reader over a byte slice.
struct Cursor<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.at.checked_add(n)?;
        let s = self.b.get(self.at..end)?;
        self.at = end;
        Some(s)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|s| s[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|s| u16::from_le_bytes([s[0], s[1]]))
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }
    /// Skips to the next multiple of 4 from the start of the slice.
    fn align4(&mut self) -> Option<()> {
        let pad = (4 - self.at % 4) % 4;
        self.take(pad).map(|_| ())
    }
}

/// The attachments of a TNEF stream, in order. Damage after the first
/// attachment ends the list there (what was read is kept); damage before
/// any is an error. Checksums are not enforced: Outlook and converters
/// disagree on them, and nothing here trusts the data anyway.
pub fn attachments(b: &[u8]) -> Result<Vec<TnefAttachment<'_>>, TnefError> {
    if !is_tnef(b) {
        return Err(TnefError::NotTnef);
    }
    let mut c = Cursor { b, at: 6 };
    let mut out: Vec<TnefAttachment<'_>> = Vec::new();
    let mut records = 0usize;
    while c.at < b.len() {
        records += 1;
        if records > MAX_ATTRIBUTES {
            return Err(TnefError::TooMany {
                what: "records",
                limit: MAX_ATTRIBUTES,
            });
        }
        let at = c.at;
        let record = (|| {
            let level = c.u8()?;
            let id = c.u32()?;
            let len = c.u32()? as usize;
            let data = c.take(len)?;
            c.u16()?;
            Some((level, id, data))
        })();
        let Some((level, id, data)) = record else {
            if out.is_empty() {
                return Err(TnefError::Truncated { at });
            }
            break;
        };
        if level != LVL_ATTACHMENT {
            continue;
        }
        match (id & 0xFFFF) as u16 {
            ATT_ATTACH_REND_DATA => {
                if out.len() == MAX_ATTACHMENTS {
                    return Err(TnefError::TooMany {
                        what: "attachments",
                        limit: MAX_ATTACHMENTS,
                    });
                }
                out.push(TnefAttachment::default());
            }
            ATT_ATTACH_DATA => {
                if let Some(a) = current(&mut out) {
                    a.data = data;
                }
            }
            ATT_ATTACH_TITLE => {
                if let Some(a) = current(&mut out) {
                    if a.filename.is_none() {
                        a.filename = text8(data);
                    }
                }
            }
            ATT_ATTACHMENT => {
                if let Some(a) = current(&mut out) {
                    // Damaged properties cost the long name, not the file.
                    let _ = read_properties(data, a);
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

/// The attachment being read; a stream that gives data before any
/// `attAttachRendData` opens one.
fn current<'x, 'a>(out: &'x mut Vec<TnefAttachment<'a>>) -> Option<&'x mut TnefAttachment<'a>> {
    if out.is_empty() {
        out.push(TnefAttachment::default());
    }
    out.last_mut()
}

/// An 8-bit string up to its NUL, windows-1252 read as Latin-1 would
/// lose nothing a file name needs; non-UTF-8 bytes become U+FFFD.
fn text8(data: &[u8]) -> Option<String> {
    let end = data.iter().position(|&x| x == 0).unwrap_or(data.len());
    let s = String::from_utf8_lossy(&data[..end]).trim().to_owned();
    (!s.is_empty()).then_some(s)
}

/// A UTF-16LE string up to its NUL.
fn text16(data: &[u8]) -> Option<String> {
    let units: Vec<u16> = data
        .chunks_exact(2)
        .map(|p| u16::from_le_bytes([p[0], p[1]]))
        .take_while(|&u| u != 0)
        .collect();
    let s = String::from_utf16_lossy(&units).trim().to_owned();
    (!s.is_empty()).then_some(s)
}

/// Reads the MAPI properties of `attAttachment` into `a`.
fn read_properties<'a>(data: &'a [u8], a: &mut TnefAttachment<'a>) -> Option<()> {
    let mut c = Cursor { b: data, at: 0 };
    let count = c.u32()?.min(MAX_PROPERTIES);
    let mut long_name: Option<String> = None;
    let mut short_name: Option<String> = None;
    let mut display_name: Option<String> = None;
    for _ in 0..count {
        let ptype = c.u16()?;
        let pid = c.u16()?;
        if pid >= 0x8000 {
            // A named property: GUID, kind, then an id or a name.
            c.take(16)?;
            match c.u32()? {
                0 => {
                    c.u32()?;
                }
                _ => {
                    let len = c.u32()? as usize;
                    c.take(len)?;
                    c.align4()?;
                }
            }
        }
        let multi = ptype & 0x1000 != 0;
        let base = ptype & 0x0FFF;
        let fixed = match base {
            0x0002 | 0x0003 | 0x0004 | 0x000A | 0x000B => Some(4),
            0x0005 | 0x0006 | 0x0007 | 0x0014 | 0x0040 => Some(8),
            0x0048 => Some(16),
            0x001E | 0x001F | 0x0102 | 0x000D => None,
            // An unknown type: its length cannot be known, so stop here.
            _ => return Some(()),
        };
        let values = match (fixed, multi) {
            (Some(_), false) => 1,
            _ => c.u32()?.min(MAX_VALUES),
        };
        for _ in 0..values {
            let v = match fixed {
                Some(n) => c.take(n)?,
                None => {
                    let len = c.u32()? as usize;
                    let v = c.take(len)?;
                    c.align4()?;
                    v
                }
            };
            if multi {
                continue;
            }
            let text = |v: &[u8]| if base == 0x001F { text16(v) } else { text8(v) };
            match pid {
                PR_ATTACH_LONG_FILENAME => long_name = text(v),
                PR_ATTACH_FILENAME => short_name = text(v),
                PR_DISPLAY_NAME => display_name = text(v),
                PR_ATTACH_MIME_TAG => a.mime_type = text(v).map(|t| t.to_ascii_lowercase()),
                PR_ATTACH_DATA_BIN if base == 0x0102 && a.data.is_empty() => a.data = v,
                // PR_ATTACH_DATA_OBJ (same id, type object): a message.
                PR_ATTACH_DATA_BIN if base == 0x000D => a.embedded_message = true,
                _ => {}
            }
        }
    }
    if let Some(name) = long_name.or(short_name).or(display_name) {
        a.filename = Some(name);
    }
    Some(())
}

/// Builds a TNEF stream (tests and the fuzzer's generator).
#[doc(hidden)]
pub fn build(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = SIGNATURE.to_le_bytes().to_vec();
    out.extend_from_slice(&0x1234u16.to_le_bytes());
    let record = |out: &mut Vec<u8>, level: u8, id: u32, data: Cow<'_, [u8]>| {
        out.push(level);
        out.extend_from_slice(&id.to_le_bytes());
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(&data);
        let sum = data.iter().fold(0u16, |s, &x| s.wrapping_add(u16::from(x)));
        out.extend_from_slice(&sum.to_le_bytes());
    };
    // attTnefVersion, attMessageClass: what Outlook writes first.
    record(&mut out, 1, 0x0008_9006, Cow::Borrowed(&[0, 0, 1, 0]));
    record(
        &mut out,
        1,
        0x0007_8008,
        Cow::Borrowed(b"IPM.Microsoft Mail.Note\0"),
    );
    for (name, data) in files {
        record(
            &mut out,
            2,
            0x0006_9002,
            Cow::Borrowed(&[1, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0, 0, 0, 0, 0]),
        );
        let short: String = name.chars().take(8).collect();
        record(
            &mut out,
            2,
            0x0001_8010,
            Cow::Owned(format!("{short}\0").into_bytes()),
        );
        record(&mut out, 2, 0x0006_800F, Cow::Borrowed(data));
        // attAttachment: PR_ATTACH_LONG_FILENAME as PT_UNICODE.
        let mut props = 1u32.to_le_bytes().to_vec();
        props.extend_from_slice(&0x001Fu16.to_le_bytes());
        props.extend_from_slice(&PR_ATTACH_LONG_FILENAME.to_le_bytes());
        props.extend_from_slice(&1u32.to_le_bytes());
        let utf16: Vec<u8> = name
            .encode_utf16()
            .chain([0])
            .flat_map(u16::to_le_bytes)
            .collect();
        props.extend_from_slice(&(utf16.len() as u32).to_le_bytes());
        props.extend_from_slice(&utf16);
        while !props.len().is_multiple_of(4) {
            props.push(0);
        }
        record(&mut out, 2, 0x0006_9005, Cow::Owned(props));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attachments_come_out_with_their_long_names() {
        let s = build(&[
            ("mặt trước thẻ.jpg", b"\xFF\xD8\xFFjpeg"),
            ("b.png", b"png"),
        ]);
        let a = attachments(&s).unwrap();
        assert_eq!(a.len(), 2);
        assert_eq!(a[0].filename.as_deref(), Some("mặt trước thẻ.jpg"));
        assert_eq!(a[0].data, b"\xFF\xD8\xFFjpeg");
        assert_eq!(a[1].filename.as_deref(), Some("b.png"));
        assert_eq!(a[1].data, b"png");
    }

    #[test]
    fn damage_and_floods_are_bounded() {
        assert_eq!(attachments(b"not tnef"), Err(TnefError::NotTnef));
        let s = build(&[("a.jpg", b"12345")]);
        // Cut inside the first attachment's data: nothing complete yet.
        let cut = &s[..s.len() - 60];
        assert!(attachments(cut).is_ok_and(|a| a.len() <= 1));
        // A record that claims 4 GB.
        let mut huge = s[..6].to_vec();
        huge.extend_from_slice(&[2, 0x0F, 0x80, 0x06, 0x00, 0xFF, 0xFF, 0xFF, 0xFF]);
        assert_eq!(attachments(&huge), Err(TnefError::Truncated { at: 6 }));
        let many: Vec<(&str, &[u8])> = (0..MAX_ATTACHMENTS + 1).map(|_| ("x", &b""[..])).collect();
        assert!(matches!(
            attachments(&build(&many)),
            Err(TnefError::TooMany { .. })
        ));
    }
}
