//! Files inside the containers citizens' mail programs make: Outlook's
//! `winmail.dat` (TNEF) and `.zip` archives. Each container gives its
//! files, or the reason it gave none; every file carries the container's
//! name. Containers are opened to [`MAX_CONTAINER_DEPTH`] levels (a zip in
//! a winmail.dat), by the caller's work list, never by recursion; what
//! lies deeper is listed, not opened.
//!
//! Zip limits: [`MAX_ZIP_ENTRIES`] entries, [`MAX_ENTRY_BYTES`] a file,
//! [`MAX_UNPACKED_BYTES`] for all archives of one message together, and a
//! compression ratio of at most [`MAX_RATIO`] for any file over 1 MB, all
//! checked while inflating, whatever the headers claim.

use std::borrow::Cow;
use std::io::Read;

use super::tnef;

/// Containers opened inside one another, counting from the message.
pub const MAX_CONTAINER_DEPTH: usize = 2;
/// Most entries a zip may list to be opened.
pub const MAX_ZIP_ENTRIES: usize = 64;
/// Largest file taken out of a zip.
pub const MAX_ENTRY_BYTES: u64 = 32 * 1024 * 1024;
/// All files taken out of the archives of one message.
pub const MAX_UNPACKED_BYTES: u64 = 48 * 1024 * 1024;
/// Highest uncompressed-to-compressed ratio of a file over 1 MB (photos
/// barely compress; a zip bomb compresses a thousandfold).
pub const MAX_RATIO: u64 = 100;

/// A container format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    /// Outlook's TNEF (`winmail.dat`).
    Tnef,
    /// A zip archive.
    Zip,
}

/// The container `bytes` is, by content.
pub fn container_of(bytes: &[u8]) -> Option<Container> {
    if tnef::is_tnef(bytes) {
        Some(Container::Tnef)
    } else if bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06") {
        Some(Container::Zip)
    } else {
        None
    }
}

/// One file found in a container.
#[derive(Debug, Clone)]
pub struct Inner<'a> {
    /// Its name in the container.
    pub filename: Option<String>,
    /// The type the container records, lower case, or empty.
    pub declared_type: String,
    /// Its bytes; empty when it was not taken out (see `refused`).
    pub bytes: Cow<'a, [u8]>,
    /// Why it was listed but not taken out.
    pub refused: Option<String>,
}

/// Why a container gave no files.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArchiveError {
    /// TNEF damage.
    #[error(transparent)]
    Tnef(#[from] tnef::TnefError),
    /// A zip whose directory cannot be read.
    #[error("zip not readable: {0}")]
    Zip(String),
    /// A zip listing more entries than opened.
    #[error("zip lists {count} entries, over the limit of {limit}")]
    TooManyEntries {
        /// Entries the archive declares.
        count: u64,
        /// The limit.
        limit: usize,
    },
}

/// What is left of the message's unpacking allowance.
#[derive(Debug, Clone, Copy)]
pub struct Allowance {
    /// Bytes that may still be unpacked.
    pub bytes: u64,
}

impl Default for Allowance {
    fn default() -> Allowance {
        Allowance {
            bytes: MAX_UNPACKED_BYTES,
        }
    }
}

/// The files of a container.
pub fn open<'a>(
    bytes: &'a [u8],
    kind: Container,
    allowance: &mut Allowance,
) -> Result<Vec<Inner<'a>>, ArchiveError> {
    match kind {
        Container::Tnef => Ok(tnef::attachments(bytes)?
            .into_iter()
            .map(|a| Inner {
                filename: a.filename,
                declared_type: a.mime_type.unwrap_or_default(),
                refused: a
                    .embedded_message
                    .then(|| "an attached Outlook message, not opened".to_owned()),
                bytes: Cow::Borrowed(a.data),
            })
            .collect()),
        Container::Zip => open_zip(bytes, allowance),
    }
}

/// Entries a zip's end-of-central-directory record declares, read before
/// the zip crate builds its directory (which it does for every entry).
fn declared_entries(b: &[u8]) -> Option<u64> {
    // The record is 22 bytes plus a comment of at most 65,535.
    let from = b.len().saturating_sub(22 + 65_535);
    let at = from + b[from..].windows(4).rposition(|w| w == b"PK\x05\x06")?;
    let n = u16::from_le_bytes(b.get(at + 10..at + 12)?.try_into().ok()?);
    // 0xFFFF: the real count is in a zip64 record; take it as "many".
    Some(if n == 0xFFFF { u64::MAX } else { u64::from(n) })
}

