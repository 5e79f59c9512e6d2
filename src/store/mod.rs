//! Database access: raw messages, requests, their messages and photos, the
//! audit log and the outbox of side effects. One schema on SQLite (embedded
//! default, WAL) and PostgreSQL (production, replicas share it), reached
//! through sqlx's `Any` driver so both run the same statements.

mod audit;
pub mod backup;
mod console;
mod grace;
pub mod keys;
mod operators;
mod outbox;
mod reports;
mod requests;
pub mod sealed;

pub use audit::{audit, row_hash, ChainBreak, ChainHead, ChainReport, GENESIS};
pub use console::{
    clear_claim, set_decision, AuditFilter, AuditLine, ClaimOutcome, QueueFilter, Search, COUNT_CAP,
};
pub use grace::{
    claim_digest, purge_request, request_in, reset_grace, set_sms_to, sms_to, start_window,
    PurgedFiles,
};
pub use operators::{ApiTokenInfo, OperatorRow, SessionRow};

pub use outbox::{
    enqueue, mark_failed_tx, mark_sent_tx, queued_since, JobRow, OutboxItem, OutboxKind,
};
pub use reports::{ActorCount, DayCount, DecisionCount};
pub use requests::{
    add_photo, add_request_message, insert_request, set_holder_risk, touch_request, update_request,
    AuditEntry, NewRequest, PhotoRow, RequestRow, RequestUpdate, StoredPhoto,
};

use crate::domain::time::now_ms;
use sqlx::any::AnyPoolOptions;
use sqlx::{Any, AnyPool, FromRow, Row, Transaction};
use std::time::Duration;

/// What went wrong talking to the database.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database said no, or could not be reached.
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    /// Migrations failed.
    #[error("database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A URL that is neither sqlite:// nor postgres://.
    #[error("database url {0:?}: use sqlite://PATH or postgres://…")]
    Url(String),
    /// A stored value that does not parse (a bug or a hand-edited row).
    #[error("stored value: {0}")]
    Corrupt(String),
    /// Creating the database's folder failed.
    #[error("creating {0}: {1}")]
    Io(String, std::io::Error),
    /// A backup or restore that cannot be done.
    #[error("backup: {0}")]
    Backup(String),
    /// The master key is missing, wrong, or unreadable.
    #[error("{0}")]
    Keys(String),
    /// Sealed data was asked of a store opened without its master key.
    #[error("the store was opened without its master key (a bug)")]
    Locked,
    /// A sealed blob does not open (changed, or moved to another row).
    #[error("sealed data of message {0}: {1}")]
    Sealed(String, sealed::SealError),
}

impl StoreError {
    /// A unique constraint refused the write (another writer got there
    /// first: the one-window-per-account rule, a dedupe key).
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, StoreError::Db(sqlx::Error::Database(e)) if e.is_unique_violation())
    }
}

/// Which SQL dialect the pool speaks, for the few statements that differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite: one writer at a time, no row locks.
    Sqlite,
    /// PostgreSQL: `FOR UPDATE SKIP LOCKED`, advisory locks.
    Postgres,
}

/// The desk's database.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    dialect: Dialect,
    /// The master keys, once unlocked (`keys::Store::unlock`).
    keys: Option<std::sync::Arc<sealed::Keyring>>,
}

/// What a sealed blob is, bound into its seal: a blob moved to another
/// message or column does not open.
fn blob_aad(column: &str, sha256: &str) -> Vec<u8> {
    format!("huytk {column} of {sha256}").into_bytes()
}

/// A transaction: a state change, its audit rows and its side effects
/// commit together or not at all.
pub type Tx = Transaction<'static, Any>;

/// Status of a stored raw message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawStatus {
    /// `stored`, `processed` or `failed`.
    pub status: String,
    /// The request it joined, if any.
    pub request_id: Option<i64>,
    /// Its kind, once processed.
    pub kind: Option<String>,
}

