//! Assembles the desk from its configuration and runs `huytk serve`:
//! the mailbox loop (fetch → store → inspect → reply queued → archive) and
//! the outbox worker, until SIGTERM/SIGINT.

use lettre::message::Mailbox;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

use crate::config::{Config, MailOutKind, MailboxKind, SmsKind};
use crate::domain::calendar::Calendar;
use crate::mailbox::{self, MailboxError, Source};
use crate::notify::{Mailer, Templates};
use crate::store::Store;
use crate::workflow::{deliver_emails, Desk, RetryPolicy, WorkflowError};

/// Why the desk could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Configuration.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// Database.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// Templates.
    #[error(transparent)]
    Template(#[from] crate::notify::TemplateError),
    /// Calendar additions.
    #[error(transparent)]
    Calendar(#[from] crate::domain::calendar::CalendarError),
    /// Mail source.
    #[error(transparent)]
    Mailbox(#[from] MailboxError),
    /// Workflow.
    #[error(transparent)]
    Workflow(#[from] WorkflowError),
    /// Mail out.
    #[error("mail out: {0}")]
    MailOut(String),
    /// The HTTP endpoints.
    #[error("web: {0}")]
    Web(String),
    /// A local data folder or file could not be made private.
    #[error("data folder: {0}")]
    DataFolder(String),
    /// The account store's configuration.
    #[error(transparent)]
    Accounts(#[from] crate::accounts::AccountError),
    /// `[sender_auth]`'s own check could not be set up.
    #[error(transparent)]
    SenderCheck(#[from] crate::mailbox::sender_check::SenderCheckError),
}

/// Everything `serve` runs with.
pub struct App {
    /// The configuration.
    pub config: Config,
    /// The desk (store, calendar, templates).
    pub desk: Desk,
    /// Mail out.
    pub mailer: Mailer,
    /// Our sender.
    pub from: Mailbox,
    /// SMS out.
    pub sms: crate::notify::sms::SmsGateway,
}

/// Connects to the database and unlocks it with the master key: a missing
/// or wrong key stops here, before any mail is read.
pub async fn open_store(config: &Config) -> Result<Store, AppError> {
    let store = Store::connect(&config.database.url).await?;
    let (store, unlocked) = store.unlock(&config.database.key_source()).await?;
    if let Some(path) = &unlocked.created {
        tracing::warn!(
            key = %unlocked.current,
            file = %path.display(),
            "created the master key that seals citizens' mail and photos: back this file up \
             apart from the database; without it the stored mail cannot be read"
        );
    }
    if unlocked.sealed_existing > 0 {
        tracing::info!(
            messages = unlocked.sealed_existing,
            "sealed messages stored before sealing"
        );
    }
    Ok(store)
}

/// Makes the local folders and files that hold citizens' mail private
/// (0700/0600), also those made before the desk did so.
fn seal_local_data(config: &Config) -> Result<(), AppError> {
    let io = |p: &std::path::Path, e: std::io::Error| {
        AppError::DataFolder(format!("making {} private: {e}", p.display()))
    };
    for (local, dir) in [
        (
            config.mailbox.kind == MailboxKind::Maildir,
            &config.mailbox.path,
        ),
        (
            config.mail_out.kind == MailOutKind::Maildir,
            &config.mail_out.path,
        ),
    ] {
        if local {
            std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
            crate::private::seal_dir(dir).map_err(|e| io(dir, e))?;
        }
    }
    if config.sms.kind == SmsKind::File {
        crate::private::seal_file(&config.sms.path).map_err(|e| io(&config.sms.path, e))?;
    }
    Ok(())
}

impl App {
    /// Connects the database, loads templates and calendar: every error a
    /// misconfiguration can cause shows here, at start-up.
    pub async fn build(config: Config) -> Result<App, AppError> {
        seal_local_data(&config)?;
        let templates = Templates::load(&config.templates.dir)?;
        let mut calendar = Calendar::vietnam();
        calendar.add(
            &config.calendar.holidays,
            &config.calendar.working_saturdays,
        )?;
        let store = open_store(&config).await?;
        let mailer =
            Mailer::from_config(&config.mail_out).map_err(|e| AppError::MailOut(e.message))?;
        let from = Mailbox::new(
            Some(config.desk.name.clone()),
            config.desk.address.parse().map_err(|e| {
                AppError::MailOut(format!("desk address {:?}: {e}", config.desk.address))
            })?,
        );
        let accounts = crate::accounts::Accounts::from_config(&config.accounts, &store)?;
        let desk = Desk {
            store,
            calendar: Arc::new(calendar),
            templates: Arc::new(templates),
            config: config.desk.clone(),
            accounts: Arc::new(accounts),
            clock: crate::domain::time::Clock::system(),
            inspectors: crate::workflow::Inspectors::new(
                config.desk.inspection_memory_mb,
                config.desk.inspection_seconds,
            )
            .trusting(config.sender_auth.trusted())
            .checking(
                crate::mailbox::sender_check::ResolverCheck::from_config(&config.sender_auth)?
                    .map(|c| Arc::new(c) as Arc<dyn crate::mailbox::sender_check::SenderCheck>),
            ),
        };
        let sms =
            crate::notify::sms::SmsGateway::from_config(&config.sms).map_err(AppError::MailOut)?;
        Ok(App {
            sms,
            config,
            desk,
            mailer,
            from,
        })
    }

    /// How mail delivery retries.
    pub fn retry(&self) -> RetryPolicy {
        RetryPolicy {
            max_attempts: self.config.mail_out.max_attempts,
            base_seconds: self.config.mail_out.retry_base_seconds,
        }
    }

    /// How SMS retry.
    pub fn sms_retry(&self) -> RetryPolicy {
        RetryPolicy {
            max_attempts: self.config.sms.max_attempts,
            base_seconds: self.config.sms.retry_base_seconds,
        }
    }

    /// One round of the grace-period work: account calls, SMS, windows
    /// that ended, retention. Returns how many things were done.
    pub async fn grace_round(&self) -> usize {
        let mut done = 0;
        match self.desk.run_account_jobs(self.sms_retry(), 20).await {
            Ok(n) => done += n,
            Err(e) => tracing::error!(error = %e, "account jobs"),
        }
        match self.desk.run_sms(&self.sms, self.sms_retry(), 20).await {
            Ok(n) => done += n,
            Err(e) => tracing::error!(error = %e, "SMS"),
        }
        match self.desk.sweep_deadlines().await {
            Ok(n) => done += n,
            Err(e) => tracing::error!(error = %e, "grace period deadlines"),
        }
        done
    }

    /// The configured mail source.
    pub fn source(&self) -> Result<Source, AppError> {
        Ok(match self.config.mailbox.kind {
            MailboxKind::Imap => Source::Imap(Box::new(mailbox::imap::ImapSource::new(
                self.config.mailbox.clone(),
                self.desk.store.clone(),
            ))),
            MailboxKind::Maildir => {
                Source::Maildir(mailbox::maildir::Spool::open(&self.config.mailbox.path)?)
            }
        })
    }

    /// Retention: purges requests closed more than `retention_days` ago,
    /// then removes the files outside the database that carry their data
    /// (the spool's copies, outbox letters, SMS outbox lines). A stop in
    /// between is finished at the next purge. Returns how many requests.
    pub async fn purge(&self) -> Result<usize, AppError> {
        let n = self.desk.purge_closed().await?;
        let mut files = 0;
        let spool = match self.config.mailbox.kind {
            MailboxKind::Imap => None,
            MailboxKind::Maildir => Some(mailbox::maildir::Spool::open(&self.config.mailbox.path)?),
        };
        let folders = [
            self.config.mailbox.archive_folder.as_str(),
            self.config.mailbox.other_folder.as_str(),
        ];
        for p in self.desk.store.purged_files(100).await? {
            if let Some(spool) = &spool {
                for origin in &p.origins {
                    if let Some(key) = origin.strip_prefix("maildir:") {
                        files += spool.forget(key, &folders)?;
                    }
                }
            }
            files += self
                .mailer
                .forget(&p.outbox_ids)
                .map_err(|e| AppError::MailOut(e.message))?;
            files += self
                .sms
                .forget(&p.outbox_ids)
                .map_err(|e| AppError::MailOut(e.to_string()))?;
            self.desk.store.set_files_removed(p.request_id).await?;
        }
        if n > 0 {
            self.desk.store.compact_after_purge().await?;
            tracing::info!(requests = n, files, "purged requests' files removed");
        }
        Ok(n)
    }

    /// Runs until `stop` turns true: finishes the message in hand, then
    /// returns (a message not yet committed stays in the inbox).
    pub async fn serve(&self, mut stop: watch::Receiver<bool>) -> Result<(), AppError> {
        if self.desk.store.dialect() == crate::store::Dialect::Sqlite {
            // One process owns a SQLite desk: claims left by a killed run
            // are stale, and their mail is retried now rather than later.
            let freed = self.desk.store.release_claims().await?;
            if freed > 0 {
                tracing::warn!(freed, "mail claimed by an earlier run that stopped abruptly is retried (it may have been sent already: same Message-ID)");
            }
        }
        let worker = self.spawn_mail_worker(stop.clone());
        let grace = self.spawn_grace_worker(stop.clone());
        let web = self.start_console(stop.clone()).await?;
        // The console answers from the first second; what an earlier run
        // left stored is processed now, while it serves.
        let recovered = self.desk.recover().await?;
        if recovered > 0 {
            tracing::info!(
                recovered,
                "processed messages left stored by an earlier run"
            );
        }
        self.read_inbox(&mut stop).await?;
        tracing::info!("stopping: waiting for the outbox worker");
        let _ = worker.await;
        let _ = grace.await;
        if let Some(web) = web {
            let _ = web.await;
        }
        Ok(())
    }

    /// The outbox worker: delivers letters as they come due.
    fn spawn_mail_worker(&self, mut stop: watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
        let store = self.desk.store.clone();
        let mailer = self.mailer.clone();
        let from = self.from.clone();
        let retry = self.retry();
        tokio::spawn(async move {
            loop {
                match deliver_emails(&store, &mailer, &from, retry, 20).await {
                    Ok(n) if n > 0 => continue,
                    Ok(_) => {}
                    Err(e) => tracing::error!(error = %e, "outbox worker"),
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                    _ = stop.changed() => {}
                }
                if *stop.borrow() {
                    return;
                }
            }
        })
    }

    /// The grace period's worker: account calls, SMS, deadlines, and every
    /// ten minutes retention and the daily digest.
    fn spawn_grace_worker(&self, mut stop: watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
        let app = self.clone_for_worker();
        tokio::spawn(async move {
            let mut last_purge: Option<std::time::Instant> = None;
            loop {
                let done = app.grace_round().await;
                if last_purge.is_none_or(|t| t.elapsed() > Duration::from_secs(600)) {
                    last_purge = Some(std::time::Instant::now());
                    if let Err(e) = app.purge().await {
                        tracing::error!(error = %e, "retention purge");
                    }
                    if let Err(e) = app.desk.send_digest_if_due().await {
                        tracing::error!(error = %e, "daily digest");
                    }
                }
                if done > 0 {
                    continue;
                }
                // Deadlines are checked twice a second: a deletion is
                // never early and at most a moment late.
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                    _ = stop.changed() => {}
                }
                if *stop.borrow() {
                    return;
                }
            }
        })
    }

    /// The console, `/api/v1` and the probes, when `[web] bind` is set.
    async fn start_console(
        &self,
        mut stop: watch::Receiver<bool>,
    ) -> Result<Option<tokio::task::JoinHandle<()>>, AppError> {
        Ok(if self.config.web.bind.is_empty() {
            None
        } else {
            // The first admin is created (and its password printed) before
            // the console listens, so whoever sees it up can log in.
            self.first_admin().await?;
            let listener = tokio::net::TcpListener::bind(&self.config.web.bind)
                .await
                .map_err(|e| AppError::Web(format!("binding {}: {e}", self.config.web.bind)))?;
            let console = crate::web::Console::new(
                self.desk.clone(),
                self.config.web.clone(),
                self.config.sms.dlr_secret.expose().to_owned(),
            )
            .map_err(|e| AppError::Web(e.to_string()))?;
            tracing::info!(bind = %self.config.web.bind, "serving the console, /api/v1, /healthz, /readyz, /metrics");
            let router = crate::web::router(console);
            let web = self.config.web.clone();
            Some(tokio::spawn(async move {
                let shutdown = async move {
                    let _ = stop.changed().await;
                };
                crate::web::serve::serve(listener, router, &web, shutdown).await;
            }))
        })
    }

    /// Reads the inbox until `stop` turns true: one replica at a time (the
    /// mailbox lock), a batch at a time, each message stored and handled
    /// before it is archived; a failure leaves the message in the inbox.
    async fn read_inbox(&self, stop: &mut watch::Receiver<bool>) -> Result<(), AppError> {
        let mut source = self.source()?;
        let poll = Duration::from_secs(self.config.mailbox.poll_seconds.max(1));
        // A replica waiting for the inbox asks again every second, whatever
        // the poll: the holder's death is noticed within a few seconds.
        let takeover = poll.min(Duration::from_secs(1));
        tracing::info!(mailbox = %self.config.mailbox.kind, database = %redact(&self.config.database.url), "desk is serving");
        let lock_key = format!(
            "{}:{}@{}/{}",
            self.config.mailbox.kind,
            self.config.mailbox.username,
            self.config.mailbox.host,
            self.config.mailbox.folder
        );
        let mut lock: Option<crate::store::MailboxLock> = None;
        let mut said_waiting = false;
        let mut last_sweep: Option<std::time::Instant> = None;
        while !*stop.borrow() {
            if last_sweep.is_none_or(|t| t.elapsed() > Duration::from_secs(600)) {
                last_sweep = Some(std::time::Instant::now());
                if let Err(e) = self.desk.close_silent_requests().await {
                    tracing::error!(error = %e, "closing silent requests");
                }
            }
            // With PostgreSQL, one replica reads a mailbox at a time; the
            // others deliver mail and wait to take over.
            if lock.is_none() {
                match self.desk.store.try_lock_mailbox(&lock_key).await {
                    Ok(Some(l)) => {
                        if said_waiting {
                            tracing::info!("this replica now reads the inbox");
                        }
                        mailbox::set_reading(true);
                        lock = Some(l);
                    }
                    Ok(None) => {
                        if !said_waiting {
                            tracing::info!("another replica reads the inbox; waiting to take over");
                            said_waiting = true;
                        }
                        tokio::select! {
                            _ = tokio::time::sleep(takeover) => {}
                            _ = stop.changed() => {}
                        }
                        continue;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "taking the mailbox lock");
                        source.wait(Duration::from_secs(2), stop).await;
                        continue;
                    }
                }
            }
            let mut batch = match source
                .fetch(self.config.mailbox.batch.max(1) as usize)
                .await
            {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(error = %e, "reading the inbox failed; will retry");
                    source.wait(Duration::from_secs(2), stop).await;
                    continue;
                }
            };
            if batch.is_empty() {
                source.wait(poll, stop).await;
                continue;
            }
            if *stop.borrow() {
                break;
            }
            let results = self.desk.ingest_batch(take_raws(&mut batch)).await;
            let mut moves: Vec<(&str, &str)> = Vec::new();
            for (m, r) in batch.iter().zip(&results) {
                match r {
                    Ok(outcome) => {
                        tracing::info!(origin = %m.origin, outcome = ?outcome, "message handled");
                        moves.push((m.key.as_str(), self.folder_for(outcome)));
                    }
                    Err(e) => {
                        // The database is unwell: leave the message in the inbox.
                        tracing::error!(origin = %m.origin, error = %e, "message not processed; left in the inbox");
                    }
                }
            }
            if let Err(e) = source.archive_many(&moves).await {
                tracing::warn!(error = %e, "messages stored but not archived yet");
            }
            if results.len() < batch.len() || results.iter().any(Result::is_err) {
                source.wait(Duration::from_secs(2), stop).await;
            }
        }
        Ok(())
    }
}

impl App {
    /// A copy for a background task (everything inside is shared).
    fn clone_for_worker(&self) -> App {
        App {
            config: self.config.clone(),
            desk: self.desk.clone(),
            mailer: self.mailer.clone(),
            from: self.from.clone(),
            sms: self.sms.clone(),
        }
    }

    /// On the first start, with no operator at all, creates `admin` with a
    /// one-time password printed once on standard output; it must be
    /// changed at the first login.
    pub async fn first_admin(&self) -> Result<(), AppError> {
        let store = &self.desk.store;
        if store.operator_count().await? > 0 {
            return Ok(());
        }
        let login = crate::domain::Login::parse("admin").expect("valid login");
        let password = crate::web::auth::random_password();
        let hash = crate::web::auth::hash_password(&password);
        if store
            .add_operator(&login, "Quản trị", crate::domain::Role::Admin, &hash, true)
            .await?
        {
            let login_at = format!("http://{}/", self.config.web.bind);
            if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
                // A person at a terminal: shown to them, never logged.
                println!(
                    "No operator existed: created \"admin\" with the one-time password {password}\n\
                     Log in at {login_at} and choose a new password. This is shown only once."
                );
            } else {
                // Standard output may be a service manager's journal: the
                // password goes to a file only this user can read.
                let dir = self.config.database.master_key_path();
                let dir = dir.parent().unwrap_or(std::path::Path::new("."));
                let file = dir.join("first-admin-password.txt");
                crate::private::write_private(
                    &file,
                    format!("login: admin\none-time password: {password}\nlog in at {login_at}\n")
                        .as_bytes(),
                )
                .map_err(|e| AppError::DataFolder(format!("{}: {e}", file.display())))?;
                println!(
                    "No operator existed: created \"admin\"; its one-time password is in {} \
                     (readable by this user only). Log in at {login_at}, choose a new password, \
                     then delete the file.",
                    file.display()
                );
            }
            tracing::warn!("created the first admin with a one-time password (not logged)");
        }
        Ok(())
    }
}

/// The bytes of fetched messages with their origins, moved out (the
/// messages keep their keys for archiving).
fn take_raws(batch: &mut [mailbox::Fetched]) -> Vec<(Vec<u8>, String)> {
    batch
        .iter_mut()
        .map(|m| (std::mem::take(&mut m.raw), m.origin.clone()))
        .collect()
}

impl App {
    /// The folder a handled message moves to: mail for people to "other",
    /// everything else to the archive.
    /// A local spool keeps no unsealed copy of what the database holds
    /// sealed: there, handled mail that is not for people is removed ("").
    fn folder_for(&self, outcome: &crate::workflow::Ingested) -> &str {
        if outcome.is_other() {
            &self.config.mailbox.other_folder
        } else if self.config.mailbox.kind == MailboxKind::Imap {
            &self.config.mailbox.archive_folder
        } else {
            ""
        }
    }

    /// Delivers every due mail now (commands that queue one).
    pub async fn run_once_outbox(&self) -> Result<(), AppError> {
        while deliver_emails(&self.desk.store, &self.mailer, &self.from, self.retry(), 50).await?
            > 0
        {}
        Ok(())
    }

    /// Processes the inbox until it is empty and every due mail is sent,
    /// then returns (scripts, tests, `serve --once`).
    pub async fn run_once(&self) -> Result<(), AppError> {
        let mut source = self.source()?;
        self.desk.recover().await?;
        loop {
            let mut batch = source
                .fetch(self.config.mailbox.batch.max(1) as usize)
                .await?;
            if batch.is_empty() {
                break;
            }
            let results = self.desk.ingest_batch(take_raws(&mut batch)).await;
            let mut moves: Vec<(&str, &str)> = Vec::new();
            for (m, r) in batch.iter().zip(results) {
                moves.push((m.key.as_str(), self.folder_for(&r?)));
            }
            source.archive_many(&moves).await?;
        }
        loop {
            let grace = self.grace_round().await;
            let mails =
                deliver_emails(&self.desk.store, &self.mailer, &self.from, self.retry(), 50)
                    .await?;
            if grace == 0 && mails == 0 {
                break;
            }
        }
        Ok(())
    }
}

/// The database URL without its password, for logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            let user = creds.split(':').next().unwrap_or("");
            format!("{}{user}:***{}", &url[..s + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

/// The shipped demo messages: beside the templates when run from a
/// checkout.
pub fn demo_dir(templates: &Path) -> PathBuf {
    let beside = templates.parent().map(|p| p.join("demo"));
    match beside {
        Some(p) if p.is_dir() => p,
        _ => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("demo"),
    }
}

/// Fills the Maildir spool with the demo messages (once: names are fixed).
pub fn fill_demo(spool: &Path, demo: &Path) -> Result<usize, MailboxError> {
    let s = mailbox::maildir::Spool::open(spool)?;
    let mut names: Vec<PathBuf> = std::fs::read_dir(demo)
        .map_err(|e| MailboxError::Io(demo.display().to_string(), e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect();
    names.sort();
    let mut n = 0;
    for p in names {
        let raw = std::fs::read(&p).map_err(|e| MailboxError::Io(p.display().to_string(), e))?;
        let name = format!(
            "demo-{}",
            p.file_name().unwrap_or_default().to_string_lossy()
        );
        s.deliver(&raw, &name)?;
        n += 1;
    }
    Ok(n)
}

/// The demo directory of portal accounts (`demo/accounts.toml`).
#[derive(Debug, serde::Deserialize)]
struct DemoAccounts {
    account: Vec<crate::accounts::PortalAccount>,
}

/// Reads a TOML list of portal accounts (`[[account]]` tables) and puts
/// them in the embedded directory. Returns how many.
pub async fn load_accounts(store: &Store, path: &Path) -> Result<usize, AppError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| AppError::Web(format!("reading {}: {e}", path.display())))?;
    let list: DemoAccounts =
        toml::from_str(&text).map_err(|e| AppError::Web(format!("{}: {e}", path.display())))?;
    for a in &list.account {
        store.put_portal_account(a).await?;
    }
    Ok(list.account.len())
}
