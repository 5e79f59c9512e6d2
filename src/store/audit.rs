//! The audit log as a hash chain. Every row carries its position (`seq`,
//! unique), the hash of the row before it (`prev_hash`) and its own hash:
//! SHA-256 over a canonical encoding of all its columns, `prev_hash`
//! included. A row edited, deleted or moved breaks the chain at that row,
//! and `huytk audit verify` names it. Appends are serialized: an append
//! reads the head and inserts the next position; two writers that read the
//! same head cannot both insert it (the unique index on `seq`), and the
//! loser retries on the new head (PostgreSQL: inside a savepoint, so the
//! rest of its transaction stands; SQLite: its transaction holds the write
//! lock from its start, so nobody else appends meanwhile).

use sha2::{Digest, Sha256};
use sqlx::Row;

use super::{AuditEntry, Dialect, Store, StoreError, Tx};

/// The `prev_hash` of the first row.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// How many times an append retries after another writer took its position.
const APPEND_TRIES: usize = 100;

/// The chain's newest row, as the daily digest names it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ChainHead {
    /// The row's id.
    pub id: i64,
    /// Its position in the chain (1 for the first row).
    pub seq: i64,
    /// Its hash (hex).
    pub hash: String,
}

/// Where the chain breaks, for `huytk audit verify`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainBreak {
    /// The row's columns no longer give its hash: edited, or moved to
    /// another position (its position and id are hashed too).
    Edited {
        /// The row's id.
        id: i64,
        /// Its position.
        seq: i64,
    },
    /// Rows are missing before this one (a position is skipped).
    Missing {
        /// The first missing position.
        expected_seq: i64,
        /// The row found instead.
        id: i64,
        /// Its position.
        seq: i64,
    },
    /// The row does not link to the one before it: that one was replaced
    /// (edited and re-hashed) or the two were reordered.
    Unlinked {
        /// The row whose link is wrong.
        id: i64,
        /// Its position.
        seq: i64,
        /// The row before it in the chain.
        before_id: i64,
    },
    /// A row outside the chain (written around the store, or by a
    /// version without the chain and never chained since).
    Unchained {
        /// The row's id.
        id: i64,
    },
    /// The head a digest named is not in the chain as it was: rows at the
    /// end were removed or rewritten.
    HeadMismatch {
        /// The id the digest named.
        id: i64,
    },
}

impl std::fmt::Display for ChainBreak {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChainBreak::Edited { id, seq } => write!(
                f,
                "audit row {id} (position {seq}) was edited or moved: its columns do not give its hash"
            ),
            ChainBreak::Missing { expected_seq, id, seq } => write!(
                f,
                "audit rows were deleted: position {expected_seq} is missing before row {id} (position {seq})"
            ),
            ChainBreak::Unlinked { id, seq, before_id } => write!(
                f,
                "audit row {id} (position {seq}) does not link to row {before_id} before it: one of them was replaced or the rows were reordered"
            ),
            ChainBreak::Unchained { id } => {
                write!(f, "audit row {id} is outside the chain (inserted around the desk)")
            }
            ChainBreak::HeadMismatch { id } => write!(
                f,
                "the head {id} named by a digest is not in the chain with that hash: rows at the end were removed or rewritten"
            ),
        }
    }
}

/// What `verify_audit` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainReport {
    /// Rows checked.
    pub rows: i64,
    /// The newest row.
    pub head: Option<ChainHead>,
    /// The first break, if any.
    pub broken: Option<ChainBreak>,
}

/// One stored row with every column.
#[derive(Debug, Clone)]
struct ChainRow {
    id: i64,
    seq: Option<i64>,
    entry: AuditEntry,
    prev_hash: Option<String>,
    hash: Option<String>,
}

const ROW_COLUMNS: &str =
    "id, seq, at, request_id, actor, action, from_state, to_state, detail, prev_hash, hash";

