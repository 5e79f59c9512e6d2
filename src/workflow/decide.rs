//! An operator's decisions on a request: claim it, approve it (choosing the
//! portal account), reject it with a reason, ask the citizen for more, or
//! add a note. Each decision is one transaction with its audit row and its
//! letter in the outbox, and it applies only to the version of the request
//! the operator was looking at: a decision made on stale information is
//! refused, never applied twice.

use minijinja::context;

use super::ingest::Desk;
use super::WorkflowError;
use crate::accounts::{AccountStore, PortalAccount};
use crate::domain::time::now_ms;
use crate::domain::{RequestState, Role};
use crate::store::{self, OperatorRow, RequestRow};

/// What an operator decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Delete this portal account (after the grace period).
    Approve {
        /// The portal account id, one of those matching the request.
        account: String,
    },
    /// Refuse, telling the citizen why.
    Reject {
        /// The text the citizen reads.
        reason: String,
    },
    /// Ask the citizen for more.
    Ask {
        /// The text the citizen reads.
        message: String,
    },
    /// A note for the desk only.
    Note {
        /// The note.
        text: String,
    },
    /// A supervisor allows `account` to be approved although its holder
    /// cannot be told through the account's own phone, or although it was
    /// found only through the card QR's other number (see [`HolderRisk`]).
    ConfirmHolderRisk {
        /// The portal account id.
        account: String,
    },
}

impl Decision {
    fn action(&self) -> &'static str {
        match self {
            Decision::Approve { .. } => "approve",
            Decision::Reject { .. } => "reject",
            Decision::Ask { .. } => "ask",
            Decision::Note { .. } => "note",
            Decision::ConfirmHolderRisk { .. } => "holder_risk_confirmed",
        }
    }
}

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

/// Why approving an account could delete it without its holder knowing:
/// then a supervisor confirms separately before anyone approves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HolderRisk {
    /// The account is under the card QR's other number, not the number
    /// asked about: the QR is the sender's claim, anyone can print one.
    FoundOnlyThroughQr,
    /// The account has no phone: the SMS would go to the phone the sender
    /// wrote, which proves nothing about the holder.
    NoPhoneOnAccount,
}

impl HolderRisk {
    /// A stable code.
    pub fn code(self) -> &'static str {
        match self {
            HolderRisk::FoundOnlyThroughQr => "found_only_through_qr",
            HolderRisk::NoPhoneOnAccount => "no_phone_on_account",
        }
    }
}

/// The risks of approving account `a` for request `r`.
pub fn holder_risks(r: &RequestRow, a: &PortalAccount) -> Vec<HolderRisk> {
    let mut out = Vec::new();
    if r.id_number.as_deref() != Some(a.id_number.as_str()) {
        out.push(HolderRisk::FoundOnlyThroughQr);
    }
    if a.phone.is_none() {
        out.push(HolderRisk::NoPhoneOnAccount);
    }
    out
}

fn risk_codes(risks: &[HolderRisk]) -> String {
    risks
        .iter()
        .map(|r| r.code())
        .collect::<Vec<_>>()
        .join(", ")
}

/// How long a claim lasts without activity.
pub const CLAIM_MS: i64 = 30 * 60 * 1000;

/// Numbers whose portal accounts belong to a request: the number asked
/// for, and the card's other number read from its QR (a 12-digit CCCD
/// carries the holder's old 9-digit CMND), so a CMND account shows beside
/// a CCCD one.
pub fn account_numbers(r: &RequestRow, qr: Option<&StoredQr>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut push = |n: &str| {
        let n = n.trim();
        if !n.is_empty() && !out.iter().any(|o| o == n) {
            out.push(n.to_owned());
        }
    };
    if let Some(n) = &r.id_number {
        push(n);
    }
    if let Some(q) = qr {
        let ours = r.id_number.as_deref();
        // The QR's numbers count only when the card is the one asked about.
        if ours.is_some_and(|n| n == q.id_number || n == q.old_id_number) {
            push(&q.id_number);
            push(&q.old_id_number);
        }
    }
    out
}

