//! The stored form of a message's inspection.
//!
//! A message is inspected once; its [`Examined`] is stored beside it, and a
//! request with many follow-ups is judged from the stored results instead
//! of decoding every earlier photo again. The form is versioned: a stored
//! inspection of another version is refused, and the caller inspects the
//! raw mail again.

use serde::{Deserialize, Serialize};

use super::{AttachmentReport, Examined, Problem, Raised, Role, Warning};
use crate::intake::auth::SenderAuth;
use crate::intake::classify::Kind;
use crate::intake::fields::BodyFields;
use crate::intake::photos::{Fingerprint, Format};
use crate::intake::qr::CardQr;

/// Bumped whenever what inspection finds changes shape.
const VERSION: u32 = 3;

/// Why a stored inspection cannot be used (inspect the raw mail again).
#[derive(Debug, thiserror::Error)]
pub enum StoredInspectionError {
    /// Not the JSON this version writes.
    #[error("stored inspection unreadable: {0}")]
    Unreadable(#[from] serde_json::Error),
    /// Written by another version of inspection.
    #[error("stored inspection of version {0}, this desk reads version {VERSION}")]
    Version(u32),
    /// A problem code this version does not know.
    #[error("stored inspection names an unknown code {0:?}")]
    UnknownCode(String),
}

#[derive(Serialize, Deserialize)]
struct Stored {
    version: u32,
    message_id: Option<String>,
    references: Vec<String>,
    from: Option<String>,
    subject: String,
    kind: Kind,
    subject_number: Option<String>,
    body: BodyFields,
    attachments: Vec<StoredAttachment>,
    /// Since version 2.
    auth: Option<SenderAuth>,
}

#[derive(Serialize, Deserialize)]
struct StoredAttachment {
    filename: Option<String>,
    format: Option<Format>,
    width: Option<u32>,
    height: Option<u32>,
    bytes: usize,
    sha256: String,
    role: Role,
    usable: bool,
    problems: Vec<String>,
    fingerprint: Option<StoredFingerprint>,
    card_qr: Option<StoredQr>,
    name_hint: Option<Role>,
    raised: Option<StoredRaised>,
    #[serde(default)]
    container: Option<String>,
    #[serde(default)]
    note: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct StoredFingerprint {
    cells: Vec<f32>,
    aspect: f32,
    dhash: u64,
}

#[derive(Serialize, Deserialize)]
struct StoredQr {
    id_number: String,
    old_id_number: String,
    full_name: String,
    birth_date: String,
    sex: String,
    issue_date: String,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum StoredRaised {
    Problem(Problem),
    Unsupported,
    Warning(Warning),
}

/// The `&'static` code a stored string names.
fn known_code(code: &str) -> Result<&'static str, StoredInspectionError> {
    Problem::ALL
        .iter()
        .map(|p| p.code())
        .chain(Warning::ALL.iter().map(|w| w.code()))
        .find(|c| *c == code)
        .ok_or_else(|| StoredInspectionError::UnknownCode(code.to_owned()))
}

impl Examined {
    /// The stored form (JSON) of this inspection.
    pub fn to_stored(&self) -> Vec<u8> {
        let stored = Stored {
            version: VERSION,
            message_id: self.message_id.clone(),
            references: self.references.clone(),
            from: self.from.clone(),
            subject: self.subject.clone(),
            kind: self.kind,
            subject_number: self.subject_number.clone(),
            body: self.body.clone(),
            attachments: self.attachments.iter().map(stored_attachment).collect(),
            auth: self.auth.clone(),
        };
        serde_json::to_vec(&stored).expect("plain data serializes")
    }

