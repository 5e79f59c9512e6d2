//! An operator's review of one request, as data for the console and the
//! API: the actions on it (claim, release, decide, the hotline's answers),
//! the request to review next, a stored message's text and attachment
//! names, and the original bytes of one of its photos. Reading a mail means parsing its MIME: that runs on a
//! blocking thread, never on the async runtime, and never in a handler.

use super::{Decided, Decision, Desk, Refusal, WorkflowError};
use crate::domain::time::now_ms;
use crate::domain::RequestState;
use crate::store::{OperatorRow, QueueFilter, RequestRow};

/// What an operator asks of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewAction {
    /// Take the request to work on it.
    Claim,
    /// A supervisor takes over another operator's claim.
    TakeOver,
    /// Give the claim back to the queue.
    Release,
    /// Approve the deletion of an account.
    Approve,
    /// A supervisor allows an account whose holder cannot be told.
    ConfirmHolderRisk,
    /// Reject with a reason.
    Reject,
    /// Ask the citizen for more.
    Ask,
    /// An internal note.
    Note,
    /// Hotline: the holder objects within the grace period.
    Object,
    /// Hotline: the holder confirms the deletion now.
    ConfirmDelete,
}

impl ReviewAction {
    /// The action named in a URL (`/requests/{ref}/{action}`), if any.
    pub fn parse(s: &str) -> Option<ReviewAction> {
        use ReviewAction::*;
        Some(match s {
            "claim" => Claim,
            "take-over" => TakeOver,
            "release" => Release,
            "approve" => Approve,
            "confirm-holder-risk" => ConfirmHolderRisk,
            "reject" => Reject,
            "ask" => Ask,
            "note" => Note,
            "object" => Object,
            "confirm-delete" => ConfirmDelete,
            _ => return None,
        })
    }

    /// The hotline's answers (the console returns to the hotline page).
    pub fn is_hotline(self) -> bool {
        matches!(self, ReviewAction::Object | ReviewAction::ConfirmDelete)
    }
}

/// The inputs of an action, from a form or JSON.
#[derive(Debug, Default, Clone)]
pub struct ActInput {
    /// The version the operator saw.
    pub version: i64,
    /// Approve: the account.
    pub account: String,
    /// Reject: the reason text.
    pub reason: String,
    /// Ask: the message.
    pub message: String,
    /// Note: the text.
    pub text: String,
}

/// What an action did.
#[derive(Debug, serde::Serialize)]
#[serde(untagged)]
pub enum Done {
    /// A decision.
    Decided(Decided),
    /// Claimed or released.
    Claim {
        /// `claimed` or `released`.
        claim: &'static str,
    },
}

impl Desk {
    /// Performs an action of `who` on request `id` (pages and API share
    /// this). `four_eyes`: approvals need two operators.
    pub async fn review(
        &self,
        who: &OperatorRow,
        id: i64,
        action: ReviewAction,
        a: ActInput,
        four_eyes: bool,
    ) -> Result<Done, WorkflowError> {
        use ReviewAction::*;
        let decision = match action {
            Claim | TakeOver => {
                self.claim(who, id, action == TakeOver).await?;
                return Ok(Done::Claim { claim: "claimed" });
            }
            Release => {
                self.release(who, id).await?;
                return Ok(Done::Claim { claim: "released" });
            }
            Object => {
                let d = self.hotline_object(who, id, &a.text).await?;
                tracing::info!(operator = %who.login, request = id, "hotline: the holder objected");
                return Ok(Done::Decided(d));
            }
            ConfirmDelete => {
                let d = self.hotline_confirm(who, id, &a.text).await?;
                tracing::info!(operator = %who.login, request = id, "hotline: the holder confirmed");
                return Ok(Done::Decided(d));
            }
            Approve => Decision::Approve { account: a.account },
            ConfirmHolderRisk => Decision::ConfirmHolderRisk { account: a.account },
            Reject => Decision::Reject { reason: a.reason },
            Ask => Decision::Ask { message: a.message },
            Note => Decision::Note { text: a.text },
        };
        let d = self.decide(who, id, a.version, decision, four_eyes).await?;
        tracing::info!(operator = %who.login, request = id, ?action, outcome = ?d, "decision");
        Ok(Done::Decided(d))
    }