fn chain_row(r: &sqlx::any::AnyRow) -> Result<ChainRow, StoreError> {
    Ok(ChainRow {
        id: r.try_get("id")?,
        seq: r.try_get("seq")?,
        entry: AuditEntry {
            at: r.try_get("at")?,
            request_id: r.try_get("request_id")?,
            actor: r.try_get("actor")?,
            action: r.try_get("action")?,
            from_state: r.try_get("from_state")?,
            to_state: r.try_get("to_state")?,
            detail: r.try_get("detail")?,
        },
        prev_hash: r.try_get("prev_hash")?,
        hash: r.try_get("hash")?,
    })
}

/// The hash of a row: SHA-256 over its columns in a fixed order, each
/// written as a tag (`N` for NULL, `S` for a value) and, for a value, its
/// length (8 bytes, big-endian) and its UTF-8 bytes; numbers in decimal.
pub fn row_hash(id: i64, seq: i64, e: &AuditEntry, prev_hash: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"huytk-audit-v1");
    let mut field = |v: Option<&str>| match v {
        None => h.update(b"N"),
        Some(s) => {
            h.update(b"S");
            h.update((s.len() as u64).to_be_bytes());
            h.update(s.as_bytes());
        }
    };
    field(Some(&id.to_string()));
    field(Some(&seq.to_string()));
    field(Some(&e.at.to_string()));
    field(e.request_id.map(|r| r.to_string()).as_deref());
    field(Some(&e.actor));
    field(Some(&e.action));
    field(e.from_state.as_deref());
    field(e.to_state.as_deref());
    field(e.detail.as_deref());
    field(Some(prev_hash));
    hex::encode(h.finalize())
}

fn dialect_of(tx: &Tx) -> Dialect {
    let conn: &sqlx::AnyConnection = tx;
    if conn.backend_name().eq_ignore_ascii_case("sqlite") {
        Dialect::Sqlite
    } else {
        Dialect::Postgres
    }
}

async fn head_in(tx: &mut Tx) -> Result<(i64, String), StoreError> {
    let row = sqlx::query(
        "SELECT seq, hash FROM audit_log WHERE seq IS NOT NULL ORDER BY seq DESC LIMIT 1",
    )
    .fetch_optional(&mut **tx)
    .await?;
    Ok(match row {
        Some(r) => (
            r.try_get("seq")?,
            r.try_get::<Option<String>, _>("hash")?
                .unwrap_or_else(|| GENESIS.to_owned()),
        ),
        None => (0, GENESIS.to_owned()),
    })
}

/// Runs `step` (one link: read the head, write the next position) until
/// no other writer took that position first.
async fn serialized<F>(tx: &mut Tx, mut step: F) -> Result<(), StoreError>
where
    F: for<'t> FnMut(
        &'t mut Tx,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<(), StoreError>> + Send + 't>,
    >,
{
    let pg = dialect_of(tx) == Dialect::Postgres;
    let mut tries = 0;
    loop {
        tries += 1;
        if pg {
            sqlx::query("SAVEPOINT audit_append")
                .execute(&mut **tx)
                .await?;
        }
        match step(tx).await {
            Ok(()) => {
                if pg {
                    sqlx::query("RELEASE SAVEPOINT audit_append")
                        .execute(&mut **tx)
                        .await?;
                }
                return Ok(());
            }
            Err(e) if e.is_unique_violation() && tries < APPEND_TRIES => {
                if pg {
                    sqlx::query("ROLLBACK TO SAVEPOINT audit_append")
                        .execute(&mut **tx)
                        .await?;
                }
                tracing::debug!(
                    tries,
                    "audit append: another writer took the head; retrying"
                );
            }
            Err(e) => return Err(e),
        }
    }
}

