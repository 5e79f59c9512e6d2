//! The inspection report: what a message is, what it asks, and what is
//! wrong with it. [`examine`] reads one message; [`assess`] judges a
//! request from its first message and any follow-ups together, so photos
//! sent in two emails add up.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::archive::{self, Allowance, Container};
use super::auth::{self, AuthVerdict, SenderAuth, TrustedServers};
use super::budget::{Budget, OverBudget, DEFAULT_TIME_BUDGET};
use super::classify::{classify, Kind};
use super::fields::{
    body_fields, new_text, phone_candidates, subject_has_request_phrase, subject_number, BodyFields,
};
use super::mime::{self, Part};
use super::photos::{self, Fingerprint, Format, PhotoError};
use super::qr::{self, CardQr};
use super::scan::{self, Refused};
use crate::domain::text::{fold, same_name};
use crate::domain::{IdNumber, IdType, Phone};
use std::borrow::Cow;
use std::time::Duration;

/// What inspection needs to know about the world, passed in (no clock here).
#[derive(Debug, Clone, Copy)]
pub struct InspectOptions {
    /// This year: a CCCD may not encode a later birth year.
    pub current_year: i32,
}

/// A problem that blocks the request; the citizen is told each one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Problem {
    /// No number in the subject nor on the body's request line.
    MissingIdNumber,
    /// Not 9 or 12 digits, or a future birth year.
    InvalidIdNumber,
    /// Subject and body request line name different numbers.
    ConflictingIdNumbers,
    /// No `Họ và tên`.
    MissingFullName,
    /// No phone number.
    MissingPhone,
    /// Not a Vietnamese mobile number.
    InvalidPhone,
    /// Fewer than 3 distinct usable photos.
    TooFewPhotos,
    /// The same photo twice.
    DuplicatePhoto,
    /// An image that does not decode completely.
    UnreadableAttachment,
    /// Shorter side under 300 px.
    PhotoTooSmall,
    /// A uniform or nearly uniform picture (blank white, black, one colour).
    BlankPhoto,
    /// Over 50 megapixels or the decoder's memory limit.
    OversizedImage,
}

impl Problem {
    /// Every problem, in report order.
    pub const ALL: [Problem; 12] = [
        Problem::MissingIdNumber,
        Problem::InvalidIdNumber,
        Problem::ConflictingIdNumbers,
        Problem::MissingFullName,
        Problem::MissingPhone,
        Problem::InvalidPhone,
        Problem::TooFewPhotos,
        Problem::DuplicatePhoto,
        Problem::UnreadableAttachment,
        Problem::PhotoTooSmall,
        Problem::BlankPhoto,
        Problem::OversizedImage,
    ];

    /// The snake_case code (the key of its sentence in `templates/`).
    pub fn code(self) -> &'static str {
        match self {
            Problem::MissingIdNumber => "missing_id_number",
            Problem::InvalidIdNumber => "invalid_id_number",
            Problem::ConflictingIdNumbers => "conflicting_id_numbers",
            Problem::MissingFullName => "missing_full_name",
            Problem::MissingPhone => "missing_phone",
            Problem::InvalidPhone => "invalid_phone",
            Problem::TooFewPhotos => "too_few_photos",
            Problem::DuplicatePhoto => "duplicate_photo",
            Problem::UnreadableAttachment => "unreadable_attachment",
            Problem::PhotoTooSmall => "photo_too_small",
            Problem::BlankPhoto => "blank_photo",
            Problem::OversizedImage => "oversized_image",
        }
    }

    /// A short English description for the console and the CLI summary.
    pub fn describe(self) -> &'static str {
        match self {
            Problem::MissingIdNumber => "no ID number in the subject or on the request line",
            Problem::InvalidIdNumber => {
                "the ID number is not a valid CCCD (12 digits) or CMND (9 digits)"
            }
            Problem::ConflictingIdNumbers => "the subject and the body name different ID numbers",
            Problem::MissingFullName => "no full name (Họ và tên)",
            Problem::MissingPhone => "no phone number",
            Problem::InvalidPhone => "the phone number is not a Vietnamese mobile number",
            Problem::TooFewPhotos => "fewer than 3 distinct usable photos",
            Problem::DuplicatePhoto => "the same photo is attached twice",
            Problem::UnreadableAttachment => "an image attachment does not decode completely",
            Problem::PhotoTooSmall => "a photo's shorter side is under 300 px",
            Problem::BlankPhoto => "a photo is blank (one flat colour)",
            Problem::OversizedImage => "an image is over 50 megapixels",
        }
    }
}

