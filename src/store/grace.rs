//! The grace period's columns: where the SMS goes, when the window ends,
//! when a request closed and was purged; and the embedded account table's
//! lock and delete.

use sqlx::Row;

use super::requests::{request_row, REQUEST_COLUMNS};
use super::{Dialect, RequestRow, Store, StoreError, Tx};
use crate::domain::time::now_ms;

/// A request read inside a transaction (it must exist).
pub async fn request_in(tx: &mut Tx, id: i64) -> Result<RequestRow, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {REQUEST_COLUMNS} FROM requests WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or_else(|| StoreError::Corrupt(format!("request {id} vanished")))?;
    request_row(&row)
}

/// Records where the holder's SMS goes.
pub async fn set_sms_to(tx: &mut Tx, id: i64, to: Option<&str>) -> Result<(), StoreError> {
    sqlx::query("UPDATE requests SET sms_to = $1 WHERE id = $2")
        .bind(to)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Where the holder's SMS goes.
pub async fn sms_to(tx: &mut Tx, id: i64) -> Result<Option<String>, StoreError> {
    let row = sqlx::query("SELECT sms_to FROM requests WHERE id = $1")
        .bind(id)
        .fetch_one(&mut **tx)
        .await?;
    Ok(row.try_get("sms_to")?)
}

/// Starts the window, once: false if it had started or the request left
/// its grace period.
pub async fn start_window(
    tx: &mut Tx,
    id: i64,
    accepted_at: i64,
    deadline: i64,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE requests SET sms_accepted_at = $1, grace_deadline = $2, updated_at = $1, version = version + 1
         WHERE id = $3 AND state = 'grace_period' AND grace_deadline IS NULL",
    )
    .bind(accepted_at)
    .bind(deadline)
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Forgets an approval (the request went back to an operator).
pub async fn reset_grace(tx: &mut Tx, id: i64) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE requests SET sms_to = NULL, sms_accepted_at = NULL, grace_deadline = NULL,
         approved_account = NULL, first_approver = NULL WHERE id = $1",
    )
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The messages of request `$1` that no other unpurged request holds.
const ONLY_THIS_REQUESTS: &str = "SELECT sha256 FROM request_messages WHERE request_id = $1
     AND sha256 NOT IN (SELECT m.sha256 FROM request_messages m JOIN requests r ON r.id = m.request_id
                        WHERE m.request_id <> $1 AND r.purged_at IS NULL)";

/// Purges a closed request: its messages' data keys are deleted (every
/// copy of their sealed blobs, wherever it is, becomes noise), the blobs
/// and what was read from them are dropped; the reference, the ID number,
/// the photos' hashes and the audit trail stay. Returns how many messages.
pub async fn purge_request(tx: &mut Tx, id: i64) -> Result<u64, StoreError> {
    sqlx::query(&format!(
        "DELETE FROM data_keys WHERE owner IN ({ONLY_THIS_REQUESTS})"
    ))
    .bind(id)
    .execute(&mut **tx)
    .await?;
    let done = sqlx::query(&format!(
        "UPDATE raw_messages SET raw = NULL, inspection = NULL
         WHERE raw IS NOT NULL AND sha256 IN ({ONLY_THIS_REQUESTS})"
    ))
    .bind(id)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "UPDATE requests SET purged_at = $1, full_name = NULL, phone = NULL, reason = NULL,
         assessment = NULL, sms_to = NULL WHERE id = $2",
    )
    .bind(now_ms())
    .bind(id)
    .execute(&mut **tx)
    .await?;
    sqlx::query("UPDATE photos SET filename = NULL WHERE request_id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    // Letters and SMS already sent keep only their recipient and state.
    sqlx::query("UPDATE outbox SET payload = '{}' WHERE request_id = $1 AND state <> 'pending'")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected())
}

/// Files outside the database that carry a purged request's data.
#[derive(Debug, Clone, Default)]
pub struct PurgedFiles {
    /// The request.
    pub request_id: i64,
    /// Where its messages were read (`maildir:cur/NAME`, `imap:…`).
    pub origins: Vec<String>,
    /// Its outbox rows (letters and SMS, by id).
    pub outbox_ids: Vec<i64>,
}

