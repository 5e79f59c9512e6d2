//! What an operator reads for each code the desk stores: one table,
//! `templates/web/labels.toml`, loaded once at start-up and given to the
//! page templates as filters (`label`, `state_vi`, `audit_detail`) and as
//! the `labels` global. The key stays in the data and in the URLs; the page
//! shows the label. Problem codes take their sentence from
//! `templates/problems.toml`, so no sentence is written twice.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use crate::accounts::AccountState;
use crate::domain::request_state::ALL_STATES;
use crate::domain::{Action, RequestState, Role};
use crate::intake::{Problem, Warning};
use crate::notify::templates::Templates;
use crate::store::OutboxKind;

/// The table's file, under the templates folder.
pub const FILE: &str = "web/labels.toml";

/// Every role. The match makes a new role a compile error here until it
/// is listed (and so checked for a label).
pub fn all_roles() -> [Role; 3] {
    let all = [Role::Operator, Role::Supervisor, Role::Admin];
    for r in all {
        match r {
            Role::Operator | Role::Supervisor | Role::Admin => {}
        }
    }
    all
}

/// Every outbox job kind, listed the same way as [`all_roles`].
pub fn all_job_kinds() -> [OutboxKind; 5] {
    use OutboxKind::*;
    let all = [Email, Sms, AccountLock, AccountUnlock, AccountDelete];
    for k in all {
        match k {
            Email | Sms | AccountLock | AccountUnlock | AccountDelete => {}
        }
    }
    all
}

/// A table of labels that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("templates/{FILE}: {0}")]
pub struct LabelsError(pub String);

/// The labels, by group (`states`, `actions`, `roles` …) and key.
#[derive(Debug, Clone, Serialize)]
#[serde(transparent)]
pub struct Labels {
    groups: BTreeMap<String, BTreeMap<String, String>>,
}

impl Labels {
    /// Reads `templates/web/labels.toml` and adds the problems' sentences
    /// from the letters' table; refuses a table without a label for a
    /// state, problem, warning, role, job kind or reject reason the code
    /// knows.
    pub fn load(dir: &Path, templates: &Templates) -> Result<Labels, LabelsError> {
        let path = dir.join(FILE);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| LabelsError(format!("{}: {e}", path.display())))?;
        let mut groups: BTreeMap<String, BTreeMap<String, String>> =
            toml::from_str(&text).map_err(|e| LabelsError(e.to_string()))?;
        let problems = Problem::ALL
            .iter()
            .map(|p| {
                let sentence = templates.problem_sentence(p.code());
                (p.code().to_owned(), sentence.to_owned())
            })
            .collect();
        groups.insert("problems".into(), problems);
        let labels = Labels { groups };
        let reasons: Vec<&str> = templates
            .reject_reasons()
            .iter()
            .map(|(k, _)| k.as_str())
            .collect();
        match labels.missing(&reasons).first() {
            Some(m) => Err(LabelsError(format!("no label for {m}"))),
            None => Ok(labels),
        }
    }

    /// The label of `key` in `group`, if the table has one.
    pub fn get(&self, group: &str, key: &str) -> Option<&str> {
        self.groups.get(group)?.get(key).map(String::as_str)
    }

    /// The label of `key` in `group`, or the key itself (an operator's
    /// login as actor, or a code a newer version stored).
    pub fn label<'a>(&'a self, group: &str, key: &'a str) -> &'a str {
        self.get(group, key).unwrap_or(key)
    }

    /// The Vietnamese name of a state.
    pub fn state(&self, s: RequestState) -> &str {
        self.label("states", s.as_str())
    }

    /// `group.key` for every code the types name that has no label:
    /// states, audit actions, account states, problems, warnings, roles,
    /// job kinds, and the reject reasons given.
    pub fn missing(&self, reject_reasons: &[&str]) -> Vec<String> {
        let mut wanted: Vec<(&str, &str)> = Vec::new();
        wanted.extend(ALL_STATES.iter().map(|s| ("states", s.as_str())));
        wanted.extend(Action::ALL.iter().map(|a| ("actions", a.as_str())));
        wanted.extend(
            AccountState::ALL
                .iter()
                .map(|a| ("account_states", a.as_str())),
        );
        wanted.extend(Problem::ALL.iter().map(|p| ("problems", p.code())));
        wanted.extend(Warning::ALL.iter().map(|w| ("warnings", w.code())));
        wanted.extend(all_roles().iter().map(|r| ("roles", r.as_str())));
        wanted.extend(all_job_kinds().iter().map(|k| ("job_kinds", k.as_str())));
        wanted.extend(reject_reasons.iter().map(|r| ("reject_reasons", *r)));
        wanted
            .into_iter()
            .filter(|(g, k)| self.get(g, k).is_none())
            .map(|(g, k)| format!("{g}.{k}"))
            .collect()
    }

    /// A stored audit detail as the history shows it. Intake writes
    /// `message <sha>; problems: [a, b]; warnings: [c]`: that becomes the
    /// message and the codes' sentences (an empty list is left out); any
    /// other detail is shown as written.
    pub fn audit_detail(&self, detail: &str) -> AuditDetail {
        let parsed = (|| {
            let rest = detail.strip_prefix("message ")?;
            let (message, rest) = rest.split_once("; problems: [")?;
            let (problems, rest) = rest.split_once("]; warnings: [")?;
            let warnings = rest.strip_suffix(']')?;
            let sentences = |list: &str, group: &str| -> Vec<String> {
                list.split(',')
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .map(|c| self.label(group, c).to_owned())
                    .collect()
            };
            Some(AuditDetail {
                message: Some(message.to_owned()),
                problems: sentences(problems, "problems"),
                warnings: sentences(warnings, "warnings"),
                text: None,
            })
        })();
        parsed.unwrap_or_else(|| AuditDetail {
            text: Some(detail.to_owned()).filter(|d| !d.is_empty()),
            ..AuditDetail::default()
        })
    }

    /// Registers the filters and the `labels` global on a page environment.
    pub fn install(self: std::sync::Arc<Self>, env: &mut minijinja::Environment<'static>) {
        env.add_global("labels", minijinja::Value::from_serialize(&*self));
        let l = self.clone();
        env.add_filter("label", move |key: Option<String>, group: String| {
            key.map(|k| l.label(&group, &k).to_owned())
                .unwrap_or_default()
        });
        let l = self.clone();
        env.add_filter("state_vi", move |s: String| {
            l.label("states", &s).to_owned()
        });
        env.add_filter("audit_detail", move |d: Option<String>| {
            minijinja::Value::from_serialize(self.audit_detail(d.as_deref().unwrap_or("")))
        });
    }
}

