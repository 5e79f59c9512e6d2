//! The states of a request (SPEC section 2) and which moves are allowed.

use serde::Serialize;
use std::fmt;

/// Where a request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum RequestState {
    /// Something is missing; the citizen was asked.
    NeedsInfo,
    /// Complete; waits for an operator.
    PendingReview,
    /// An operator refused it.
    Rejected,
    /// Account locked, SMS sent, waiting out the window.
    GracePeriod,
    /// The holder objected through the hotline.
    Cancelled,
    /// The deletion is under way (retried until done).
    Deleting,
    /// The account is gone.
    Deleted,
    /// The citizen never completed it.
    ClosedIncomplete,
}

/// Every state, in the order the console lists them.
pub const ALL_STATES: [RequestState; 8] = [
    RequestState::NeedsInfo,
    RequestState::PendingReview,
    RequestState::GracePeriod,
    RequestState::Deleting,
    RequestState::Deleted,
    RequestState::Rejected,
    RequestState::Cancelled,
    RequestState::ClosedIncomplete,
];

/// A string that is not a state name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a request state")]
pub struct UnknownState(pub String);

impl RequestState {
    /// The snake_case name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestState::NeedsInfo => "needs_info",
            RequestState::PendingReview => "pending_review",
            RequestState::Rejected => "rejected",
            RequestState::GracePeriod => "grace_period",
            RequestState::Cancelled => "cancelled",
            RequestState::Deleting => "deleting",
            RequestState::Deleted => "deleted",
            RequestState::ClosedIncomplete => "closed_incomplete",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Result<RequestState, UnknownState> {
        ALL_STATES
            .iter()
            .copied()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| UnknownState(s.to_owned()))
    }

    /// Still open for the citizen's mail: a new message may change it.
    pub fn takes_followups(self) -> bool {
        matches!(self, RequestState::NeedsInfo | RequestState::PendingReview)
    }

    /// Not yet at an end: a second request for the same number joins it.
    pub fn is_open(self) -> bool {
        matches!(
            self,
            RequestState::NeedsInfo
                | RequestState::PendingReview
                | RequestState::GracePeriod
                | RequestState::Deleting
        )
    }

    /// Whether the state machine allows `self → to`.
    pub fn can_move_to(self, to: RequestState) -> bool {
        use RequestState::*;
        matches!(
            (self, to),
            (NeedsInfo, PendingReview)
                | (NeedsInfo, NeedsInfo)
                | (NeedsInfo, ClosedIncomplete)
                | (PendingReview, NeedsInfo)
                | (PendingReview, PendingReview)
                | (PendingReview, Rejected)
                | (PendingReview, GracePeriod)
                | (GracePeriod, Cancelled)
                | (GracePeriod, Deleting)
                | (GracePeriod, PendingReview)
                | (Deleting, Deleted)
        )
    }
}

impl fmt::Display for RequestState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in ALL_STATES {
            assert_eq!(RequestState::parse(s.as_str()), Ok(s));
        }
        assert!(RequestState::parse("approved").is_err());
    }

    #[test]
    fn final_states_go_nowhere() {
        for end in [
            RequestState::Deleted,
            RequestState::Rejected,
            RequestState::Cancelled,
            RequestState::ClosedIncomplete,
        ] {
            assert!(ALL_STATES.iter().all(|&to| !end.can_move_to(to)), "{end}");
        }
        assert!(!RequestState::PendingReview.can_move_to(RequestState::Deleted));
        assert!(!RequestState::NeedsInfo.can_move_to(RequestState::GracePeriod));
    }
}