/// A stored message as listed for operators.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow)]
pub struct MessageRow {
    /// Content address.
    pub sha256: String,
    /// When it was stored (ms).
    pub received_at: i64,
    /// Where it was read from.
    pub source: String,
    /// Sender.
    pub sender: Option<String>,
    /// Subject.
    pub subject: Option<String>,
    /// stored | processed | failed.
    pub status: String,
    /// Why it failed.
    pub error: Option<String>,
    /// Kind.
    pub kind: Option<String>,
    /// Request.
    pub request_id: Option<i64>,
}

impl Store {
    /// Connects (creating a SQLite file and its folder if missing) and
    /// brings the schema up to date.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let dialect = if url.starts_with("sqlite:") {
            Dialect::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Dialect::Postgres
        } else {
            return Err(StoreError::Url(url.to_owned()));
        };
        let url = if dialect == Dialect::Sqlite {
            let path = url
                .trim_start_matches("sqlite://")
                .trim_start_matches("sqlite:");
            let path = path.split('?').next().unwrap_or(path);
            if let Some(dir) = std::path::Path::new(path).parent() {
                if !dir.as_os_str().is_empty() && path != ":memory:" {
                    std::fs::create_dir_all(dir)
                        .map_err(|e| StoreError::Io(dir.display().to_string(), e))?;
                    crate::private::seal_dir(dir)
                        .map_err(|e| StoreError::Io(dir.display().to_string(), e))?;
                }
                for suffix in ["", "-wal", "-shm"] {
                    let file = format!("{path}{suffix}");
                    crate::private::seal_file(std::path::Path::new(&file))
                        .map_err(|e| StoreError::Io(file.clone(), e))?;
                }
            }
            if url.contains('?') {
                url.to_owned()
            } else {
                format!("{url}?mode=rwc")
            }
        } else {
            url.to_owned()
        };
        let pool = AnyPoolOptions::new()
            .max_connections(if dialect == Dialect::Sqlite { 4 } else { 16 })
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if dialect == Dialect::Sqlite {
                        // WAL lets readers (console) run beside the writer; a
                        // busy writer is waited for, not failed.
                        sqlx::query("PRAGMA journal_mode = WAL")
                            .execute(&mut *conn)
                            .await?;
                        sqlx::query("PRAGMA busy_timeout = 10000")
                            .execute(&mut *conn)
                            .await?;
                        sqlx::query("PRAGMA foreign_keys = ON")
                            .execute(&mut *conn)
                            .await?;
                        sqlx::query("PRAGMA synchronous = NORMAL")
                            .execute(&mut *conn)
                            .await?;
                        // What is deleted is overwritten, not left in free pages.
                        sqlx::query("PRAGMA secure_delete = ON")
                            .execute(&mut *conn)
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await?;
        let store = Store {
            pool,
            dialect,
            keys: None,
        };
        store.migrate().await?;
        // Rows from before the chain (migration 0009) join it once.
        let chained = store.chain_unchained().await?;
        if chained > 0 {
            tracing::info!(
                rows = chained,
                "audit log: rows written before the chain are chained"
            );
        }
        Ok(store)
    }

    /// Applies the migrations of this dialect.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match self.dialect {
            Dialect::Sqlite => {
                sqlx::migrate!("./migrations/sqlite")
                    .run(&self.pool)
                    .await?
            }
            Dialect::Postgres => {
                sqlx::migrate!("./migrations/postgres")
                    .run(&self.pool)
                    .await?
            }
        }
        Ok(())
    }

    /// The dialect.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// The pool, for the few callers that need it directly.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Starts a transaction. On SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE` semantics through a no-op write) so two writers
    /// never deadlock upgrading read locks.
    pub async fn begin(&self) -> Result<Tx, StoreError> {
        let mut tx = self.pool.begin().await?;
        if self.dialect == Dialect::Sqlite {
            sqlx::query("UPDATE mailbox_state SET last_uid = last_uid WHERE 0")
                .execute(&mut *tx)
                .await?;
        }
        Ok(tx)
    }

    /// Stores a raw message before anything else happens, sealed with a
    /// data key of its own. Returns false when the same bytes were stored
    /// already (content-addressed).
    #[allow(clippy::too_many_arguments)]
    pub async fn put_raw(
        &self,
        sha256: &str,
        raw: &[u8],
        source: &str,
        message_id: Option<&str>,
        sender: Option<&str>,
        subject: Option<&str>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let key = self.create_data_key(&mut tx, sha256).await?;
        let sealed = key.seal(&blob_aad("raw", sha256), raw);
        let done = sqlx::query(
            "INSERT INTO raw_messages (sha256, received_at, source, size, raw, message_id, sender, subject, status)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'stored')
             ON CONFLICT (sha256) DO NOTHING",
        )
        .bind(sha256)
        .bind(now_ms())
        .bind(source)
        .bind(raw.len() as i64)
        .bind(sealed)
        .bind(message_id)
        .bind(sender)
        .bind(subject)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    /// The master keys, or `Locked`.
    pub fn keyring(&self) -> Result<&sealed::Keyring, StoreError> {
        self.keys.as_deref().ok_or(StoreError::Locked)
    }

    /// The data key of a stored message, made (and kept, wrapped under the
    /// current master key) inside `tx` if it has none yet.
    async fn create_data_key(
        &self,
        tx: &mut Tx,
        owner: &str,
    ) -> Result<sealed::DataKey, StoreError> {
        let ring = self.keyring()?;
        let key = sealed::DataKey::generate();
        // Another writer of the same bytes may get there first: then its
        // key is the one (read back below). Only under the database's
        // current master key: a process started before a rotation must not
        // wrap under the old one.
        sqlx::query(
            "INSERT INTO data_keys (owner, master_key_id, wrapped, created_at)
             SELECT $1, $2, $3, $4 WHERE EXISTS
               (SELECT 1 FROM master_keys WHERE id = $2 AND state = 'current')
             ON CONFLICT (owner) DO NOTHING",
        )
        .bind(owner)
        .bind(ring.current().id())
        .bind(ring.current().wrap(&key, owner))
        .bind(now_ms())
        .execute(&mut **tx)
        .await?;
        let row = sqlx::query("SELECT master_key_id, wrapped FROM data_keys WHERE owner = $1")
            .bind(owner)
            .fetch_optional(&mut **tx)
            .await?
            .ok_or_else(|| {
                StoreError::Keys(format!(
                    "the master key was rotated after this process started (it holds {}): \
                     restart it with the new key",
                    ring.current().id()
                ))
            })?;
        self.unwrap_data_key(owner, &row)
    }

    /// The data key of a stored message; None when it has none (purged,
    /// or stored before sealing existed).
    async fn data_key(&self, owner: &str) -> Result<Option<sealed::DataKey>, StoreError> {
        sqlx::query("SELECT master_key_id, wrapped FROM data_keys WHERE owner = $1")
            .bind(owner)
            .fetch_optional(&self.pool)
            .await?
            .map(|row| self.unwrap_data_key(owner, &row))
            .transpose()
    }

    /// Unwraps a `data_keys` row with the master key it names.
    fn unwrap_data_key(
        &self,
        owner: &str,
        row: &sqlx::any::AnyRow,
    ) -> Result<sealed::DataKey, StoreError> {
        let id: String = row.try_get("master_key_id")?;
        let wrapped: Vec<u8> = row.try_get("wrapped")?;
        let master = self
            .keyring()?
            .get(&id)
            .ok_or_else(|| StoreError::Keys(format!("master key {id} is not held")))?;
        master
            .unwrap(&wrapped, owner)
            .map_err(|e| StoreError::Sealed(owner.to_owned(), e))
    }

    /// Opens a sealed column of a stored message.
    async fn open_blob(
        &self,
        sha256: &str,
        column: &str,
        sealed_bytes: Vec<u8>,
    ) -> Result<Vec<u8>, StoreError> {
        match self.data_key(sha256).await? {
            Some(k) => k
                .open(&blob_aad(column, sha256), &sealed_bytes)
                .map_err(|e| StoreError::Sealed(sha256.to_owned(), e)),
            // Only messages stored before sealing existed, until
            // `seal_existing` has run.
            None => Ok(sealed_bytes),
        }
    }

    /// Seals messages stored before sealing existed (an upgrade); returns
    /// how many.
    pub async fn seal_existing(&self) -> Result<u64, StoreError> {
        let mut n = 0;
        loop {
            let rows = sqlx::query(
                "SELECT sha256 FROM raw_messages WHERE raw IS NOT NULL
                 AND sha256 NOT IN (SELECT owner FROM data_keys) LIMIT 100",
            )
            .fetch_all(&self.pool)
            .await?;
            if rows.is_empty() {
                return Ok(n);
            }
            for r in rows {
                let sha: String = r.try_get("sha256")?;
                let mut tx = self.begin().await?;
                let row = sqlx::query("SELECT raw, inspection FROM raw_messages WHERE sha256 = $1")
                    .bind(&sha)
                    .fetch_one(&mut *tx)
                    .await?;
                let raw: Option<Vec<u8>> = row.try_get("raw")?;
                let inspection: Option<Vec<u8>> = row.try_get("inspection")?;
                let key = self.create_data_key(&mut tx, &sha).await?;
                sqlx::query("UPDATE raw_messages SET raw = $1, inspection = $2 WHERE sha256 = $3")
                    .bind(raw.map(|b| key.seal(&blob_aad("raw", &sha), &b)))
                    .bind(inspection.map(|b| key.seal(&blob_aad("inspection", &sha), &b)))
                    .bind(&sha)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                n += 1;
            }
        }
    }

    /// The status of a stored message.
    pub async fn raw_status(&self, sha256: &str) -> Result<Option<RawStatus>, StoreError> {
        let row =
            sqlx::query("SELECT status, request_id, kind FROM raw_messages WHERE sha256 = $1")
                .bind(sha256)
                .fetch_optional(&self.pool)
                .await?;
        row.map(|r| {
            Ok(RawStatus {
                status: r.try_get("status")?,
                request_id: r.try_get("request_id")?,
                kind: r.try_get("kind")?,
            })
        })
        .transpose()
    }

    /// The bytes of a stored message (None once purged).
    pub async fn raw(&self, sha256: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let row = sqlx::query("SELECT raw FROM raw_messages WHERE sha256 = $1")
            .bind(sha256)
            .fetch_optional(&self.pool)
            .await?;
        match row.and_then(|r| r.try_get::<Option<Vec<u8>>, _>("raw").ok().flatten()) {
            Some(sealed) => Ok(Some(self.open_blob(sha256, "raw", sealed).await?)),
            None => Ok(None),
        }
    }

    /// Keeps a message's inspection (its stored form) beside it, sealed
    /// with the message's key.
    pub async fn set_inspection(&self, sha256: &str, stored: &[u8]) -> Result<(), StoreError> {
        let Some(key) = self.data_key(sha256).await? else {
            // Purged meanwhile (or not stored): nothing to keep it beside.
            return Ok(());
        };
        // `raw IS NOT NULL`: a purge between the two statements wins.
        sqlx::query(
            "UPDATE raw_messages SET inspection = $1 WHERE sha256 = $2 AND raw IS NOT NULL",
        )
        .bind(key.seal(&blob_aad("inspection", sha256), stored))
        .bind(sha256)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A message's stored inspection (None before it was inspected, and
    /// once purged).
    pub async fn inspection(&self, sha256: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let row = sqlx::query("SELECT inspection FROM raw_messages WHERE sha256 = $1")
            .bind(sha256)
            .fetch_optional(&self.pool)
            .await?;
        match row.and_then(|r| r.try_get::<Option<Vec<u8>>, _>("inspection").ok().flatten()) {
            Some(sealed) => Ok(Some(self.open_blob(sha256, "inspection", sealed).await?)),
            None => Ok(None),
        }
    }

    /// Messages stored but not yet processed (a crash between storing and
    /// processing leaves them so), oldest first.
    pub async fn unprocessed(&self, limit: i64) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT sha256 FROM raw_messages WHERE status = 'stored' ORDER BY received_at LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok(r.try_get("sha256")?)).collect()
    }

    /// Counts one more start of this message's inspection (committed before
    /// the work begins) and returns how many there have been.
    pub async fn begin_inspection(&self, sha256: &str) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "UPDATE raw_messages SET attempts = attempts + 1 WHERE sha256 = $1 RETURNING attempts",
        )
        .bind(sha256)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| r.try_get("attempts")).transpose()?.unwrap_or(0))
    }

    /// Marks a message failed with the reason, for an operator to see.
    pub async fn mark_failed(&self, sha256: &str, error: &str) -> Result<(), StoreError> {
        // Never over a message another replica processed meanwhile.
        sqlx::query(
            "UPDATE raw_messages SET status = 'failed', error = $2, processed_at = $3
             WHERE sha256 = $1 AND status <> 'processed'",
        )
        .bind(sha256)
        .bind(error)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// One stored message's facts.
    pub async fn message(&self, sha256: &str) -> Result<Option<MessageRow>, StoreError> {
        let row = sqlx::query(
            "SELECT sha256, received_at, source, sender, subject, status, error, kind, request_id
             FROM raw_messages WHERE sha256 = $1",
        )
        .bind(sha256)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref()
            .map(|r| Ok(MessageRow::from_row(r)?))
            .transpose()
    }

    /// Lists stored messages, newest first; `status` filters.
    pub async fn messages(
        &self,
        status: Option<&str>,
        limit: i64,
        after: Option<&MessageRow>,
    ) -> Result<Vec<MessageRow>, StoreError> {
        // Keyset paging, newest first: the next page starts after the last
        // row of this one, however many messages there are.
        let (at, sha) = after.map_or((i64::MAX, String::new()), |m| {
            (m.received_at, m.sha256.clone())
        });
        let rows = sqlx::query(
            "SELECT sha256, received_at, source, sender, subject, status, error, kind, request_id
             FROM raw_messages WHERE ($1 = '' OR status = $1)
             AND (received_at < $2 OR (received_at = $2 AND sha256 < $3) OR $3 = '')
             ORDER BY received_at DESC, sha256 DESC LIMIT $4",
        )
        .bind(status.unwrap_or(""))
        .bind(at)
        .bind(sha)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok(MessageRow::from_row(r)?)).collect()
    }

    /// Counts rows of a table (tests and `doctor`).
    pub async fn count(&self, table: &str, filter: &str) -> Result<i64, StoreError> {
        let sql = format!(
            "SELECT COUNT(*) AS n FROM {table}{}",
            if filter.is_empty() {
                String::new()
            } else {
                format!(" WHERE {filter}")
            }
        );
        let row = sqlx::query(&sql).fetch_one(&self.pool).await?;
        Ok(row.try_get::<i64, _>("n")?)
    }

    /// The IMAP position of a mailbox: (UIDVALIDITY, last UID processed).
    pub async fn mailbox_position(&self, mailbox: &str) -> Result<Option<(i64, i64)>, StoreError> {
        let row = sqlx::query("SELECT uidvalidity, last_uid FROM mailbox_state WHERE mailbox = $1")
            .bind(mailbox)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| Ok((r.try_get("uidvalidity")?, r.try_get("last_uid")?)))
            .transpose()
    }

    /// Records the IMAP position of a mailbox.
    pub async fn set_mailbox_position(
        &self,
        mailbox: &str,
        uidvalidity: i64,
        last_uid: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO mailbox_state (mailbox, uidvalidity, last_uid) VALUES ($1, $2, $3)
             ON CONFLICT (mailbox) DO UPDATE SET uidvalidity = excluded.uidvalidity, last_uid = excluded.last_uid",
        )
        .bind(mailbox)
        .bind(uidvalidity)
        .bind(last_uid)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Row counts grouped by one column (metrics). `table` and `column`
    /// are ours, never a caller's input.
    pub async fn group_counts(
        &self,
        table: &str,
        column: &str,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        let sql = format!(
            "SELECT {column} AS k, COUNT(*) AS n FROM {table} GROUP BY {column} ORDER BY {column}"
        );
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| Ok((r.try_get::<String, _>("k")?, r.try_get::<i64, _>("n")?)))
            .collect()
    }

    /// When the oldest request still waiting (needs_info, pending_review)
    /// came in (ms).
    pub async fn oldest_open_request_ms(&self) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query(
            "SELECT MIN(received_at) AS t FROM requests WHERE state IN ('needs_info', 'pending_review')",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get::<Option<i64>, _>("t")?)
    }

    /// Checks the connection (for `doctor` and `/readyz`).
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}

