//! SMS out: a gateway behind one small enum. `File` appends one JSON line
//! per SMS (the embedded default); `Kannel` calls smsbox's HTTP `sendsms`
//! with a delivery-report URL back to our API; `Json` posts `{to, text}` to
//! a generic gateway. Texts are GSM-7 already (see `gsm7`).

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use crate::config::{SmsConfig, SmsKind};
use crate::net::http::{encode, HttpClient, HttpError, HttpReply};

/// What the gateway said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SmsOutcome {
    /// Accepted for delivery: the grace period starts now.
    Accepted,
    /// Refused for good (bad number, refused content): never retried.
    Rejected(String),
}

/// The gateway could not be reached or asked us to come back: retry.
#[derive(Debug, thiserror::Error)]
pub enum SmsUnavailable {
    /// No usable HTTP answer (connect, TLS, timeout, oversized, garbled).
    #[error("SMS gateway: {0}")]
    Http(#[from] HttpError),
    /// The gateway answered with a status that means "later".
    #[error("SMS gateway: answered {status}: {body}")]
    Answer {
        /// Status code.
        status: u16,
        /// What it said.
        body: String,
    },
    /// The file gateway could not be written.
    #[error("SMS file {path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
}

/// Each gateway call ends after this long: the outbox retries later.
const GATEWAY_TIMEOUT: Duration = Duration::from_secs(20);

/// One SMS to send.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct OutgoingSms {
    /// E.164 number.
    pub to: String,
    /// GSM-7 text.
    pub text: String,
    /// Segments it takes.
    pub segments: usize,
}

/// The configured gateway.
#[derive(Debug, Clone)]
pub enum SmsGateway {
    /// Append JSON lines to a file.
    File(PathBuf),
    /// Kannel's smsbox.
    Kannel(SmsConfig),
    /// A JSON-over-HTTP gateway.
    Json(SmsConfig),
}

impl SmsGateway {
    /// The gateway named by `[sms] kind`.
    pub fn from_config(c: &SmsConfig) -> Result<SmsGateway, String> {
        match c.kind {
            SmsKind::File => Ok(SmsGateway::File(c.path.clone())),
            SmsKind::Kannel if c.url.starts_with("http") => Ok(SmsGateway::Kannel(c.clone())),
            SmsKind::Json if c.url.starts_with("http") => Ok(SmsGateway::Json(c.clone())),
            SmsKind::Kannel | SmsKind::Json => {
                Err(format!("[sms] url {:?}: an http(s) URL is needed", c.url))
            }
        }
    }

    /// A short name for logs.
    pub fn describe(&self) -> String {
        match self {
            SmsGateway::File(p) => format!("file {}", p.display()),
            SmsGateway::Kannel(c) => format!("Kannel {}", c.url),
            SmsGateway::Json(c) => format!("JSON gateway {}", c.url),
        }
    }