/// The card QR as kept in a request's stored inspection report.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(default)]
pub struct StoredQr {
    /// The 12-digit number.
    pub id_number: String,
    /// The old 9-digit number, or "".
    pub old_id_number: String,
    /// Name.
    pub full_name: String,
    /// Birth date, ISO.
    pub birth_date: String,
    /// Sex.
    pub sex: String,
}

/// Reads the QR out of a stored inspection report.
pub fn stored_qr(assessment_json: Option<&str>) -> Option<StoredQr> {
    #[derive(serde::Deserialize)]
    struct Wrap {
        qr: Option<StoredQr>,
    }
    serde_json::from_str::<Wrap>(assessment_json?).ok()?.qr
}

fn text_ok(s: &str, what: &'static str) -> Result<String, Refusal> {
    let t = s.trim();
    if t.is_empty() || s.chars().count() > 4000 {
        return Err(Refusal::BadText(what));
    }
    Ok(crate::domain::text::nfc(t))
}

impl Desk {
    /// The portal accounts matching a request, in the account store.
    pub async fn matching_accounts(
        &self,
        r: &RequestRow,
    ) -> Result<Vec<PortalAccount>, WorkflowError> {
        let json = self.store.request_assessment(r.id).await?;
        self.accounts_for(r, stored_qr(json.as_deref()).as_ref())
            .await
    }

    /// The same, for a caller that has read the card QR already.
    pub async fn accounts_for(
        &self,
        r: &RequestRow,
        qr: Option<&StoredQr>,
    ) -> Result<Vec<PortalAccount>, WorkflowError> {
        self.accounts
            .find(&account_numbers(r, qr))
            .await
            .map_err(|e| WorkflowError::Accounts(e.to_string()))
    }

    /// Claims a request for an operator (supervisors may take it over).
    pub async fn claim(
        &self,
        who: &OperatorRow,
        id: i64,
        take_over: bool,
    ) -> Result<(), WorkflowError> {
        if take_over && !who.role.allows(Role::Supervisor) {
            return Err(Refusal::Forbidden(who.role).into());
        }
        match self
            .store
            .claim_request(id, who.login.as_str(), now_ms() + CLAIM_MS, take_over)
            .await?
        {
            store::ClaimOutcome::Held => Ok(()),
            store::ClaimOutcome::HeldBy(by) => Err(Refusal::HeldBy(by).into()),
            store::ClaimOutcome::Missing => Err(Refusal::NotFound.into()),
        }
    }

