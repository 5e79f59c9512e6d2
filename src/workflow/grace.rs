//! From approval to deletion (SPEC section 2): the account is locked, its
//! holder gets the SMS, the window (3 days) starts when the gateway accepts
//! it, the hotline can stop or hasten the deletion, and when the window is
//! over the account is deleted and the citizen told.
//!
//! Every step is a row in the outbox (lock, SMS, unlock, delete, letters)
//! written in the transaction of the state change that causes it, and
//! worked by claiming rows, so nothing happens twice and nothing is lost.
//! The window's end is a column (`grace_deadline`), so a restart, or a
//! daemon down over the deadline, still deletes once, at or after it.

use minijinja::context;
use serde::{Deserialize, Serialize};

use super::decide::{Decided, Refusal};
use super::ingest::Desk;
use super::letters::Letter;
use super::outbox_worker::RetryPolicy;
use super::WorkflowError;
use crate::accounts::AccountStore;
use crate::domain::time::now_ms;
use crate::domain::RequestState;
use crate::notify::sms::{OutgoingSms, SmsGateway, SmsOutcome};
use crate::store::{self, AuditEntry, OperatorRow, OutboxKind, RequestRow};

/// An account call to make.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccountJob {
    /// The portal account.
    pub account_id: String,
}

/// How long a worker holds a claimed row.
const LEASE_MS: i64 = 120_000;

fn audit(
    id: i64,
    actor: &str,
    action: &str,
    from: Option<RequestState>,
    to: Option<RequestState>,
    detail: Option<String>,
) -> AuditEntry {
    super::ingest::audit_entry(Some(id), actor, action, from, to, detail)
}

impl Desk {
    /// Inside an approval's transaction: where the SMS goes, the lock job,
    /// and the letter telling the citizen.
    pub(super) async fn start_grace(
        &self,
        tx: &mut store::Tx,
        r: &RequestRow,
        account: &crate::store::PortalAccount,
        version: i64,
    ) -> Result<(), WorkflowError> {
        // The SMS goes to the phone on the account. The request's phone is
        // only the sender's claim: it is used only where a supervisor
        // confirmed that this account's holder cannot be told otherwise.
        let confirmed = r.holder_risk_account.as_deref() == Some(account.account_id.as_str());
        let sms_to = match &account.phone {
            Some(p) => Some(p.clone()),
            None if confirmed => r.phone.clone(),
            None => None,
        };
        store::set_sms_to(tx, r.id, sms_to.as_deref()).await?;
        self.notify_holder_by_email(tx, r, account, version).await?;
        queue_account_job(
            tx,
            OutboxKind::AccountLock,
            r.id,
            &account.account_id,
            &format!("lock:{}:{version}", r.id),
        )
        .await?;
        self.queue_citizen_letter(
            tx,
            r,
            "approved",
            context! {},
            format!("approved:{}:{version}", r.id),
        )
        .await?;
        Ok(())
    }

    /// Tells the holder at the account's own address, when it has one that
    /// is not the requester's: deletion was asked for, and how to stop it.
    async fn notify_holder_by_email(
        &self,
        tx: &mut store::Tx,
        r: &RequestRow,
        account: &crate::store::PortalAccount,
        version: i64,
    ) -> Result<(), WorkflowError> {
        let Some(to) = account.email.as_deref() else {
            return Ok(());
        };
        if to.eq_ignore_ascii_case(&r.email) {
            return Ok(());
        }
        let letter = Letter {
            request_id: r.id,
            reference: &r.reference,
            // The holder is not the requester: no secret to join the thread.
            token: None,
            to,
            template: "holder_notice",
            full_name: Some(&account.full_name),
            id_number: Some(&account.id_number),
            extra: context! { account_id => account.account_id },
            dedupe: format!("holder_notice:{}:{version}", r.id),
            thread: Vec::new(),
        };
        self.queue_letter(tx, letter).await
    }

