//! What the console shows of a request, built once for the page and the
//! API: each field with its mark (green: confirmed by the portal's record
//! of the account under the number asked about; qr: agrees with the card
//! QR, which is the sender's claim; yellow: given but unconfirmed; red:
//! missing), the QR beside the claims, the matching portal accounts (those
//! found only through the QR apart), the photos, the mail thread as text
//! with the messages kept but not used flagged, and the history.

use serde::Serialize;

use crate::accounts::PortalAccount;
use crate::domain::text::same_name;
use crate::store::{AuditEntry, RequestRow, StoredPhoto};
use crate::workflow::review::MessageText;
use crate::workflow::{holder_risks, stored_qr, Desk, HolderRisk, StoredQr, WorkflowError};

/// How far a field is confirmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mark {
    /// Confirmed by the portal's record of the account asked about.
    Green,
    /// Agrees with the card QR: anyone can print a QR, so this raises
    /// confidence and proves nothing.
    Qr,
    /// Given, not confirmed.
    Yellow,
    /// Missing.
    Red,
}

/// One field of the request.
#[derive(Debug, Clone, Serialize)]
pub struct FieldView {
    /// Stable key for the API.
    pub key: &'static str,
    /// Label in Vietnamese.
    pub label: &'static str,
    /// The value as given.
    pub value: Option<String>,
    /// Its mark.
    pub mark: Mark,
    /// What confirmed it, or why not.
    pub note: String,
}

/// A matching portal account.
#[derive(Debug, Clone, Serialize)]
pub struct AccountView {
    /// The account.
    #[serde(flatten)]
    pub account: PortalAccount,
    /// CCCD or CMND, by its length.
    pub number_type: &'static str,
    /// Its name is the request's name.
    pub name_matches: bool,
    /// Where its deletion SMS would go.
    pub sms_to: Option<String>,
    /// `account` (its own phone) or `request` (none on the account).
    pub sms_source: &'static str,
    /// Under the card QR's other number only, not the number asked about.
    pub found_only_through_qr: bool,
    /// Why approving it needs a supervisor's confirmation first.
    pub risks: Vec<HolderRisk>,
    /// The supervisor who confirmed those risks for this account.
    pub risks_confirmed_by: Option<String>,
    /// The holder's own address gets a notice on approval.
    pub holder_email_notice: bool,
}

/// One message of the thread.
#[derive(Debug, Clone, Serialize)]
pub struct MessageView {
    /// Content address.
    pub sha256: String,
    /// When stored (ms).
    pub received_at: i64,
    /// Sender.
    pub from: Option<String>,
    /// Subject.
    pub subject: String,
    /// Body text (new text and quotes as sent).
    pub body: String,
    /// Attachment file names.
    pub attachments: Vec<String>,
    /// The raw message was purged by retention.
    pub purged: bool,
    /// Kept here for people to read but never used for this request:
    /// `another_sender` or `no_thread_secret`.
    pub flag: Option<String>,
    /// What the trusted receiving servers said of its sender, from the
    /// stored inspection (none when `[sender_auth]` was off then).
    pub auth: Option<crate::intake::auth::SenderAuth>,
}

/// A request tied to this one by mail from another address.
#[derive(Debug, Clone, Serialize)]
pub struct LinkedView {
    /// Its reference.
    pub reference: String,
    /// Its state.
    pub state: crate::domain::RequestState,
    /// Its sender.
    pub email: String,
    /// `about` (this request is about that one) or `opened` (mail about
    /// this request opened that one).
    pub how: &'static str,
}

/// Everything about one request.
#[derive(Debug, Clone, Serialize)]
pub struct RequestView {
    /// The stored row.
    pub request: RequestRow,
    /// Working days left to the due date (negative: overdue).
    pub working_days_left: i64,
    /// Who holds it now.
    pub holder: Option<String>,
    /// Fields with marks.
    pub fields: Vec<FieldView>,
    /// The card QR, if read.
    pub qr: Option<StoredQr>,
    /// Matching portal accounts.
    pub accounts: Vec<AccountView>,
    /// Why the account store could not be asked (the page still shows).
    pub accounts_error: Option<String>,
    /// Photos and other attachments.
    pub photos: Vec<StoredPhoto>,
    /// The mail thread.
    pub thread: Vec<MessageView>,
    /// The audit history, oldest first.
    pub history: Vec<AuditEntry>,
    /// Its side effects (letters, SMS, account calls) and how they went.
    pub jobs: Vec<crate::store::JobRow>,
    /// The SMS its holder gets on approval, as sent (GSM-7).
    pub sms_preview: Option<SmsPreview>,
    /// Requests tied to this one by mail from other addresses.
    pub linked: Vec<LinkedView>,
    /// Messages kept on it but not used (from other addresses …).
    pub flagged_messages: usize,
}

