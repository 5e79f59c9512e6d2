//! The state machine up to the operator: every message that reaches the
//! desk is stored, inspected, and either kept (not a request) or turned into
//! a request, joined to an earlier one when it follows up, with the reply
//! queued in the same transaction.

mod decide;
mod digest;
mod grace;
mod ingest;
mod inspection;
mod jobs;
mod letters;
mod outbox_worker;
pub mod reports;
mod retention;
mod sms;

pub use crate::domain::request_state::ALL_STATES;
pub use decide::{
    account_numbers, holder_risks, stored_qr, Decided, Decision, HolderRisk, Refusal, StoredQr,
    CLAIM_MS,
};
pub use ingest::{Desk, Ingested, MAX_INSPECTIONS};
pub use inspection::{inspection_timeouts, inspection_totals, Inspectors};
pub use jobs::AccountJob;
pub use outbox_worker::{deliver_emails, RetryPolicy};

/// What went wrong in the workflow.
#[derive(Debug, thiserror::Error)]
pub enum WorkflowError {
    /// The database.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// A letter could not be rendered.
    #[error(transparent)]
    Template(#[from] crate::notify::TemplateError),
    /// Another writer changed the request at the same time, three times over.
    #[error("request {0} kept changing under us; will retry")]
    Contention(i64),
    /// An operator's decision was refused.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// The account store failed (the request is left as it was).
    #[error("account store: {0}")]
    Accounts(String),
    /// A stored message vanished (purged) while it was needed.
    #[error("stored message {0} has no content")]
    MissingRaw(String),
}
