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

mod stored;
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

/// Most pictures decoded for one message. A citizen sends three; a few
/// more (retakes, a forwarded set) are common. Parts past this are still
/// listed, by content type and declared size, with
/// [`Warning::TooManyAttachments`], never decoded.
pub const MAX_DECODED_PICTURES: usize = 24;

/// A part of the message, or a file found in one of its containers.
struct Item<'a> {
    filename: Option<String>,
    declared_type: String,
    bytes: Cow<'a, [u8]>,
    damaged: bool,
    /// The containers it came out of, outermost first, `/`-joined.
    container: Option<String>,
    /// How many containers it lies in.
    depth: usize,
    /// Why a container listed it without giving its bytes.
    refused: Option<String>,
}

impl<'a> Item<'a> {
    fn of(part: &Part<'a>) -> Item<'a> {
        Item {
            filename: part.filename.clone(),
            declared_type: part.declared_type.clone(),
            bytes: Cow::Borrowed(part.bytes),
            damaged: part.damaged,
            container: None,
            depth: 0,
            refused: None,
        }
    }

    /// The name it is shown under inside the path of containers.
    fn path(&self, kind: Container) -> String {
        let own = self.filename.clone().unwrap_or_else(|| match kind {
            Container::Tnef => "winmail.dat".into(),
            Container::Zip => "(zip)".into(),
        });
        match &self.container {
            Some(c) => format!("{c}/{own}"),
            None => own,
        }
    }
}

/// Every part in order, containers (winmail.dat, zip) replaced by the
/// files they hold, opened through a work list (no recursion).
fn analyse_parts(parts: &[Part<'_>], budget: &Budget) -> Result<Vec<AttachmentReport>, OverBudget> {
    let mut out = Vec::with_capacity(parts.len());
    let mut decoded = 0;
    let mut allowance = Allowance::default();
    let mut work: Vec<Item<'_>> = parts.iter().rev().map(Item::of).collect();
    while let Some(item) = work.pop() {
        budget.check()?;
        if let Some(reason) = item.refused.clone() {
            out.push(unread(&item, reason));
            continue;
        }
        if let Some(kind) = archive::container_of(&item.bytes) {
            if item.depth >= archive::MAX_CONTAINER_DEPTH {
                out.push(unread(
                    &item,
                    "an archive inside an archive, not opened".into(),
                ));
                continue;
            }
            let path = item.path(kind);
            // As with the picture decoders, a bug in the zip crate on a
            // crafted archive costs that archive, never the daemon.
            let opened =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match &item.bytes {
                    Cow::Borrowed(b) => archive::open(b, kind, &mut allowance),
                    Cow::Owned(v) => archive::open(v, kind, &mut allowance).map(|files| {
                        files
                            .into_iter()
                            .map(|f| archive::Inner {
                                bytes: Cow::Owned(f.bytes.into_owned()),
                                ..f
                            })
                            .collect()
                    }),
                }));
            match opened {
                Err(_) => out.push(unread(
                    &item,
                    "the archive reader failed on this file".into(),
                )),
                Ok(Err(e)) => out.push(unread(&item, e.to_string())),
                Ok(Ok(files)) => work.extend(files.into_iter().rev().map(|f| Item {
                    filename: f.filename,
                    declared_type: f.declared_type,
                    bytes: f.bytes,
                    damaged: false,
                    container: Some(path.clone()),
                    depth: item.depth + 1,
                    refused: f.refused,
                })),
            }
            continue;
        }
        let picture = photos::sniff(&item.bytes).is_some();
        if picture && decoded >= MAX_DECODED_PICTURES {
            out.push(not_examined(&item));
            continue;
        }
        decoded += usize::from(picture);
        out.push(analyse_part(&item, budget)?);
    }
    Ok(out)
}