/// Marks a raw message processed inside the transaction that acts on it,
/// as that transaction's first write; false when it was processed already
/// (the caller rolls back: what it would do is done).
pub async fn mark_processed(
    tx: &mut Tx,
    sha256: &str,
    kind: &str,
    request_id: Option<i64>,
) -> Result<bool, StoreError> {
    // Only a message nobody has processed: two replicas reprocessing the
    // same stored message both get here, and the second finds it done (on
    // PostgreSQL it waits on the first's row lock, then sees its commit).
    let done = sqlx::query(
        "UPDATE raw_messages SET status = 'processed', kind = $2, request_id = $3, processed_at = $4, error = NULL
         WHERE sha256 = $1 AND status <> 'processed'",
    )
    .bind(sha256)
    .bind(kind)
    .bind(request_id)
    .bind(now_ms())
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Records which request a processed message opened or joined.
pub async fn set_message_request(
    tx: &mut Tx,
    sha256: &str,
    request_id: i64,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE raw_messages SET request_id = $1 WHERE sha256 = $2")
        .bind(request_id)
        .bind(sha256)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The right to read one mailbox: with PostgreSQL, a session advisory lock
/// held on a connection of its own (released when the holder dies, so a
/// replica takes over); with SQLite, one process owns the desk anyway.
pub struct MailboxLock {
    _conn: Option<sqlx::AnyConnection>,
}

impl std::fmt::Debug for MailboxLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MailboxLock")
    }
}