/// The holder's SMS as it will be sent.
#[derive(Debug, Clone, Serialize)]
pub struct SmsPreview {
    /// The folded text.
    pub text: String,
    /// How many SMS it takes.
    pub segments: usize,
}

fn field(
    key: &'static str,
    label: &'static str,
    value: Option<String>,
    confirmed: Option<(Mark, &str)>,
) -> FieldView {
    let (mark, note) = match (&value, confirmed) {
        (None, _) => (Mark::Red, "thiếu".to_owned()),
        (Some(_), Some((mark, by))) => (mark, by.to_owned()),
        (Some(_), None) => (Mark::Yellow, "chưa xác minh".to_owned()),
    };
    FieldView {
        key,
        label,
        value,
        mark,
        note,
    }
}

const BY_RECORD: (Mark, &str) = (Mark::Green, "khớp hồ sơ tài khoản");
const BY_QR: (Mark, &str) = (Mark::Qr, "khớp mã QR (người gửi cung cấp, chưa xác minh)");

/// Marks the request's fields. Green only from the portal's record of an
/// account under the number asked about; the card QR and accounts found
/// only through it are the sender's claims and never confirm anything.
pub fn fields(r: &RequestRow, qr: Option<&StoredQr>, accounts: &[PortalAccount]) -> Vec<FieldView> {
    let own: Vec<&PortalAccount> = accounts
        .iter()
        .filter(|a| r.id_number.as_deref() == Some(a.id_number.as_str()))
        .collect();
    let judge = |by_record: bool, by_qr: bool| match (by_record, by_qr) {
        (true, _) => Some(BY_RECORD),
        (false, true) => Some(BY_QR),
        (false, false) => None,
    };
    let number = r.id_number.clone();
    let number_ok = number.as_deref().and_then(|n| {
        judge(
            !own.is_empty(),
            qr.is_some_and(|q| q.id_number == n || q.old_id_number == n),
        )
    });
    let name_ok = r.full_name.as_deref().and_then(|n| {
        judge(
            own.iter().any(|a| same_name(&a.full_name, n)),
            qr.is_some_and(|q| !q.full_name.is_empty() && same_name(&q.full_name, n)),
        )
    });
    let phone_ok = r
        .phone
        .as_deref()
        .and_then(|p| judge(own.iter().any(|a| a.phone.as_deref() == Some(p)), false));
    let email_ok = judge(
        own.iter().any(|a| {
            a.email
                .as_deref()
                .is_some_and(|e| e.eq_ignore_ascii_case(&r.email))
        }),
        false,
    );
    // The birth date is read from the QR alone: it is a claim until the
    // account's record agrees.
    let birth = qr.map(|q| q.birth_date.clone()).filter(|b| !b.is_empty());
    let birth_ok = birth
        .as_deref()
        .and_then(|b| judge(own.iter().any(|a| a.birth_date.as_deref() == Some(b)), true));
    let phone_shown = r.phone.as_deref().map(|p| {
        crate::domain::Phone::parse(p)
            .map(|ph| ph.national())
            .unwrap_or_else(|_| p.to_owned())
    });
    vec![
        field("id_number", "Số CCCD/CMND", number, number_ok),
        field("full_name", "Họ và tên", r.full_name.clone(), name_ok),
        field("birth_date", "Ngày sinh (mã QR)", birth, birth_ok),
        field("phone", "Số điện thoại", phone_shown, phone_ok),
        field("email", "Thư điện tử", Some(r.email.clone()), email_ok),
        field("reason", "Lý do", r.reason.clone(), None),
    ]
}

