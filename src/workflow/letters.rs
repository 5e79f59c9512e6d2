//! Every letter the desk sends, by one path: who may get it, the daily
//! limit per address, what of the citizen's words it may echo, the thread
//! secret in its Message-ID and subject, and the outbox row, all inside
//! the caller's transaction.

use lettre::message::Mailbox;
use minijinja::{context, Value};

use super::desk::Desk;
use super::jobs::{self, Job, Outcome, RetryPolicy};
use super::WorkflowError;
use crate::domain::redact;
use crate::domain::thread::{echoable_number, salutation_name, OurMessageId, ThreadToken};
use crate::domain::Action;
use crate::notify::{Mailer, OutgoingEmail};
use crate::store::{self, OutboxItem, OutboxKind, RequestRow, Store};

/// One letter about a request.
#[derive(Debug, Clone)]
pub(super) struct Letter<'a> {
    /// The request it is about.
    pub request_id: i64,
    /// Its reference, in the subject and Message-ID.
    pub reference: &'a str,
    /// Its thread secret: `None` for a letter to someone who is not the
    /// requester (the holder's notice), who must not be able to join.
    pub token: Option<&'a ThreadToken>,
    /// Where it goes.
    pub to: &'a str,
    /// The template (`templates/email/NAME.*`).
    pub template: &'static str,
    /// The name the citizen wrote (greeted only if it looks like a name).
    pub full_name: Option<&'a str>,
    /// The number asked about (echoed only if it is one).
    pub id_number: Option<&'a str>,
    /// The template's own values.
    pub extra: Value,
    /// Its cause: one letter per cause, however often it is retried.
    pub dedupe: String,
    /// The Message-IDs it answers, oldest first (the last is In-Reply-To).
    pub thread: Vec<String>,
}

impl<'a> Letter<'a> {
    /// A letter to a request's citizen about it, in its thread.
    pub fn to_citizen(r: &'a RequestRow, template: &'static str, dedupe: String) -> Letter<'a> {
        Letter {
            request_id: r.id,
            reference: &r.reference,
            token: Some(&r.thread_token),
            to: &r.email,
            template,
            full_name: r.full_name.as_deref(),
            id_number: r.id_number.as_deref(),
            extra: context! {},
            dedupe,
            thread: Vec::new(),
        }
    }

    /// With the template's own values.
    pub fn with(mut self, extra: Value) -> Letter<'a> {
        self.extra = extra;
        self
    }
}