    /// Works the account jobs (lock, unlock, delete) that are due; returns
    /// how many were handled.
    pub async fn run_account_jobs(
        &self,
        retry: RetryPolicy,
        limit: i64,
    ) -> Result<usize, WorkflowError> {
        let jobs = self
            .store
            .claim_kinds(
                &[
                    OutboxKind::AccountLock,
                    OutboxKind::AccountUnlock,
                    OutboxKind::AccountDelete,
                ],
                limit,
                LEASE_MS,
            )
            .await?;
        let n = jobs.len();
        for item in jobs {
            let job: AccountJob = match serde_json::from_str(&item.payload) {
                Ok(j) => j,
                Err(e) => {
                    self.store
                        .mark_attempt_failed(item.id, &format!("bad payload: {e}"), now_ms(), true)
                        .await?;
                    continue;
                }
            };
            let Some(rid) = item.request_id else {
                self.store.mark_sent(item.id).await?;
                continue;
            };
            let r = self.store.request(rid).await?;
            let Some(r) = r else {
                self.store.mark_sent(item.id).await?;
                continue;
            };
            let kind = item.kind;
            // A lock for a request no longer waiting out its window (the
            // hotline stopped it first) is not done.
            if kind == OutboxKind::AccountLock && r.state != RequestState::GracePeriod {
                let mut tx = self.store.begin().await?;
                store::mark_sent_tx(&mut tx, item.id).await?;
                store::audit(
                    &mut tx,
                    &audit(
                        rid,
                        "system",
                        "lock_skipped",
                        None,
                        None,
                        Some(format!("request is {}", r.state)),
                    ),
                )
                .await?;
                store::commit(tx).await?;
                continue;
            }
            let result = match kind {
                OutboxKind::AccountLock => self.accounts.lock(&job.account_id).await,
                OutboxKind::AccountUnlock => self.accounts.unlock(&job.account_id).await,
                _ => self.accounts.delete(&job.account_id).await,
            };
            if let Err(e) = result {
                let wait = retry.delay_ms(item.attempts);
                tracing::warn!(request = rid, account = %job.account_id, job = kind.as_str(), error = %e, retry_in_s = wait / 1000, "account store call failed; will retry");
                // Account calls are retried until they succeed: a deletion
                // that stops halfway is worse than a late one.
                self.store
                    .mark_attempt_failed(item.id, &e.to_string(), now_ms() + wait, false)
                    .await?;
                continue;
            }
            let mut tx = self.store.begin().await?;
            store::mark_sent_tx(&mut tx, item.id).await?;
            match kind {
                OutboxKind::AccountLock => {
                    store::audit(
                        &mut tx,
                        &audit(
                            rid,
                            "system",
                            "account_locked",
                            None,
                            None,
                            Some(job.account_id.clone()),
                        ),
                    )
                    .await?;
                    self.queue_sms(&mut tx, &r).await?;
                }
                OutboxKind::AccountUnlock => {
                    store::audit(
                        &mut tx,
                        &audit(
                            rid,
                            "system",
                            "account_unlocked",
                            None,
                            None,
                            Some(job.account_id.clone()),
                        ),
                    )
                    .await?;
                }
                _ => {
                    let fresh = store::request_in(&mut tx, rid).await?;
                    if fresh.state == RequestState::Deleting
                        && store::set_state(&mut tx, rid, fresh.version, RequestState::Deleted)
                            .await?
                    {
                        store::audit(
                            &mut tx,
                            &audit(
                                rid,
                                "system",
                                "account_deleted",
                                Some(RequestState::Deleting),
                                Some(RequestState::Deleted),
                                Some(job.account_id.clone()),
                            ),
                        )
                        .await?;
                        self.queue_citizen_letter(
                            &mut tx,
                            &fresh,
                            "deleted",
                            context! {},
                            format!("deleted:{rid}"),
                        )
                        .await?;
                        tracing::info!(request = %fresh.reference, account = %job.account_id, "account deleted");
                    }
                }
            }
            store::commit(tx).await?;
        }
        Ok(n)
    }