fn open_zip<'a>(
    bytes: &'a [u8],
    allowance: &mut Allowance,
) -> Result<Vec<Inner<'a>>, ArchiveError> {
    let count = declared_entries(bytes).ok_or_else(|| ArchiveError::Zip("no end record".into()))?;
    if count > MAX_ZIP_ENTRIES as u64 {
        return Err(ArchiveError::TooManyEntries {
            count,
            limit: MAX_ZIP_ENTRIES,
        });
    }
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| ArchiveError::Zip(e.to_string()))?;
    if zip.len() > MAX_ZIP_ENTRIES {
        return Err(ArchiveError::TooManyEntries {
            count: zip.len() as u64,
            limit: MAX_ZIP_ENTRIES,
        });
    }
    let mut out = Vec::new();
    for i in 0..zip.len() {
        let mut entry = match zip.by_index(i) {
            Ok(e) => e,
            Err(e) => {
                out.push(refused_entry(None, format!("zip entry not readable: {e}")));
                continue;
            }
        };
        // A name that is not valid text is still a file: shown lossily.
        let full = match entry.name() {
            Ok(n) => n.into_owned(),
            Err(_) => String::from_utf8_lossy(entry.name_raw()).into_owned(),
        };
        // Folders, and the resource forks macOS's Finder adds
        // (`__MACOSX/…/._IMG.jpg`), which are no one's photo.
        if entry.is_dir() || full.starts_with("__MACOSX/") {
            continue;
        }
        let name = full.rsplit('/').next().unwrap_or(&full).to_owned();
        if name.starts_with("._") {
            continue;
        }
        if entry.encrypted() {
            out.push(refused_entry(Some(name), "encrypted zip entry".into()));
            continue;
        }
        let limit = MAX_ENTRY_BYTES.min(allowance.bytes);
        let compressed = entry.compressed_size();
        let mut data = Vec::new();
        let read = (&mut entry).take(limit + 1).read_to_end(&mut data);
        let size = data.len() as u64;
        let reason = match read {
            Err(e) => Some(format!("zip entry does not inflate: {e}")),
            Ok(_) if size > limit => Some(if limit < MAX_ENTRY_BYTES {
                format!(
                    "over the {} MB unpacked from this message's archives",
                    MAX_UNPACKED_BYTES >> 20
                )
            } else {
                format!("zip entry over {} MB", MAX_ENTRY_BYTES >> 20)
            }),
            Ok(_) if size > 1 << 20 && size > MAX_RATIO.saturating_mul(compressed) => {
                Some(format!("zip entry compressed more than {MAX_RATIO} to 1"))
            }
            Ok(_) => None,
        };
        allowance.bytes = allowance.bytes.saturating_sub(size);
        match reason {
            Some(r) => out.push(refused_entry(Some(name), r)),
            None => out.push(Inner {
                filename: Some(name),
                declared_type: String::new(),
                bytes: Cow::Owned(data),
                refused: None,
            }),
        }
    }
    Ok(out)
}

fn refused_entry<'a>(filename: Option<String>, reason: String) -> Inner<'a> {
    Inner {
        filename,
        declared_type: String::new(),
        bytes: Cow::Borrowed(&[]),
        refused: Some(reason),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn zip_of(files: &[(&str, &[u8])], method: zip::CompressionMethod) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let opts = zip::write::SimpleFileOptions::default().compression_method(method);
        for (name, data) in files {
            w.start_file(*name, opts).unwrap();
            w.write_all(data).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    #[test]
    fn zip_files_come_out_and_finder_forks_do_not() {
        let z = zip_of(
            &[
                ("anh/mat_truoc.jpg", b"jpeg bytes"),
                ("__MACOSX/anh/._mat_truoc.jpg", b"fork"),
            ],
            zip::CompressionMethod::Deflated,
        );
        assert_eq!(container_of(&z), Some(Container::Zip));
        let files = open(&z, Container::Zip, &mut Allowance::default()).unwrap();
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].filename.as_deref(), Some("mat_truoc.jpg"));
        assert_eq!(&*files[0].bytes, b"jpeg bytes");
    }

    #[test]
    fn a_zip_bomb_entry_is_listed_not_unpacked() {
        let zeros = vec![0u8; 8 << 20];
        let z = zip_of(&[("bomb.png", &zeros)], zip::CompressionMethod::Deflated);
        assert!(z.len() < 100_000);
        let files = open(&z, Container::Zip, &mut Allowance::default()).unwrap();
        assert_eq!(files[0].filename.as_deref(), Some("bomb.png"));
        assert!(files[0].bytes.is_empty());
        assert!(
            files[0].refused.as_deref().unwrap().contains("100 to 1"),
            "{files:?}"
        );
        let many: Vec<(String, Vec<u8>)> = (0..=MAX_ZIP_ENTRIES)
            .map(|i| (format!("{i}.jpg"), vec![1]))
            .collect();
        let refs: Vec<(&str, &[u8])> = many
            .iter()
            .map(|(n, d)| (n.as_str(), d.as_slice()))
            .collect();
        let z = zip_of(&refs, zip::CompressionMethod::Stored);
        assert!(matches!(
            open(&z, Container::Zip, &mut Allowance::default()),
            Err(ArchiveError::TooManyEntries { .. })
        ));
    }
}
