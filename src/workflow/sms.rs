//! The holder's SMS: queued with the lock, sent through the gateway,
//! its acceptance starting the window and its delivery reports read;
//! one that can never arrive sends the request back to an operator.

use minijinja::context;

use super::account_jobs::queue_account_job;
use super::desk::Desk;
use super::jobs::{self, Job, Outcome, RetryPolicy};
use super::outcome::Refusal;
use super::WorkflowError;
use crate::domain::time::now_ms;
use crate::domain::Action;
use crate::domain::RequestState;
use crate::notify::sms::{OutgoingSms, SmsGateway, SmsOutcome};
use crate::store::{self, OutboxItem, OutboxKind, RequestRow, Store};

impl Desk {
    /// Queues the holder's SMS (once per request).
    pub(super) async fn queue_sms(
        &self,
        tx: &mut store::Tx,
        r: &RequestRow,
    ) -> Result<(), WorkflowError> {
        let to = store::sms_to(tx, r.id).await?;
        let Some(to) = to else {
            store::audit(
                tx,
                &self.system(
                    r.id,
                    Action::SmsNotSent,
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

    /// Sends the SMS that are due; returns how many the gateway took.
    pub async fn run_sms(
        &self,
        gateway: &SmsGateway,
        retry: RetryPolicy,
        limit: i64,
    ) -> Result<usize, WorkflowError> {
        let job = HolderSms {
            desk: self,
            gateway,
            retry,
        };
        jobs::run(&self.store, &job, retry, limit).await
    }

    /// The gateway took the SMS: the window starts now (once).
    pub(super) async fn sms_accepted(
        &self,
        outbox_id: i64,
        rid: i64,
        now: i64,
    ) -> Result<(), WorkflowError> {
        let mut tx = self.store.begin().await?;
        store::mark_sent_tx(&mut tx, outbox_id).await?;
        let deadline = now + self.config.grace_seconds as i64 * 1000;
        if store::start_window(&mut tx, rid, now, deadline).await? {
            store::audit(
                &mut tx,
                &self.system(
                    rid,
                    Action::SmsAccepted,
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
    pub(super) async fn sms_failed_for_good(
        &self,
        outbox_id: i64,
        rid: i64,
        why: &str,
    ) -> Result<(), WorkflowError> {
        let mut tx = self.store.begin().await?;
        store::mark_failed_tx(&mut tx, outbox_id, why).await?;
        store::audit(
            &mut tx,
            &self.system(rid, Action::SmsFailed, None, None, Some(why.to_owned())),
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
                &self.system(
                    rid,
                    Action::BackToOperator,
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
                    &self.system(
                        rid,
                        Action::SmsUndelivered,
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
                    1 => Action::SmsDelivered,
                    4 => Action::SmsBuffered,
                    _ => Action::SmsAtSmsc,
                };
                let mut tx = self.store.begin().await?;
                store::audit(
                    &mut tx,
                    &self.system(
                        rid,
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
                    self.sms_accepted(outbox_id, rid, self.now()).await?;
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// The holder's SMS, sent through the gateway.
struct HolderSms<'a> {
    desk: &'a Desk,
    gateway: &'a SmsGateway,
    retry: RetryPolicy,
}

impl Job for HolderSms<'_> {
    type Payload = OutgoingSms;
    const WHAT: &'static str = "SMS";

    fn kinds(&self) -> &'static [OutboxKind] {
        &[OutboxKind::Sms]
    }

    async fn execute(&self, item: &OutboxItem, sms: OutgoingSms) -> Result<Outcome, WorkflowError> {
        let desk = self.desk;
        let rid = item.request_id.unwrap_or(0);
        let current = desk
            .store
            .request(rid)
            .await?
            .is_some_and(|r| r.state == RequestState::GracePeriod);
        if !current {
            // Not a failure of the SMS: its request left the window (the
            // hotline stopped it), so it is never sent.
            desk.store
                .mark_attempt_failed(
                    item.id,
                    "request no longer in its grace period",
                    now_ms(),
                    true,
                )
                .await?;
            return Ok(Outcome::Dropped);
        }
        Ok(match self.gateway.send(&sms, item.id).await {
            Ok(SmsOutcome::Accepted) => {
                desk.sms_accepted(item.id, rid, desk.now()).await?;
                Outcome::DoneInTransaction
            }
            Ok(SmsOutcome::Rejected(why)) => {
                tracing::warn!(request = rid, to = %crate::domain::redact::number(&sms.to), why, "SMS refused for good; back to an operator");
                Outcome::Failed(why)
            }
            Err(e) if self.retry.is_last(item) => {
                Outcome::Failed(format!("gave up after {} attempts: {e}", item.attempts + 1))
            }
            Err(e) => Outcome::Retry(format!("{e} (the window has not started)")),
        })
    }

    /// The request goes back to an operator, its account unlocked.
    async fn fail(&self, _: &Store, item: &OutboxItem, why: &str) -> Result<(), WorkflowError> {
        let rid = item.request_id.unwrap_or(0);
        self.desk.sms_failed_for_good(item.id, rid, why).await
    }
}