    /// Queues the holder's SMS (once per request).
    async fn queue_sms(&self, tx: &mut store::Tx, r: &RequestRow) -> Result<(), WorkflowError> {
        let to = store::sms_to(tx, r.id).await?;
        let Some(to) = to else {
            store::audit(
                tx,
                &audit(
                    r.id,
                    "system",
                    "sms_not_sent",
                    None,
                    None,
                    Some("no phone on the account or in the request".into()),
                ),
            )
            .await?;
            return self
                .back_to_operator(tx, r.id, "no phone to send the SMS to")
                .await;
        };
        let text = self.templates.sms(
            "grace_notice",
            context! {
                grace_days => self.grace_days(), hotline => self.config.hotline,
                reference => r.reference,
            },
        )?;
        let sms = OutgoingSms {
            segments: crate::notify::gsm7::segments(&text),
            to: to.clone(),
            text,
        };
        store::enqueue(
            tx,
            OutboxKind::Sms,
            Some(r.id),
            &format!("sms:{}:{}", r.id, r.version),
            &to,
            &serde_json::to_string(&sms).unwrap_or_default(),
        )
        .await?;
        Ok(())
    }

    /// The window in whole days, as letters and the SMS say it.
    pub fn grace_days(&self) -> u64 {
        self.config.grace_seconds.div_ceil(86_400).max(1)
    }

    /// Sends the SMS that are due; returns how many were tried.
    pub async fn run_sms(
        &self,
        gateway: &SmsGateway,
        retry: RetryPolicy,
        limit: i64,
    ) -> Result<usize, WorkflowError> {
        let items = self
            .store
            .claim_kinds(&[OutboxKind::Sms], limit, LEASE_MS)
            .await?;
        let n = items.len();
        for item in items {
            let rid = item.request_id.unwrap_or(0);
            let r = self.store.request(rid).await?;
            let current = r
                .as_ref()
                .is_some_and(|r| r.state == RequestState::GracePeriod);
            if !current {
                self.store
                    .mark_attempt_failed(
                        item.id,
                        "request no longer in its grace period",
                        now_ms(),
                        true,
                    )
                    .await?;
                continue;
            }
            let sms: OutgoingSms = match serde_json::from_str(&item.payload) {
                Ok(s) => s,
                Err(e) => {
                    self.sms_failed_for_good(item.id, rid, &format!("bad payload: {e}"))
                        .await?;
                    continue;
                }
            };
            match gateway.send(&sms, item.id).await {
                Ok(SmsOutcome::Accepted) => self.sms_accepted(item.id, rid, now_ms()).await?,
                Ok(SmsOutcome::Rejected(why)) => {
                    tracing::warn!(request = rid, to = %crate::domain::redact::number(&sms.to), why, "SMS refused for good; back to an operator");
                    self.sms_failed_for_good(item.id, rid, &why).await?;
                }
                Err(e) => {
                    if item.attempts + 1 >= i64::from(retry.max_attempts) {
                        self.sms_failed_for_good(
                            item.id,
                            rid,
                            &format!("gave up after {} attempts: {e}", item.attempts + 1),
                        )
                        .await?;
                    } else {
                        let wait = retry.delay_ms(item.attempts);
                        tracing::warn!(request = rid, error = %e, retry_in_s = wait / 1000, "SMS not sent; will retry (the window has not started)");
                        self.store
                            .mark_attempt_failed(item.id, &e.to_string(), now_ms() + wait, false)
                            .await?;
                    }
                }
            }
        }
        Ok(n)
    }