/// Appends a row to the audit log, chained to the head. The only way the
/// desk writes the audit log.
pub async fn audit(tx: &mut Tx, e: &AuditEntry) -> Result<(), StoreError> {
    let e = e.clone();
    serialized(tx, move |tx| {
        let e = e.clone();
        Box::pin(async move {
            let (head_seq, head_hash) = head_in(tx).await?;
            let seq = head_seq + 1;
            let row = sqlx::query(
                "INSERT INTO audit_log (at, request_id, actor, action, from_state, to_state, detail, seq, prev_hash)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
            )
            .bind(e.at)
            .bind(e.request_id)
            .bind(&e.actor)
            .bind(&e.action)
            .bind(e.from_state.as_deref())
            .bind(e.to_state.as_deref())
            .bind(e.detail.as_deref())
            .bind(seq)
            .bind(&head_hash)
            .fetch_one(&mut **tx)
            .await?;
            let id: i64 = row.try_get("id")?;
            sqlx::query("UPDATE audit_log SET hash = $1 WHERE id = $2")
                .bind(row_hash(id, seq, &e, &head_hash))
                .bind(id)
                .execute(&mut **tx)
                .await?;
            Ok(())
        })
    })
    .await
}

impl Store {
    /// Chains the rows written before the chain existed (up to the id
    /// migration 0009 recorded), in id order, after the head. Runs at every
    /// start and finds nothing to do after the first; replicas starting at
    /// once take turns (PostgreSQL: an advisory lock). A row written later
    /// around the chain is left alone for `verify_audit` to name.
    pub async fn chain_unchained(&self) -> Result<u64, StoreError> {
        let mut chained = 0;
        loop {
            let mut tx = self.begin().await?;
            if self.dialect() == Dialect::Postgres {
                sqlx::query("SELECT pg_advisory_xact_lock(7306157816521335040)")
                    .execute(&mut *tx)
                    .await?;
            }
            let rows = sqlx::query(&format!(
                "SELECT {ROW_COLUMNS} FROM audit_log WHERE seq IS NULL
                 AND id <= (SELECT MAX(legacy_until) FROM audit_chain_backfill) ORDER BY id LIMIT 500"
            ))
            .fetch_all(&mut *tx)
            .await?;
            if rows.is_empty() {
                super::rollback(tx).await?;
                return Ok(chained);
            }
            for r in &rows {
                let row = chain_row(r)?;
                serialized(&mut tx, move |tx| {
                    let row = row.clone();
                    Box::pin(async move {
                        let (head_seq, head_hash) = head_in(tx).await?;
                        let seq = head_seq + 1;
                        sqlx::query(
                            "UPDATE audit_log SET seq = $1, prev_hash = $2, hash = $3 WHERE id = $4 AND seq IS NULL",
                        )
                        .bind(seq)
                        .bind(&head_hash)
                        .bind(row_hash(row.id, seq, &row.entry, &head_hash))
                        .bind(row.id)
                        .execute(&mut **tx)
                        .await?;
                        Ok(())
                    })
                })
                .await?;
                chained += 1;
            }
            super::commit(tx).await?;
        }
    }

