//! The outbox: side effects (mail now; SMS and account calls later) written
//! in the same transaction as the state change that causes them, delivered
//! by workers that claim rows (`FOR UPDATE SKIP LOCKED` on PostgreSQL) and
//! retry with backoff. A `dedupe_key` makes each cause produce one row.

use sqlx::Row;

use super::{Dialect, Store, StoreError, Tx};
use crate::domain::time::now_ms;

/// What a row asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboxKind {
    /// An email to a citizen.
    Email,
    /// The holder's SMS.
    Sms,
    /// Lock a portal account.
    AccountLock,
    /// Unlock a portal account.
    AccountUnlock,
    /// Delete a portal account.
    AccountDelete,
}

impl OutboxKind {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxKind::Email => "email",
            OutboxKind::Sms => "sms",
            OutboxKind::AccountLock => "account_lock",
            OutboxKind::AccountUnlock => "account_unlock",
            OutboxKind::AccountDelete => "account_delete",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<OutboxKind> {
        [
            OutboxKind::Email,
            OutboxKind::Sms,
            OutboxKind::AccountLock,
            OutboxKind::AccountUnlock,
            OutboxKind::AccountDelete,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// A claimed row.
#[derive(Debug, Clone)]
pub struct OutboxItem {
    /// Row id.
    pub id: i64,
    /// What it asks for.
    pub kind: OutboxKind,
    /// Request, if any.
    pub request_id: Option<i64>,
    /// Recipient.
    pub recipient: String,
    /// JSON payload.
    pub payload: String,
    /// Attempts before this one.
    pub attempts: i64,
}

/// Queues a side effect; false when its dedupe key was queued before.
pub async fn enqueue(
    tx: &mut Tx,
    kind: OutboxKind,
    request_id: Option<i64>,
    dedupe_key: &str,
    recipient: &str,
    payload: &str,
) -> Result<bool, StoreError> {
    let now = now_ms();
    let done = sqlx::query(
        "INSERT INTO outbox (kind, request_id, dedupe_key, recipient, payload, next_attempt_at, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT (dedupe_key) DO NOTHING",
    )
    .bind(kind.as_str())
    .bind(request_id)
    .bind(dedupe_key)
    .bind(recipient)
    .bind(payload)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// How many rows of `kind` went to `recipient` since `since_ms`.
pub async fn queued_since(
    tx: &mut Tx,
    kind: OutboxKind,
    recipient: &str,
    since_ms: i64,
) -> Result<i64, StoreError> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS n FROM outbox WHERE kind = $1 AND recipient = $2 AND created_at >= $3",
    )
    .bind(kind.as_str())
    .bind(recipient)
    .bind(since_ms)
    .fetch_one(&mut **tx)
    .await?;
    Ok(row.try_get("n")?)
}

impl Store {
    /// Claims up to `limit` due rows for `lease_ms`; another worker (or a
    /// replica) skips them until the lease ends.
    pub async fn claim(
        &self,
        kind: OutboxKind,
        limit: i64,
        lease_ms: i64,
    ) -> Result<Vec<OutboxItem>, StoreError> {
        self.claim_kinds(&[kind], limit, lease_ms).await
    }

    /// Claims due rows of any of `kinds`, oldest first.
    pub async fn claim_kinds(
        &self,
        kinds: &[OutboxKind],
        limit: i64,
        lease_ms: i64,
    ) -> Result<Vec<OutboxItem>, StoreError> {
        let names: Vec<String> = kinds.iter().map(|k| format!("'{}'", k.as_str())).collect();
        let kinds_sql = names.join(", ");
        let now = now_ms();
        let lock = if self.dialect() == Dialect::Postgres {
            "FOR UPDATE SKIP LOCKED"
        } else {
            ""
        };
        // A row waits while an earlier one of its kind about the same
        // request to the same recipient is still pending (in another
        // replica's hands, or held by one that was killed): letters arrive
        // in the order their request lived them, and none is dropped
        // because a later one overtook it.
        let sql = format!(
            "UPDATE outbox SET locked_until = $1 WHERE id IN (
                SELECT id FROM outbox WHERE kind IN ({kinds_sql}) AND state = 'pending' AND next_attempt_at <= $2
                AND locked_until <= $2 AND NOT EXISTS (
                  SELECT 1 FROM outbox earlier WHERE earlier.request_id = outbox.request_id
                  AND earlier.kind = outbox.kind AND earlier.recipient = outbox.recipient
                  AND earlier.id < outbox.id AND earlier.state = 'pending')
                ORDER BY id LIMIT $3 {lock})
             RETURNING id, kind, request_id, recipient, payload, attempts"
        );
        let rows = sqlx::query(&sql)
            .bind(now + lease_ms)
            .bind(now)
            .bind(limit)
            .fetch_all(self.pool())
            .await?;
        let mut items: Vec<OutboxItem> = rows
            .iter()
            .map(|r| {
                let kind: String = r.try_get("kind")?;
                Ok(OutboxItem {
                    id: r.try_get("id")?,
                    kind: OutboxKind::parse(&kind)
                        .ok_or_else(|| StoreError::Corrupt(format!("outbox kind {kind}")))?,
                    request_id: r.try_get("request_id")?,
                    recipient: r.try_get("recipient")?,
                    payload: r.try_get("payload")?,
                    attempts: r.try_get("attempts")?,
                })
            })
            .collect::<Result<_, StoreError>>()?;
        items.sort_by_key(|i| i.id);
        Ok(items)
    }

    /// Frees every claim: for a single-process desk (SQLite) at start-up,
    /// where no other worker can hold one.
    pub async fn release_claims(&self) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE outbox SET locked_until = 0 WHERE state = 'pending' AND locked_until > 0",
        )
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected())
    }

    /// The side effect happened.
    pub async fn mark_sent(&self, id: i64) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE outbox SET state = 'sent', sent_at = $2, attempts = attempts + 1, last_error = NULL WHERE id = $1",
        )
        .bind(id)
        .bind(now_ms())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Marks a letter `superseded` (never sent) when a later letter to the
    /// same recipient about the same request went out already: a letter
    /// whose send was cut (its lease ran out) must not arrive after the
    /// news that followed it. True when it was.
    pub async fn supersede_if_outdated(&self, id: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE outbox SET state = 'superseded', locked_until = 0,
             last_error = 'a later letter about this request was sent first'
             WHERE id = $1 AND request_id IS NOT NULL AND EXISTS (
               SELECT 1 FROM outbox later WHERE later.request_id = outbox.request_id
               AND later.kind = outbox.kind AND later.recipient = outbox.recipient
               AND later.id > outbox.id AND later.state = 'sent')",
        )
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// It failed; try again at `next_attempt_at`, or never when `permanent`.
    pub async fn mark_attempt_failed(
        &self,
        id: i64,
        error: &str,
        next_attempt_at: i64,
        permanent: bool,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE outbox SET attempts = attempts + 1, last_error = $2, next_attempt_at = $3, locked_until = 0,
             state = $4 WHERE id = $1",
        )
        .bind(id)
        .bind(error)
        .bind(next_attempt_at)
        .bind(if permanent { "failed" } else { "pending" })
        .execute(self.pool())
        .await?;
        Ok(())
    }
}

