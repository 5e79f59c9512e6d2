//! Requests, their messages and photos, and the audit log.

use sqlx::any::AnyRow;
use sqlx::{FromRow, Row};

use super::{Store, StoreError, Tx};
use crate::domain::thread::ThreadToken;
use crate::domain::time::now_ms;
use crate::domain::RequestState;

/// A request as stored.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RequestRow {
    /// Row id.
    pub id: i64,
    /// The reference the citizen sees (`HTK-240715-12`).
    pub reference: String,
    /// Where it stands.
    pub state: RequestState,
    /// The citizen's address.
    pub email: String,
    /// Requested number (digits, valid or not).
    pub id_number: Option<String>,
    /// cccd | cmnd.
    pub id_type: Option<String>,
    /// Full name.
    pub full_name: Option<String>,
    /// Phone, E.164.
    pub phone: Option<String>,
    /// Reason.
    pub reason: Option<String>,
    /// Problem codes.
    pub problems: Vec<String>,
    /// Warning codes.
    pub warnings: Vec<String>,
    /// When the first message came (ms).
    pub received_at: i64,
    /// Service-level due date, YYYY-MM-DD.
    pub due_date: String,
    /// Last change (ms).
    pub updated_at: i64,
    /// How many times a second request for the number joined this one.
    pub duplicate_submissions: i64,
    /// Optimistic-lock counter.
    pub version: i64,
    /// The operator holding it, while `claimed_until` is in the future.
    pub claimed_by: Option<String>,
    /// When the claim lapses (ms).
    pub claimed_until: Option<i64>,
    /// The portal account an approval chose.
    pub approved_account: Option<String>,
    /// With four-eyes approval: who approved first, awaiting a second.
    pub first_approver: Option<String>,
    /// Where the holder's SMS goes (E.164).
    pub sms_to: Option<String>,
    /// When the SMS gateway accepted it (ms): the window's start.
    pub sms_accepted_at: Option<i64>,
    /// When the window ends (ms).
    pub grace_deadline: Option<i64>,
    /// When the request reached a final state (ms).
    pub closed_at: Option<i64>,
    /// The secret of its mail thread (never shown: it would let a reader
    /// join the thread).
    #[serde(skip)]
    pub thread_token: ThreadToken,
    /// The open request this one is about, when it came from another
    /// address than that request's.
    pub linked_to: Option<i64>,
    /// The account a supervisor allowed to be approved although its holder
    /// cannot be told through its own phone, or it was found only through
    /// the card QR.
    pub holder_risk_account: Option<String>,
    /// That supervisor.
    pub holder_risk_by: Option<String>,
}

impl RequestRow {
    /// Who holds the request at `now`, if anyone.
    pub fn holder(&self, now: i64) -> Option<&str> {
        match (&self.claimed_by, self.claimed_until) {
            (Some(who), Some(until)) if until > now => Some(who),
            _ => None,
        }
    }
}

/// A photo of a request as stored.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow)]
pub struct StoredPhoto {
    /// SHA-256 of its bytes.
    pub sha256: String,
    /// The raw message it came in.
    pub message: String,
    /// File name as sent.
    pub filename: Option<String>,
    /// Format found by content.
    pub format: Option<String>,
    /// Width.
    pub width: Option<i64>,
    /// Height.
    pub height: Option<i64>,
    /// id_front | id_back | portrait | unknown.
    pub role: String,
    /// Decodes and is large enough (0/1).
    pub usable: i64,
}

/// A new request's first facts.
#[derive(Debug, Clone)]
pub struct NewRequest<'a> {
    /// The citizen's address.
    pub email: &'a str,
    /// When its first message came (ms).
    pub received_at: i64,
    /// Due date, YYYY-MM-DD.
    pub due_date: &'a str,
    /// Reference date part, YYMMDD.
    pub reference_day: &'a str,
    /// The secret of its mail thread.
    pub thread_token: &'a ThreadToken,
    /// The open request it is about, when it came from another address.
    pub linked_to: Option<i64>,
}