    /// The chain's newest row.
    pub async fn audit_head(&self) -> Result<Option<ChainHead>, StoreError> {
        let row = sqlx::query(
            "SELECT id, seq, hash FROM audit_log WHERE seq IS NOT NULL ORDER BY seq DESC LIMIT 1",
        )
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| {
            Ok(ChainHead {
                id: r.try_get("id")?,
                seq: r.try_get("seq")?,
                hash: r.try_get::<Option<String>, _>("hash")?.unwrap_or_default(),
            })
        })
        .transpose()
    }

    /// Walks the chain from its first row and stops at the first break.
    /// `head` (an id and hash from a digest) must be in the chain as named.
    pub async fn verify_audit(&self, head: Option<(i64, &str)>) -> Result<ChainReport, StoreError> {
        let mut report = ChainReport {
            rows: 0,
            head: None,
            broken: None,
        };
        let mut expected_seq = 1;
        let mut prev = GENESIS.to_owned();
        let mut prev_id = 0;
        let mut head_seen = head.is_none();
        let mut after = 0;
        'pages: loop {
            let rows = sqlx::query(&format!(
                "SELECT {ROW_COLUMNS} FROM audit_log WHERE seq IS NOT NULL AND seq > $1 ORDER BY seq LIMIT 1000"
            ))
            .bind(after)
            .fetch_all(self.pool())
            .await?;
            if rows.is_empty() {
                break;
            }
            for r in &rows {
                let row = chain_row(r)?;
                let seq = row.seq.unwrap_or_default();
                after = seq;
                report.rows += 1;
                let stored = row.hash.clone().unwrap_or_default();
                let linked_to = row.prev_hash.clone().unwrap_or_default();
                let own = row_hash(row.id, seq, &row.entry, &linked_to);
                report.broken = if own != stored {
                    Some(ChainBreak::Edited { id: row.id, seq })
                } else if seq != expected_seq {
                    Some(ChainBreak::Missing {
                        expected_seq,
                        id: row.id,
                        seq,
                    })
                } else if linked_to != prev {
                    Some(ChainBreak::Unlinked {
                        id: row.id,
                        seq,
                        before_id: prev_id,
                    })
                } else {
                    None
                };
                if report.broken.is_some() {
                    break 'pages;
                }
                if let Some((id, hash)) = head {
                    if id == row.id {
                        if hash != stored {
                            report.broken = Some(ChainBreak::HeadMismatch { id });
                            break 'pages;
                        }
                        head_seen = true;
                    }
                }
                report.head = Some(ChainHead {
                    id: row.id,
                    seq,
                    hash: stored.clone(),
                });
                prev = stored;
                prev_id = row.id;
                expected_seq += 1;
            }
        }
        if report.broken.is_none() {
            if let Some((id, _)) = head.filter(|_| !head_seen) {
                report.broken = Some(ChainBreak::HeadMismatch { id });
            }
        }
        if report.broken.is_none() {
            let loose =
                sqlx::query("SELECT id FROM audit_log WHERE seq IS NULL ORDER BY id LIMIT 1")
                    .fetch_optional(self.pool())
                    .await?;
            if let Some(r) = loose {
                report.broken = Some(ChainBreak::Unchained {
                    id: r.try_get("id")?,
                });
            }
        }
        Ok(report)
    }

    /// Records that `actor` looked at something of a request (a photo, the
    /// mail thread): an audit row of its own, committed before the look is
    /// served.
    pub async fn record_view(
        &self,
        actor: &str,
        request_id: i64,
        action: crate::domain::Action,
        detail: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        audit(
            &mut tx,
            &AuditEntry {
                at: crate::domain::time::now_ms(),
                request_id: Some(request_id),
                actor: actor.to_owned(),
                action: action.as_str().to_owned(),
                from_state: None,
                to_state: None,
                detail: Some(detail.to_owned()),
            },
        )
        .await?;
        super::commit(tx).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(detail: Option<&str>) -> AuditEntry {
        AuditEntry {
            at: 1,
            request_id: None,
            actor: "system".into(),
            action: "created".into(),
            from_state: None,
            to_state: Some("needs_info".into()),
            detail: detail.map(str::to_owned),
        }
    }

    #[test]
    fn every_column_counts_and_null_is_not_empty() {
        let base = row_hash(1, 1, &entry(None), GENESIS);
        assert_eq!(base.len(), 64);
        assert_ne!(base, row_hash(1, 1, &entry(Some("")), GENESIS));
        assert_ne!(base, row_hash(2, 1, &entry(None), GENESIS));
        assert_ne!(base, row_hash(1, 2, &entry(None), GENESIS));
        assert_ne!(base, row_hash(1, 1, &entry(None), &base));
        // Lengths are written: moving bytes between columns changes it.
        let mut a = entry(Some("ab"));
        a.actor = "x".into();
        let mut b = entry(Some("b"));
        b.actor = "xa".into();
        assert_ne!(row_hash(1, 1, &a, GENESIS), row_hash(1, 1, &b, GENESIS));
    }
}
