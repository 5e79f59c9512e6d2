//! A request judged from all its messages: fields filled in order,
//! photos added up, problems and warnings raised.

use std::collections::BTreeSet;

use super::*;

/// What judging a request raised so far, each once, in code order.
#[derive(Default)]
struct Findings {
    problems: BTreeSet<Problem>,
    warnings: BTreeSet<Warning>,
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
    let mut found = Findings::default();
    judge_number(messages, options, &mut out, &mut found);
    judge_fields(messages, &mut out, &mut found);
    judge_senders(messages, &mut found);
    let mut atts = judge_photos(messages, &mut out, &mut found);
    assign_roles(&mut atts);
    judge_qr(&atts, &mut out, &mut found);
    out.attachments = atts;
    out.problems = found.problems.into_iter().collect();
    out.warnings = found.warnings.into_iter().collect();
    out.verdict = if out.problems.is_empty() {
        Verdict::Complete
    } else {
        Verdict::Incomplete
    };
    out
}

/// The number: the latest message that states one wins, the subject over
/// the body's request line.
fn judge_number(
    messages: &[&Examined],
    options: &InspectOptions,
    out: &mut Assessment,
    found: &mut Findings,
) {
    let mut number: Option<String> = None;
    for m in messages.iter().rev() {
        let (s, b) = (m.subject_number.as_ref(), m.body.request_number.as_ref());
        if s.is_none() && b.is_none() {
            continue;
        }
        if let (Some(s), Some(b)) = (s, b) {
            if s != b {
                found.problems.insert(Problem::ConflictingIdNumbers);
            }
        }
        number = s.or(b).cloned();
        break;
    }
    match &number {
        None => {
            found.problems.insert(Problem::MissingIdNumber);
        }
        Some(digits) => match IdNumber::parse(digits, options.current_year) {
            Ok(id) => {
                out.id_type = Some(id.id_type());
                if id.id_type() == IdType::Cccd && !id.has_known_province() {
                    found.warnings.insert(Warning::UnknownIdPrefix);
                }
            }
            Err(_) => {
                found.problems.insert(Problem::InvalidIdNumber);
            }
        },
    }
    out.id_number = number;
}

/// Name, reason and phone: the latest message that gives each wins.
fn judge_fields(messages: &[&Examined], out: &mut Assessment, found: &mut Findings) {
    let latest = |f: &dyn Fn(&Examined) -> Option<String>| messages.iter().rev().find_map(|m| f(m));
    out.full_name = latest(&|m| m.body.full_name.clone());
    if out.full_name.is_none() {
        found.problems.insert(Problem::MissingFullName);
    }
    out.reason = latest(&|m| m.body.reason.clone());
    if out.reason.is_none() {
        found.warnings.insert(Warning::MissingReason);
    }
    match latest(&|m| m.body.phone_written.clone()) {
        Some(written) => match phone_candidates(&written)
            .iter()
            .find_map(|c| Phone::parse(c).ok())
        {
            Some(p) => out.phone = Some(p.as_str().to_owned()),
            None => {
                found.problems.insert(Problem::InvalidPhone);
            }
        },
        None => {
            match latest(&|m| m.body.phone_unlabelled.clone()).and_then(|c| Phone::parse(&c).ok()) {
                Some(p) => out.phone = Some(p.as_str().to_owned()),
                None => {
                    found.problems.insert(Problem::MissingPhone);
                }
            }
        }
    }
}

/// Who wrote: a follow-up from another address, and the sender checks.
fn judge_senders(messages: &[&Examined], found: &mut Findings) {
    let first = messages.first().copied();
    if let Some(first_from) = first.and_then(|m| m.from.as_deref()) {
        if messages[1..]
            .iter()
            .any(|m| m.from.as_deref().is_some_and(|f| f != first_from))
        {
            found.warnings.insert(Warning::SenderMismatch);
        }
    }
    let verdicts: Vec<AuthVerdict> = messages
        .iter()
        .filter_map(|m| m.auth.as_ref().map(|a| a.verdict))
        .collect();
    if verdicts.contains(&AuthVerdict::Red) {
        found.warnings.insert(Warning::SenderUnauthenticated);
    }
    if first.and_then(|m| m.auth.as_ref()).map(|a| a.verdict) == Some(AuthVerdict::Green)
        && messages[1..]
            .iter()
            .any(|m| m.auth.as_ref().map(|a| a.verdict) == Some(AuthVerdict::Red))
    {
        found.warnings.insert(Warning::FollowupUnauthenticated);
    }
}

/// Photos of every message, in order; duplicates against all before.
fn judge_photos(
    messages: &[&Examined],
    out: &mut Assessment,
    found: &mut Findings,
) -> Vec<AttachmentReport> {
    let mut atts: Vec<AttachmentReport> = messages
        .iter()
        .flat_map(|m| m.attachments.iter().cloned())
        .collect();
    for i in 0..atts.len() {
        match atts[i].raised {
            Some(Raised::Problem(p)) => {
                found.problems.insert(p);
            }
            Some(Raised::Unsupported) => {
                found.warnings.insert(Warning::UnsupportedAttachment);
            }
            Some(Raised::Warning(w)) => {
                found.warnings.insert(w);
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
            found.problems.insert(Problem::DuplicatePhoto);
            atts[i].problems.push(Problem::DuplicatePhoto.code());
        } else {
            out.photos.distinct += 1;
        }
    }
    if out.photos.distinct < 3 {
        found.problems.insert(Problem::TooFewPhotos);
    }
    atts
}

/// The card QR: one naming the requested number is preferred; one naming
/// another number or another name is a warning for the operator.
fn judge_qr(atts: &[AttachmentReport], out: &mut Assessment, found: &mut Findings) {
    let cards: Vec<&CardQr> = atts.iter().filter_map(|a| a.card_qr.as_ref()).collect();
    let matches = |q: &CardQr| {
        out.id_number
            .as_deref()
            .is_some_and(|n| q.id_number == n || q.old_id_number == n)
    };
    let qr = cards
        .iter()
        .find(|q| matches(q))
        .or(cards.first())
        .map(|q| (*q).clone());
    if let Some(q) = &qr {
        if out.id_number.is_some() && !matches(q) {
            found.warnings.insert(Warning::QrIdMismatch);
        }
        if let Some(name) = &out.full_name {
            if !q.full_name.is_empty() && !same_name(name, &q.full_name) {
                found.warnings.insert(Warning::QrNameMismatch);
            }
        }
    }
    out.qr = qr;
}