/// An audit line's detail, ready for the page.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AuditDetail {
    /// The message an intake line is about (its SHA-256 prefix).
    pub message: Option<String>,
    /// The problems' sentences.
    pub problems: Vec<String>,
    /// The warnings' sentences.
    pub warnings: Vec<String>,
    /// Any other detail, as written.
    pub text: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn root() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
    }

    fn shipped() -> Labels {
        let dir = root().join("templates");
        let t = Templates::load(&dir).unwrap();
        Labels::load(&dir, &t).unwrap()
    }

    #[test]
    fn every_code_the_desk_uses_has_a_label() {
        let l = shipped();
        let t = Templates::load(&root().join("templates")).unwrap();
        let reasons: Vec<&str> = t.reject_reasons().iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(l.missing(&reasons), Vec::<String>::new());
    }

    #[test]
    fn a_table_without_a_label_or_unparsable_stops_start_up() {
        let src = root().join("templates");
        let t = Templates::load(&src).unwrap();
        let dir = std::env::temp_dir().join(format!("huytk-labels-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("web")).unwrap();
        let shipped = std::fs::read_to_string(src.join(FILE)).unwrap();
        let cut = shipped.replace("pending_review = \"Chờ duyệt\"\n", "");
        std::fs::write(dir.join(FILE), cut).unwrap();
        let err = Labels::load(&dir, &t).unwrap_err().to_string();
        assert!(err.contains("states.pending_review"), "{err}");
        std::fs::write(dir.join(FILE), "[states\n").unwrap();
        let err = Labels::load(&dir, &t).unwrap_err().to_string();
        assert!(err.contains("labels.toml"), "{err}");
        std::fs::remove_file(dir.join(FILE)).unwrap();
        let err = Labels::load(&dir, &t).unwrap_err().to_string();
        assert!(err.contains("labels.toml"), "{err}");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn intake_details_become_sentences_and_empty_lists_go() {
        let l = shipped();
        let d = l.audit_detail("message 0123456789ab; problems: [too_few_photos]; warnings: []");
        assert_eq!(d.message.as_deref(), Some("0123456789ab"));
        assert_eq!(
            d.problems,
            vec![l.label("problems", "too_few_photos").to_owned()]
        );
        assert!(d.problems[0].starts_with("Thư cần đủ 3 ảnh"), "{d:?}");
        assert!(d.warnings.is_empty());
        let d = l
            .audit_detail("message ab; problems: []; warnings: [missing_reason, qr_name_mismatch]");
        assert_eq!(d.warnings.len(), 2);
        assert!(d.problems.is_empty());
        let d = l.audit_detail("Họ tên không khớp.");
        assert_eq!(d.text.as_deref(), Some("Họ tên không khớp."));
    }
}
