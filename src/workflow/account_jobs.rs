//! The account store's calls (lock, unlock, delete) as outbox jobs: each
//! written with the state change that causes it, retried until the store
//! answers (a deletion that stops halfway is worse than a late one), and
//! what it did written in the request's history with what follows from it
//! (the SMS after the lock, the citizen's letter after the deletion).

use minijinja::context;
use serde::{Deserialize, Serialize};

use super::desk::Desk;
use super::jobs::{self, Job, Outcome, RetryPolicy};
use super::WorkflowError;
use crate::accounts::AccountStore;
use crate::domain::Action;
use crate::domain::RequestState;
use crate::store::{self, OutboxItem, OutboxKind, RequestRow};

/// An account call to make.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccountJob {
    /// The portal account.
    pub account_id: String,
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

impl Desk {
    /// Works the account calls that are due; returns how many were done.
    pub async fn run_account_jobs(
        &self,
        retry: RetryPolicy,
        limit: i64,
    ) -> Result<usize, WorkflowError> {
        jobs::run(&self.store, &AccountCalls(self), retry, limit).await
    }
}

/// The account store's calls, made for the desk.
struct AccountCalls<'a>(&'a Desk);

impl Job for AccountCalls<'_> {
    type Payload = AccountJob;
    const WHAT: &'static str = "account store call";

    fn kinds(&self) -> &'static [OutboxKind] {
        &[
            OutboxKind::AccountLock,
            OutboxKind::AccountUnlock,
            OutboxKind::AccountDelete,
        ]
    }

    async fn execute(&self, item: &OutboxItem, job: AccountJob) -> Result<Outcome, WorkflowError> {
        let desk = self.0;
        // A job naming no account would make the account store act on
        // nothing and call that done (LDAP and the portal's API both
        // answer an empty name with success): it fails for good, where
        // the dashboard's failed jobs show it to an operator.
        if job.account_id.trim().is_empty() {
            return Ok(Outcome::Failed(
                "no portal account named: nothing was locked, unlocked or deleted; an operator must look at this request".into(),
            ));
        }
        let Some(rid) = item.request_id else {
            return Ok(Outcome::Done);
        };
        let Some(r) = desk.store.request(rid).await? else {
            return Ok(Outcome::Done);
        };
        // A lock for a request no longer waiting out its window (the
        // hotline stopped it first) is not done.
        if item.kind == OutboxKind::AccountLock && r.state != RequestState::GracePeriod {
            let mut tx = desk.store.begin().await?;
            store::mark_sent_tx(&mut tx, item.id).await?;
            let why = format!("request is {}", r.state);
            let line = desk.system(rid, Action::LockSkipped, None, None, Some(why));
            store::audit(&mut tx, &line).await?;
            store::commit(tx).await?;
            return Ok(Outcome::DoneInTransaction);
        }
        let called = match item.kind {
            OutboxKind::AccountLock => desk.accounts.lock(&job.account_id).await,
            OutboxKind::AccountUnlock => desk.accounts.unlock(&job.account_id).await,
            _ => desk.accounts.delete(&job.account_id).await,
        };
        if let Err(e) = called {
            return Ok(Outcome::Retry(e.to_string()));
        }
        let mut tx = desk.store.begin().await?;
        store::mark_sent_tx(&mut tx, item.id).await?;
        desk.after_account_call(&mut tx, item.kind, &r, &job.account_id)
            .await?;
        store::commit(tx).await?;
        Ok(Outcome::DoneInTransaction)
    }
}

impl Desk {
    /// What follows a call the account store made: its history line, and
    /// the holder's SMS after a lock, the citizen's letter after a deletion.
    async fn after_account_call(
        &self,
        tx: &mut store::Tx,
        kind: OutboxKind,
        r: &RequestRow,
        account: &str,
    ) -> Result<(), WorkflowError> {
        let rid = r.id;
        match kind {
            OutboxKind::AccountLock => {
                let line =
                    self.system(rid, Action::AccountLocked, None, None, Some(account.into()));
                store::audit(tx, &line).await?;
                self.queue_sms(tx, r).await?;
            }
            OutboxKind::AccountUnlock => {
                let line = self.system(
                    rid,
                    Action::AccountUnlocked,
                    None,
                    None,
                    Some(account.into()),
                );
                store::audit(tx, &line).await?;
            }
            _ => {
                let fresh = store::request_in(tx, rid).await?;
                if fresh.state == RequestState::Deleting
                    && store::set_state(tx, rid, fresh.version, RequestState::Deleted).await?
                {
                    let line = self.system(
                        rid,
                        Action::AccountDeleted,
                        Some(RequestState::Deleting),
                        Some(RequestState::Deleted),
                        Some(account.into()),
                    );
                    store::audit(tx, &line).await?;
                    self.queue_citizen_letter(
                        tx,
                        &fresh,
                        "deleted",
                        context! {},
                        format!("deleted:{rid}"),
                    )
                    .await?;
                    tracing::info!(request = %fresh.reference, account, "account deleted");
                }
            }
        }
        Ok(())
    }
}
