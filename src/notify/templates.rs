//! Letters to citizens, read at run time from the configured folder (the
//! shipped `templates/` by default) so the desk can reword them without a
//! rebuild. Every template is rendered once at start-up with sample values:
//! a broken one is an error then, not when a citizen is waiting.

use minijinja::{context, Environment, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The letters the desk sends: `templates/email/NAME.txt` and `.html`.
pub const LETTERS: [&str; 9] = [
    "acknowledgement",
    "needs_info",
    "rejected",
    "more_info",
    "approved",
    "cancelled",
    "deleted",
    "holder_notice",
    "digest",
];

/// What every letter about a request is given (`workflow::letters`).
pub const COMMON_VALUES: [&str; 8] = [
    "reference",
    "full_name",
    "id_number",
    "hotline",
    "desk_name",
    "needs_info_days",
    "service_level_days",
    "grace_days",
];

/// The values a letter is given: the common ones and its own.
pub fn letter_values(letter: &str) -> Vec<&'static str> {
    let own: &[&'static str] = match letter {
        "acknowledgement" | "needs_info" => &["due_date", "problems"],
        "rejected" => &["reason"],
        "more_info" => &["message"],
        "holder_notice" => &["account_id"],
        // The digest is about the desk, not one request.
        "digest" => {
            return vec![
                "reference",
                "hotline",
                "desk_name",
                "day",
                "due",
                "overdue",
                "audit_head",
            ]
        }
        _ => &[],
    };
    COMMON_VALUES.iter().chain(own).copied().collect()
}

/// The SMS texts: `templates/sms/NAME.txt`, folded to GSM-7 when rendered.
pub const SMS: [&str; 1] = ["grace_notice"];

/// The most segments the holder's notice may take.
pub const MAX_NOTICE_SEGMENTS: usize = 2;

/// A template that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// A file is missing or unreadable.
    #[error("template {0}: {1}")]
    Read(PathBuf, std::io::Error),
    /// Syntax or rendering error.
    #[error("template {0}: {1}")]
    Render(String, minijinja::Error),
    /// The text template does not start with a `Subject:` line.
    #[error("template {0}: the first line must be `Subject: …`")]
    NoSubject(String),
    /// A text too long for its medium.
    #[error("template {0}")]
    TooLong(String),
    /// reject_reasons.toml is not a table of code = text.
    #[error("templates/reject_reasons.toml: {0}")]
    Reasons(String),
    /// problems.toml is not a table of code = sentence.
    #[error("templates/problems.toml: {0}")]
    Problems(String),
}

/// A rendered letter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedEmail {
    /// Subject line.
    pub subject: String,
    /// Plain text body.
    pub text: String,
    /// HTML body.
    pub html: String,
}

/// The loaded templates.
#[derive(Debug)]
pub struct Templates {
    env: Environment<'static>,
    problems: BTreeMap<String, String>,
    reject_reasons: Vec<(String, String)>,
    dir: PathBuf,
}

