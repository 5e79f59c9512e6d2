//! What the console reads: the queue with its filters, dashboard counts,
//! the audit log, claims on requests, and the embedded directory of portal
//! accounts.

use futures::future::BoxFuture;
use sqlx::{FromRow, Row};

use super::requests::{request_row, REQUEST_COLUMNS};
use super::{AuditEntry, RequestRow, Store, StoreError, Tx};
use crate::accounts::{AccountError, AccountState, DirectoryTable, PortalAccount};
use crate::domain::time::now_ms;
use crate::domain::RequestState;

/// What the queue is searched by, parsed from the operator's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Search {
    /// A CCCD/CMND number (digits).
    IdNumber(String),
    /// A phone in E.164.
    Phone(String),
    /// An email address (lower case).
    Email(String),
    /// A request reference (`HTK-…`).
    Reference(String),
}

/// Which requests the queue lists.
#[derive(Debug, Clone, Default)]
pub struct QueueFilter {
    /// One state, or every state.
    pub state: Option<RequestState>,
    /// Only these due dates: on or before this day (YYYY-MM-DD).
    pub due_by: Option<String>,
    /// Only open requests (with `due_by`: "due soon" and "overdue").
    pub open_only: bool,
    /// A search.
    pub search: Option<Search>,
    /// Keyset paging: rows after this (due_date, received_at, id).
    pub after: Option<(String, i64, i64)>,
    /// Page size.
    pub limit: i64,
    /// Rows skipped.
    pub offset: i64,
}

const OPEN_STATES: &str = "('needs_info', 'pending_review', 'grace_period', 'deleting')";

/// An audit line with its request's reference.
#[derive(Debug, Clone, serde::Serialize, FromRow)]
pub struct AuditLine {
    /// Row id.
    pub id: i64,
    /// When (ms).
    pub at: i64,
    /// Request.
    pub request_id: Option<i64>,
    /// Its reference.
    pub reference: Option<String>,
    /// Who.
    pub actor: String,
    /// What.
    pub action: String,
    /// State before.
    pub from_state: Option<String>,
    /// State after.
    pub to_state: Option<String>,
    /// Details.
    pub detail: Option<String>,
}

/// Which audit lines to list.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Exact actor.
    pub actor: Option<String>,
    /// Exact action.
    pub action: Option<String>,
    /// Request reference.
    pub reference: Option<String>,
    /// From this time (ms, inclusive).
    pub from_ms: Option<i64>,
    /// Before this time (ms).
    pub until_ms: Option<i64>,
    /// Lines before this id (paging backwards).
    pub before_id: Option<i64>,
    /// At most this many.
    pub limit: i64,
}

/// Why a claim was not taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// The caller holds it now.
    Held,
    /// Someone else holds it.
    HeldBy(String),
    /// No such request.
    Missing,
}

fn bind_filter<'q>(
    mut q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    f: &'q QueueFilter,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    if let Some(s) = f.state {
        q = q.bind(s.as_str());
    }
    if let Some(d) = &f.due_by {
        q = q.bind(d.as_str());
    }
    if let Some(s) = &f.search {
        q = q.bind(match s {
            Search::IdNumber(v) | Search::Phone(v) | Search::Email(v) | Search::Reference(v) => {
                v.as_str()
            }
        });
    }
    q
}

/// Counting stops here: the queue shows "more than 1,000" (the dashboard
/// has the exact numbers per state).
pub const COUNT_CAP: i64 = 1_000;