/// Marks a row done inside a transaction (with the state change it causes).
pub async fn mark_sent_tx(tx: &mut Tx, id: i64) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE outbox SET state = 'sent', sent_at = $2, attempts = attempts + 1, last_error = NULL WHERE id = $1",
    )
    .bind(id)
    .bind(now_ms())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Marks a row failed for good inside a transaction.
pub async fn mark_failed_tx(tx: &mut Tx, id: i64, error: &str) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE outbox SET state = 'failed', attempts = attempts + 1, last_error = $2, locked_until = 0 WHERE id = $1",
    )
    .bind(id)
    .bind(error)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A side effect of a request as the console lists it.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow)]
pub struct JobRow {
    /// Row id.
    pub id: i64,
    /// email, sms, account_lock, …
    pub kind: String,
    /// Address, number or account.
    pub recipient: String,
    /// pending | sent | failed.
    pub state: String,
    /// Attempts so far.
    pub attempts: i64,
    /// Next try (ms).
    pub next_attempt_at: i64,
    /// Why the last try failed.
    pub last_error: Option<String>,
    /// Queued (ms).
    pub created_at: i64,
    /// Done (ms).
    pub sent_at: Option<i64>,
}

impl Store {
    /// The side effects of a request, oldest first.
    pub async fn jobs_of(&self, request_id: i64) -> Result<Vec<JobRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, kind, recipient, state, attempts, next_attempt_at, last_error, created_at, sent_at
             FROM outbox WHERE request_id = $1 ORDER BY id",
        )
        .bind(request_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| Ok(<JobRow as sqlx::FromRow<_>>::from_row(r)?))
            .collect()
    }

    /// The request an outbox row of `kind` belongs to.
    pub async fn outbox_request(
        &self,
        id: i64,
        kind: OutboxKind,
    ) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query("SELECT request_id FROM outbox WHERE id = $1 AND kind = $2")
            .bind(id)
            .bind(kind.as_str())
            .fetch_optional(self.pool())
            .await?;
        Ok(row.and_then(|r| r.try_get::<Option<i64>, _>("request_id").ok().flatten()))
    }

    /// Whether the outbox row `id` is still to be done.
    pub async fn outbox_is_pending(&self, id: i64) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT 1 AS one FROM outbox WHERE id = $1 AND state = 'pending'")
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.is_some())
    }

    /// Outbox rows by kind and state, for `/metrics`.
    pub async fn outbox_counts(&self) -> Result<Vec<(String, String, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT kind, state, COUNT(*) AS n FROM outbox GROUP BY kind, state ORDER BY kind, state",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("kind")?, r.try_get("state")?, r.try_get("n")?)))
            .collect()
    }

    /// Pending side effects that have failed at least once (the console's
    /// "retrying" count).
    pub async fn retrying_jobs(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT kind, COUNT(*) AS n FROM outbox WHERE state = 'pending' AND attempts > 0 GROUP BY kind ORDER BY kind",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("kind")?, r.try_get("n")?)))
            .collect()
    }
}