impl Templates {
    /// Loads and checks every letter in `dir`.
    pub fn load(dir: &Path) -> Result<Templates, TemplateError> {
        let mut env = Environment::new();
        // A misspelt variable is an error when the start-up check renders
        // each letter, not a blank in a citizen's letter.
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        for name in LETTERS {
            for ext in ["txt", "html"] {
                let path = dir.join("email").join(format!("{name}.{ext}"));
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| TemplateError::Read(path.clone(), e))?;
                let key = format!("{name}.{ext}");
                env.add_template_owned(key.clone(), text)
                    .map_err(|e| TemplateError::Render(key, e))?;
            }
        }
        for name in SMS {
            let path = dir.join("sms").join(format!("{name}.txt"));
            let text =
                std::fs::read_to_string(&path).map_err(|e| TemplateError::Read(path.clone(), e))?;
            let key = format!("sms/{name}");
            env.add_template_owned(key.clone(), text)
                .map_err(|e| TemplateError::Render(key, e))?;
        }
        // HTML letters escape what they print; text letters do not.
        env.set_auto_escape_callback(|name| {
            if name.ends_with(".html") {
                minijinja::AutoEscape::Html
            } else {
                minijinja::AutoEscape::None
            }
        });
        let path = dir.join("problems.toml");
        let text =
            std::fs::read_to_string(&path).map_err(|e| TemplateError::Read(path.clone(), e))?;
        let problems: BTreeMap<String, String> =
            toml::from_str(&text).map_err(|e| TemplateError::Problems(e.to_string()))?;
        for p in crate::intake::Problem::ALL {
            if !problems.contains_key(p.code()) {
                return Err(TemplateError::Problems(format!(
                    "no sentence for {}",
                    p.code()
                )));
            }
        }
        let path = dir.join("reject_reasons.toml");
        let text =
            std::fs::read_to_string(&path).map_err(|e| TemplateError::Read(path.clone(), e))?;
        let reasons: toml::Table =
            toml::from_str(&text).map_err(|e| TemplateError::Reasons(e.to_string()))?;
        let mut reject_reasons = Vec::new();
        for (code, v) in reasons {
            let text = v
                .as_str()
                .ok_or_else(|| TemplateError::Reasons(format!("{code} is not a string")))?;
            reject_reasons.push((code, text.to_owned()));
        }
        let t = Templates {
            env,
            problems,
            reject_reasons,
            dir: dir.to_owned(),
        };
        // Render every letter once with sample values: exactly those its
        // sender gives it, so a variable it uses but never gets fails here.
        let sample = context! {
            reference => "HTK-240715-1", id_number => "079203001234", full_name => "Nguyễn Văn An",
            due_date => "12/08/2024", service_level_days => 20, hotline => "18001096",
            desk_name => "Cổng Dịch vụ công quốc gia", needs_info_days => 30,
            problems => vec![t.problem_sentence("too_few_photos").to_owned()],
            reason => "Họ tên không khớp.", message => "Xin gửi lại ảnh mặt sau thẻ.",
            grace_days => 3, day => "2024-08-12", due => Vec::<Value>::new(), overdue => Vec::<Value>::new(),
            account_id => "DVC-0001",
            // Any 64-hex-digit hash will do: only its shape is rendered.
            audit_head => context! { id => 41, seq => 41, hash => "0".repeat(64) },
        };
        for name in LETTERS {
            let given: BTreeMap<&str, Value> = letter_values(name)
                .iter()
                .map(|k| (*k, sample.get_attr(k).unwrap_or_default()))
                .collect();
            t.render(name, Value::from_serialize(&given))?;
        }
        let notice = t.sms("grace_notice", sample)?;
        let segments = super::gsm7::segments(&notice);
        if segments > MAX_NOTICE_SEGMENTS {
            return Err(TemplateError::TooLong(format!(
                "sms/grace_notice.txt takes {segments} SMS segments once folded to GSM-7 (at most {MAX_NOTICE_SEGMENTS})"
            )));
        }
        Ok(t)
    }

    /// The folder they came from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The citizen's sentence for a problem code (the code itself if the
    /// table lacks it, which `load` prevents).
    pub fn problem_sentence<'a>(&'a self, code: &'a str) -> &'a str {
        self.problems.get(code).map_or(code, String::as_str)
    }

    /// The reasons an operator can pick when rejecting: (code, text), in
    /// the order of `templates/reject_reasons.toml`'s keys (sorted).
    pub fn reject_reasons(&self) -> &[(String, String)] {
        &self.reject_reasons
    }

    /// Renders an SMS text, folded to GSM-7 on one line.
    pub fn sms(&self, name: &str, ctx: Value) -> Result<String, TemplateError> {
        let key = format!("sms/{name}");
        let text = self
            .env
            .get_template(&key)
            .and_then(|t| t.render(ctx))
            .map_err(|e| TemplateError::Render(key, e))?;
        Ok(super::gsm7::fold(&text.replace('\n', " ")))
    }

    /// Renders a letter.
    pub fn render(&self, name: &str, ctx: Value) -> Result<RenderedEmail, TemplateError> {
        let render = |key: String| {
            self.env
                .get_template(&key)
                .and_then(|t| t.render(ctx.clone()))
                .map_err(|e| TemplateError::Render(key, e))
        };
        let text = render(format!("{name}.txt"))?;
        let html = render(format!("{name}.html"))?;
        let (first, rest) = text.split_once('\n').unwrap_or((&text, ""));
        let subject = first
            .strip_prefix("Subject:")
            .ok_or_else(|| TemplateError::NoSubject(format!("{name}.txt")))?
            .trim()
            .to_owned();
        Ok(RenderedEmail {
            subject,
            text: rest.trim_start_matches('\n').to_owned(),
            html,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped() -> Templates {
        Templates::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("templates")).unwrap()
    }

    #[test]
    fn shipped_letters_render() {
        let t = shipped();
        let r = t
            .render(
                "needs_info",
                context! { reference => "HTK-1", id_number => "079203001234", full_name => "<b>An</b>",
                problems => vec!["Thiếu ảnh"], desk_name => "DVC", needs_info_days => 30,
                due_date => "12/08/2024", service_level_days => 20, hotline => "18001096", grace_days => 3 },
            )
            .unwrap();
        assert_eq!(
            r.subject,
            "[HTK-1] Yêu cầu hủy tài khoản cần bổ sung thông tin"
        );
        assert!(r.text.contains("- Thiếu ảnh"));
        assert!(r.text.contains("<b>An</b>"), "text is not escaped");
        assert!(r.html.contains("&lt;b&gt;An&lt;"), "html is escaped");
        assert!(!r.html.contains("<b>An"), "no markup from the citizen");
    }

    /// Loads the shipped templates with one file replaced.
    fn load_with(file: &str, text: &str) -> Result<Templates, TemplateError> {
        let dir = std::env::temp_dir().join(format!(
            "huytk-tpl-{}-{}",
            std::process::id(),
            file.replace('/', "-")
        ));
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
        for sub in ["email", "sms"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
            for e in std::fs::read_dir(src.join(sub)).unwrap() {
                let e = e.unwrap();
                std::fs::copy(e.path(), dir.join(sub).join(e.file_name())).unwrap();
            }
        }
        for f in ["problems.toml", "reject_reasons.toml"] {
            std::fs::copy(src.join(f), dir.join(f)).unwrap();
        }
        std::fs::write(dir.join(file), text).unwrap();
        let loaded = Templates::load(&dir);
        std::fs::remove_dir_all(&dir).ok();
        loaded
    }

    #[test]
    fn a_broken_template_fails_at_load() {
        let err = load_with("email/needs_info.html", "{% for p in problems %}{{ p }").unwrap_err();
        assert!(err.to_string().contains("needs_info.html"), "{err}");
    }

    #[test]
    fn a_misspelt_or_unsupplied_variable_fails_at_load() {
        let err = load_with(
            "email/rejected.txt",
            "Subject: [{{ reference }}]\n\nKính gửi {{ ful_name }},",
        )
        .unwrap_err();
        assert!(err.to_string().contains("rejected.txt"), "{err}");
        // A real variable, but one the approval letter is never given.
        let err = load_with(
            "email/approved.txt",
            "Subject: [{{ reference }}]\n\n{{ reason }}",
        )
        .unwrap_err();
        assert!(err.to_string().contains("approved.txt"), "{err}");
        assert!(load_with(
            "email/approved.txt",
            "Subject: [{{ reference }}]\n\n{{ grace_days }}"
        )
        .is_ok());
    }
}