fn where_clause(f: &QueueFilter) -> String {
    let mut conds: Vec<String> = Vec::new();
    let mut n = 0;
    let mut next = || {
        n += 1;
        format!("${n}")
    };
    if f.state.is_some() {
        conds.push(format!("state = {}", next()));
    }
    if f.due_by.is_some() {
        conds.push(format!("due_date <= {}", next()));
    }
    if f.open_only {
        conds.push(format!("state IN {OPEN_STATES}"));
    }
    if let Some(s) = &f.search {
        let p = next();
        conds.push(match s {
            Search::IdNumber(_) => format!("id_number = {p}"),
            // The hotline is called from the phone the SMS went to.
            Search::Phone(_) => format!("(phone = {p} OR sms_to = {p})"),
            Search::Email(_) => format!("email = {p}"),
            Search::Reference(_) => format!("reference = {p}"),
        });
    }
    if f.after.is_some() {
        let (a, b, c) = (next(), next(), next());
        conds.push(format!("(due_date, received_at, id) > ({a}, {b}, {c})"));
    }
    if conds.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conds.join(" AND "))
    }
}

impl Store {
    /// A page of the queue, oldest due first, and how many match in all
    /// (counted up to [`COUNT_CAP`] + 1, so a huge state stays cheap).
    pub async fn queue(&self, f: &QueueFilter) -> Result<(Vec<RequestRow>, i64), StoreError> {
        let w = where_clause(f);
        let n = bind_count(f);
        let sql = format!(
            "SELECT {REQUEST_COLUMNS} FROM requests {w} ORDER BY due_date, received_at, id LIMIT ${} OFFSET ${}",
            n + 1,
            n + 2
        );
        let mut q = bind_filter(sqlx::query(&sql), f);
        if let Some((d, r, i)) = &f.after {
            q = q.bind(d.as_str()).bind(*r).bind(*i);
        }
        let rows = q
            .bind(f.limit)
            .bind(f.offset)
            .fetch_all(self.pool())
            .await?;
        // The count ignores the keyset position: it is the filter's total.
        let counted = QueueFilter {
            after: None,
            ..f.clone()
        };
        let count_sql = format!(
            "SELECT COUNT(*) AS n FROM (SELECT 1 FROM requests {} LIMIT {}) capped",
            where_clause(&counted),
            COUNT_CAP + 1
        );
        let total: i64 = bind_filter(sqlx::query(&count_sql), &counted)
            .fetch_one(self.pool())
            .await?
            .try_get("n")?;
        let rows = rows.iter().map(request_row).collect::<Result<_, _>>()?;
        Ok((rows, total))
    }

    /// Open requests due on or before `day` (YYYY-MM-DD) and those due
    /// before `today` (overdue).
    pub async fn due_counts(&self, day: &str, today: &str) -> Result<(i64, i64), StoreError> {
        let r = sqlx::query(&format!(
            "SELECT
               (SELECT COUNT(*) FROM requests WHERE state IN {OPEN_STATES} AND due_date <= $1 AND due_date >= $2) AS soon,
               (SELECT COUNT(*) FROM requests WHERE state IN {OPEN_STATES} AND due_date < $2) AS overdue"
        ))
        .bind(day)
        .bind(today)
        .fetch_one(self.pool())
        .await?;
        Ok((r.try_get("soon")?, r.try_get("overdue")?))
    }