    /// The gateway took the SMS: the window starts now (once).
    async fn sms_accepted(&self, outbox_id: i64, rid: i64, now: i64) -> Result<(), WorkflowError> {
        let mut tx = self.store.begin().await?;
        store::mark_sent_tx(&mut tx, outbox_id).await?;
        let deadline = now + self.config.grace_seconds as i64 * 1000;
        if store::start_window(&mut tx, rid, now, deadline).await? {
            store::audit(
                &mut tx,
                &audit(
                    rid,
                    "system",
                    "sms_accepted",
                    None,
                    None,
                    Some(format!(
                        "window ends {}",
                        crate::domain::time::format_ms(deadline)
                    )),
                ),
            )
            .await?;
        }
        store::commit(tx).await?;
        Ok(())
    }

    /// An SMS that will never arrive: the request goes back to an operator,
    /// the account is unlocked, and no window ever starts.
    async fn sms_failed_for_good(
        &self,
        outbox_id: i64,
        rid: i64,
        why: &str,
    ) -> Result<(), WorkflowError> {
        let mut tx = self.store.begin().await?;
        store::mark_failed_tx(&mut tx, outbox_id, why).await?;
        store::audit(
            &mut tx,
            &audit(
                rid,
                "system",
                "sms_failed",
                None,
                None,
                Some(why.to_owned()),
            ),
        )
        .await?;
        self.back_to_operator(&mut tx, rid, why).await?;
        store::commit(tx).await?;
        Ok(())
    }

    /// grace_period → pending_review, unlocking the account.
    async fn back_to_operator(
        &self,
        tx: &mut store::Tx,
        rid: i64,
        why: &str,
    ) -> Result<(), WorkflowError> {
        let r = store::request_in(tx, rid).await?;
        if r.state != RequestState::GracePeriod {
            return Ok(());
        }
        if store::set_state(tx, rid, r.version, RequestState::PendingReview).await? {
            store::reset_grace(tx, rid).await?;
            if let Some(account) = &r.approved_account {
                queue_account_job(
                    tx,
                    OutboxKind::AccountUnlock,
                    rid,
                    account,
                    &format!("unlock:{rid}:{}", r.version),
                )
                .await?;
            }
            store::audit(
                tx,
                &audit(
                    rid,
                    "system",
                    "back_to_operator",
                    Some(RequestState::GracePeriod),
                    Some(RequestState::PendingReview),
                    Some(why.to_owned()),
                ),
            )
            .await?;
        }
        Ok(())
    }

