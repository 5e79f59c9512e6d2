//! The desk's steps, one file each, in the order a request lives them:
//!
//! - [`desk`](Desk): what every step shares, and the history lines they write;
//! - `ingest`: a message in: stored first, inspected (`inspection`, on
//!   its own threads with time and memory budgets), then kept (not a
//!   request), or opening or joining a request, the reply queued in the
//!   same transaction;
//! - `letters`: every letter by one path: who may get it, the daily limit
//!   per address, what of the citizen's words it may echo, the thread
//!   secret; and their delivery;
//! - `needs_info`: a request waiting for the citizen, closed when the
//!   answer never comes;
//! - `queue`: the requests waiting, as operators work them;
//! - `decide`: an operator's decisions (claim, approve, reject, ask,
//!   note, four eyes), each one transaction on the version they saw;
//!   `outcome` says what one did or why it was refused;
//! - `grace`: from approval to deletion (the window, the hotline);
//!   `sms` the holder's SMS and its delivery reports; `account_jobs`
//!   the account store's lock, unlock and delete;
//! - `jobs`: the one outbox runner that letters, SMS and account calls go
//!   through (claim, act, record, back off);
//! - `review`: what the console's request page asks of the desk (the
//!   actions, a message's text, a photo's bytes, the next request);
//!   `operators`: the desk's people and their API tokens, each change
//!   audited, for the CLI, the console and the API alike;
//! - `retention`: closed requests purged; `digest`: the supervisors' mail.
//!
//! Files depend on `desk`, `outcome` and `jobs`, never on each other in a
//! circle; nothing here knows the web console.

mod account_jobs;
mod decide;
mod desk;
mod digest;
mod grace;
mod ingest;
mod inspection;
mod jobs;
mod letters;
mod needs_info;
pub mod operators;
mod outcome;
pub mod queue;
pub mod reports;
mod retention;
pub mod review;
mod sms;

pub use crate::domain::request_state::ALL_STATES;
pub use account_jobs::AccountJob;
pub use decide::{
    account_numbers, holder_risks, stored_qr, Decision, HolderRisk, StoredQr, CLAIM_MS,
};
pub use desk::Desk;
pub use ingest::{Ingested, MAX_INSPECTIONS};
pub use inspection::{inspection_timeouts, inspection_totals, Inspectors};
pub use jobs::RetryPolicy;
pub use letters::deliver_emails;
pub use outcome::{Decided, Refusal};

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
    /// A day given to a command is not a date (YYYY-MM-DD).
    #[error("not a day: {0}")]
    BadDay(String),
    /// A stored message vanished (purged) while it was needed.
    #[error("stored message {0} has no content")]
    MissingRaw(String),
}
