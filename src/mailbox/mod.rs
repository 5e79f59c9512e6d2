//! Where messages come from: an IMAP folder (production), a local Maildir
//! spool (embedded default), or a backlog (`huytk import mbox|maildir`).
//! A message leaves its source (moved to the archive folder) only after
//! the database committed it.

pub mod imap;
pub mod maildir;
pub mod mbox;
pub mod sender_check;
pub mod utf7;

/// Whether this process holds the inbox (the one replica that reads it),
/// for `/metrics`' `huytk_inbox_reader`.
static READING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether the inbox this process holds cannot be opened now (a refused
/// login, an unreachable server): the holder then reads nothing, and
/// `huytk_inbox_reader` says so, so the "no inbox reader" alert fires.
static FAILING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Records that this process reads the inbox (or no longer does).
pub fn set_reading(on: bool) {
    READING.store(on, std::sync::atomic::Ordering::Relaxed);
}

/// Records that the inbox cannot be opened (or can again).
pub fn set_failing(on: bool) {
    FAILING.store(on, std::sync::atomic::Ordering::Relaxed);
}

/// Whether this process reads the inbox: it holds it and can open it.
pub fn reading() -> bool {
    READING.load(std::sync::atomic::Ordering::Relaxed)
        && !FAILING.load(std::sync::atomic::Ordering::Relaxed)
}

/// One message read from a source.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// How the source finds it again (file name, UID).
    pub key: String,
    /// Where it came from, for the stored row (`imap:INBOX:…`).
    pub origin: String,
    /// The raw bytes.
    pub raw: Vec<u8>,
}

/// What went wrong reading mail.
#[derive(Debug, thiserror::Error)]
pub enum MailboxError {
    /// A local file or folder.
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    /// The IMAP server.
    #[error("IMAP: {0}")]
    Imap(String),
    /// TLS set-up.
    #[error("TLS: {0}")]
    Tls(String),
}

/// A source of messages.
pub enum Source {
    /// Local Maildir spool.
    Maildir(maildir::Spool),
    /// IMAP folder.
    Imap(Box<imap::ImapSource>),
}

impl Source {
    /// Up to `limit` messages waiting, oldest first.
    pub async fn fetch(&mut self, limit: usize) -> Result<Vec<Fetched>, MailboxError> {
        match self {
            Source::Maildir(s) => s.fetch(limit),
            Source::Imap(s) => s.fetch(limit).await,
        }
    }

    /// Moves committed messages, `(key, folder)`, grouped by folder so IMAP
    /// moves them in one command per folder.
    pub async fn archive_many(&mut self, moves: &[(&str, &str)]) -> Result<(), MailboxError> {
        let mut folders: Vec<&str> = moves.iter().map(|(_, f)| *f).collect();
        folders.sort_unstable();
        folders.dedup();
        for folder in folders {
            let keys: Vec<&str> = moves
                .iter()
                .filter(|(_, f)| *f == folder)
                .map(|(k, _)| *k)
                .collect();
            match self {
                Source::Maildir(s) => {
                    for k in keys {
                        s.archive(k, folder)?;
                    }
                }
                Source::Imap(s) => s.archive(&keys.join(","), folder).await?,
            }
        }
        Ok(())
    }

    /// Waits for new mail: IDLE where the server offers it, else sleeps
    /// `poll` (a Maildir is polled). Returns early when `stop` fires.
    pub async fn wait(
        &mut self,
        poll: std::time::Duration,
        stop: &mut tokio::sync::watch::Receiver<bool>,
    ) {
        match self {
            Source::Maildir(_) => {
                tokio::select! {
                    _ = tokio::time::sleep(poll) => {}
                    _ = stop.changed() => {}
                }
            }
            Source::Imap(s) => s.wait(poll, stop).await,
        }
    }
}