/// Something the operator should see that does not block the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Warning {
    /// No `Lý do`.
    MissingReason,
    /// A CCCD whose first 3 digits are not a province code.
    UnknownIdPrefix,
    /// A card QR names neither the requested number nor it as old CMND.
    QrIdMismatch,
    /// The card QR's name differs from the body's name.
    QrNameMismatch,
    /// A non-image file was attached and ignored.
    UnsupportedAttachment,
    /// A follow-up came from another address than the request.
    SenderMismatch,
    /// More pictures than one message has decoded: the rest are listed,
    /// not examined.
    TooManyAttachments,
    /// An archive (zip, winmail.dat) that could not be read within its
    /// limits: photos inside it, if any, were not used.
    UnreadArchive,
    /// A mail of the request fails DMARC, or its From domain has a policy
    /// and nothing aligned passed (see [`super::auth`]).
    SenderUnauthenticated,
    /// A follow-up fails where the request's first mail passed.
    FollowupUnauthenticated,
}

impl Warning {
    /// Every warning, in report order.
    pub const ALL: [Warning; 10] = [
        Warning::MissingReason,
        Warning::UnknownIdPrefix,
        Warning::QrIdMismatch,
        Warning::QrNameMismatch,
        Warning::UnsupportedAttachment,
        Warning::SenderMismatch,
        Warning::TooManyAttachments,
        Warning::UnreadArchive,
        Warning::SenderUnauthenticated,
        Warning::FollowupUnauthenticated,
    ];

    /// The snake_case code.
    pub fn code(self) -> &'static str {
        match self {
            Warning::MissingReason => "missing_reason",
            Warning::UnknownIdPrefix => "unknown_id_prefix",
            Warning::QrIdMismatch => "qr_id_mismatch",
            Warning::QrNameMismatch => "qr_name_mismatch",
            Warning::UnsupportedAttachment => "unsupported_attachment",
            Warning::SenderMismatch => "sender_mismatch",
            Warning::TooManyAttachments => "too_many_attachments",
            Warning::UnreadArchive => "unread_archive",
            Warning::SenderUnauthenticated => "sender_unauthenticated",
            Warning::FollowupUnauthenticated => "followup_unauthenticated",
        }
    }

    /// A short English description.
    pub fn describe(self) -> &'static str {
        match self {
            Warning::MissingReason => "no reason given",
            Warning::UnknownIdPrefix => "the CCCD's first 3 digits are not a province code",
            Warning::QrIdMismatch => "the card's QR code names another ID number",
            Warning::QrNameMismatch => "the card's QR code names another person",
            Warning::UnsupportedAttachment => "a non-image file was attached and ignored",
            Warning::SenderMismatch => "a follow-up came from another address",
            Warning::TooManyAttachments => {
                "more pictures than the desk examines in one message; the rest are listed, not read"
            }
            Warning::UnreadArchive => {
                "an archive (zip, winmail.dat) could not be read within its limits; its photos were not used"
            }
            Warning::SenderUnauthenticated => "a mail fails DMARC for its From domain",
            Warning::FollowupUnauthenticated => {
                "a follow-up fails DMARC where the first mail passed"
            }
        }
    }
}

/// `complete`, `incomplete` or `ignored`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// A request with no problem.
    Complete,
    /// A request with problems.
    Incomplete,
    /// Not a request.
    Ignored,
}

/// What a photo shows, guessed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Front of the ID card.
    IdFront,
    /// Back of the ID card.
    IdBack,
    /// Full-body portrait.
    Portrait,
    /// Could not tell.
    Unknown,
}