/// What an inspection changes on a request.
#[derive(Debug, Clone)]
pub struct RequestUpdate {
    /// New state.
    pub state: RequestState,
    /// Fields.
    pub id_number: Option<String>,
    /// cccd | cmnd.
    pub id_type: Option<String>,
    /// Name.
    pub full_name: Option<String>,
    /// Phone.
    pub phone: Option<String>,
    /// Reason.
    pub reason: Option<String>,
    /// Problem codes.
    pub problems: Vec<String>,
    /// Warning codes.
    pub warnings: Vec<String>,
    /// The inspection report, JSON.
    pub assessment: String,
    /// Count a duplicate submission.
    pub duplicate_submission: bool,
}

/// One line of the audit log.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow)]
pub struct AuditEntry {
    /// When (ms).
    pub at: i64,
    /// Request, if any.
    pub request_id: Option<i64>,
    /// `system` or an operator.
    pub actor: String,
    /// What happened.
    pub action: String,
    /// State before.
    pub from_state: Option<String>,
    /// State after.
    pub to_state: Option<String>,
    /// Details.
    pub detail: Option<String>,
}

pub(super) const REQUEST_COLUMNS: &str =
    "id, reference, state, email, id_number, id_type, full_name, phone, reason, problems, \
     warnings, received_at, due_date, updated_at, duplicate_submissions, version, claimed_by, \
     claimed_until, approved_account, first_approver, sms_to, sms_accepted_at, grace_deadline, closed_at, \
     thread_token, linked_to, holder_risk_account, holder_risk_by";

fn split_codes(s: String) -> Vec<String> {
    s.split(',')
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
        .collect()
}

pub(super) fn request_row(r: &AnyRow) -> Result<RequestRow, StoreError> {
    let state: String = r.try_get("state")?;
    Ok(RequestRow {
        id: r.try_get("id")?,
        reference: r
            .try_get::<Option<String>, _>("reference")?
            .unwrap_or_default(),
        state: RequestState::parse(&state).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        email: r.try_get("email")?,
        id_number: r.try_get("id_number")?,
        id_type: r.try_get("id_type")?,
        full_name: r.try_get("full_name")?,
        phone: r.try_get("phone")?,
        reason: r.try_get("reason")?,
        problems: split_codes(r.try_get("problems")?),
        warnings: split_codes(r.try_get("warnings")?),
        received_at: r.try_get("received_at")?,
        due_date: r.try_get("due_date")?,
        updated_at: r.try_get("updated_at")?,
        duplicate_submissions: r.try_get("duplicate_submissions")?,
        version: r.try_get("version")?,
        claimed_by: r.try_get("claimed_by")?,
        claimed_until: r.try_get("claimed_until")?,
        approved_account: r.try_get("approved_account")?,
        first_approver: r.try_get("first_approver")?,
        sms_to: r.try_get("sms_to")?,
        sms_accepted_at: r.try_get("sms_accepted_at")?,
        grace_deadline: r.try_get("grace_deadline")?,
        closed_at: r.try_get("closed_at")?,
        thread_token: ThreadToken::parse(
            &r.try_get::<Option<String>, _>("thread_token")?
                .unwrap_or_default(),
        )
        .map_err(|e| {
            StoreError::Corrupt(format!(
                "request {}: {e}",
                r.try_get::<i64, _>("id").unwrap_or(0)
            ))
        })?,
        linked_to: r.try_get("linked_to")?,
        holder_risk_account: r.try_get("holder_risk_account")?,
        holder_risk_by: r.try_get("holder_risk_by")?,
    })
}