    /// Applies a decision to the request at `version`.
    pub async fn decide(
        &self,
        who: &OperatorRow,
        id: i64,
        version: i64,
        decision: Decision,
        four_eyes: bool,
    ) -> Result<Decided, WorkflowError> {
        let r = self.store.request(id).await?.ok_or(Refusal::NotFound)?;
        if r.version != version {
            return Err(Refusal::Stale.into());
        }
        let login = who.login.as_str();
        if let Some(holder) = r.holder(now_ms()) {
            if holder != login && !matches!(decision, Decision::Note { .. }) {
                return Err(Refusal::HeldBy(holder.to_owned()).into());
            }
        }
        let action = decision.action();
        // The account store is asked before the transaction opens: an LDAP
        // or portal call must not hold the database's write lock.
        let accounts = match &decision {
            Decision::Approve { .. } | Decision::ConfirmHolderRisk { .. } => {
                self.matching_accounts(&r).await?
            }
            _ => Vec::new(),
        };
        let find = |account: &str| {
            accounts
                .iter()
                .find(|a| a.account_id == account)
                .ok_or_else(|| Refusal::UnknownAccount(account.to_owned()))
        };
        let mut tx = self.store.begin().await?;
        let entry = |to: Option<RequestState>, detail: String| {
            super::ingest::audit_entry(
                Some(id),
                login,
                action,
                to.map(|_| r.state),
                to,
                Some(detail),
            )
        };
        let outcome = match &decision {
            Decision::Note { text } => {
                let text = text_ok(text, "a note")?;
                // A note does not change the request, but bumps its version
                // so a decision made without reading it is refused.
                if !bump(&mut tx, id, version).await? {
                    store::rollback(tx).await?;
                    return Err(Refusal::Stale.into());
                }
                store::audit(&mut tx, &entry(None, text)).await?;
                Decided::Noted
            }
            Decision::Approve { account } => {
                let to = RequestState::GracePeriod;
                if !r.state.can_move_to(to) || r.state == to {
                    store::rollback(tx).await?;
                    return Err(Refusal::WrongState(r.state).into());
                }
                let chosen = match find(account) {
                    Ok(a) => a,
                    Err(refusal) => {
                        store::rollback(tx).await?;
                        return Err(refusal.into());
                    }
                };
                let risks = holder_risks(&r, chosen);
                if !risks.is_empty() && r.holder_risk_account.as_ref() != Some(account) {
                    store::rollback(tx).await?;
                    return Err(
                        Refusal::NeedsSupervisor(account.clone(), risk_codes(&risks)).into(),
                    );
                }
                if let Some(other) = self.store.open_window_for(account, id).await? {
                    store::rollback(tx).await?;
                    return Err(Refusal::AccountInWindow(account.clone(), other).into());
                }
                match (&r.first_approver, four_eyes) {
                    (None, true) => {
                        if !bump(&mut tx, id, version).await? {
                            store::rollback(tx).await?;
                            return Err(Refusal::Stale.into());
                        }
                        store::set_decision(&mut tx, id, Some(account), Some(login)).await?;
                        let mut e = entry(
                            None,
                            format!("account {account}; awaiting a second approver"),
                        );
                        e.action = "approve_first".into();
                        store::audit(&mut tx, &e).await?;
                        store::commit(tx).await?;
                        return Ok(Decided::AwaitingSecondApproval);
                    }
                    (Some(first), true) if first == login => {
                        store::rollback(tx).await?;
                        return Err(Refusal::SameApprover.into());
                    }
                    (Some(_), true) if r.approved_account.as_ref() != Some(account) => {
                        store::rollback(tx).await?;
                        return Err(Refusal::OtherAccount(
                            r.approved_account.clone().unwrap_or_default(),
                        )
                        .into());
                    }
                    _ => {}
                }
                // The account first, then the state: the database's
                // one-window-per-account index refuses a twin approval that
                // raced past the check above.
                let first = r.first_approver.as_deref().filter(|_| four_eyes);
                store::set_decision(&mut tx, id, Some(account), first).await?;
                match store::set_state(&mut tx, id, version, to).await {
                    Ok(true) => {}
                    Ok(false) => {
                        store::rollback(tx).await?;
                        return Err(Refusal::Stale.into());
                    }
                    Err(e) if e.is_unique_violation() => {
                        store::rollback(tx).await?;
                        let other = "another request".to_owned();
                        return Err(Refusal::AccountInWindow(account.clone(), other).into());
                    }
                    Err(e) => return Err(e.into()),
                }
                let detail = match first {
                    Some(f) => format!("account {account}; first approved by {f}"),
                    None => format!("account {account}"),
                };
                store::audit(&mut tx, &entry(Some(to), detail)).await?;
                self.start_grace(&mut tx, &r, chosen, version).await?;
                Decided::Moved { state: to }
            }
            Decision::ConfirmHolderRisk { account } => {
                if !who.role.allows(Role::Supervisor) {
                    store::rollback(tx).await?;
                    return Err(Refusal::Forbidden(who.role).into());
                }
                let risks = match find(account) {
                    Ok(a) => holder_risks(&r, a),
                    Err(refusal) => {
                        store::rollback(tx).await?;
                        return Err(refusal.into());
                    }
                };
                if risks.is_empty() {
                    store::rollback(tx).await?;
                    return Err(Refusal::NothingToConfirm(account.clone()).into());
                }
                if r.state != RequestState::PendingReview {
                    store::rollback(tx).await?;
                    return Err(Refusal::WrongState(r.state).into());
                }
                if !bump(&mut tx, id, version).await? {
                    store::rollback(tx).await?;
                    return Err(Refusal::Stale.into());
                }
                store::set_holder_risk(&mut tx, id, account, login).await?;
                let detail = format!("account {account}: {}", risk_codes(&risks));
                store::audit(&mut tx, &entry(None, detail)).await?;
                Decided::Noted
            }
            Decision::Reject { reason } => {
                let reason = text_ok(reason, "the reason")?;
                let to = RequestState::Rejected;
                if !r.state.can_move_to(to) {
                    store::rollback(tx).await?;
                    return Err(Refusal::WrongState(r.state).into());
                }
                if !store::set_state(&mut tx, id, version, to).await? {
                    store::rollback(tx).await?;
                    return Err(Refusal::Stale.into());
                }
                store::audit(&mut tx, &entry(Some(to), reason.clone())).await?;
                self.queue_citizen_letter(
                    &mut tx,
                    &r,
                    "rejected",
                    context! { reason },
                    format!("decision:{id}:{version}"),
                )
                .await?;
                Decided::Moved { state: to }
            }
            Decision::Ask { message } => {
                let message = text_ok(message, "the message")?;
                let to = RequestState::NeedsInfo;
                if r.state != RequestState::PendingReview {
                    store::rollback(tx).await?;
                    return Err(Refusal::WrongState(r.state).into());
                }
                if !store::set_state(&mut tx, id, version, to).await? {
                    store::rollback(tx).await?;
                    return Err(Refusal::Stale.into());
                }
                store::audit(&mut tx, &entry(Some(to), message.clone())).await?;
                self.queue_citizen_letter(
                    &mut tx,
                    &r,
                    "more_info",
                    context! { message },
                    format!("decision:{id}:{version}"),
                )
                .await?;
                Decided::Moved { state: to }
            }
        };
        if matches!(outcome, Decided::Moved { .. }) {
            store::clear_claim(&mut tx, id).await?;
        }
        store::commit(tx).await?;
        Ok(outcome)
    }
}