impl Store {
    /// Takes the mailbox lock if no other replica holds it.
    pub async fn try_lock_mailbox(&self, mailbox: &str) -> Result<Option<MailboxLock>, StoreError> {
        if self.dialect == Dialect::Sqlite {
            return Ok(Some(MailboxLock { _conn: None }));
        }
        // A stable 63-bit key from the mailbox name.
        let digest = <sha2::Sha256 as sha2::Digest>::digest(mailbox.as_bytes());
        let key = i64::from_be_bytes(digest[..8].try_into().expect("8 bytes")) & i64::MAX;
        let mut conn = self.pool.acquire().await?.detach();
        let row = sqlx::query("SELECT pg_try_advisory_lock($1) AS got")
            .bind(key)
            .fetch_one(&mut conn)
            .await?;
        let got: bool = row.try_get("got")?;
        Ok(got.then_some(MailboxLock { _conn: Some(conn) }))
    }

    /// Closes requests that waited in `needs_info` without any news since
    /// `before_ms`; returns their ids.
    pub async fn silent_needs_info(&self, before_ms: i64) -> Result<Vec<(i64, i64)>, StoreError> {
        let rows = sqlx::query("SELECT id, version FROM requests WHERE state = 'needs_info' AND updated_at < $1 ORDER BY id")
            .bind(before_ms)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("id")?, r.try_get("version")?)))
            .collect()
    }
}