impl Store {
    /// A request by id.
    pub async fn request(&self, id: i64) -> Result<Option<RequestRow>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {REQUEST_COLUMNS} FROM requests WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(request_row).transpose()
    }

    /// A request by its reference.
    pub async fn request_by_reference(
        &self,
        reference: &str,
    ) -> Result<Option<RequestRow>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {REQUEST_COLUMNS} FROM requests WHERE reference = $1"
        ))
        .bind(reference)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(request_row).transpose()
    }

    /// The request whose thread secret this is.
    pub async fn request_by_token(
        &self,
        token: &ThreadToken,
    ) -> Result<Option<RequestRow>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {REQUEST_COLUMNS} FROM requests WHERE thread_token = $1"
        ))
        .bind(token.as_str())
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(request_row).transpose()
    }

    /// The requests opened by mail from other addresses about this one.
    pub async fn linked_requests(&self, id: i64) -> Result<Vec<RequestRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {REQUEST_COLUMNS} FROM requests WHERE linked_to = $1 ORDER BY id LIMIT 100"
        ))
        .bind(id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(request_row).collect()
    }

    /// Another request whose window for `account` is open, if any.
    pub async fn open_window_for(
        &self,
        account: &str,
        except: i64,
    ) -> Result<Option<String>, StoreError> {
        let row = sqlx::query(
            "SELECT reference FROM requests WHERE approved_account = $1 AND id <> $2
             AND state IN ('grace_period', 'deleting') LIMIT 1",
        )
        .bind(account)
        .bind(except)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(|r| r.try_get("reference")).transpose()?)
    }

    /// The open request for a number, if any (oldest first).
    pub async fn open_request_for_number(
        &self,
        number: &str,
    ) -> Result<Option<RequestRow>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {REQUEST_COLUMNS} FROM requests WHERE id_number = $1
             AND state IN ('needs_info', 'pending_review', 'grace_period', 'deleting') ORDER BY id LIMIT 1"
        ))
        .bind(number)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(request_row).transpose()
    }

    /// Requests, oldest due first; `state` filters.
    pub async fn requests(
        &self,
        state: Option<RequestState>,
        limit: i64,
    ) -> Result<Vec<RequestRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {REQUEST_COLUMNS} FROM requests WHERE ($1 = '' OR state = $1) ORDER BY due_date, id LIMIT $2"
        ))
        .bind(state.map_or("", |s| s.as_str()))
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(request_row).collect()
    }

    /// The stored messages a request is assessed on, in arrival order:
    /// its own, not those kept on it flagged.
    pub async fn request_message_shas(&self, request_id: i64) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT sha256 FROM request_messages WHERE request_id = $1 AND flag IS NULL ORDER BY position",
        )
        .bind(request_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(|r| Ok(r.try_get("sha256")?)).collect()
    }

    /// Every message kept on a request, in arrival order, each with its
    /// flag (why it is kept but not used), for people to read.
    pub async fn request_thread(
        &self,
        request_id: i64,
    ) -> Result<Vec<(String, Option<String>)>, StoreError> {
        let rows = sqlx::query(
            "SELECT sha256, flag FROM request_messages WHERE request_id = $1 ORDER BY position",
        )
        .bind(request_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("sha256")?, r.try_get("flag")?)))
            .collect()
    }

    /// The Message-IDs of a request's messages, in arrival order (a letter
    /// about it answers the latest).
    pub async fn request_thread_ids(&self, request_id: i64) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT message_id FROM request_messages WHERE request_id = $1 AND message_id IS NOT NULL
             AND flag IS NULL ORDER BY position",
        )
        .bind(request_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(|r| Ok(r.try_get("message_id")?)).collect()
    }

    /// The photos (and other attachments) of a request, in arrival order.
    pub async fn photos_of(&self, request_id: i64) -> Result<Vec<StoredPhoto>, StoreError> {
        let rows = sqlx::query(
            "SELECT p.sha256, p.message, p.filename, p.format, p.width, p.height, p.role, p.usable
             FROM photos p JOIN request_messages m ON m.request_id = p.request_id AND m.sha256 = p.message
             WHERE p.request_id = $1 ORDER BY m.position, p.sha256",
        )
        .bind(request_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(|r| Ok(StoredPhoto::from_row(r)?)).collect()
    }

    /// The latest inspection report of a request (JSON).
    pub async fn request_assessment(&self, request_id: i64) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT assessment FROM requests WHERE id = $1")
            .bind(request_id)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.and_then(|r| r.try_get::<Option<String>, _>("assessment").ok().flatten()))
    }

    /// The audit log of a request, oldest first.
    pub async fn audit_for(&self, request_id: i64) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT at, request_id, actor, action, from_state, to_state, detail FROM audit_log
             WHERE request_id = $1 ORDER BY id",
        )
        .bind(request_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(|r| Ok(AuditEntry::from_row(r)?)).collect()
    }
}

