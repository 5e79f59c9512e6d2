//! Delivers queued mail: claims due rows, sends, records the outcome, and
//! backs off on failure. A server that is down means later, not lost.

use crate::domain::redact;
use lettre::message::Mailbox;
use std::time::Duration;

use super::WorkflowError;
use crate::domain::time::now_ms;
use crate::notify::{Mailer, OutgoingEmail};
use crate::store::{OutboxKind, Store};

/// How long a claimed outbox row (a letter, an SMS, an account job) stays
/// its worker's before another replica may take it.
pub(super) const LEASE_MS: i64 = 120_000;

/// Backoff after `attempts` failures: `base` seconds doubling, at most an
/// hour.
pub fn backoff(attempts: i64, base: u64) -> Duration {
    let secs = base
        .max(1)
        .saturating_mul(1u64 << attempts.clamp(0, 12) as u32);
    Duration::from_secs(secs.min(3600))
}

/// How delivery retries.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts before giving up.
    pub max_attempts: u32,
    /// First backoff, seconds.
    pub base_seconds: u64,
}

impl RetryPolicy {
    /// Milliseconds to wait after `attempts` failures.
    pub fn delay_ms(&self, attempts: i64) -> i64 {
        backoff(attempts, self.base_seconds).as_millis() as i64
    }
}

/// Delivers up to `limit` due mails; returns how many were sent.
pub async fn deliver_emails(
    store: &Store,
    mailer: &Mailer,
    from: &Mailbox,
    retry: RetryPolicy,
    limit: i64,
) -> Result<usize, WorkflowError> {
    let items = store.claim(OutboxKind::Email, limit, LEASE_MS).await?;
    let mut sent = 0;
    for item in items {
        let mail: OutgoingEmail = match serde_json::from_str(&item.payload) {
            Ok(m) => m,
            Err(e) => {
                store
                    .mark_attempt_failed(item.id, &format!("bad payload: {e}"), now_ms(), true)
                    .await?;
                continue;
            }
        };
        if store.supersede_if_outdated(item.id).await? {
            tracing::info!(
                outbox = item.id,
                "letter not sent: a later one about its request went first"
            );
            continue;
        }
        match mailer.send(from, &mail, item.id).await {
            Ok(()) => {
                store.mark_sent(item.id).await?;
                tracing::info!(outbox = item.id, to = %redact::email(&item.recipient), "mail sent");
                sent += 1;
            }
            Err(e) => {
                let permanent = e.permanent || item.attempts + 1 >= i64::from(retry.max_attempts);
                let wait = backoff(item.attempts, retry.base_seconds);
                let next = now_ms() + wait.as_millis() as i64;
                store
                    .mark_attempt_failed(item.id, &e.message, next, permanent)
                    .await?;
                if permanent {
                    tracing::error!(outbox = item.id, to = %redact::email(&item.recipient), error = %e, "mail failed for good");
                } else {
                    tracing::warn!(outbox = item.id, to = %redact::email(&item.recipient), error = %e, retry_in_s = wait.as_secs(), "mail not sent; will retry");
                }
            }
        }
    }
    Ok(sent)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A letter whose send was cut and whose lease ran out after a later
    /// letter about the same request went out is not sent any more.
    #[tokio::test]
    async fn a_letter_overtaken_by_a_later_one_is_not_sent() {
        let dir = std::env::temp_dir().join(format!("huytk-superseded-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = Store::connect(&format!("sqlite://{}/d.db", dir.display()))
            .await
            .unwrap();
        let mail = |subject: &str| {
            serde_json::to_string(&OutgoingEmail {
                to: "an@test".into(),
                subject: subject.into(),
                text: "x".into(),
                html: "<p>x</p>".into(),
                message_id: format!("<{subject}@test>"),
                in_reply_to: None,
                references: Vec::new(),
            })
            .unwrap()
        };
        sqlx::query("INSERT INTO requests (id, reference, state, email, received_at, due_date, updated_at) VALUES (1, 'HTK-1', 'deleted', 'an@test', 0, '2026-12-31', 0)")
            .execute(store.pool())
            .await
            .unwrap();
        let mut tx = store.begin().await.unwrap();
        for (key, subject) in [
            ("approved", "approved"),
            ("deleted", "deleted"),
            ("other", "other"),
        ] {
            let request = (key != "other").then_some(1);
            crate::store::enqueue(
                &mut tx,
                OutboxKind::Email,
                request,
                key,
                "an@test",
                &mail(subject),
            )
            .await
            .unwrap();
        }
        crate::store::commit(tx).await.unwrap();
        // "deleted" (row 2) went out while "approved" (row 1) was held.
        store.mark_sent(2).await.unwrap();
        let outbox = dir.join("outbox");
        let mailer = Mailer::Maildir(outbox.clone());
        let from: Mailbox = "desk@test".parse().unwrap();
        let retry = RetryPolicy {
            max_attempts: 3,
            base_seconds: 1,
        };
        assert_eq!(
            deliver_emails(&store, &mailer, &from, retry, 10)
                .await
                .unwrap(),
            1
        );
        let sent: Vec<String> = std::fs::read_dir(outbox.join("new"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            sent,
            vec!["outbox-0000000003.eml".to_owned()],
            "only the letter about nothing else"
        );
        let states = store.outbox_counts().await.unwrap();
        assert!(
            states.iter().any(|(_, s, n)| s == "superseded" && *n == 1),
            "{states:?}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff(0, 10), Duration::from_secs(10));
        assert_eq!(backoff(1, 10), Duration::from_secs(20));
        assert_eq!(backoff(20, 10), Duration::from_secs(3600));
    }
}
