//! The attachments of one message: each part decoded (within the
//! message's budget and picture allowance), checked as a photo, and given
//! a role (card front, card back, portrait).

use super::*;

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
pub(super) fn analyse_parts(
    parts: &[Part<'_>],
    budget: &Budget,
) -> Result<Vec<AttachmentReport>, OverBudget> {
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

pub(super) fn assign_roles(attachments: &mut [AttachmentReport]) {
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