    /// A delivery report from the gateway (Kannel's dlr-url).
    pub async fn sms_report(&self, outbox_id: i64, status: i64) -> Result<(), WorkflowError> {
        let Some(rid) = self
            .store
            .outbox_request(outbox_id, OutboxKind::Sms)
            .await?
        else {
            return Err(Refusal::NotFound.into());
        };
        match status {
            // Failed at the handset or refused by the SMSC: never delivered.
            2 | 16 => {
                let mut tx = self.store.begin().await?;
                store::audit(
                    &mut tx,
                    &audit(
                        rid,
                        "system",
                        "sms_undelivered",
                        None,
                        None,
                        Some(format!("delivery report {status}")),
                    ),
                )
                .await?;
                self.back_to_operator(
                    &mut tx,
                    rid,
                    &format!("SMS not delivered (report {status})"),
                )
                .await?;
                store::commit(tx).await?;
            }
            1 | 4 | 8 => {
                let action = match status {
                    1 => "sms_delivered",
                    4 => "sms_buffered",
                    _ => "sms_at_smsc",
                };
                let mut tx = self.store.begin().await?;
                store::audit(
                    &mut tx,
                    &audit(
                        rid,
                        "system",
                        action,
                        None,
                        None,
                        Some(format!("delivery report {status}")),
                    ),
                )
                .await?;
                store::commit(tx).await?;
                // The gateway has it, yet the row is still pending: its
                // sender died between the gateway's answer and recording
                // it. Recorded now, so it is not sent again after the lease
                // (the window starts now: later than the gateway took it,
                // never earlier).
                if self.store.outbox_is_pending(outbox_id).await? {
                    self.sms_accepted(outbox_id, rid, now_ms()).await?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Requests whose window is over move to `deleting` with their delete
    /// job (each once, whatever the number of replicas).
    pub async fn sweep_deadlines(&self) -> Result<usize, WorkflowError> {
        self.sweep_deadlines_at(now_ms()).await
    }

    /// The same, as if the clock read `now` (ms).
    async fn sweep_deadlines_at(&self, now: i64) -> Result<usize, WorkflowError> {
        let mut moved = 0;
        for (id, version, account) in self.store.deadlines_passed(now).await? {
            let mut tx = self.store.begin().await?;
            if store::set_state(&mut tx, id, version, RequestState::Deleting).await? {
                self.queue_delete(&mut tx, id, account.as_deref()).await?;
                store::audit(
                    &mut tx,
                    &audit(
                        id,
                        "system",
                        "window_over",
                        Some(RequestState::GracePeriod),
                        Some(RequestState::Deleting),
                        None,
                    ),
                )
                .await?;
                store::commit(tx).await?;
                moved += 1;
            } else {
                store::rollback(tx).await?;
            }
        }
        Ok(moved)
    }

    async fn queue_delete(
        &self,
        tx: &mut store::Tx,
        id: i64,
        account: Option<&str>,
    ) -> Result<(), WorkflowError> {
        queue_account_job(
            tx,
            OutboxKind::AccountDelete,
            id,
            account.unwrap_or_default(),
            &format!("delete:{id}"),
        )
        .await
    }

    /// Hotline: the holder objects; the account is unlocked and the request
    /// cancelled.
    pub async fn hotline_object(
        &self,
        who: &OperatorRow,
        id: i64,
        note: &str,
    ) -> Result<Decided, WorkflowError> {
        let mut tx = self.store.begin().await?;
        let r = match leave_grace(&mut tx, id, RequestState::Cancelled).await {
            Ok(r) => r,
            Err(e) => {
                store::rollback(tx).await?;
                return Err(e);
            }
        };
        if let Some(account) = &r.approved_account {
            queue_account_job(
                &mut tx,
                OutboxKind::AccountUnlock,
                id,
                account,
                &format!("unlock:{id}:{}", r.version),
            )
            .await?;
        }
        store::audit(
            &mut tx,
            &audit(
                id,
                who.login.as_str(),
                "hotline_objected",
                Some(RequestState::GracePeriod),
                Some(RequestState::Cancelled),
                Some(note.trim().to_owned()).filter(|n| !n.is_empty()),
            ),
        )
        .await?;
        self.queue_citizen_letter(
            &mut tx,
            &r,
            "cancelled",
            context! {},
            format!("cancelled:{id}"),
        )
        .await?;
        store::commit(tx).await?;
        Ok(Decided::Moved {
            state: RequestState::Cancelled,
        })
    }

    /// Hotline: the holder confirms; the account is deleted now.
    pub async fn hotline_confirm(
        &self,
        who: &OperatorRow,
        id: i64,
        note: &str,
    ) -> Result<Decided, WorkflowError> {
        let mut tx = self.store.begin().await?;
        let r = match leave_grace(&mut tx, id, RequestState::Deleting).await {
            Ok(r) => r,
            Err(e) => {
                store::rollback(tx).await?;
                return Err(e);
            }
        };
        self.queue_delete(&mut tx, id, r.approved_account.as_deref())
            .await?;
        store::audit(
            &mut tx,
            &audit(
                id,
                who.login.as_str(),
                "hotline_confirmed",
                Some(RequestState::GracePeriod),
                Some(RequestState::Deleting),
                Some(note.trim().to_owned()).filter(|n| !n.is_empty()),
            ),
        )
        .await?;
        store::commit(tx).await?;
        Ok(Decided::Moved {
            state: RequestState::Deleting,
        })
    }

    /// Retention: the raw mail (and so the photos) of requests closed more
    /// than `retention_days` ago is dropped; hashes and the audit trail stay.
    pub async fn purge_closed(&self) -> Result<usize, WorkflowError> {
        let before = now_ms() - i64::from(self.config.retention_days) * 86_400_000;
        let mut n = 0;
        for id in self.store.closed_before(before).await? {
            let mut tx = self.store.begin().await?;
            let dropped = store::purge_request(&mut tx, id).await?;
            store::audit(
                &mut tx,
                &audit(
                    id,
                    "system",
                    "purged",
                    None,
                    None,
                    Some(format!(
                        "{dropped} raw messages dropped after {} days",
                        self.config.retention_days
                    )),
                ),
            )
            .await?;
            store::commit(tx).await?;
            n += 1;
        }
        if n > 0 {
            tracing::info!(requests = n, "closed requests purged");
        }
        Ok(n)
    }
}

/// Moves a request out of its grace period inside `tx` (the hotline);
/// any other state, or a change made meanwhile, is refused.
async fn leave_grace(
    tx: &mut store::Tx,
    id: i64,
    to: RequestState,
) -> Result<RequestRow, WorkflowError> {
    let r = store::request_in(tx, id).await?;
    if r.state != RequestState::GracePeriod {
        return Err(Refusal::WrongState(r.state).into());
    }
    if !store::set_state(tx, id, r.version, to).await? {
        return Err(Refusal::Stale.into());
    }
    Ok(r)
}

/// Queues a call to the account store (once per `dedupe`).
async fn queue_account_job(
    tx: &mut store::Tx,
    kind: OutboxKind,
    id: i64,
    account: &str,
    dedupe: &str,
) -> Result<(), WorkflowError> {
    let job = serde_json::to_string(&AccountJob {
        account_id: account.to_owned(),
    })
    .unwrap_or_default();
    store::enqueue(tx, kind, Some(id), dedupe, account, &job).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    //! A property test of the state machine over the real workflow and a
    //! real (SQLite) store, with the clock and the SMS gateway's answers
    //! chosen by the test: no sequence of events deletes an account without
    //! an accepted SMS and a full window (or the holder's own confirmation),
    //! and no request reaches two final states.

    use super::*;
    use crate::domain::calendar::Calendar;
    use crate::domain::{Login, Role};
    use crate::store::{PortalAccount, Store};
    use crate::workflow::Decision;
    use proptest::prelude::*;
    use std::sync::Arc;

    #[derive(Debug, Clone)]
    enum Event {
        Approve,
        RunAccountJobs,
        GatewayAccepts,
        GatewayRefuses,
        ReportUndelivered,
        Sweep,
        Wait(i64),
        HotlineObjects,
        HotlineConfirms,
        Reject,
    }

    fn event() -> impl Strategy<Value = Event> {
        prop_oneof![
            3 => Just(Event::Approve),
            3 => Just(Event::RunAccountJobs),
            2 => Just(Event::GatewayAccepts),
            1 => Just(Event::GatewayRefuses),
            1 => Just(Event::ReportUndelivered),
            3 => Just(Event::Sweep),
            3 => (0i64..150_000).prop_map(Event::Wait),
            1 => Just(Event::HotlineObjects),
            1 => Just(Event::HotlineConfirms),
            1 => Just(Event::Reject),
        ]
    }

    const WINDOW_MS: i64 = 100_000;
    const FINAL: [&str; 4] = ["deleted", "rejected", "cancelled", "closed_incomplete"];

    async fn desk(dir: &std::path::Path) -> (Desk, OperatorRow, i64) {
        let store = Store::connect(&format!("sqlite://{}/p.db", dir.display()))
            .await
            .unwrap();
        let templates = crate::notify::Templates::load(
            &std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("templates"),
        )
        .unwrap();
        let config = crate::config::DeskConfig {
            grace_seconds: (WINDOW_MS / 1000) as u64,
            ..Default::default()
        };
        let accounts = crate::accounts::Accounts::Embedded(
            crate::accounts::EmbeddedDirectory::new(store.clone()),
        );
        let desk = Desk {
            store: store.clone(),
            calendar: Arc::new(Calendar::vietnam()),
            templates: Arc::new(templates),
            config,
            accounts: Arc::new(accounts),
            clock: crate::domain::time::Clock::system(),
            inspectors: crate::workflow::Inspectors::new(800, 30),
        };
        let login = Login::parse("lan").unwrap();
        store
            .add_operator(&login, "Lan", Role::Operator, "x", false)
            .await
            .unwrap();
        let op = store.operator(&login).await.unwrap().unwrap();
        store
            .put_portal_account(&PortalAccount {
                account_id: "DVC-1".into(),
                id_number: "079203001234".into(),
                full_name: "Nguyễn Văn An".into(),
                birth_date: None,
                phone: Some("+84912345678".into()),
                email: None,
                vneid_linked: 0,
                state: "active".into(),
            })
            .await
            .unwrap();
        let mut tx = store.begin().await.unwrap();
        let (id, _) = store::insert_request(
            &mut tx,
            &store::NewRequest {
                email: "an@test",
                received_at: 0,
                due_date: "2027-01-01",
                reference_day: "270101",
                thread_token: &crate::domain::thread::ThreadToken::from_bytes([7; 10]),
                linked_to: None,
            },
        )
        .await
        .unwrap();
        sqlx::query("UPDATE requests SET state = 'pending_review', id_number = '079203001234' WHERE id = $1").bind(id).execute(&mut *tx).await.unwrap();
        store::commit(tx).await.unwrap();
        (desk, op, id)
    }

    async fn pending_sms(desk: &Desk, id: i64) -> Option<i64> {
        desk.store
            .jobs_of(id)
            .await
            .unwrap()
            .into_iter()
            .find(|j| j.kind == "sms" && j.state == "pending")
            .map(|j| j.id)
    }

    async fn run(events: Vec<Event>) -> Result<(), TestCaseError> {
        let dir = std::env::temp_dir().join(format!(
            "huytk-prop-{}-{}",
            std::process::id(),
            rand::random::<u64>()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let (desk, op, id) = desk(&dir).await;
        let mut clock: i64 = 1_800_000_000_000;
        // The moment the window of the current approval started, if it did.
        let mut confirmed = false;
        let mut finals_seen: Vec<String> = Vec::new();
        for e in events {
            let r = desk.store.request(id).await.unwrap().unwrap();
            match e {
                Event::Approve => {
                    let _ = desk
                        .decide(
                            &op,
                            id,
                            r.version,
                            Decision::Approve {
                                account: "DVC-1".into(),
                            },
                            false,
                        )
                        .await;
                }
                Event::RunAccountJobs => {
                    desk.run_account_jobs(
                        RetryPolicy {
                            max_attempts: 5,
                            base_seconds: 1,
                        },
                        20,
                    )
                    .await
                    .unwrap();
                }
                Event::GatewayAccepts => {
                    if let Some(sms) = pending_sms(&desk, id).await {
                        desk.sms_accepted(sms, id, clock).await.unwrap();
                    }
                }
                Event::GatewayRefuses => {
                    if let Some(sms) = pending_sms(&desk, id).await {
                        desk.sms_failed_for_good(sms, id, "refused").await.unwrap();
                    }
                }
                Event::ReportUndelivered => {
                    if let Some(j) = desk
                        .store
                        .jobs_of(id)
                        .await
                        .unwrap()
                        .into_iter()
                        .find(|j| j.kind == "sms" && j.state == "sent")
                    {
                        desk.sms_report(j.id, 16).await.unwrap();
                    }
                }
                Event::Sweep => {
                    let before = desk.store.request(id).await.unwrap().unwrap();
                    desk.sweep_deadlines_at(clock).await.unwrap();
                    let after = desk.store.request(id).await.unwrap().unwrap();
                    if before.state == RequestState::GracePeriod
                        && after.state == RequestState::Deleting
                    {
                        let d = before
                            .grace_deadline
                            .expect("a window moved without a deadline");
                        prop_assert!(clock >= d, "moved {} ms early", d - clock);
                        prop_assert!(before.sms_accepted_at.is_some());
                        prop_assert!(d >= before.sms_accepted_at.unwrap() + WINDOW_MS);
                    }
                }
                Event::Wait(ms) => clock += ms,
                Event::HotlineObjects => {
                    let _ = desk.hotline_object(&op, id, "").await;
                }
                Event::HotlineConfirms => {
                    if desk.hotline_confirm(&op, id, "").await.is_ok() {
                        confirmed = true;
                    }
                }
                Event::Reject => {
                    let _ = desk
                        .decide(
                            &op,
                            id,
                            r.version,
                            Decision::Reject {
                                reason: "không khớp".into(),
                            },
                            false,
                        )
                        .await;
                }
            }
            let now = desk.store.request(id).await.unwrap().unwrap();
            let gone = desk
                .store
                .portal_accounts(&["079203001234".to_owned()])
                .await
                .unwrap()
                .is_empty();
            if gone {
                prop_assert!(
                    matches!(now.state, RequestState::Deleting | RequestState::Deleted),
                    "account gone in {}",
                    now.state
                );
                let history: Vec<String> = desk
                    .store
                    .audit_for(id)
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|a| a.action)
                    .collect();
                prop_assert!(
                    confirmed || history.iter().any(|a| a == "window_over"),
                    "deleted without a full window: {history:?}"
                );
                prop_assert!(
                    confirmed || now.sms_accepted_at.is_some(),
                    "deleted without an accepted SMS"
                );
            }
            if FINAL.contains(&now.state.as_str()) {
                if finals_seen.last() != Some(&now.state.as_str().to_owned()) {
                    finals_seen.push(now.state.as_str().to_owned());
                }
                prop_assert_eq!(finals_seen.len(), 1, "two final states: {:?}", finals_seen);
            } else {
                prop_assert!(
                    finals_seen.is_empty(),
                    "left the final state {:?} for {}",
                    finals_seen,
                    now.state
                );
            }
        }
        let history = desk.store.audit_for(id).await.unwrap();
        let final_moves = history
            .iter()
            .filter(|a| a.to_state.as_deref().is_some_and(|s| FINAL.contains(&s)))
            .count();
        prop_assert!(final_moves <= 1, "{final_moves} moves into a final state");
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    }

    /// The property is not vacuous: the happy path does delete, at the
    /// deadline and not a millisecond before.
    #[test]
    fn the_happy_path_deletes_at_the_deadline() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let dir = std::env::temp_dir().join(format!("huytk-happy-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let (desk, op, id) = desk(&dir).await;
            let retry = RetryPolicy {
                max_attempts: 5,
                base_seconds: 1,
            };
            let t0 = 1_800_000_000_000;
            desk.decide(
                &op,
                id,
                0,
                Decision::Approve {
                    account: "DVC-1".into(),
                },
                false,
            )
            .await
            .unwrap();
            desk.run_account_jobs(retry, 20).await.unwrap();
            let sms = pending_sms(&desk, id)
                .await
                .expect("the SMS queued after the lock");
            desk.sms_accepted(sms, id, t0).await.unwrap();
            assert_eq!(
                desk.sweep_deadlines_at(t0 + WINDOW_MS - 1).await.unwrap(),
                0
            );
            assert_eq!(desk.sweep_deadlines_at(t0 + WINDOW_MS).await.unwrap(), 1);
            desk.run_account_jobs(retry, 20).await.unwrap();
            assert_eq!(
                desk.store.request(id).await.unwrap().unwrap().state,
                RequestState::Deleted
            );
            assert!(desk
                .store
                .portal_accounts(&["079203001234".to_owned()])
                .await
                .unwrap()
                .is_empty());
            let _ = std::fs::remove_dir_all(&dir);
        });
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
        #[test]
        fn no_deletion_without_an_accepted_sms_and_a_full_window(events in proptest::collection::vec(event(), 1..24)) {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(run(events))?;
        }
    }
}