impl Desk {
    /// Why no letter may go to `to`, if none may: no address, or our own
    /// (a loop with ourselves).
    pub(super) fn unwritable(&self, to: &str) -> Option<&'static str> {
        if !to.contains('@') {
            Some("the request has no sender address")
        } else if to.eq_ignore_ascii_case(&self.config.address) {
            Some("never to our own address")
        } else {
            None
        }
    }

    /// The values every letter may use; a template's own come on top.
    fn letter_values(&self, l: &Letter<'_>) -> Value {
        context! {
            reference => l.reference,
            full_name => l.full_name.and_then(salutation_name),
            id_number => l.id_number.and_then(echoable_number),
            hotline => self.config.hotline,
            desk_name => self.config.name,
            needs_info_days => self.config.needs_info_days,
            service_level_days => self.config.service_level_days,
            grace_days => self.grace_days(),
        }
    }

    /// Queues a letter in `tx`, or records in the request's history why it
    /// was not sent (no address, our own, the day's limit reached).
    pub(super) async fn queue_letter(
        &self,
        tx: &mut store::Tx,
        l: Letter<'_>,
    ) -> Result<(), WorkflowError> {
        if !self
            .may_write(tx, Some(l.request_id), l.template, l.to)
            .await?
        {
            return Ok(());
        }
        let values = self.letter_values(&l);
        let rendered = self
            .templates
            .render(l.template, context! { ..l.extra.clone(), ..values })?;
        let domain = &self.config.message_id_domain;
        let (subject, message_id) = match l.token {
            Some(t) => (
                format!("{} {}", rendered.subject, t.subject_tag()),
                OurMessageId::format(l.reference, &l.dedupe, t, domain),
            ),
            // No secret: a Message-ID nobody can join by.
            None => {
                let nonce = ThreadToken::from_bytes(rand::random());
                (
                    rendered.subject,
                    format!("<{}.{}@{domain}>", l.reference, nonce.as_str()),
                )
            }
        };
        let mail = OutgoingEmail {
            to: l.to.to_owned(),
            subject,
            text: rendered.text,
            html: rendered.html,
            message_id,
            in_reply_to: l.thread.last().cloned(),
            references: l.thread,
        };
        store::enqueue(
            tx,
            OutboxKind::Email,
            Some(l.request_id),
            &l.dedupe,
            l.to,
            &serde_json::to_string(&mail).unwrap_or_default(),
        )
        .await?;
        Ok(())
    }

    /// Queues a finished mail that is about no request (the supervisors'
    /// digest), by the same rules as every letter.
    pub(super) async fn queue_desk_mail(
        &self,
        tx: &mut store::Tx,
        template: &str,
        dedupe: &str,
        mail: &OutgoingEmail,
    ) -> Result<(), WorkflowError> {
        if !self.may_write(tx, None, template, &mail.to).await? {
            return Ok(());
        }
        let payload = serde_json::to_string(mail).unwrap_or_default();
        store::enqueue(tx, OutboxKind::Email, None, dedupe, &mail.to, &payload).await?;
        Ok(())
    }

    /// Whether a letter may go to `to` now: not to no address, never to our
    /// own, and no more than the day's limit to one address. When not, the
    /// history (the request's, or the desk's) says why.
    async fn may_write(
        &self,
        tx: &mut store::Tx,
        request_id: Option<i64>,
        template: &str,
        to: &str,
    ) -> Result<bool, WorkflowError> {
        let day_ago = self.now() - 24 * 3600 * 1000;
        let why = match self.unwritable(to) {
            Some(why) => why,
            None if store::queued_since(tx, OutboxKind::Email, to, day_ago).await?
                >= i64::from(self.config.max_mails_per_address_per_day) =>
            {
                "daily limit of mails to this address reached"
            }
            None => return Ok(true),
        };
        let detail = Some(format!("{template}: {why}"));
        let line = self.history(
            request_id,
            "system",
            Action::ReplyNotSent,
            None,
            None,
            detail,
        );
        store::audit(tx, &line).await?;
        Ok(false)
    }

    /// Queues a letter to a request's citizen answering its latest message.
    pub(super) async fn queue_citizen_letter(
        &self,
        tx: &mut store::Tx,
        r: &RequestRow,
        template: &'static str,
        extra: Value,
        dedupe: String,
    ) -> Result<(), WorkflowError> {
        let mut l = Letter::to_citizen(r, template, dedupe).with(extra);
        l.thread = self.store.request_thread_ids(r.id).await?;
        self.queue_letter(tx, l).await
    }
}

/// Delivers up to `limit` due letters; returns how many were sent.
pub async fn deliver_emails(
    store: &Store,
    mailer: &Mailer,
    from: &Mailbox,
    retry: RetryPolicy,
    limit: i64,
) -> Result<usize, WorkflowError> {
    let job = Delivery {
        store,
        mailer,
        from,
        retry,
    };
    jobs::run(store, &job, retry, limit).await
}

/// Letters, handed to the mail server.
struct Delivery<'a> {
    store: &'a Store,
    mailer: &'a Mailer,
    from: &'a Mailbox,
    retry: RetryPolicy,
}

impl Job for Delivery<'_> {
    type Payload = OutgoingEmail;
    const WHAT: &'static str = "mail";

    fn kinds(&self) -> &'static [OutboxKind] {
        &[OutboxKind::Email]
    }

    async fn execute(
        &self,
        item: &OutboxItem,
        mail: OutgoingEmail,
    ) -> Result<Outcome, WorkflowError> {
        // A letter whose send was cut (its lease ran out) must not arrive
        // after the news that followed it.
        if self.store.supersede_if_outdated(item.id).await? {
            tracing::info!(
                outbox = item.id,
                "letter not sent: a later one about its request went first"
            );
            return Ok(Outcome::Dropped);
        }
        Ok(match self.mailer.send(self.from, &mail, item.id).await {
            Ok(()) => {
                tracing::info!(outbox = item.id, to = %redact::email(&item.recipient), "mail sent");
                Outcome::Done
            }
            Err(e) if e.permanent || self.retry.is_last(item) => Outcome::Failed(e.to_string()),
            Err(e) => Outcome::Retry(e.to_string()),
        })
    }
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
}
