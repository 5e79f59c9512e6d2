//! One runner for every outbox job: letters, the holder's SMS and the
//! account store's calls. Each is a row of the outbox written in the
//! transaction of the state change that causes it; the runner claims due
//! rows (one replica at a time holds each, for [`LEASE_MS`]), reads the
//! payload, lets the job's kind carry it out, and records what came of it
//! ([`Outcome`]), backing off on failure. A server that is down means
//! later, not lost; a failure for good is visible on the dashboard.

use std::future::Future;
use std::time::Duration;

use serde::de::DeserializeOwned;

use super::WorkflowError;
use crate::domain::time::now_ms;
use crate::store::{OutboxItem, OutboxKind, Store};

/// How long a claimed outbox row stays its worker's before another
/// replica may take it.
pub(super) const LEASE_MS: i64 = 120_000;

/// Backoff after `attempts` failures: `base` seconds doubling, at most an
/// hour.
pub fn backoff(attempts: i64, base: u64) -> Duration {
    let secs = base
        .max(1)
        .saturating_mul(1u64 << attempts.clamp(0, 12) as u32);
    Duration::from_secs(secs.min(3600))
}

/// How a job is retried.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts before giving up (for the kinds that give up).
    pub max_attempts: u32,
    /// First backoff, seconds.
    pub base_seconds: u64,
}

impl RetryPolicy {
    /// Milliseconds to wait after `attempts` failures.
    pub fn delay_ms(&self, attempts: i64) -> i64 {
        backoff(attempts, self.base_seconds).as_millis() as i64
    }

    /// Whether this attempt at `item` is its last.
    pub(super) fn is_last(&self, item: &OutboxItem) -> bool {
        item.attempts + 1 >= i64::from(self.max_attempts)
    }
}

/// What one attempt at a job came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Outcome {
    /// Done: the runner marks the row sent.
    Done,
    /// Done, and marked so by the job in the transaction of what it caused
    /// (the window that starts, the state that moves).
    DoneInTransaction,
    /// Not carried out, and never to be: the job recorded why (a letter
    /// overtaken by a later one, an SMS for a request out of its window).
    Dropped,
    /// Not now: tried again after the backoff.
    Retry(String),
    /// Never: failed for good, through the job's [`Job::fail`].
    Failed(String),
}

/// One kind of outbox job: its payload and how it is carried out.
pub(super) trait Job {
    /// The payload as it was queued.
    type Payload: DeserializeOwned;
    /// What the job is called in the log ("mail", "SMS" …).
    const WHAT: &'static str;
    /// The outbox kinds this job works.
    fn kinds(&self) -> &'static [OutboxKind];
    /// Carries out one claimed row.
    fn execute(
        &self,
        item: &OutboxItem,
        payload: Self::Payload,
    ) -> impl Future<Output = Result<Outcome, WorkflowError>> + Send;
    /// Records a failure for good: the row is marked failed; a kind whose
    /// failure moves its request does that too.
    fn fail(
        &self,
        store: &Store,
        item: &OutboxItem,
        why: &str,
    ) -> impl Future<Output = Result<(), WorkflowError>> + Send {
        async move {
            store
                .mark_attempt_failed(item.id, why, now_ms(), true)
                .await?;
            Ok(())
        }
    }
}

/// Claims up to `limit` due rows of `job`'s kinds and carries each out, in
/// the shape of one task at a time: claim, read, act, record. Returns how
/// many were done.
pub(super) async fn run<J: Job + Sync>(
    store: &Store,
    job: &J,
    retry: RetryPolicy,
    limit: i64,
) -> Result<usize, WorkflowError> {
    let items = store.claim_kinds(job.kinds(), limit, LEASE_MS).await?;
    let mut done = 0;
    for item in items {
        let outcome = match serde_json::from_str::<J::Payload>(&item.payload) {
            Ok(payload) => job.execute(&item, payload).await?,
            Err(e) => Outcome::Failed(format!("bad payload: {e}")),
        };
        if matches!(outcome, Outcome::Done | Outcome::DoneInTransaction) {
            done += 1;
        }
        record(store, job, &item, outcome, retry).await?;
    }
    Ok(done)
}

/// Records what came of one attempt.
async fn record<J: Job + Sync>(
    store: &Store,
    job: &J,
    item: &OutboxItem,
    outcome: Outcome,
    retry: RetryPolicy,
) -> Result<(), WorkflowError> {
    let (outbox, request, kind) = (item.id, item.request_id, item.kind.as_str());
    match outcome {
        Outcome::Done => store.mark_sent(item.id).await?,
        Outcome::DoneInTransaction | Outcome::Dropped => {}
        Outcome::Retry(why) => {
            let wait = retry.delay_ms(item.attempts);
            tracing::warn!(outbox, ?request, job = kind, error = %why, retry_in_s = wait / 1000, "{} failed; will retry", J::WHAT);
            store
                .mark_attempt_failed(item.id, &why, now_ms() + wait, false)
                .await?;
        }
        Outcome::Failed(why) => {
            tracing::error!(outbox, ?request, job = kind, error = %why, "{} failed for good", J::WHAT);
            job.fail(store, item, &why).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff(0, 10), Duration::from_secs(10));
        assert_eq!(backoff(1, 10), Duration::from_secs(20));
        assert_eq!(backoff(20, 10), Duration::from_secs(3600));
    }
}