    /// The request to review after `r`: the next one waiting for review
    /// in queue order, else the first other one from the top.
    pub async fn next_for_review(&self, r: &RequestRow) -> Result<Option<String>, WorkflowError> {
        let mut f = QueueFilter {
            state: Some(RequestState::PendingReview),
            after: Some((r.due_date.clone(), r.received_at, r.id)),
            limit: 1,
            ..QueueFilter::default()
        };
        if let Some(n) = self.store.queue(&f).await?.0.into_iter().next() {
            return Ok(Some(n.reference));
        }
        f.after = None;
        f.limit = 2;
        let (rows, _) = self.store.queue(&f).await?;
        Ok(rows
            .into_iter()
            .map(|n| n.reference)
            .find(|n| *n != r.reference))
    }

    /// Gives a claim back; only its holder does (a supervisor takes over).
    async fn release(&self, who: &OperatorRow, id: i64) -> Result<(), WorkflowError> {
        if self.store.release_request(id, who.login.as_str()).await? {
            return Ok(());
        }
        let holder = self
            .store
            .request(id)
            .await?
            .and_then(|r| r.holder(now_ms()).map(str::to_owned));
        Err(match holder {
            Some(h) => Refusal::HeldBy(h),
            None => Refusal::NotHeld,
        }
        .into())
    }

    /// The photo `sha` of the request `reference`: its request id and the
    /// stored message that carries it. A malformed digest or a photo of
    /// another request is not found.
    pub async fn find_photo(&self, reference: &str, sha: &str) -> Result<PhotoRef, WorkflowError> {
        if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Refusal::NotFound.into());
        }
        let r = self
            .store
            .request_by_reference(reference)
            .await?
            .ok_or(Refusal::NotFound)?;
        let p = self
            .store
            .photos_of(r.id)
            .await?
            .into_iter()
            .find(|p| p.sha256 == sha)
            .ok_or(Refusal::NotFound)?;
        Ok(PhotoRef {
            request_id: r.id,
            message: p.message,
            sha256: p.sha256,
        })
    }

    /// The original bytes of a photo, found in its stored message (parsed
    /// on a blocking thread).
    pub async fn photo_bytes(&self, p: &PhotoRef) -> Result<Vec<u8>, WorkflowError> {
        let raw = self
            .store
            .raw(&p.message)
            .await?
            // Purged by retention: the photo is gone, as for a stranger.
            .ok_or(Refusal::NotFound)?;
        let wanted = p.sha256.clone();
        off_runtime(move || {
            use sha2::Digest;
            let msg = crate::intake::mime::parse(&raw)?;
            let mail = crate::intake::mime::read(&msg);
            mail.parts
                .iter()
                .find(|p| hex::encode(sha2::Sha256::digest(p.bytes)) == wanted)
                .map(|p| p.bytes.to_vec())
        })
        .await?
        .ok_or_else(|| Refusal::NotFound.into())
    }

    /// A stored message's text and attachment names, as the thread shows
    /// it; none when the raw message was purged.
    pub async fn message_text(&self, sha: &str) -> Result<Option<MessageText>, WorkflowError> {
        let Some(raw) = self.store.raw(sha).await? else {
            return Ok(None);
        };
        let text = off_runtime(move || match crate::intake::mime::parse(&raw) {
            Some(msg) => {
                let mail = crate::intake::mime::read(&msg);
                let attachments = mail
                    .parts
                    .iter()
                    .map(|p| p.filename.clone().unwrap_or_else(|| "(không tên)".into()))
                    .collect();
                MessageText {
                    body: mail.body,
                    attachments,
                }
            }
            None => MessageText::default(),
        })
        .await?;
        Ok(Some(text))
    }
}

/// Runs MIME parsing on a blocking thread; a panic there stays a panic.
async fn off_runtime<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, WorkflowError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(v) => Ok(v),
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// Where a request's photo is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhotoRef {
    /// The request it belongs to.
    pub request_id: i64,
    /// The stored message that carries it.
    pub message: String,
    /// Its SHA-256 (hex).
    pub sha256: String,
}

/// A message's readable content.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageText {
    /// Body text (new text and quotes as sent).
    pub body: String,
    /// Attachment file names.
    pub attachments: Vec<String>,
}
