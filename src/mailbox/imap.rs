//! The support inbox over IMAP: TLS or STARTTLS, password or XOAUTH2,
//! IDLE with a polling fallback, UIDVALIDITY/UID tracking, batched fetches,
//! and MOVE (else COPY + \Deleted + EXPUNGE) to the archive folder only
//! after the database committed. Reconnects with backoff, and says so.

use async_imap::{Client, Session};
use futures::StreamExt;
use std::fmt::Debug;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::{utf7, Fetched, MailboxError};
use crate::config::{MailboxConfig, Security};
use crate::store::Store;

/// Any byte stream a session can run over (plain or TLS).
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send + Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Debug> Io for T {}

type ImapSession = Session<Box<dyn Io>>;

fn imap_err(e: impl std::fmt::Display) -> MailboxError {
    MailboxError::Imap(e.to_string())
}

/// The XOAUTH2 exchange (Google's and Microsoft's SASL mechanism, and
/// Dovecot's `oauth2` passdb): the first challenge gets the credentials;
/// a later one is the server's JSON error, which must be answered with an
/// empty line before the server sends its tagged NO.
struct XOAuth2<'a> {
    user: &'a str,
    token: &'a str,
    sent: bool,
    /// What the server said when it refused the token.
    error: Option<String>,
}

impl async_imap::Authenticator for &mut XOAuth2<'_> {
    type Response = String;
    fn process(&mut self, challenge: &[u8]) -> String {
        if !self.sent {
            self.sent = true;
            return format!("user={}\x01auth=Bearer {}\x01\x01", self.user, self.token);
        }
        self.error = Some(String::from_utf8_lossy(challenge).trim().to_owned());
        String::new()
    }
}

/// The XOAUTH2 token in effect: `oauth2_token_file` (read now, so a token
/// agent may replace it between connections), else `oauth2_token`; empty
/// when the password is used.
pub fn oauth2_token(c: &MailboxConfig) -> Result<zeroize::Zeroizing<String>, MailboxError> {
    let Some(path) = c.oauth2_token.file() else {
        return Ok(zeroize::Zeroizing::new(c.oauth2_token.expose().to_owned()));
    };
    use std::os::unix::fs::PermissionsExt;
    let shown = path.display();
    let meta = std::fs::metadata(path)
        .map_err(|e| MailboxError::Imap(format!("oauth2_token_file {shown}: {e}")))?;
    let mode = meta.permissions().mode() & 0o777;
    // Same rule as the master key file: a secret others may read is refused.
    if mode & 0o077 != 0 {
        return Err(MailboxError::Imap(format!(
            "oauth2_token_file {shown} has mode {mode:o}: others may read it; run `chmod 600 {shown}`"
        )));
    }
    let text = zeroize::Zeroizing::new(
        std::fs::read_to_string(path)
            .map_err(|e| MailboxError::Imap(format!("oauth2_token_file {shown}: {e}")))?,
    );
    let token = text.trim();
    if token.is_empty() {
        return Err(MailboxError::Imap(format!(
            "oauth2_token_file {shown} is empty"
        )));
    }
    Ok(zeroize::Zeroizing::new(token.to_owned()))
}

async fn tls_wrap(
    stream: TcpStream,
    host: &str,
    insecure: bool,
) -> Result<Box<dyn Io>, MailboxError> {
    let tls = crate::net::tls::connect(stream, host, insecure)
        .await
        .map_err(|e| MailboxError::Tls(e.to_string()))?;
    Ok(Box::new(tls))
}

/// Opens a logged-in session.
pub async fn connect(c: &MailboxConfig) -> Result<ImapSession, MailboxError> {
    let tcp = tokio::time::timeout(
        Duration::from_secs(20),
        TcpStream::connect((c.host.as_str(), c.port)),
    )
    .await
    .map_err(|_| MailboxError::Imap(format!("connecting to {}:{} timed out", c.host, c.port)))?
    .map_err(|e| MailboxError::Imap(format!("connecting to {}:{}: {e}", c.host, c.port)))?;
    let stream: Box<dyn Io> = match c.security {
        Security::Tls => tls_wrap(tcp, &c.host, c.insecure_tls).await?,
        Security::Plain => Box::new(tcp),
        Security::Starttls => {
            let mut client = Client::new(tcp);
            client
                .read_response()
                .await
                .map_err(imap_err)?
                .ok_or_else(|| imap_err("no greeting"))?;
            client
                .run_command_and_check_ok("STARTTLS", None)
                .await
                .map_err(imap_err)?;
            tls_wrap(client.into_inner(), &c.host, c.insecure_tls).await?
        }
    };
    let mut client = Client::new(stream);
    if c.security != Security::Starttls {
        client
            .read_response()
            .await
            .map_err(imap_err)?
            .ok_or_else(|| imap_err("no greeting"))?;
    }
    let token = oauth2_token(c)?;
    let session = if token.is_empty() {
        client
            .login(&c.username, c.password.expose())
            .await
            .map_err(|(e, _)| imap_err(format!("login: {e}")))?
    } else {
        let mut auth = XOAuth2 {
            user: &c.username,
            token: &token,
            sent: false,
            error: None,
        };
        let result = client.authenticate("XOAUTH2", &mut auth).await;
        match result {
            Ok(s) => s,
            Err((e, _)) => {
                // The server's JSON status (`{"status":"401",...}`) says
                // why; the token itself is never logged.
                let said = auth
                    .error
                    .map(|j| format!(" (server said {j})"))
                    .unwrap_or_default();
                return Err(imap_err(format!(
                    "XOAUTH2 login as {} refused: {e}{said}; the token is expired, \
                     wrongly signed or not for this user: give a fresh one \
                     (oauth2_token_file or oauth2_token)",
                    c.username
                )));
            }
        }
    };
    Ok(session)
}