/// One attachment as reported.
#[derive(Debug, Clone, Serialize)]
pub struct AttachmentReport {
    /// The file name as sent.
    pub filename: Option<String>,
    /// The containers the file came out of (`winmail.dat`, `anh.zip`,
    /// `winmail.dat/anh.zip`); absent for a part of the message itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// The image format found by content, or null for other files.
    pub format: Option<Format>,
    /// Width after EXIF orientation (declared width if not decoded).
    pub width: Option<u32>,
    /// Height after EXIF orientation.
    pub height: Option<u32>,
    /// Size of the decoded content.
    pub bytes: usize,
    /// SHA-256 of the content, hex.
    pub sha256: String,
    /// Guessed role.
    pub role: Role,
    /// Decodes completely and is large enough.
    pub usable: bool,
    /// This attachment's own problem and warning codes.
    pub problems: Vec<&'static str>,
    /// Why it was not examined, in words, when a limit or a container
    /// kept it out (absent otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Fingerprint for near-duplicates (usable photos only).
    #[serde(skip)]
    pub fingerprint: Option<Fingerprint>,
    /// The card QR code read from this photo.
    #[serde(skip)]
    pub card_qr: Option<CardQr>,
    /// Role suggested by the file name.
    #[serde(skip)]
    name_hint: Option<Role>,
    /// The kind of problem this attachment raised for the request.
    #[serde(skip)]
    raised: Option<Raised>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Raised {
    Problem(Problem),
    Unsupported,
    Warning(Warning),
}

mod assess;
mod attachments;
mod stored;
pub use assess::assess;
pub use attachments::MAX_DECODED_PICTURES;
use attachments::{analyse_parts, assign_roles};
pub use stored::StoredInspectionError;

/// Everything read from one message, before judging.
#[derive(Debug, Clone)]
pub struct Examined {
    /// `Message-ID`.
    pub message_id: Option<String>,
    /// `In-Reply-To` + `References`.
    pub references: Vec<String>,
    /// Sender address.
    pub from: Option<String>,
    /// Subject (NFC).
    pub subject: String,
    /// Kind.
    pub kind: Kind,
    /// Number after the request phrase in the subject.
    pub subject_number: Option<String>,
    /// Fields of the new body text.
    pub body: BodyFields,
    /// Attachments, analysed (only for requests).
    pub attachments: Vec<AttachmentReport>,
    /// What the trusted receiving servers said of the sender; `None` when
    /// no authserv-id is trusted (set by the caller, see [`try_inspect_trusting`]).
    pub auth: Option<SenderAuth>,
}

/// How many photos count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PhotoCount {
    /// Decoded completely and large enough.
    pub usable: usize,
    /// Usable and not a duplicate of another.
    pub distinct: usize,
}

/// The judgement on a request (or on a message that is not one).
#[derive(Debug, Clone, Serialize)]
pub struct Assessment {
    /// Kind of the first message.
    pub kind: Kind,
    /// Verdict.
    pub verdict: Verdict,
    /// The requested number as written (digits only), valid or not.
    pub id_number: Option<String>,
    /// CCCD or CMND, when the number is valid.
    pub id_type: Option<IdType>,
    /// Full name from the body.
    pub full_name: Option<String>,
    /// Phone, E.164.
    pub phone: Option<String>,
    /// Reason.
    pub reason: Option<String>,
    /// Photo counts.
    pub photos: PhotoCount,
    /// Every attachment of every message, in order.
    pub attachments: Vec<AttachmentReport>,
    /// The card QR, if any photo carries one.
    pub qr: Option<CardQr>,
    /// Problems, in a fixed order.
    pub problems: Vec<Problem>,
    /// Warnings, in a fixed order.
    pub warnings: Vec<Warning>,
}

/// The `inspect` JSON object (SPEC section 3).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Path as given.
    pub file: Option<String>,
    /// `Message-ID`.
    pub message_id: Option<String>,
    /// Sender address.
    pub from: Option<String>,
    /// Subject.
    pub subject: String,
    /// The judgement.
    #[serde(flatten)]
    pub assessment: Assessment,
    /// The sender's authentication, when authserv-ids are trusted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth: Option<SenderAuth>,
}

/// Reads one raw message. Photos are decoded only for requests.
///
/// # Panics
///
/// On a message [`try_examine`] refuses (nested too deep, too many parts),
/// with the refusal as the panic message: the daemon's guarded call marks
/// the message failed with that reason. New callers should use
/// [`try_examine`].
pub fn examine(raw: &[u8]) -> Examined {
    try_examine(raw).unwrap_or_else(|refused| panic!("{refused}"))
}

/// Reads one raw message, or refuses one whose MIME shape could exhaust
/// the parser (see [`scan`]) or that takes longer than
/// [`DEFAULT_TIME_BUDGET`]: the caller marks it failed with the reason.
pub fn try_examine(raw: &[u8]) -> Result<Examined, Refused> {
    try_examine_within(raw, DEFAULT_TIME_BUDGET)
}

/// [`try_examine`] with a time budget of `limit` from now, after which
/// inspection stops with [`Refused::OverBudget`] ("time budget of N s
/// exceeded"). The budget is checked between parts and inside long
/// decodes, so it is overrun by at most one step (one JPEG decode, a few
/// hundred rows of a picture).
pub fn try_examine_within(raw: &[u8], limit: Duration) -> Result<Examined, Refused> {
    let budget = Budget::starting_now(limit);
    // Before the line-ending copy: a huge message costs nothing.
    scan::check_size(raw.len())?;
    let raw = mime::normalise_line_endings(raw);
    scan::check(&raw)?;
    budget.check()?;
    let parsed =
        std::panic::catch_unwind(|| mime::parse(&raw)).map_err(|_| Refused::ParserFailed)?;
    Ok(examine_parsed(parsed, &budget)?)
}