    /// Audit lines, newest first.
    pub async fn audit_lines(&self, f: &AuditFilter) -> Result<Vec<AuditLine>, StoreError> {
        let mut conds = Vec::new();
        let mut n = 0;
        let mut next = || {
            n += 1;
            format!("${n}")
        };
        if f.actor.is_some() {
            conds.push(format!("a.actor = {}", next()));
        }
        if f.action.is_some() {
            conds.push(format!("a.action = {}", next()));
        }
        if f.reference.is_some() {
            conds.push(format!("r.reference = {}", next()));
        }
        if f.from_ms.is_some() {
            conds.push(format!("a.at >= {}", next()));
        }
        if f.until_ms.is_some() {
            conds.push(format!("a.at < {}", next()));
        }
        if f.before_id.is_some() {
            conds.push(format!("a.id < {}", next()));
        }
        let limit = next();
        let w = if conds.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conds.join(" AND "))
        };
        let sql = format!(
            "SELECT a.id, a.at, a.request_id, r.reference, a.actor, a.action, a.from_state, a.to_state, a.detail
             FROM audit_log a LEFT JOIN requests r ON r.id = a.request_id {w} ORDER BY a.id DESC LIMIT {limit}"
        );
        let mut q = sqlx::query(&sql);
        for v in [&f.actor, &f.action, &f.reference].into_iter().flatten() {
            q = q.bind(v.as_str());
        }
        for v in [f.from_ms, f.until_ms, f.before_id].into_iter().flatten() {
            q = q.bind(v);
        }
        let rows = q.bind(f.limit).fetch_all(self.pool()).await?;
        rows.iter().map(|r| Ok(AuditLine::from_row(r)?)).collect()
    }

    /// Claims a request for `login` until `until` (ms); `take_over` takes
    /// it from another holder (supervisors).
    pub async fn claim_request(
        &self,
        id: i64,
        login: &str,
        until: i64,
        take_over: bool,
    ) -> Result<ClaimOutcome, StoreError> {
        let mut tx = self.begin().await?;
        let row = sqlx::query("SELECT claimed_by, claimed_until FROM requests WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else {
            tx.rollback().await?;
            return Ok(ClaimOutcome::Missing);
        };
        let by: Option<String> = row.try_get("claimed_by")?;
        let till: Option<i64> = row.try_get("claimed_until")?;
        let now = now_ms();
        if let (Some(by), Some(till)) = (&by, till) {
            if till > now && by != login && !take_over {
                tx.rollback().await?;
                return Ok(ClaimOutcome::HeldBy(by.clone()));
            }
        }
        sqlx::query("UPDATE requests SET claimed_by = $1, claimed_until = $2 WHERE id = $3")
            .bind(login)
            .bind(until)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let taken_from = by.filter(|b| b != login && till.is_some_and(|t| t > now));
        if taken_from.is_some() {
            super::audit(
                &mut tx,
                &AuditEntry {
                    at: now,
                    request_id: Some(id),
                    actor: login.to_owned(),
                    action: crate::domain::Action::ClaimTakenOver.as_str().into(),
                    from_state: None,
                    to_state: None,
                    detail: taken_from,
                },
            )
            .await?;
        }
        tx.commit().await?;
        Ok(ClaimOutcome::Held)
    }

    /// Lets go of a request held by `login`.
    pub async fn release_request(&self, id: i64, login: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE requests SET claimed_by = NULL, claimed_until = NULL WHERE id = $1 AND claimed_by = $2",
        )
        .bind(id)
        .bind(login)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Accounts in the embedded directory with any of these numbers.
    pub async fn portal_accounts(
        &self,
        numbers: &[String],
    ) -> Result<Vec<PortalAccount>, StoreError> {
        let mut out: Vec<PortalAccount> = Vec::new();
        for n in numbers {
            let rows = sqlx::query(
                "SELECT account_id, id_number, full_name, birth_date, phone, email, vneid_linked, state
                 FROM portal_accounts WHERE id_number = $1 ORDER BY account_id",
            )
            .bind(n)
            .fetch_all(self.pool())
            .await?;
            for r in &rows {
                let a = portal_account(r)?;
                if !out.iter().any(|o| o.account_id == a.account_id) {
                    out.push(a);
                }
            }
        }
        Ok(out)
    }

    /// Adds or replaces an account in the embedded directory.
    pub async fn put_portal_account(&self, a: &PortalAccount) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO portal_accounts (account_id, id_number, full_name, birth_date, phone, email, vneid_linked, state)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (account_id) DO UPDATE SET id_number = excluded.id_number, full_name = excluded.full_name,
               birth_date = excluded.birth_date, phone = excluded.phone, email = excluded.email,
               vneid_linked = excluded.vneid_linked, state = excluded.state",
        )
        .bind(&a.account_id)
        .bind(&a.id_number)
        .bind(&a.full_name)
        .bind(&a.birth_date)
        .bind(&a.phone)
        .bind(&a.email)
        .bind(a.vneid_linked)
        .bind(a.state.as_str())
        .execute(self.pool())
        .await?;
        Ok(())
    }
}

