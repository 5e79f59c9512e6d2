//! Every letter the desk sends, by one path: who may get it, the daily
//! limit per address, what of the citizen's words it may echo, the thread
//! secret in its Message-ID and subject, and the outbox row, all inside
//! the caller's transaction.

use minijinja::{context, Value};

use super::desk::Desk;
use super::WorkflowError;
use crate::domain::thread::{echoable_number, salutation_name, OurMessageId, ThreadToken};
use crate::notify::OutgoingEmail;
use crate::store::{self, OutboxKind, RequestRow};

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
        let skip = |why: &str| {
            self.history(
                Some(l.request_id),
                "system",
                "reply_not_sent",
                None,
                None,
                Some(format!("{}: {why}", l.template)),
            )
        };
        if let Some(why) = self.unwritable(l.to) {
            store::audit(tx, &skip(why)).await?;
            return Ok(());
        }
        let day_ago = self.now() - 24 * 3600 * 1000;
        if store::queued_since(tx, OutboxKind::Email, l.to, day_ago).await?
            >= i64::from(self.config.max_mails_per_address_per_day)
        {
            store::audit(tx, &skip("daily limit of mails to this address reached")).await?;
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
        let payload = serde_json::to_string(&mail).unwrap_or_default();
        store::enqueue(
            tx,
            OutboxKind::Email,
            Some(l.request_id),
            &l.dedupe,
            l.to,
            &payload,
        )
        .await?;
        Ok(())
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