fn examine_parsed(
    parsed: Option<mail_parser::Message<'_>>,
    budget: &Budget,
) -> Result<Examined, OverBudget> {
    let Some(msg) = parsed else {
        return Ok(Examined {
            message_id: None,
            references: Vec::new(),
            from: None,
            subject: String::new(),
            kind: Kind::Other,
            subject_number: None,
            body: BodyFields::default(),
            attachments: Vec::new(),
            auth: None,
        });
    };
    budget.check()?;
    let mail = mime::read(&msg);
    budget.check()?;
    let text = new_text(&mail.body);
    let body = body_fields(&text);
    let looks_like_request =
        subject_has_request_phrase(&mail.subject) || body.request_number.is_some();
    let kind = classify(
        &mail.headers,
        mail.from.as_deref(),
        &mail.subject,
        looks_like_request,
    );
    let attachments = if kind == Kind::DeletionRequest {
        analyse_parts(&mail.parts, budget)?
    } else {
        Vec::new()
    };
    Ok(Examined {
        message_id: mail.message_id,
        references: mail.references,
        subject_number: subject_number(&mail.subject),
        from: mail.from,
        subject: mail.subject,
        kind,
        body,
        attachments,
        auth: None,
    })
}

/// Inspects one raw message exactly as the daemon does.
///
/// # Panics
///
/// On a refused message, as [`examine`]; see [`try_inspect`].
pub fn inspect(raw: &[u8], file: Option<&str>, options: &InspectOptions) -> Report {
    try_inspect(raw, file, options).unwrap_or_else(|refused| panic!("{refused}"))
}

/// Inspects one raw message, or refuses it as [`try_examine`] does.
pub fn try_inspect(
    raw: &[u8],
    file: Option<&str>,
    options: &InspectOptions,
) -> Result<Report, Refused> {
    try_inspect_within(raw, file, options, DEFAULT_TIME_BUDGET)
}

/// [`try_inspect`] with a time budget of `limit`, as [`try_examine_within`].
pub fn try_inspect_within(
    raw: &[u8],
    file: Option<&str>,
    options: &InspectOptions,
    limit: Duration,
) -> Result<Report, Refused> {
    inspect_with(raw, file, options, None, limit)
}

/// Inspects one raw message as [`try_inspect`] does, reading the
/// `Authentication-Results` of these trusted servers into the report's
/// `auth` (none when `trusted` is `None`).
pub fn try_inspect_trusting(
    raw: &[u8],
    file: Option<&str>,
    options: &InspectOptions,
    trusted: Option<&TrustedServers>,
) -> Result<Report, Refused> {
    inspect_with(raw, file, options, trusted, DEFAULT_TIME_BUDGET)
}

fn inspect_with(
    raw: &[u8],
    file: Option<&str>,
    options: &InspectOptions,
    trusted: Option<&TrustedServers>,
    limit: Duration,
) -> Result<Report, Refused> {
    let e = try_examine_trusting_within(raw, trusted, limit)?;
    let assessment = assess(&[&e], options);
    Ok(Report {
        file: file.map(str::to_owned),
        message_id: e.message_id,
        from: e.from,
        subject: e.subject,
        assessment,
        auth: e.auth,
    })
}

/// [`try_examine`], with the sender's authentication read from the headers
/// of these trusted servers (none when `trusted` is `None`).
pub fn try_examine_trusting(
    raw: &[u8],
    trusted: Option<&TrustedServers>,
) -> Result<Examined, Refused> {
    try_examine_trusting_within(raw, trusted, DEFAULT_TIME_BUDGET)
}

/// [`try_examine_trusting`] within a time budget of `limit`, as
/// [`try_examine_within`].
pub fn try_examine_trusting_within(
    raw: &[u8],
    trusted: Option<&TrustedServers>,
    limit: Duration,
) -> Result<Examined, Refused> {
    let mut e = try_examine_within(raw, limit)?;
    e.auth = trusted.map(|t| auth::read(&mime::normalise_line_endings(raw), e.from.as_deref(), t));
    Ok(e)
}

#[cfg(test)]
mod photo_tests;