/// One matching account as the page shows it.
fn account_view(r: &RequestRow, a: PortalAccount) -> AccountView {
    let name_matches = r
        .full_name
        .as_deref()
        .is_some_and(|n| same_name(&a.full_name, n));
    let risks = holder_risks(r, &a);
    let confirmed = r.holder_risk_account.as_deref() == Some(a.account_id.as_str());
    // Where the SMS would go: the account's phone; the request's only
    // once a supervisor confirmed (approval is refused before).
    let (sms_to, sms_source) = match (&a.phone, &r.phone) {
        (Some(p), _) => (Some(p.clone()), "account"),
        (None, Some(p)) => (Some(p.clone()), "request"),
        (None, None) => (None, "none"),
    };
    AccountView {
        number_type: if a.id_number.len() == 9 {
            "CMND"
        } else {
            "CCCD"
        },
        found_only_through_qr: risks.contains(&HolderRisk::FoundOnlyThroughQr),
        risks_confirmed_by: r.holder_risk_by.clone().filter(|_| confirmed),
        holder_email_notice: a
            .email
            .as_deref()
            .is_some_and(|e| !e.eq_ignore_ascii_case(&r.email)),
        risks,
        account: a,
        name_matches,
        sms_to,
        sms_source,
    }
}

/// A message's sender authentication as stored with its inspection; none
/// when it was inspected without `[sender_auth]` or by an older version.
async fn stored_auth(
    store: &crate::store::Store,
    sha: &str,
) -> Result<Option<crate::intake::auth::SenderAuth>, WorkflowError> {
    Ok(store
        .inspection(sha)
        .await?
        .and_then(|b| crate::intake::Examined::from_stored(&b).ok())
        .and_then(|e| e.auth))
}

/// Builds the whole view of a request.
pub async fn request_view(desk: &Desk, r: RequestRow) -> Result<RequestView, WorkflowError> {
    let store = &desk.store;
    let json = store.request_assessment(r.id).await?;
    let qr = stored_qr(json.as_deref());
    let (accounts, accounts_error) = match desk.accounts_for(&r, qr.as_ref()).await {
        Ok(a) => (a, None),
        Err(WorkflowError::Accounts(e)) => (Vec::new(), Some(e)),
        Err(e) => return Err(e),
    };
    let fields = fields(&r, qr.as_ref(), &accounts);
    let accounts = accounts.into_iter().map(|a| account_view(&r, a)).collect();
    let mut thread = Vec::new();
    for (sha, flag) in store.request_thread(r.id).await? {
        let Some(m) = store.message(&sha).await? else {
            continue;
        };
        // Parsed off the runtime by the workflow; none once purged.
        let text = desk.message_text(&sha).await?;
        let purged = text.is_none();
        let MessageText { body, attachments } = text.unwrap_or_default();
        let auth = stored_auth(store, &sha).await?;
        thread.push(MessageView {
            sha256: sha,
            received_at: m.received_at,
            from: m.sender,
            subject: m.subject.unwrap_or_default(),
            body,
            attachments,
            purged,
            flag,
            auth,
        });
    }
    let now = crate::domain::time::now_ms();
    let sms_preview = desk
        .templates
        .sms(
            "grace_notice",
            minijinja::context! {
                grace_days => desk.grace_days(), hotline => desk.config.hotline, reference => r.reference,
            },
        )
        .ok()
        .map(|text| SmsPreview {
            segments: crate::notify::gsm7::segments(&text),
            text,
        });
    let mut linked = Vec::new();
    if let Some(other) = r.linked_to {
        if let Some(o) = store.request(other).await? {
            linked.push(LinkedView {
                reference: o.reference,
                state: o.state,
                email: o.email,
                how: "about",
            });
        }
    }
    for o in store.linked_requests(r.id).await? {
        linked.push(LinkedView {
            reference: o.reference,
            state: o.state,
            email: o.email,
            how: "opened",
        });
    }
    Ok(RequestView {
        flagged_messages: thread.iter().filter(|m| m.flag.is_some()).count(),
        linked,
        sms_preview,
        working_days_left: desk.working_days_left(&r.due_date),
        holder: r.holder(now).map(str::to_owned),
        photos: store.photos_of(r.id).await?,
        history: store.audit_for(r.id).await?,
        jobs: store.jobs_of(r.id).await?,
        fields,
        qr,
        accounts,
        accounts_error,
        thread,
        request: r,
    })
}
