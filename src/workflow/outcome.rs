//! What an operator's or the hotline's action came to: what it did
//! ([`Decided`]), or why it was refused ([`Refusal`], which the operator
//! reads). Decisions, the hotline and the SMS step all answer with these.

use crate::domain::{RequestState, Role};

/// Why a decision was refused; the operator sees this.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No such request.
    #[error("no such request")]
    NotFound,
    /// The request changed since the operator loaded it.
    #[error("the request changed since you opened it; reload and decide again")]
    Stale,
    /// Another operator holds it.
    #[error("{0} is working on this request")]
    HeldBy(String),
    /// The state machine does not allow it from here.
    #[error("a request in state {0} cannot be decided this way")]
    WrongState(RequestState),
    /// Four-eyes: the second approval must come from someone else.
    #[error("a second operator must confirm this approval")]
    SameApprover,
    /// The account is not one of those matching the request.
    #[error("account {0} does not match this request")]
    UnknownAccount(String),
    /// Four-eyes: the second approver chose another account.
    #[error("the first approver chose account {0}; confirm that one or reject")]
    OtherAccount(String),
    /// A reason, message or note is empty or too long.
    #[error("{0} must be between 1 and 4000 characters")]
    BadText(&'static str),
    /// The role does not allow it.
    #[error("your role ({0}) does not allow this")]
    Forbidden(Role),
    /// The account's holder cannot be told through the account itself, or
    /// it was found only through the card QR: a supervisor confirms first.
    #[error("account {0}: {1}; a supervisor must confirm it separately before approval")]
    NeedsSupervisor(String, String),
    /// There is nothing for a supervisor to confirm on this account.
    #[error("account {0} can be approved without a supervisor's confirmation")]
    NothingToConfirm(String),
    /// Nobody holds the request, so there is nothing to release.
    #[error("nobody is working on this request")]
    NotHeld,
    /// Another request's window for this account is open.
    #[error("account {0} is already in the deletion window of {1}")]
    AccountInWindow(String, String),
}

impl Refusal {
    /// A stable code for the API and for the console's messages.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::NotFound => "not_found",
            Refusal::Stale => "stale",
            Refusal::HeldBy(_) => "held_by_other",
            Refusal::WrongState(_) => "wrong_state",
            Refusal::SameApprover => "same_approver",
            Refusal::UnknownAccount(_) => "unknown_account",
            Refusal::OtherAccount(_) => "other_account",
            Refusal::BadText(_) => "bad_text",
            Refusal::Forbidden(_) => "forbidden",
            Refusal::NeedsSupervisor(..) => "needs_supervisor",
            Refusal::NothingToConfirm(_) => "nothing_to_confirm",
            Refusal::NotHeld => "not_held",
            Refusal::AccountInWindow(..) => "account_in_window",
        }
    }
}

/// What a decision did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Decided {
    /// The request moved.
    Moved {
        /// Its new state.
        state: RequestState,
    },
    /// Four-eyes: the first approval is recorded; a second is needed.
    AwaitingSecondApproval,
    /// A note was added.
    Noted,
}