    /// Removes the lines of these SMS (by outbox id) from the file outbox
    /// (rewritten whole, then renamed into place); a gateway's copies are
    /// not ours to remove. Returns how many lines went.
    pub fn forget(&self, ids: &[i64]) -> Result<usize, SmsUnavailable> {
        let SmsGateway::File(path) = self else {
            return Ok(0);
        };
        let fail = |source| SmsUnavailable::File {
            path: path.clone(),
            source,
        };
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(fail(e)),
        };
        let gone = |line: &str| {
            serde_json::from_str::<serde_json::Value>(line)
                .ok()
                .and_then(|v| v["id"].as_i64())
                .is_some_and(|id| ids.contains(&id))
        };
        let kept: Vec<&str> = text.lines().filter(|l| !gone(l)).collect();
        let removed = text.lines().count() - kept.len();
        if removed == 0 {
            return Ok(0);
        }
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".forget");
        let tmp = PathBuf::from(tmp);
        let mut body = kept.join("\n");
        if !body.is_empty() {
            body.push('\n');
        }
        std::fs::write(&tmp, body).map_err(fail)?;
        std::fs::rename(&tmp, path).map_err(fail)?;
        Ok(removed)
    }

    /// Sends one SMS; `id` names it in delivery reports.
    pub async fn send(&self, sms: &OutgoingSms, id: i64) -> Result<SmsOutcome, SmsUnavailable> {
        match self {
            SmsGateway::File(path) => {
                let line = serde_json::json!({
                    "id": id, "to": sms.to, "text": sms.text, "segments": sms.segments,
                    "at": crate::domain::time::now_ms(),
                });
                let write = || -> std::io::Result<()> {
                    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                        std::fs::create_dir_all(dir)?;
                    }
                    let mut f = std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(path)?;
                    writeln!(f, "{line}")?;
                    f.sync_data()
                };
                write().map_err(|source| SmsUnavailable::File {
                    path: path.clone(),
                    source,
                })?;
                Ok(SmsOutcome::Accepted)
            }
            SmsGateway::Kannel(c) => {
                let mut url = format!(
                    "{}?username={}&password={}&from={}&to={}&text={}&coding=0&charset=UTF-8",
                    c.url,
                    encode(&c.username),
                    encode(c.password.expose()),
                    encode(&c.from),
                    encode(&sms.to),
                    encode(&sms.text)
                );
                if !c.dlr_base_url.is_empty() {
                    // Kannel fills %d with the report type (1 delivered,
                    // 2 failed, 4 buffered, 8 accepted by the SMSC, 16
                    // rejected by the SMSC).
                    let dlr = format!(
                        "{}/api/v1/sms/dlr?id={id}&key={}&status=%d",
                        c.dlr_base_url.trim_end_matches('/'),
                        encode(c.dlr_secret.expose())
                    );
                    url.push_str(&format!("&dlr-mask=31&dlr-url={}", encode(&dlr)));
                }
                let r = HttpClient::new(GATEWAY_TIMEOUT)
                    .request("GET", &url, &[], b"")
                    .await?;
                // Kannel refuses a number its white/black lists deny with a
                // 403 that says so; a 403 for our credentials is
                // configuration, which a retry after a fix can cure.
                judge(&r, r.status == 403 && r.body.contains("denied"))
            }
            SmsGateway::Json(c) => {
                let body = serde_json::json!({
                    "to": sms.to, "from": c.from, "text": sms.text, "reference": id.to_string(),
                })
                .to_string();
                let auth = format!("Bearer {}", c.token.expose());
                let mut headers = vec![("Content-Type", "application/json")];
                if !c.token.is_empty() {
                    headers.push(("Authorization", auth.as_str()));
                }
                let r = HttpClient::new(GATEWAY_TIMEOUT)
                    .request("POST", &c.url, &headers, body.as_bytes())
                    .await?;
                judge(&r, false)
            }
        }
    }
}

/// What a gateway's HTTP answer means: 2xx accepted; 400, 404, 413, 422
/// (or `refused` for a gateway-specific answer) refused for good, never
/// retried; anything else unavailable, to retry.
fn judge(r: &HttpReply, refused: bool) -> Result<SmsOutcome, SmsUnavailable> {
    let what = format!("{} {}", r.status, r.body.trim());
    match r.status {
        200..=299 => Ok(SmsOutcome::Accepted),
        400 | 404 | 413 | 422 => Ok(SmsOutcome::Rejected(what)),
        _ if refused => Ok(SmsOutcome::Rejected(what)),
        _ => Err(SmsUnavailable::Answer {
            status: r.status,
            body: r.body.trim().to_owned(),
        }),
    }
}

#[cfg(test)]
mod forget_tests {
    use super::*;

    #[test]
    fn forgetting_removes_only_the_named_lines() {
        let dir = std::env::temp_dir().join(format!("huytk-sms-forget-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("sms.jsonl");
        std::fs::write(
            &path,
            "{\"id\":1,\"to\":\"84912345678\"}\n{\"id\":2,\"to\":\"84987654321\"}\n{\"id\":3,\"to\":\"84911111111\"}\n",
        )
        .unwrap();
        let g = SmsGateway::File(path.clone());
        assert_eq!(g.forget(&[1, 3]).unwrap(), 2);
        let left = std::fs::read_to_string(&path).unwrap();
        assert_eq!(left, "{\"id\":2,\"to\":\"84987654321\"}\n");
        assert_eq!(g.forget(&[1]).unwrap(), 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
