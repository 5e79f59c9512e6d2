//! An operator's decisions on a request: claim it, approve it (choosing the
//! portal account), reject it with a reason, ask the citizen for more, or
//! add a note. Each decision is one transaction with its audit row and its
//! letter in the outbox, and it applies only to the version of the request
//! the operator was looking at: a decision made on stale information is
//! refused, never applied twice.

use minijinja::context;

use super::desk::Desk;
use super::outcome::{Decided, Refusal};
use super::WorkflowError;
use crate::accounts::{AccountStore, PortalAccount};
use crate::domain::Action;
use crate::domain::{RequestState, Role};
use crate::store::{self, AuditEntry, OperatorRow, RequestRow};

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
    fn action(&self) -> Action {
        match self {
            Decision::Approve { .. } => Action::Approve,
            Decision::Reject { .. } => Action::Reject,
            Decision::Ask { .. } => Action::Ask,
            Decision::Note { .. } => Action::Note,
            Decision::ConfirmHolderRisk { .. } => Action::HolderRiskConfirmed,
        }
    }
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
            .claim_request(id, who.login.as_str(), self.now() + CLAIM_MS, take_over)
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
        if let Some(holder) = r.holder(self.now()) {
            if holder != login && !matches!(decision, Decision::Note { .. }) {
                return Err(Refusal::HeldBy(holder.to_owned()).into());
            }
        }
        // The account store is asked before the transaction opens: an LDAP
        // or portal call must not hold the database's write lock.
        let accounts = match &decision {
            Decision::Approve { .. } | Decision::ConfirmHolderRisk { .. } => {
                self.matching_accounts(&r).await?
            }
            _ => Vec::new(),
        };
        let on = On {
            who,
            r: &r,
            action: decision.action(),
            accounts: &accounts,
        };
        let mut tx = self.store.begin().await?;
        let decided = match &decision {
            Decision::Note { text } => self.note(&mut tx, &on, text).await,
            Decision::Approve { account } => self.approve(&mut tx, &on, account, four_eyes).await,
            Decision::ConfirmHolderRisk { account } => {
                self.confirm_holder_risk(&mut tx, &on, account).await
            }
            Decision::Reject { reason } => self.reject(&mut tx, &on, reason).await,
            Decision::Ask { message } => self.ask(&mut tx, &on, message).await,
        };
        let decided = match decided {
            Ok(d) => d,
            Err(e) => {
                store::rollback(tx).await?;
                return Err(e);
            }
        };
        if matches!(decided, Decided::Moved { .. }) {
            store::clear_claim(&mut tx, id).await?;
        }
        store::commit(tx).await?;
        Ok(decided)
    }

    /// The history line of a decision: the move it made, if any, and why.
    fn decision_line(&self, on: &On<'_>, to: Option<RequestState>, detail: String) -> AuditEntry {
        let from = to.map(|_| on.r.state);
        self.history(
            Some(on.r.id),
            on.who.login.as_str(),
            on.action,
            from,
            to,
            Some(detail),
        )
    }

    /// A note for the desk: the request does not change, but its version
    /// moves, so a decision made without reading the note is refused.
    async fn note(
        &self,
        tx: &mut store::Tx,
        on: &On<'_>,
        text: &str,
    ) -> Result<Decided, WorkflowError> {
        let text = text_ok(text, "a note")?;
        bump(tx, on.r).await?;
        store::audit(tx, &self.decision_line(on, None, text)).await?;
        Ok(Decided::Noted)
    }

    /// Approves deleting `account`: the grace period starts (or, with four
    /// eyes, the first approval is recorded and a second awaited).
    async fn approve(
        &self,
        tx: &mut store::Tx,
        on: &On<'_>,
        account: &str,
        four_eyes: bool,
    ) -> Result<Decided, WorkflowError> {
        let (r, login) = (on.r, on.who.login.as_str());
        let to = RequestState::GracePeriod;
        if !r.state.can_move_to(to) || r.state == to {
            return Err(Refusal::WrongState(r.state).into());
        }
        let chosen = on.account(account)?;
        let risks = holder_risks(r, chosen);
        if !risks.is_empty() && r.holder_risk_account.as_deref() != Some(account) {
            return Err(Refusal::NeedsSupervisor(account.to_owned(), risk_codes(&risks)).into());
        }
        if let Some(other) = self.store.open_window_for(account, r.id).await? {
            return Err(Refusal::AccountInWindow(account.to_owned(), other).into());
        }
        match (&r.first_approver, four_eyes) {
            (None, true) => {
                bump(tx, r).await?;
                store::set_decision(tx, r.id, Some(account), Some(login)).await?;
                let detail = format!("account {account}; awaiting a second approver");
                let mut line = self.decision_line(on, None, detail);
                line.action = Action::ApproveFirst.as_str().into();
                store::audit(tx, &line).await?;
                return Ok(Decided::AwaitingSecondApproval);
            }
            (Some(first), true) if first == login => return Err(Refusal::SameApprover.into()),
            (Some(_), true) if r.approved_account.as_deref() != Some(account) => {
                let first_choice = r.approved_account.clone().unwrap_or_default();
                return Err(Refusal::OtherAccount(first_choice).into());
            }
            _ => {}
        }
        // The account first, then the state: the database's
        // one-window-per-account index refuses a twin approval that raced
        // past the check above.
        let first = r.first_approver.as_deref().filter(|_| four_eyes);
        store::set_decision(tx, r.id, Some(account), first).await?;
        match store::set_state(tx, r.id, r.version, to).await {
            Ok(true) => {}
            Ok(false) => return Err(Refusal::Stale.into()),
            Err(e) if e.is_unique_violation() => {
                let other = "another request".to_owned();
                return Err(Refusal::AccountInWindow(account.to_owned(), other).into());
            }
            Err(e) => return Err(e.into()),
        }
        let detail = match first {
            Some(f) => format!("account {account}; first approved by {f}"),
            None => format!("account {account}"),
        };
        store::audit(tx, &self.decision_line(on, Some(to), detail)).await?;
        self.start_grace(tx, r, chosen, r.version).await?;
        Ok(Decided::Moved { state: to })
    }

    /// A supervisor allows approving an account whose holder cannot be
    /// told through the account itself, or found only through the QR.
    async fn confirm_holder_risk(
        &self,
        tx: &mut store::Tx,
        on: &On<'_>,
        account: &str,
    ) -> Result<Decided, WorkflowError> {
        let r = on.r;
        if !on.who.role.allows(Role::Supervisor) {
            return Err(Refusal::Forbidden(on.who.role).into());
        }
        let risks = holder_risks(r, on.account(account)?);
        if risks.is_empty() {
            return Err(Refusal::NothingToConfirm(account.to_owned()).into());
        }
        if r.state != RequestState::PendingReview {
            return Err(Refusal::WrongState(r.state).into());
        }
        bump(tx, r).await?;
        store::set_holder_risk(tx, r.id, account, on.who.login.as_str()).await?;
        let detail = format!("account {account}: {}", risk_codes(&risks));
        store::audit(tx, &self.decision_line(on, None, detail)).await?;
        Ok(Decided::Noted)
    }

    /// Refuses the request, telling the citizen why.
    async fn reject(
        &self,
        tx: &mut store::Tx,
        on: &On<'_>,
        reason: &str,
    ) -> Result<Decided, WorkflowError> {
        let reason = text_ok(reason, "the reason")?;
        let to = RequestState::Rejected;
        if !on.r.state.can_move_to(to) {
            return Err(Refusal::WrongState(on.r.state).into());
        }
        self.move_and_tell(tx, on, to, "rejected", reason.clone(), context! { reason })
            .await
    }

    /// Asks the citizen for more.
    async fn ask(
        &self,
        tx: &mut store::Tx,
        on: &On<'_>,
        message: &str,
    ) -> Result<Decided, WorkflowError> {
        let message = text_ok(message, "the message")?;
        if on.r.state != RequestState::PendingReview {
            return Err(Refusal::WrongState(on.r.state).into());
        }
        let to = RequestState::NeedsInfo;
        self.move_and_tell(
            tx,
            on,
            to,
            "more_info",
            message.clone(),
            context! { message },
        )
        .await
    }

    /// Moves the request to `to` and writes the citizen the `template`.
    async fn move_and_tell(
        &self,
        tx: &mut store::Tx,
        on: &On<'_>,
        to: RequestState,
        template: &'static str,
        detail: String,
        values: minijinja::Value,
    ) -> Result<Decided, WorkflowError> {
        let r = on.r;
        if !store::set_state(tx, r.id, r.version, to).await? {
            return Err(Refusal::Stale.into());
        }
        store::audit(tx, &self.decision_line(on, Some(to), detail)).await?;
        let dedupe = format!("decision:{}:{}", r.id, r.version);
        self.queue_citizen_letter(tx, r, template, values, dedupe)
            .await?;
        Ok(Decided::Moved { state: to })
    }
}

/// What a decision is made on: who, the request as they saw it, and the
/// portal accounts matching it (read before the transaction).
struct On<'a> {
    who: &'a OperatorRow,
    r: &'a RequestRow,
    action: Action,
    accounts: &'a [PortalAccount],
}

impl On<'_> {
    /// The matching account `id`, or the refusal naming it.
    fn account(&self, id: &str) -> Result<&PortalAccount, Refusal> {
        self.accounts
            .iter()
            .find(|a| a.account_id == id)
            .ok_or_else(|| Refusal::UnknownAccount(id.to_owned()))
    }
}

/// Bumps the request's version if it is still the one the operator saw.
async fn bump(tx: &mut store::Tx, r: &RequestRow) -> Result<(), WorkflowError> {
    if store::bump_version(tx, r.id, r.version).await? {
        Ok(())
    } else {
        Err(Refusal::Stale.into())
    }
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