/// An IMAP folder read as the desk's inbox.
pub struct ImapSource {
    config: MailboxConfig,
    store: Store,
    session: Option<ImapSession>,
    can_move: bool,
    can_idle: bool,
    uidplus: bool,
    uidvalidity: u32,
    failures: u32,
    /// The last attempt to open the inbox failed (said once per outage).
    cannot_open: bool,
}

impl ImapSource {
    /// A source that connects on first use.
    pub fn new(config: MailboxConfig, store: Store) -> ImapSource {
        ImapSource {
            config,
            store,
            session: None,
            can_move: false,
            can_idle: false,
            uidplus: false,
            uidvalidity: 0,
            failures: 0,
            cannot_open: false,
        }
    }

    fn key(&self) -> String {
        format!(
            "imap:{}@{}:{}",
            self.config.username, self.config.host, self.config.folder
        )
    }

    /// Connects if needed, with backoff after failures.
    async fn session(&mut self) -> Result<&mut ImapSession, MailboxError> {
        if self.session.is_none() {
            if self.failures > 0 {
                let wait = Duration::from_secs((1u64 << self.failures.min(6)).min(60));
                tracing::warn!(
                    attempt = self.failures + 1,
                    wait_s = wait.as_secs(),
                    "reconnecting to IMAP"
                );
                tokio::time::sleep(wait).await;
            }
            match self.open().await {
                Ok(s) => {
                    if self.failures > 0 || self.cannot_open {
                        tracing::info!(host = %self.config.host, "IMAP connection restored");
                    }
                    self.cannot_open = false;
                    self.failures = 0;
                    super::set_failing(false);
                    self.session = Some(s);
                }
                Err(e) => {
                    // Said once per outage at error level (the caller warns
                    // at each retry); /metrics' huytk_inbox_reader drops to 0.
                    if !self.cannot_open {
                        tracing::error!(host = %self.config.host, user = %self.config.username, error = %e, "cannot open the inbox; no mail is read until this is fixed (retrying)");
                    }
                    self.cannot_open = true;
                    super::set_failing(true);
                    self.failures += 1;
                    return Err(e);
                }
            }
        }
        Ok(self.session.as_mut().expect("just set"))
    }