/// Bumps a request's version if it is still at `version`.
async fn bump(tx: &mut store::Tx, id: i64, version: i64) -> Result<bool, WorkflowError> {
    Ok(store::bump_version(tx, id, version).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(number: Option<&str>) -> RequestRow {
        RequestRow {
            id: 1,
            reference: "HTK-240715-1".into(),
            state: RequestState::PendingReview,
            email: "a@b".into(),
            id_number: number.map(str::to_owned),
            id_type: None,
            full_name: None,
            phone: None,
            reason: None,
            problems: vec![],
            warnings: vec![],
            received_at: 0,
            due_date: "2024-08-12".into(),
            updated_at: 0,
            duplicate_submissions: 0,
            version: 0,
            claimed_by: None,
            claimed_until: None,
            approved_account: None,
            first_approver: None,
            sms_to: None,
            sms_accepted_at: None,
            grace_deadline: None,
            closed_at: None,
            thread_token: crate::domain::thread::ThreadToken::from_bytes([1; 10]),
            linked_to: None,
            holder_risk_account: None,
            holder_risk_by: None,
        }
    }

    #[test]
    fn the_cards_old_number_brings_the_cmnd_account() {
        let qr = StoredQr {
            id_number: "079203001234".into(),
            old_id_number: "272345678".into(),
            ..StoredQr::default()
        };
        assert_eq!(
            account_numbers(&row(Some("079203001234")), Some(&qr)),
            vec!["079203001234", "272345678"]
        );
        // Asked by the CMND number: the CCCD account shows too.
        assert_eq!(
            account_numbers(&row(Some("272345678")), Some(&qr)),
            vec!["272345678", "079203001234"]
        );
        // Someone else's card: only the number asked for.
        assert_eq!(
            account_numbers(&row(Some("001099000001")), Some(&qr)),
            vec!["001099000001"]
        );
        assert!(account_numbers(&row(None), Some(&qr)).is_empty());
    }

    #[test]
    fn stored_reports_give_their_qr() {
        let q = stored_qr(Some(r#"{"qr":{"id_number":"079203001234","old_id_number":"","full_name":"A","birth_date":"2003-05-12","sex":"Nam"}}"#)).unwrap();
        assert_eq!(q.id_number, "079203001234");
        assert!(stored_qr(Some(r#"{"qr":null}"#)).is_none());
        assert!(stored_qr(Some("not json")).is_none());
    }
}
