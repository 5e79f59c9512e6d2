//! Backlogs: an mbox file or a Maildir folder read once, for
//! `huytk import`. Each message goes through the same ingest as live mail.

use std::path::Path;

use super::{Fetched, MailboxError};

/// Every message of an mbox file.
pub fn read_mbox(path: &Path) -> Result<Vec<Fetched>, MailboxError> {
    let file =
        std::fs::File::open(path).map_err(|e| MailboxError::Io(path.display().to_string(), e))?;
    let reader = std::io::BufReader::new(file);
    let mut out = Vec::new();
    for (i, m) in mail_parser::mailbox::mbox::MessageIterator::new(reader).enumerate() {
        let m = m.map_err(|_| {
            MailboxError::Io(
                path.display().to_string(),
                std::io::Error::other("malformed mbox"),
            )
        })?;
        out.push(Fetched {
            key: i.to_string(),
            origin: format!("mbox:{}:{i}", path.display()),
            raw: m.unwrap_contents(),
        });
    }
    Ok(out)
}

/// Every message of a Maildir folder (new/ and cur/), left in place.
pub fn read_maildir(path: &Path) -> Result<Vec<Fetched>, MailboxError> {
    let spool = super::maildir::Spool::open(path)?;
    let mut all = spool.fetch(usize::MAX)?;
    for f in &mut all {
        f.origin = format!("import:{}/{}", path.display(), f.key);
    }
    Ok(all)
}