/// Moves a request to `to` if it is still at `version`; false otherwise.
pub async fn set_state(
    tx: &mut Tx,
    id: i64,
    version: i64,
    to: crate::domain::RequestState,
) -> Result<bool, StoreError> {
    // A final state records when the request closed (retention counts from it).
    let done = sqlx::query(
        "UPDATE requests SET state = $1, updated_at = $2, version = version + 1,
         closed_at = CASE WHEN $1 IN ('deleted', 'rejected', 'cancelled', 'closed_incomplete') THEN $2 ELSE closed_at END
         WHERE id = $3 AND version = $4",
    )
        .bind(to.as_str())
        .bind(now_ms())
        .bind(id)
        .bind(version)
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Bumps a request's version if it is still at `version` (a change that
/// is not a state change, such as a note or a first approval).
pub async fn bump_version(tx: &mut Tx, id: i64, version: i64) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE requests SET updated_at = $1, version = version + 1 WHERE id = $2 AND version = $3",
    )
    .bind(now_ms())
    .bind(id)
    .bind(version)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Commits a transaction.
pub async fn commit(tx: Tx) -> Result<(), StoreError> {
    Ok(tx.commit().await?)
}

/// Rolls a transaction back.
pub async fn rollback(tx: Tx) -> Result<(), StoreError> {
    Ok(tx.rollback().await?)
}