impl Store {
    /// Purged requests whose files outside the database are not yet
    /// removed.
    pub async fn purged_files(&self, limit: i64) -> Result<Vec<PurgedFiles>, StoreError> {
        let ids = sqlx::query(
            "SELECT id FROM requests WHERE purged_at IS NOT NULL AND files_removed_at IS NULL
             ORDER BY id LIMIT $1",
        )
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        let mut out = Vec::new();
        for r in ids {
            let id: i64 = r.try_get("id")?;
            let origins = sqlx::query(&format!(
                "SELECT source FROM raw_messages WHERE sha256 IN ({ONLY_THIS_REQUESTS})"
            ))
            .bind(id)
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(|r| r.try_get("source"))
            .collect::<Result<_, _>>()?;
            let outbox_ids = sqlx::query("SELECT id FROM outbox WHERE request_id = $1")
                .bind(id)
                .fetch_all(self.pool())
                .await?
                .iter()
                .map(|r| r.try_get("id"))
                .collect::<Result<_, _>>()?;
            out.push(PurgedFiles {
                request_id: id,
                origins,
                outbox_ids,
            });
        }
        Ok(out)
    }

    /// Records that a purged request's files are gone.
    pub async fn set_files_removed(&self, id: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE requests SET files_removed_at = $1 WHERE id = $2")
            .bind(now_ms())
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// After a purge: SQLite moves the WAL's pages into the (securely
    /// deleted) file and empties the WAL, so no old page keeps a copy.
    pub async fn compact_after_purge(&self) -> Result<(), StoreError> {
        match self.dialect() {
            Dialect::Sqlite => {
                sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                    .execute(self.pool())
                    .await?;
            }
            Dialect::Postgres => {
                // Rewrites the small key table, so the deleted keys' old
                // row versions leave the table's files too.
                sqlx::query("VACUUM FULL data_keys")
                    .execute(self.pool())
                    .await?;
            }
        }
        Ok(())
    }
}

/// Claims the digest of `day`; false when another run sent it.
pub async fn claim_digest(tx: &mut Tx, day: &str) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "INSERT INTO digests (day, sent_at) VALUES ($1, $2) ON CONFLICT (day) DO NOTHING",
    )
    .bind(day)
    .bind(now_ms())
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

impl Store {
    /// Requests in their grace period whose window ended before `now`:
    /// (id, version, approved account).
    pub async fn deadlines_passed(
        &self,
        now: i64,
    ) -> Result<Vec<(i64, i64, Option<String>)>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, version, approved_account FROM requests
             WHERE state = 'grace_period' AND grace_deadline IS NOT NULL AND grace_deadline <= $1
             ORDER BY grace_deadline LIMIT 500",
        )
        .bind(now)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("id")?,
                    r.try_get("version")?,
                    r.try_get("approved_account")?,
                ))
            })
            .collect()
    }

    /// The earliest window end still ahead, if any (the timer sleeps until then).
    pub async fn next_deadline(&self) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query(
            "SELECT MIN(grace_deadline) AS d FROM requests WHERE state = 'grace_period' AND grace_deadline IS NOT NULL",
        )
        .fetch_one(self.pool())
        .await?;
        Ok(row.try_get("d")?)
    }

    /// Closed requests not yet purged that closed before `before` (ms).
    pub async fn closed_before(&self, before: i64) -> Result<Vec<i64>, StoreError> {
        let rows = sqlx::query(
            "SELECT id FROM requests WHERE closed_at IS NOT NULL AND closed_at < $1 AND purged_at IS NULL
             AND state IN ('deleted', 'rejected', 'cancelled', 'closed_incomplete') ORDER BY id LIMIT 1000",
        )
        .bind(before)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(|r| Ok(r.try_get("id")?)).collect()
    }

    /// Sets an embedded account's state (active | locked).
    pub async fn set_portal_account_state(
        &self,
        account_id: &str,
        state: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE portal_accounts SET state = $1 WHERE account_id = $2 AND state <> 'deleted'",
        )
        .bind(state)
        .bind(account_id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Deletes an embedded account (no error when it is gone already).
    pub async fn delete_portal_account(&self, account_id: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM portal_accounts WHERE account_id = $1")
            .bind(account_id)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}