/// A picture past [`MAX_DECODED_PICTURES`]: listed, not decoded.
fn not_examined(item: &Item<'_>) -> AttachmentReport {
    let mut a = listed(item);
    if let Some((w, h)) = a.format.and_then(|f| photos::declared_size(&item.bytes, f)) {
        a.width = Some(w);
        a.height = Some(h);
    }
    a.raised = Some(Raised::Warning(Warning::TooManyAttachments));
    a.problems.push(Warning::TooManyAttachments.code());
    a.note = Some(format!(
        "past the first {MAX_DECODED_PICTURES} pictures of the message: listed, not examined"
    ));
    a
}

/// A container that could not be opened, or a file in one that was not
/// taken out: listed with the reason.
fn unread(item: &Item<'_>, reason: String) -> AttachmentReport {
    let mut a = listed(item);
    a.raised = Some(Raised::Warning(Warning::UnreadArchive));
    a.problems.push(Warning::UnreadArchive.code());
    a.note = Some(reason);
    a
}

/// The report of a part before any check.
fn listed(item: &Item<'_>) -> AttachmentReport {
    AttachmentReport {
        filename: item.filename.clone(),
        container: item.container.clone(),
        format: photos::sniff(&item.bytes),
        width: None,
        height: None,
        bytes: item.bytes.len(),
        sha256: hex::encode(Sha256::digest(&item.bytes)),
        role: Role::Unknown,
        usable: false,
        problems: Vec::new(),
        note: None,
        fingerprint: None,
        card_qr: None,
        name_hint: name_hint(item.filename.as_deref()),
        raised: None,
    }
}

fn name_hint(filename: Option<&str>) -> Option<Role> {
    let f = fold(filename?);
    let words: String = f
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { ' ' })
        .collect();
    let has =
        |w: &str| words.split_whitespace().any(|x| x == w) || words.replace(' ', "").contains(w);
    if has("truoc") || has("front") || has("mattruoc") {
        Some(Role::IdFront)
    } else if has("matsau") || has("back") || words.split_whitespace().any(|x| x == "sau") {
        Some(Role::IdBack)
    } else if has("chandung") || has("portrait") || has("toanthan") || has("selfie") {
        Some(Role::Portrait)
    } else {
        None
    }
}

fn analyse_part(part: &Item<'_>, budget: &Budget) -> Result<AttachmentReport, OverBudget> {
    let mut a = listed(part);
    let Some(format) = a.format else {
        if photos::looks_like_image(part.filename.as_deref(), &part.declared_type) {
            a.raised = Some(Raised::Problem(Problem::UnreadableAttachment));
        } else {
            a.raised = Some(Raised::Unsupported);
            a.problems.push(Warning::UnsupportedAttachment.code());
        }
        if let Some(Raised::Problem(p)) = a.raised {
            a.problems.push(p.code());
        }
        return Ok(a);
    };
    if let Some((w, h)) = photos::declared_size(&part.bytes, format) {
        a.width = Some(w);
        a.height = Some(h);
    }
    let decoded = if part.damaged {
        Err(PhotoError::Unreadable("damaged transfer encoding".into()))
    } else {
        // A decoder bug on a crafted file must cost one attachment, never
        // the daemon: a panic inside the decoders counts as unreadable.
        std::panic::catch_unwind(|| photos::decode_within(&part.bytes, format, budget))
            .unwrap_or_else(|_| {
                Err(PhotoError::Unreadable(
                    "the decoder failed on this file".into(),
                ))
            })
    };
    match decoded {
        Err(PhotoError::OverBudget(e)) => return Err(e),
        Err(PhotoError::Oversized { .. }) => {
            a.raised = Some(Raised::Problem(Problem::OversizedImage))
        }
        Err(PhotoError::Unreadable(_)) => {
            a.raised = Some(Raised::Problem(Problem::UnreadableAttachment))
        }
        Ok(g) => {
            a.width = Some(g.width);
            a.height = Some(g.height);
            // Quarter size serves the blank test, the fingerprint and
            // the QR search as well as the full picture.
            match (g.width.min(g.height) >= photos::MIN_SIDE).then(|| photos::shrink(&g, 4)) {
                None => a.raised = Some(Raised::Problem(Problem::PhotoTooSmall)),
                Some(quarter) if photos::is_blank(&quarter) => {
                    a.raised = Some(Raised::Problem(Problem::BlankPhoto))
                }
                Some(quarter) => {
                    a.usable = true;
                    a.fingerprint = Some(Fingerprint::of(&quarter));
                    budget.check()?;
                    let codes = std::panic::catch_unwind(|| qr::find_codes(&g, &quarter))
                        .unwrap_or_default();
                    a.card_qr = codes.iter().find_map(|t| qr::parse_card_qr(t));
                }
            }
        }
    }
    if let Some(Raised::Problem(p)) = a.raised {
        a.problems.push(p.code());
    }
    Ok(a)
}

