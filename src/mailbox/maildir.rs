//! A Maildir spool: the embedded default's inbox. New mail is any file in
//! `new/` or `cur/`; processed mail moves to the Maildir++ subfolder
//! `.<folder>/cur/`.

use std::path::{Path, PathBuf};

use super::{Fetched, MailboxError};

/// A Maildir folder read as an inbox.
#[derive(Debug, Clone)]
pub struct Spool {
    root: PathBuf,
}

fn io(p: &Path, e: std::io::Error) -> MailboxError {
    MailboxError::Io(p.display().to_string(), e)
}

impl Spool {
    /// Opens (creating) a spool.
    pub fn open(root: &Path) -> Result<Spool, MailboxError> {
        for sub in ["new", "cur", "tmp"] {
            let p = root.join(sub);
            std::fs::create_dir_all(&p).map_err(|e| io(&p, e))?;
        }
        Ok(Spool {
            root: root.to_owned(),
        })
    }

    /// The spool's folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Delivers a message into `new/` the Maildir way (tmp, then rename).
    pub fn deliver(&self, raw: &[u8], name: &str) -> Result<(), MailboxError> {
        let tmp = self.root.join("tmp").join(name);
        std::fs::write(&tmp, raw).map_err(|e| io(&tmp, e))?;
        let new = self.root.join("new").join(name);
        std::fs::rename(&tmp, &new).map_err(|e| io(&new, e))
    }

    /// Up to `limit` waiting messages, in name order (Maildir names start
    /// with the delivery time).
    pub fn fetch(&self, limit: usize) -> Result<Vec<Fetched>, MailboxError> {
        let mut names = Vec::new();
        for sub in ["new", "cur"] {
            let dir = self.root.join(sub);
            for entry in std::fs::read_dir(&dir).map_err(|e| io(&dir, e))? {
                let entry = entry.map_err(|e| io(&dir, e))?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if !name.starts_with('.') && entry.file_type().map(|t| t.is_file()).unwrap_or(false)
                {
                    names.push(format!("{sub}/{name}"));
                }
            }
        }
        names.sort_by(|a, b| a[4..].cmp(&b[4..]));
        let mut out = Vec::new();
        for key in names.into_iter().take(limit) {
            let path = self.root.join(&key);
            match std::fs::read(&path) {
                Ok(raw) => out.push(Fetched {
                    origin: format!("maildir:{}", key),
                    key,
                    raw,
                }),
                // Moved away by someone else meanwhile: not ours any more.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io(&path, e)),
            }
        }
        Ok(out)
    }

    /// Moves a processed message to `.<folder>/cur/`; with no folder ("")
    /// the message is removed (the database keeps it, sealed).
    pub fn archive(&self, key: &str, folder: &str) -> Result<(), MailboxError> {
        if folder.is_empty() {
            let path = self.root.join(key);
            return match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(&path, e)),
                _ => Ok(()),
            };
        }
        let dest_dir = self.root.join(format!(".{folder}")).join("cur");
        std::fs::create_dir_all(&dest_dir).map_err(|e| io(&dest_dir, e))?;
        for sub in ["new", "tmp"] {
            let p = self.root.join(format!(".{folder}")).join(sub);
            std::fs::create_dir_all(&p).map_err(|e| io(&p, e))?;
        }
        let name = key.rsplit('/').next().unwrap_or(key);
        let from = self.root.join(key);
        let to = dest_dir.join(name);
        match std::fs::rename(&from, &to) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io(&from, e)),
        }
    }

    /// Removes every copy of the message read as `key` (`cur/NAME`): in the
    /// inbox and in the given subfolders. Returns how many files went.
    pub fn forget(&self, key: &str, folders: &[&str]) -> Result<usize, MailboxError> {
        let name = key.rsplit('/').next().unwrap_or(key);
        if name.is_empty() || name.starts_with('.') {
            return Ok(0);
        }
        let mut places = vec![
            self.root.join("new").join(name),
            self.root.join("cur").join(name),
        ];
        for f in folders {
            places.push(self.root.join(format!(".{f}")).join("cur").join(name));
        }
        let mut n = 0;
        for p in places {
            match std::fs::remove_file(&p) {
                Ok(()) => n += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(&p, e)),
            }
        }
        Ok(n)
    }

    /// Messages in a subfolder (tests and the demo).
    pub fn folder_count(&self, folder: &str) -> usize {
        std::fs::read_dir(self.root.join(format!(".{folder}")).join("cur"))
            .map(|d| d.count())
            .unwrap_or(0)
    }
}