    async fn open(&mut self) -> Result<ImapSession, MailboxError> {
        let mut s = connect(&self.config).await?;
        let caps = s.capabilities().await.map_err(imap_err)?;
        self.can_move = caps.has_str("MOVE");
        self.can_idle = caps.has_str("IDLE") && self.config.idle;
        if self.config.idle && !self.can_idle {
            tracing::info!(
                poll_seconds = self.config.poll_seconds.max(1),
                "the IMAP server offers no IDLE: polling for new mail"
            );
        }
        self.uidplus = caps.has_str("UIDPLUS");
        for folder in [&self.config.archive_folder, &self.config.other_folder] {
            // Exists already is fine; anything else shows at the first move.
            let _ = s.create(utf7::encode(folder)).await;
        }
        let mailbox = s
            .select(utf7::encode(&self.config.folder))
            .await
            .map_err(imap_err)?;
        let validity = mailbox.uid_validity.unwrap_or(0);
        let key = self.key();
        match self.store.mailbox_position(&key).await {
            Ok(Some((v, last))) if v != i64::from(validity) => {
                tracing::warn!(
                    old = v,
                    new = validity,
                    last_uid = last,
                    "UIDVALIDITY changed; UIDs start over (content addresses prevent doubles)"
                );
            }
            _ => {}
        }
        self.uidvalidity = validity;
        tracing::info!(host = %self.config.host, folder = %self.config.folder, uidvalidity = validity, idle = self.can_idle, r#move = self.can_move, "IMAP connected");
        Ok(s)
    }

    fn drop_session(&mut self, e: &MailboxError) {
        tracing::warn!(error = %e, "IMAP connection lost");
        self.session = None;
        self.failures += 1;
    }

    /// Up to `limit` messages of the folder, oldest UID first (\Seen ones
    /// too: a person may have opened them).
    pub async fn fetch(&mut self, limit: usize) -> Result<Vec<Fetched>, MailboxError> {
        match self.fetch_inner(limit).await {
            Ok(v) => Ok(v),
            Err(e) => {
                self.drop_session(&e);
                Err(e)
            }
        }
    }

    async fn fetch_inner(&mut self, limit: usize) -> Result<Vec<Fetched>, MailboxError> {
        let batch = (self.config.batch.max(1) as usize).min(limit);
        let folder = self.config.folder.clone();
        self.session().await?;
        let validity = self.uidvalidity;
        let s = self.session.as_mut().expect("connected above");
        // NOOP lets the server tell us about new mail.
        s.noop().await.map_err(imap_err)?;
        let mut uids: Vec<u32> = s
            .uid_search("ALL")
            .await
            .map_err(imap_err)?
            .into_iter()
            .collect();
        uids.sort_unstable();
        uids.truncate(batch);
        if uids.is_empty() {
            return Ok(Vec::new());
        }
        let set = uids
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let mut out = Vec::new();
        {
            let mut stream = s
                .uid_fetch(&set, "(UID BODY.PEEK[])")
                .await
                .map_err(imap_err)?;
            while let Some(item) = stream.next().await {
                let f = item.map_err(imap_err)?;
                if let (Some(uid), Some(body)) = (f.uid, f.body()) {
                    out.push(Fetched {
                        key: uid.to_string(),
                        origin: format!("imap:{folder}:{validity}:{uid}"),
                        raw: body.to_vec(),
                    });
                }
            }
        }
        out.sort_by_key(|f| f.key.parse::<u32>().unwrap_or(0));
        Ok(out)
    }

    /// Moves committed messages (`key`: one UID or a comma-separated set)
    /// to `folder` (never deletes one that was not copied first).
    pub async fn archive(&mut self, key: &str, folder: &str) -> Result<(), MailboxError> {
        let r = self.archive_inner(key, folder).await;
        if let Err(e) = &r {
            self.drop_session(e);
        } else if let Some(uid) = key.split(',').filter_map(|k| k.parse::<i64>().ok()).max() {
            let k = self.key();
            let _ = self
                .store
                .set_mailbox_position(&k, i64::from(self.uidvalidity), uid)
                .await;
        }
        r
    }

    async fn archive_inner(&mut self, key: &str, folder: &str) -> Result<(), MailboxError> {
        let (can_move, uidplus) = (self.can_move, self.uidplus);
        let target = utf7::encode(folder);
        let s = self.session().await?;
        if can_move {
            s.uid_mv(key, &target).await.map_err(imap_err)?;
        } else {
            // COPY must succeed before the original is flagged and expunged.
            s.uid_copy(key, &target).await.map_err(imap_err)?;
            {
                let mut st = s
                    .uid_store(key, "+FLAGS.SILENT (\\Deleted)")
                    .await
                    .map_err(imap_err)?;
                while st.next().await.is_some() {}
            }
            if uidplus {
                let st = s.uid_expunge(key).await.map_err(imap_err)?;
                st.for_each(|_| async {}).await;
            } else {
                let st = s.expunge().await.map_err(imap_err)?;
                st.for_each(|_| async {}).await;
            }
        }
        Ok(())
    }

    /// Waits for new mail with IDLE (up to `poll`), or sleeps `poll`.
    pub async fn wait(&mut self, poll: Duration, stop: &mut tokio::sync::watch::Receiver<bool>) {
        if !self.can_idle || self.session.is_none() {
            tokio::select! {
                _ = tokio::time::sleep(poll) => {}
                _ = stop.changed() => {}
            }
            return;
        }
        let session = self.session.take().expect("checked");
        let mut idle = session.idle();
        if let Err(e) = idle.init().await {
            self.drop_session(&imap_err(e));
            return;
        }
        let result = {
            let (fut, interrupt) = idle.wait_with_timeout(poll);
            tokio::select! {
                r = fut => r.map(|_| ()),
                _ = stop.changed() => { drop(interrupt); Ok(()) }
            }
        };
        match (result, idle.done().await) {
            (Ok(()), Ok(s)) => self.session = Some(s),
            (Err(e), _) => self.drop_session(&imap_err(e)),
            (_, Err(e)) => self.drop_session(&imap_err(e)),
        }
    }
}