/// The 2024 Căn cước card (QR on the back) is issued from 1 July 2024;
/// the 2021 chip CCCD carries its QR on the front.
const CAN_CUOC_2024_FROM: &str = "2024-07-01";

fn assign_roles(attachments: &mut [AttachmentReport]) {
    for a in attachments.iter_mut().filter(|a| a.usable) {
        let (w, h) = (a.width.unwrap_or(0), a.height.unwrap_or(0));
        a.role = if let Some(q) = &a.card_qr {
            if !q.issue_date.is_empty() && q.issue_date.as_str() >= CAN_CUOC_2024_FROM {
                Role::IdBack
            } else {
                Role::IdFront
            }
        } else if let Some(hint) = a.name_hint {
            hint
        } else if w > h {
            // A landscape picture without a QR code: a card side, which one
            // is settled below.
            Role::Unknown
        } else {
            Role::Portrait
        };
    }
    // A landscape card picture without a QR code is the side opposite the
    // one that has it.
    let has = |r: Role, atts: &[AttachmentReport]| atts.iter().any(|a| a.usable && a.role == r);
    let front = has(Role::IdFront, attachments);
    let back = has(Role::IdBack, attachments);
    for a in attachments
        .iter_mut()
        .filter(|a| a.usable && a.role == Role::Unknown && a.name_hint.is_none())
    {
        let (w, h) = (a.width.unwrap_or(0), a.height.unwrap_or(0));
        let ratio = w as f32 / h.max(1) as f32;
        if (1.3..=1.9).contains(&ratio) {
            a.role = match (front, back) {
                (true, false) => Role::IdBack,
                (false, true) => Role::IdFront,
                _ => Role::Unknown,
            };
        }
    }
}