/// Inserts a new request in `needs_info` (its first inspection sets the
/// real state in the same transaction) and gives it its reference.
pub async fn insert_request(
    tx: &mut Tx,
    new: &NewRequest<'_>,
) -> Result<(i64, String), StoreError> {
    let row = sqlx::query(
        "INSERT INTO requests (state, email, received_at, due_date, updated_at, thread_token, linked_to)
         VALUES ('needs_info', $1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(new.email)
    .bind(new.received_at)
    .bind(new.due_date)
    .bind(now_ms())
    .bind(new.thread_token.as_str())
    .bind(new.linked_to)
    .fetch_one(&mut **tx)
    .await?;
    let id: i64 = row.try_get("id")?;
    let reference = format!("HTK-{}-{id}", new.reference_day);
    sqlx::query("UPDATE requests SET reference = $1 WHERE id = $2")
        .bind(&reference)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok((id, reference))
}

/// Applies an inspection's result; false when someone else changed the
/// request since `version` was read (the caller retries).
pub async fn update_request(
    tx: &mut Tx,
    id: i64,
    version: i64,
    u: &RequestUpdate,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE requests SET state = $1, id_number = $2, id_type = $3, full_name = $4, phone = $5, reason = $6,
         problems = $7, warnings = $8, assessment = $9, updated_at = $10,
         duplicate_submissions = duplicate_submissions + $11, version = version + 1
         WHERE id = $12 AND version = $13",
    )
    .bind(u.state.as_str())
    .bind(u.id_number.as_deref())
    .bind(u.id_type.as_deref())
    .bind(u.full_name.as_deref())
    .bind(u.phone.as_deref())
    .bind(u.reason.as_deref())
    .bind(u.problems.join(","))
    .bind(u.warnings.join(","))
    .bind(&u.assessment)
    .bind(now_ms())
    .bind(i64::from(u.duplicate_submission))
    .bind(id)
    .bind(version)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Attaches a stored message to a request; `flag` says why it is only
/// kept there for people to read (never used to assess the request).
pub async fn add_request_message(
    tx: &mut Tx,
    request_id: i64,
    sha256: &str,
    message_id: Option<&str>,
    flag: Option<&str>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO request_messages (request_id, sha256, message_id, position, flag)
         VALUES ($1, $2, $3, (SELECT COUNT(*) FROM request_messages WHERE request_id = $1), $4)
         ON CONFLICT (request_id, sha256) DO NOTHING",
    )
    .bind(request_id)
    .bind(sha256)
    .bind(message_id)
    .bind(flag)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A photo's facts.
#[derive(Debug, Clone)]
pub struct PhotoRow<'a> {
    /// Content hash.
    pub sha256: &'a str,
    /// Message it came in.
    pub message: &'a str,
    /// File name.
    pub filename: Option<&'a str>,
    /// Format.
    pub format: Option<&'a str>,
    /// Width.
    pub width: Option<i64>,
    /// Height.
    pub height: Option<i64>,
    /// Role.
    pub role: &'a str,
    /// Usable.
    pub usable: bool,
    /// dHash, hex.
    pub dhash: Option<String>,
}

/// Records a photo of a request (once per content).
pub async fn add_photo(tx: &mut Tx, request_id: i64, p: &PhotoRow<'_>) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO photos (request_id, sha256, message, filename, format, width, height, role, usable, dhash)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (request_id, sha256) DO UPDATE SET role = excluded.role",
    )
    .bind(request_id)
    .bind(p.sha256)
    .bind(p.message)
    .bind(p.filename)
    .bind(p.format)
    .bind(p.width)
    .bind(p.height)
    .bind(p.role)
    .bind(i64::from(p.usable))
    .bind(p.dhash.as_deref())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Records a supervisor's confirmation that `account` may be approved
/// although its holder cannot be told through its own phone, or it was
/// found only through the card QR.
pub async fn set_holder_risk(
    tx: &mut Tx,
    id: i64,
    account: &str,
    by: &str,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE requests SET holder_risk_account = $1, holder_risk_by = $2 WHERE id = $3")
        .bind(account)
        .bind(by)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Bumps a request's version whatever it was: something an operator must
/// see before deciding arrived (a decision on the older version is stale).
pub async fn touch_request(tx: &mut Tx, id: i64) -> Result<(), StoreError> {
    sqlx::query("UPDATE requests SET version = version + 1, updated_at = $1 WHERE id = $2")
        .bind(now_ms())
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
