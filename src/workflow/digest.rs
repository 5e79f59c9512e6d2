//! The daily digest to supervisors: open requests due within 3 working days
//! and those overdue, so the desk never reaches the 20-day limit unseen.
//! Sent once a day across replicas (a row per day claims it).

use minijinja::context;

use super::desk::Desk;
use super::WorkflowError;
use crate::domain::time::digest_day_due;
use crate::notify::OutgoingEmail;
use crate::store::{self, QueueFilter};

impl Desk {
    /// Sends today's digest if it is time and nobody has; returns whether
    /// it was queued.
    pub async fn send_digest_if_due(&self) -> Result<bool, WorkflowError> {
        if self.config.digest_to.is_empty() {
            return Ok(false);
        }
        match digest_day_due(self.now(), self.config.digest_hour) {
            Some(day) => self.send_digest(&day.to_string()).await,
            None => Ok(false),
        }
    }

    /// Queues the digest for `day` (YYYY-MM-DD) unless it was sent.
    pub async fn send_digest(&self, day: &str) -> Result<bool, WorkflowError> {
        let today = chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d")
            .map_err(|e| WorkflowError::BadDay(format!("{day}: {e}")))?;
        let soon = self.due_soon_by(today).to_string();
        let list = |due_by: String| QueueFilter {
            due_by: Some(due_by),
            open_only: true,
            limit: 500,
            ..QueueFilter::default()
        };
        let (due, _) = self.store.queue(&list(soon)).await?;
        let (overdue, due): (Vec<_>, Vec<_>) =
            due.into_iter().partition(|r| r.due_date.as_str() < day);
        let rows = |v: &[store::RequestRow]| -> Vec<minijinja::Value> {
            v.iter()
                .map(|r| {
                    context! {
                        reference => r.reference, state => r.state.as_str(), due_date => r.due_date,
                        full_name => r.full_name, id_number => r.id_number,
                        holder => r.holder(self.now()),
                    }
                })
                .collect()
        };
        // The audit chain's head as of now: a supervisor who keeps the
        // digests can later check that no row up to it was removed or
        // rewritten (`huytk audit verify --head ID:HASH`).
        let head = self.store.audit_head().await?;
        let rendered = self.templates.render(
            "digest",
            context! {
                day, due => rows(&due), overdue => rows(&overdue), desk_name => self.config.name,
                reference => "", hotline => self.config.hotline, audit_head => head,
            },
        )?;
        let mut tx = self.store.begin().await?;
        if !store::claim_digest(&mut tx, day).await? {
            store::rollback(tx).await?;
            return Ok(false);
        }
        for to in &self.config.digest_to {
            let mail = OutgoingEmail {
                to: to.clone(),
                subject: rendered.subject.clone(),
                text: rendered.text.clone(),
                html: rendered.html.clone(),
                message_id: format!("<digest.{day}@{}>", self.config.message_id_domain),
                in_reply_to: None,
                references: Vec::new(),
            };
            self.queue_desk_mail(&mut tx, "digest", &format!("digest:{day}:{to}"), &mail)
                .await?;
        }
        store::commit(tx).await?;
        tracing::info!(
            day,
            due = due.len(),
            overdue = overdue.len(),
            "daily digest queued"
        );
        Ok(true)
    }
}