/// Judges a request from its first message and its follow-ups, in order.
/// Later messages fill what earlier ones lacked; photos add up.
pub fn assess(messages: &[&Examined], options: &InspectOptions) -> Assessment {
    let first = messages.first().copied();
    let kind = first.map_or(Kind::Other, |m| m.kind);
    let mut out = Assessment {
        kind,
        verdict: Verdict::Ignored,
        id_number: None,
        id_type: None,
        full_name: None,
        phone: None,
        reason: None,
        photos: PhotoCount::default(),
        attachments: Vec::new(),
        qr: None,
        problems: Vec::new(),
        warnings: Vec::new(),
    };
    if kind != Kind::DeletionRequest {
        return out;
    }
    let mut problems = std::collections::BTreeSet::new();
    let mut warnings = std::collections::BTreeSet::new();

    // The number: the latest message that states one wins, the subject
    // over the body's request line.
    let mut number: Option<String> = None;
    for m in messages.iter().rev() {
        let (s, b) = (m.subject_number.as_ref(), m.body.request_number.as_ref());
        if s.is_none() && b.is_none() {
            continue;
        }
        if let (Some(s), Some(b)) = (s, b) {
            if s != b {
                problems.insert(Problem::ConflictingIdNumbers);
            }
        }
        number = s.or(b).cloned();
        break;
    }
    match &number {
        None => {
            problems.insert(Problem::MissingIdNumber);
        }
        Some(digits) => match IdNumber::parse(digits, options.current_year) {
            Ok(id) => {
                out.id_type = Some(id.id_type());
                if id.id_type() == IdType::Cccd && !id.has_known_province() {
                    warnings.insert(Warning::UnknownIdPrefix);
                }
            }
            Err(_) => {
                problems.insert(Problem::InvalidIdNumber);
            }
        },
    }
    out.id_number = number;

    let latest = |f: &dyn Fn(&Examined) -> Option<String>| messages.iter().rev().find_map(|m| f(m));
    out.full_name = latest(&|m| m.body.full_name.clone());
    if out.full_name.is_none() {
        problems.insert(Problem::MissingFullName);
    }
    out.reason = latest(&|m| m.body.reason.clone());
    if out.reason.is_none() {
        warnings.insert(Warning::MissingReason);
    }
    match latest(&|m| m.body.phone_written.clone()) {
        Some(written) => match phone_candidates(&written)
            .iter()
            .find_map(|c| Phone::parse(c).ok())
        {
            Some(p) => out.phone = Some(p.as_str().to_owned()),
            None => {
                problems.insert(Problem::InvalidPhone);
            }
        },
        None => {
            match latest(&|m| m.body.phone_unlabelled.clone()).and_then(|c| Phone::parse(&c).ok()) {
                Some(p) => out.phone = Some(p.as_str().to_owned()),
                None => {
                    problems.insert(Problem::MissingPhone);
                }
            }
        }
    }

    if let Some(first_from) = first.and_then(|m| m.from.as_deref()) {
        if messages[1..]
            .iter()
            .any(|m| m.from.as_deref().is_some_and(|f| f != first_from))
        {
            warnings.insert(Warning::SenderMismatch);
        }
    }

    let verdicts: Vec<AuthVerdict> = messages
        .iter()
        .filter_map(|m| m.auth.as_ref().map(|a| a.verdict))
        .collect();
    if verdicts.contains(&AuthVerdict::Red) {
        warnings.insert(Warning::SenderUnauthenticated);
    }
    if first.and_then(|m| m.auth.as_ref()).map(|a| a.verdict) == Some(AuthVerdict::Green)
        && messages[1..]
            .iter()
            .any(|m| m.auth.as_ref().map(|a| a.verdict) == Some(AuthVerdict::Red))
    {
        warnings.insert(Warning::FollowupUnauthenticated);
    }

    // Photos of every message, in order; duplicates against all before.
    let mut atts: Vec<AttachmentReport> = messages
        .iter()
        .flat_map(|m| m.attachments.iter().cloned())
        .collect();
    for i in 0..atts.len() {
        match atts[i].raised {
            Some(Raised::Problem(p)) => {
                problems.insert(p);
            }
            Some(Raised::Unsupported) => {
                warnings.insert(Warning::UnsupportedAttachment);
            }
            Some(Raised::Warning(w)) => {
                warnings.insert(w);
            }
            None => {}
        }
        if !atts[i].usable {
            continue;
        }
        out.photos.usable += 1;
        let dup = atts[..i].iter().any(|prev| {
            prev.usable
                && (prev.sha256 == atts[i].sha256
                    || match (&prev.fingerprint, &atts[i].fingerprint) {
                        (Some(a), Some(b)) => a.near_duplicate(b),
                        _ => false,
                    })
        });
        if dup {
            problems.insert(Problem::DuplicatePhoto);
            atts[i].problems.push(Problem::DuplicatePhoto.code());
        } else {
            out.photos.distinct += 1;
        }
    }
    if out.photos.distinct < 3 {
        problems.insert(Problem::TooFewPhotos);
    }
    assign_roles(&mut atts);

    // The card QR: prefer one naming the requested number.
    let cards: Vec<&CardQr> = atts.iter().filter_map(|a| a.card_qr.as_ref()).collect();
    let matches = |q: &CardQr| {
        out.id_number
            .as_deref()
            .is_some_and(|n| q.id_number == n || q.old_id_number == n)
    };
    out.qr = cards
        .iter()
        .find(|q| matches(q))
        .or(cards.first())
        .map(|q| (*q).clone());
    if let Some(q) = &out.qr {
        if out.id_number.is_some() && !matches(q) {
            warnings.insert(Warning::QrIdMismatch);
        }
        if let Some(name) = &out.full_name {
            if !q.full_name.is_empty() && !same_name(name, &q.full_name) {
                warnings.insert(Warning::QrNameMismatch);
            }
        }
    }
    out.attachments = atts;
    out.problems = problems.into_iter().collect();
    out.warnings = warnings.into_iter().collect();
    out.verdict = if out.problems.is_empty() {
        Verdict::Complete
    } else {
        Verdict::Incomplete
    };
    out
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
mod photo_tests {
    //! Corpus-style: a whole request message with photos built here.
    use super::*;
    use base64::Engine;

    /// A photo-like grey picture: gradients and a pattern, no flat area.
    fn textured(w: u32, h: u32, seed: u32) -> Vec<u8> {
        (0..h)
            .flat_map(|y| {
                (0..w).map(move |x| {
                    let n = (x.wrapping_mul(2654435761) ^ y.wrapping_mul(40503) ^ seed) >> 7;
                    ((x * 255 / w + y * 3 + seed * 40 + (n % 48)) % 256) as u8
                })
            })
            .collect()
    }

    fn jpeg(w: u32, h: u32, pixels: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
            .encode(pixels, w, h, image::ExtendedColorType::L8)
            .unwrap();
        out
    }

    fn request(photos: &[(&str, &[u8])]) -> Report {
        let mut raw = String::from(
            "From: An <an@gmail.com>\r\nSubject: Yêu cầu hủy tài khoản 079203001234\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"B\"\r\n\r\n--B\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHọ và tên: Nguyễn Văn An\r\nSĐT: 0912345678\r\nLý do: trùng tài khoản\r\n",
        );
        for (name, bytes) in photos {
            raw.push_str(&format!(
                "--B\r\nContent-Type: image/jpeg\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"{name}\"\r\n\r\n"
            ));
            let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
            for line in b64.as_bytes().chunks(76) {
                raw.push_str(std::str::from_utf8(line).unwrap());
                raw.push_str("\r\n");
            }
        }
        raw.push_str("--B--\r\n");
        inspect(raw.as_bytes(), None, &InspectOptions { current_year: 2026 })
    }

    fn good(seed: u32) -> Vec<u8> {
        jpeg(640, 480, &textured(640, 480, seed))
    }

    #[test]
    fn complete_photos_count() {
        let r = request(&[
            ("a.jpg", &good(1)),
            ("b.jpg", &good(2)),
            ("c.jpg", &good(3)),
        ]);
        assert_eq!(
            r.assessment.photos.distinct, 3,
            "{:?}",
            r.assessment.problems
        );
        assert_eq!(r.assessment.verdict, Verdict::Complete);
    }

    #[test]
    fn a_jpeg_cut_at_60_percent_with_an_end_marker_is_unreadable() {
        let whole = good(1);
        let cut = [&whole[..whole.len() * 6 / 10], &[0xFF, 0xD9][..]].concat();
        let r = request(&[("a.jpg", &cut), ("b.jpg", &good(2)), ("c.jpg", &good(3))]);
        let a = &r.assessment.attachments[0];
        assert!(!a.usable);
        assert_eq!(a.problems, ["unreadable_attachment"]);
        assert!(r
            .assessment
            .problems
            .contains(&Problem::UnreadableAttachment));
        assert_eq!(r.assessment.photos.usable, 2);
    }

    #[test]
    fn a_tiny_jpeg_declaring_a_huge_frame_is_not_a_photo() {
        let mut tiny = jpeg(16, 16, &textured(16, 16, 5));
        // SOF0: FF C0, length, precision, height, width.
        let sof = tiny.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
        tiny[sof + 5..sof + 7].copy_from_slice(&7000u16.to_be_bytes());
        tiny[sof + 7..sof + 9].copy_from_slice(&7000u16.to_be_bytes());
        assert!(tiny.len() < 1000, "{} bytes", tiny.len());
        let r = request(&[("a.jpg", &tiny), ("b.jpg", &good(2)), ("c.jpg", &good(3))]);
        let a = &r.assessment.attachments[0];
        assert!(!a.usable, "{a:?}");
        assert_eq!(a.problems, ["unreadable_attachment"]);
        assert_eq!(r.assessment.photos.usable, 2);
    }

    #[test]
    fn blank_pictures_are_blank_photos() {
        let flat = |level: u8| jpeg(640, 480, &vec![level; 640 * 480]);
        // A flat colour with sensor noise of a few levels.
        let noisy: Vec<u8> = textured(640, 480, 9).iter().map(|v| 128 + v % 5).collect();
        for (what, photo) in [
            ("white", flat(255)),
            ("black", flat(0)),
            ("grey", flat(128)),
            ("noisy grey", jpeg(640, 480, &noisy)),
        ] {
            let r = request(&[("a.jpg", &photo), ("b.jpg", &good(2)), ("c.jpg", &good(3))]);
            let a = &r.assessment.attachments[0];
            assert!(!a.usable, "{what}");
            assert_eq!(a.problems, ["blank_photo"], "{what}");
            assert!(
                r.assessment.problems.contains(&Problem::BlankPhoto),
                "{what}"
            );
            assert_eq!(r.assessment.verdict, Verdict::Incomplete, "{what}");
        }
    }

    // "iPhone and Apple Mail photos vanish": each form below counted 0
    // photos and listed no attachment.

    const HEAD: &str = "From: An <an@gmail.com>\r\nSubject: Yêu cầu hủy tài khoản 079203001234\r\nMIME-Version: 1.0\r\n";
    const TEXT: &str = "Content-Type: text/plain; charset=utf-8\r\n\r\nHọ và tên: Nguyễn Văn An\r\nSĐT: 0912345678\r\nLý do: trùng tài khoản\r\n";

    fn b64(bytes: &[u8]) -> String {
        let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
        b64.as_bytes()
            .chunks(76)
            .map(|l| format!("{}\r\n", std::str::from_utf8(l).unwrap()))
            .collect()
    }

    /// An image part with these extra headers, base64.
    fn image_part(extra: &str, bytes: &[u8]) -> String {
        format!(
            "Content-Type: image/jpeg\r\nContent-Transfer-Encoding: base64\r\n{extra}\r\n{}",
            b64(bytes)
        )
    }

    /// `multipart/<sub>` of these parts (each its headers and body).
    fn multipart(sub: &str, boundary: &str, parts: &[String]) -> String {
        let mut out = format!("Content-Type: multipart/{sub}; boundary=\"{boundary}\"\r\n\r\n");
        for p in parts {
            out.push_str(&format!("--{boundary}\r\n{p}"));
        }
        out.push_str(&format!("--{boundary}--\r\n"));
        out
    }

    fn inspect_raw(raw: &str) -> Report {
        inspect(raw.as_bytes(), None, &InspectOptions { current_year: 2026 })
    }

    fn assert_photos(r: &Report, n: usize, what: &str) {
        let a = &r.assessment;
        assert_eq!(a.attachments.len(), n, "{what}: {:?}", a.attachments);
        assert!(
            a.attachments
                .iter()
                .all(|x| x.usable && x.format == Some(Format::Jpeg)),
            "{what}: {:?}",
            a.attachments
        );
        assert_eq!(a.photos.usable, n, "{what}");
        assert_eq!(a.photos.distinct, n, "{what}");
    }

    fn three_inline(extra: impl Fn(u32) -> String) -> Vec<String> {
        (1..=3).map(|s| image_part(&extra(s), &good(s))).collect()
    }

    fn ios_mixed() -> String {
        let mut parts = vec![TEXT.to_owned()];
        parts.extend(three_inline(|s| {
            format!("Content-Disposition: inline; filename=\"IMG_000{s}.jpeg\"\r\n")
        }));
        multipart("mixed", "M", &parts)
    }

    #[test]
    fn ios_inline_images_without_content_id_count() {
        let r = inspect_raw(&format!("{HEAD}{}", ios_mixed()));
        assert_photos(&r, 3, "ios mixed");
        assert_eq!(
            r.assessment.verdict,
            Verdict::Complete,
            "{:?}",
            r.assessment.problems
        );
        assert_eq!(
            r.assessment.attachments[0].filename.as_deref(),
            Some("IMG_0001.jpeg")
        );
    }

    /// Found by fuzz/structured: two nested message/rfc822 parts with
    /// bare-CR line ends reach a `debug_assert!(false)` in mail-parser
    /// 0.11.9. A build with debug assertions refuses the message with the
    /// reason; the release build parses it.
    #[test]
    fn a_parser_failure_refuses_the_message_with_the_reason() {
        let raw = "From: An <an@gmail.com>\rTo: dichvucong@chinhphu.vn\rSubject: Yêu cầu hủy tài khoản + 079203001234\rMIME-Version: 1.0\rContent-Type: multipart/mixed; boundary=\"b0\"\r\r--b0\rContent-Type: message/rfc822\r\rFrom: a@b.vn\rSubject: Fwd: Yeu cau huy tai khoan 079203001234\rMIME-Version: 1.0\rContent-Type: message/rfc822\r\rFrom: a@b.vn\rSubject: Fwd: Yeu cau huy tai khoan 079203001234\rMIME-Version: 1.0\r\rx\r\r--b0--\r";
        let result = try_examine(raw.as_bytes());
        if cfg!(debug_assertions) {
            let refused = result.unwrap_err();
            assert_eq!(refused, Refused::ParserFailed);
            assert_eq!(
                refused.to_string(),
                "message refused: the MIME parser failed on it"
            );
        } else {
            assert_eq!(result.unwrap().kind, Kind::DeletionRequest);
        }
    }

    #[test]
    fn a_broken_inline_photo_is_listed_as_unreadable() {
        // iOS Mail's form (inline, no Content-ID) with the third picture's
        // bytes garbled: listed, not dropped.
        let mut parts = vec![TEXT.to_owned()];
        parts.extend((1..=2).map(|s| {
            image_part(
                &format!("Content-Disposition: inline; filename=\"IMG_000{s}.jpeg\"\r\n"),
                &good(s),
            )
        }));
        parts.push(image_part(
            "Content-Disposition: inline; filename=\"IMG_0003.jpeg\"\r\n",
            b"not a picture at all, whatever the header says",
        ));
        let r = inspect_raw(&format!("{HEAD}{}", multipart("mixed", "M", &parts)));
        let a = &r.assessment;
        assert_eq!(a.attachments.len(), 3, "{:?}", a.attachments);
        assert_eq!(a.attachments[2].filename.as_deref(), Some("IMG_0003.jpeg"));
        assert_eq!(a.attachments[2].problems, vec!["unreadable_attachment"]);
        assert!(a.problems.contains(&Problem::UnreadableAttachment));
    }

    #[test]
    fn apple_rich_alternative_images_count() {
        let mut inner = vec!["Content-Type: text/html; charset=utf-8\r\n\r\n<div>Họ và tên: Nguyễn Văn An<br>SĐT: 0912345678<br>Lý do: trùng tài khoản</div><img src=\"cid:x\">\r\n".to_owned()];
        inner.extend(three_inline(|s| {
            format!("Content-Disposition: inline; filename=\"IMG_000{s}.jpeg\"\r\n")
        }));
        let raw = format!(
            "{HEAD}{}",
            multipart(
                "alternative",
                "A",
                &[TEXT.to_owned(), multipart("mixed", "M", &inner)]
            )
        );
        let r = inspect_raw(&raw);
        assert_photos(&r, 3, "apple alternative");
        assert_eq!(
            r.assessment.verdict,
            Verdict::Complete,
            "{:?}",
            r.assessment.problems
        );
    }

    #[test]
    fn images_without_content_disposition_count() {
        let mut parts = vec![TEXT.to_owned()];
        parts.extend(three_inline(|_| String::new()));
        let r = inspect_raw(&format!("{HEAD}{}", multipart("mixed", "M", &parts)));
        assert_photos(&r, 3, "no disposition");
        assert_eq!(
            r.assessment.verdict,
            Verdict::Complete,
            "{:?}",
            r.assessment.problems
        );
    }

    #[test]
    fn a_message_whose_body_is_an_image_counts_it() {
        let r = inspect_raw(&format!("{HEAD}{}", image_part("", &good(1))));
        assert_eq!(r.assessment.kind, Kind::DeletionRequest);
        assert_photos(&r, 1, "single part");
    }

    #[test]
    fn the_forms_inside_a_forwarded_message_count() {
        let mut no_disposition = vec![TEXT.to_owned()];
        no_disposition.extend(three_inline(|_| String::new()));
        let mut inner =
            vec!["Content-Type: text/html; charset=utf-8\r\n\r\n<div>x</div>\r\n".to_owned()];
        inner.extend(three_inline(|s| {
            format!("Content-Disposition: inline; filename=\"IMG_000{s}.jpeg\"\r\n")
        }));
        for (what, nested, n) in [
            ("ios mixed", ios_mixed(), 3),
            (
                "apple alternative",
                multipart(
                    "alternative",
                    "A",
                    &[TEXT.to_owned(), multipart("mixed", "M", &inner)],
                ),
                3,
            ),
            (
                "no disposition",
                multipart("mixed", "M", &no_disposition),
                3,
            ),
            ("single part", image_part("", &good(1)), 1),
        ] {
            let forwarded = format!("Content-Type: message/rfc822\r\n\r\nFrom: An <an@icloud.com>\r\nSubject: ảnh\r\nMIME-Version: 1.0\r\n{nested}");
            let raw = format!(
                "{HEAD}{}",
                multipart("mixed", "F", &[TEXT.to_owned(), forwarded])
            );
            let r = inspect_raw(&raw);
            assert_photos(&r, n, what);
        }
    }

    fn encoded(w: u32, h: u32, seed: u32, format: image::ImageFormat) -> Vec<u8> {
        let mut out = std::io::Cursor::new(Vec::new());
        image::GrayImage::from_raw(w, h, textured(w, h, seed))
            .unwrap()
            .write_to(&mut out, format)
            .unwrap();
        out.into_inner()
    }

    #[test]
    fn bmp_and_tiff_photos_are_read() {
        let bmp = encoded(640, 480, 1, image::ImageFormat::Bmp);
        let tiff = encoded(640, 480, 2, image::ImageFormat::Tiff);
        let r = request(&[("a.bmp", &bmp), ("b.tif", &tiff), ("c.jpg", &good(3))]);
        let a = &r.assessment.attachments;
        assert_eq!(a[0].format, Some(Format::Bmp));
        assert_eq!(a[1].format, Some(Format::Tiff));
        assert!(a.iter().all(|x| x.usable && x.width == Some(640)), "{a:?}");
        assert_eq!(
            r.assessment.photos.distinct, 3,
            "{:?}",
            r.assessment.problems
        );
        assert_eq!(r.assessment.verdict, Verdict::Complete);
    }

    #[test]
    fn a_cut_bmp_or_tiff_is_unreadable() {
        for format in [image::ImageFormat::Bmp, image::ImageFormat::Tiff] {
            let whole = encoded(640, 480, 1, format);
            let cut = &whole[..whole.len() / 2];
            let r = request(&[("a", cut), ("b.jpg", &good(2)), ("c.jpg", &good(3))]);
            let a = &r.assessment.attachments[0];
            assert!(!a.usable, "{format:?}");
            assert_eq!(a.problems, ["unreadable_attachment"], "{format:?}");
        }
    }
}
