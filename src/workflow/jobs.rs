//! The account store's jobs (lock, unlock, delete): each a row of the
//! outbox written with the state change that causes it, claimed by one
//! replica at a time and retried until the store answers.

use minijinja::context;

use super::desk::Desk;
use super::outbox_worker::{RetryPolicy, LEASE_MS};
use super::WorkflowError;
use crate::accounts::AccountStore;
use crate::domain::time::now_ms;
use crate::domain::RequestState;
use crate::store::{self, OutboxKind};

use serde::{Deserialize, Serialize};

/// An account call to make.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccountJob {
    /// The portal account.
    pub account_id: String,
}

impl Desk {
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
            // A job naming no account would make the account store act on
            // nothing and call that done (LDAP and the portal's API both
            // answer an empty name with success): it fails for good, where
            // the dashboard's failed jobs show it to an operator.
            if job.account_id.trim().is_empty() {
                tracing::error!(outbox = item.id, request = ?item.request_id, kind = ?item.kind, "account job without an account: not done");
                self.store
                    .mark_attempt_failed(
                        item.id,
                        "no portal account named: nothing was locked, unlocked or deleted; an operator must look at this request",
                        now_ms(),
                        true,
                    )
                    .await?;
                continue;
            }
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
                    &self.system(
                        rid,
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
                        &self.system(
                            rid,
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
                        &self.system(
                            rid,
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
                            &self.system(
                                rid,
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
}

/// Queues a call to the account store (once per `dedupe`).
pub(super) async fn queue_account_job(
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