fn bind_count(f: &QueueFilter) -> usize {
    usize::from(f.state.is_some())
        + usize::from(f.due_by.is_some())
        + usize::from(f.search.is_some())
        + 3 * usize::from(f.after.is_some())
}

/// Sets the decision columns of a request inside a state change.
pub async fn set_decision(
    tx: &mut Tx,
    id: i64,
    approved_account: Option<&str>,
    first_approver: Option<&str>,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE requests SET approved_account = $1, first_approver = $2 WHERE id = $3")
        .bind(approved_account)
        .bind(first_approver)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Ends any claim on a request (it was decided).
pub async fn clear_claim(tx: &mut Tx, id: i64) -> Result<(), StoreError> {
    sqlx::query("UPDATE requests SET claimed_by = NULL, claimed_until = NULL WHERE id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// A `portal_accounts` row, its state parsed here at the edge.
fn portal_account(r: &sqlx::any::AnyRow) -> Result<PortalAccount, StoreError> {
    let state: String = r.try_get("state")?;
    let account_id: String = r.try_get("account_id")?;
    let state = state
        .parse::<AccountState>()
        .map_err(|e| StoreError::Corrupt(format!("portal account {account_id}: {e}")))?;
    Ok(PortalAccount {
        account_id,
        id_number: r.try_get("id_number")?,
        full_name: r.try_get("full_name")?,
        birth_date: r.try_get("birth_date")?,
        phone: r.try_get("phone")?,
        email: r.try_get("email")?,
        vneid_linked: r.try_get("vneid_linked")?,
        state,
    })
}

fn embedded_error(e: StoreError) -> AccountError {
    AccountError::Embedded(Box::new(e))
}

/// The embedded directory's table is this database's `portal_accounts`.
impl DirectoryTable for Store {
    fn accounts<'a>(
        &'a self,
        numbers: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<PortalAccount>, AccountError>> {
        Box::pin(async move { self.portal_accounts(numbers).await.map_err(embedded_error) })
    }
    fn set_state<'a>(
        &'a self,
        account_id: &'a str,
        state: AccountState,
    ) -> BoxFuture<'a, Result<(), AccountError>> {
        Box::pin(async move {
            self.set_portal_account_state(account_id, state.as_str())
                .await
                .map_err(embedded_error)
        })
    }
    fn remove<'a>(&'a self, account_id: &'a str) -> BoxFuture<'a, Result<(), AccountError>> {
        Box::pin(async move {
            self.delete_portal_account(account_id)
                .await
                .map_err(embedded_error)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounts::{AccountStore, EmbeddedDirectory};

    #[tokio::test]
    async fn the_embedded_directory_reads_its_table_typed() {
        let dir = std::env::temp_dir().join(format!("huytk-embedded-dir-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let store = Store::connect(&format!("sqlite://{}/d.db", dir.display()))
            .await
            .unwrap();
        let n = vec!["079203001234".to_owned()];
        store
            .put_portal_account(&PortalAccount {
                account_id: "DVC-1".into(),
                id_number: n[0].clone(),
                full_name: "Nguyễn Văn An".into(),
                birth_date: None,
                phone: Some("+84912345678".into()),
                email: None,
                vneid_linked: 1,
                state: AccountState::Active,
            })
            .await
            .unwrap();
        let d = EmbeddedDirectory::new(store.clone());
        d.lock("DVC-1").await.unwrap();
        assert_eq!(d.find(&n).await.unwrap()[0].state, AccountState::Locked);
        d.unlock("DVC-1").await.unwrap();
        assert_eq!(d.find(&n).await.unwrap()[0].state, AccountState::Active);
        // A hand-edited row in a state the desk does not know is refused,
        // naming the value, not read as some state.
        sqlx::query("UPDATE portal_accounts SET state = 'suspended'")
            .execute(store.pool())
            .await
            .unwrap();
        let e = d.find(&n).await.unwrap_err().to_string();
        assert!(e.contains("suspended"), "{e}");
        d.delete("DVC-1").await.unwrap();
        assert!(d.find(&n).await.unwrap().is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
