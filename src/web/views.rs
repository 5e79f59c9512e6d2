//! What the console shows of a request, built once for the page and the
//! API: each field with its mark (green: confirmed by the card QR or the
//! account record; yellow: given but unconfirmed; red: missing), the QR
//! beside the claims, the matching portal accounts, the photos, the mail
//! thread as text, and the history.

use chrono::NaiveDate;
use serde::Serialize;

use crate::domain::text::same_name;
use crate::intake::mime;
use crate::store::{AuditEntry, PortalAccount, RequestRow, StoredPhoto};
use crate::workflow::{stored_qr, Desk, StoredQr, WorkflowError};

/// How far a field is confirmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mark {
    /// Confirmed by the card QR or the account record.
    Green,
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
}

/// The holder's SMS as it will be sent.
#[derive(Debug, Clone, Serialize)]
pub struct SmsPreview {
    /// The folded text.
    pub text: String,
    /// How many SMS it takes.
    pub segments: usize,
}

/// Working days from today to a due date (YYYY-MM-DD).
pub fn days_left(desk: &Desk, due: &str) -> i64 {
    NaiveDate::parse_from_str(due, "%Y-%m-%d")
        .map(|d| desk.calendar.working_days_between(desk.clock.today(), d))
        .unwrap_or(0)
}

fn field(
    key: &'static str,
    label: &'static str,
    value: Option<String>,
    confirmed: Option<String>,
) -> FieldView {
    let (mark, note) = match (&value, confirmed) {
        (None, _) => (Mark::Red, "thiếu".to_owned()),
        (Some(_), Some(by)) => (Mark::Green, by),
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

/// Marks the request's fields against the QR and the accounts.
pub fn fields(r: &RequestRow, qr: Option<&StoredQr>, accounts: &[PortalAccount]) -> Vec<FieldView> {
    let number = r.id_number.clone();
    let number_ok = number.as_deref().and_then(|n| {
        if qr.is_some_and(|q| q.id_number == n || q.old_id_number == n) {
            Some("khớp mã QR trên thẻ".to_owned())
        } else {
            None
        }
    });
    let name_ok = r.full_name.as_deref().and_then(|n| {
        if qr.is_some_and(|q| !q.full_name.is_empty() && same_name(&q.full_name, n)) {
            Some("khớp mã QR trên thẻ".to_owned())
        } else if accounts.iter().any(|a| same_name(&a.full_name, n)) {
            Some("khớp hồ sơ tài khoản".to_owned())
        } else {
            None
        }
    });
    let phone_ok = r.phone.as_deref().and_then(|p| {
        accounts
            .iter()
            .any(|a| a.phone.as_deref() == Some(p))
            .then(|| "khớp hồ sơ tài khoản".to_owned())
    });
    let email_ok = accounts
        .iter()
        .any(|a| {
            a.email
                .as_deref()
                .is_some_and(|e| e.eq_ignore_ascii_case(&r.email))
        })
        .then(|| "khớp hồ sơ tài khoản".to_owned());
    let birth = qr.map(|q| q.birth_date.clone()).filter(|b| !b.is_empty());
    let birth_ok = birth.as_deref().and_then(|b| {
        accounts
            .iter()
            .any(|a| a.birth_date.as_deref() == Some(b))
            .then(|| "khớp hồ sơ tài khoản".to_owned())
    });
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
    let accounts = accounts
        .into_iter()
        .map(|a| {
            let name_matches = r
                .full_name
                .as_deref()
                .is_some_and(|n| same_name(&a.full_name, n));
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
                account: a,
                name_matches,
                sms_to,
                sms_source,
            }
        })
        .collect();
    let mut thread = Vec::new();
    for sha in store.request_message_shas(r.id).await? {
        let Some(m) = store.message(&sha).await? else {
            continue;
        };
        let raw = store.raw(&sha).await?;
        let (body, attachments) = match raw.as_deref().and_then(mime::parse) {
            Some(msg) => {
                let mail = mime::read(&msg);
                let names = mail
                    .parts
                    .iter()
                    .map(|p| p.filename.clone().unwrap_or_else(|| "(không tên)".into()))
                    .collect();
                (mail.body, names)
            }
            None => (String::new(), Vec::new()),
        };
        thread.push(MessageView {
            sha256: sha,
            received_at: m.received_at,
            from: m.sender,
            subject: m.subject.unwrap_or_default(),
            body,
            attachments,
            purged: raw.is_none(),
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
    Ok(RequestView {
        sms_preview,
        working_days_left: days_left(desk, &r.due_date),
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