    /// Reads an inspection stored by [`Examined::to_stored`].
    pub fn from_stored(bytes: &[u8]) -> Result<Examined, StoredInspectionError> {
        let s: Stored = serde_json::from_slice(bytes)?;
        if s.version != VERSION {
            return Err(StoredInspectionError::Version(s.version));
        }
        let attachments = s
            .attachments
            .into_iter()
            .map(attachment)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Examined {
            message_id: s.message_id,
            references: s.references,
            from: s.from,
            subject: s.subject,
            kind: s.kind,
            subject_number: s.subject_number,
            body: s.body,
            attachments,
            auth: s.auth,
        })
    }
}

fn stored_attachment(a: &AttachmentReport) -> StoredAttachment {
    StoredAttachment {
        filename: a.filename.clone(),
        format: a.format,
        width: a.width,
        height: a.height,
        bytes: a.bytes,
        sha256: a.sha256.clone(),
        role: a.role,
        usable: a.usable,
        problems: a.problems.iter().map(|p| (*p).to_owned()).collect(),
        fingerprint: a.fingerprint.as_ref().map(|f| StoredFingerprint {
            cells: f.cells.to_vec(),
            aspect: f.aspect,
            dhash: f.dhash,
        }),
        card_qr: a.card_qr.as_ref().map(|q| StoredQr {
            id_number: q.id_number.clone(),
            old_id_number: q.old_id_number.clone(),
            full_name: q.full_name.clone(),
            birth_date: q.birth_date.clone(),
            sex: q.sex.clone(),
            issue_date: q.issue_date.clone(),
        }),
        name_hint: a.name_hint,
        raised: a.raised.map(|r| match r {
            Raised::Problem(p) => StoredRaised::Problem(p),
            Raised::Unsupported => StoredRaised::Unsupported,
            Raised::Warning(w) => StoredRaised::Warning(w),
        }),
        container: a.container.clone(),
        note: a.note.clone(),
    }
}

fn attachment(s: StoredAttachment) -> Result<AttachmentReport, StoredInspectionError> {
    let fingerprint = match s.fingerprint {
        None => None,
        Some(f) => Some(Fingerprint {
            cells: f.cells.try_into().map_err(|c: Vec<f32>| {
                StoredInspectionError::UnknownCode(format!("fingerprint of {} cells", c.len()))
            })?,
            aspect: f.aspect,
            dhash: f.dhash,
        }),
    };
    Ok(AttachmentReport {
        filename: s.filename,
        format: s.format,
        width: s.width,
        height: s.height,
        bytes: s.bytes,
        sha256: s.sha256,
        role: s.role,
        usable: s.usable,
        problems: s
            .problems
            .iter()
            .map(|c| known_code(c))
            .collect::<Result<_, _>>()?,
        fingerprint,
        card_qr: s.card_qr.map(|q| CardQr {
            id_number: q.id_number,
            old_id_number: q.old_id_number,
            full_name: q.full_name,
            birth_date: q.birth_date,
            sex: q.sex,
            issue_date: q.issue_date,
        }),
        name_hint: s.name_hint,
        raised: s.raised.map(|r| match r {
            StoredRaised::Problem(p) => Raised::Problem(p),
            StoredRaised::Unsupported => Raised::Unsupported,
            StoredRaised::Warning(w) => Raised::Warning(w),
        }),
        container: s.container,
        note: s.note,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intake::{assess, examine, InspectOptions};

    /// A request judged from stored inspections is judged as from the mail.
    #[test]
    fn stored_inspections_judge_as_the_mail_does() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus");
        let mut seen = 0;
        let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().flatten().collect();
        entries.sort_by_key(|e| e.path());
        for e in entries {
            let p = e.path();
            if p.extension().and_then(|x| x.to_str()) != Some("eml") {
                continue;
            }
            let raw = std::fs::read(&p).unwrap();
            // Refused messages (hostile shapes) are never stored.
            let Ok(fresh) = crate::intake::try_examine(&raw) else {
                continue;
            };
            let again = Examined::from_stored(&fresh.to_stored()).unwrap();
            let o = InspectOptions { current_year: 2026 };
            let a = serde_json::to_value(assess(&[&fresh], &o)).unwrap();
            let b = serde_json::to_value(assess(&[&again], &o)).unwrap();
            assert_eq!(a, b, "{}", p.display());
            // Every field, private ones included, comes back as it was.
            assert_eq!(
                format!("{fresh:?}"),
                format!("{again:?}"),
                "{}",
                p.display()
            );
            seen += 1;
        }
        assert!(seen > 50, "only {seen} corpus messages");
    }

    /// The sender's authentication is stored with the message.
    #[test]
    fn the_sender_authentication_is_stored() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus-auth");
        let trusted = crate::intake::auth::TrustedServers::new(
            &["mx.google.com", "mx.dichvucong.gov.vn"],
            true,
        )
        .unwrap();
        for name in ["gmail-pass.eml", "postfix-forged.eml", "m365-pass.eml"] {
            let raw = std::fs::read(format!("{dir}/{name}")).unwrap();
            let fresh = crate::intake::try_examine_trusting(&raw, Some(&trusted)).unwrap();
            assert!(
                fresh.auth.as_ref().is_some_and(|a| a.dmarc.is_some()),
                "{name}"
            );
            let again = Examined::from_stored(&fresh.to_stored()).unwrap();
            assert_eq!(fresh.auth, again.auth, "{name}");
        }
    }

    #[test]
    fn another_version_is_refused() {
        let raw = b"From: a@b.vn\r\nSubject: x\r\n\r\nhi\r\n";
        let s = String::from_utf8(examine(raw).to_stored()).unwrap();
        let other = s.replacen("\"version\":3", "\"version\":4", 1);
        assert!(matches!(
            Examined::from_stored(other.as_bytes()),
            Err(StoredInspectionError::Version(4))
        ));
    }
}
