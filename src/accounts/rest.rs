//! The portal's account REST API, as written down in
//! `docs/portal-accounts.openapi.json`: `GET /accounts?id_number=N`,
//! `PATCH /accounts/{id}` with `{"state": "locked" | "active"}`, and
//! `DELETE /accounts/{id}` (404 counts as done: deleting twice is fine).

use std::time::Duration;

use super::{AccountError, AccountState, AccountStore, PortalAccount};
use crate::config::AccountsConfig;
use crate::net::http::{encode, HttpClient, HttpError, HttpReply};

/// The REST account store.
#[derive(Debug, Clone)]
pub struct RestDirectory {
    c: AccountsConfig,
}

/// An account as the API returns it (`id` is the account id).
#[derive(Debug, serde::Deserialize)]
struct ApiAccount {
    id: serde_json::Value,
    id_number: String,
    #[serde(default)]
    full_name: String,
    #[serde(default)]
    birth_date: Option<String>,
    #[serde(default)]
    phone: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    vneid_linked: Option<serde_json::Value>,
    #[serde(default)]
    state: Option<String>,
}

impl RestDirectory {
    /// Checks the base URL.
    pub fn new(c: AccountsConfig) -> Result<RestDirectory, AccountError> {
        if !c.url.starts_with("http://") && !c.url.starts_with("https://") {
            return Err(AccountError::Config(format!(
                "[accounts] url {:?}: the API's base URL, http(s)://…",
                c.url
            )));
        }
        Ok(RestDirectory { c })
    }

    /// The API's base URL.
    pub fn url(&self) -> &str {
        &self.c.url
    }

    /// One call to `path` under the base URL.
    async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> Result<HttpReply, AccountError> {
        let url = format!("{}{path}", self.c.url.trim_end_matches('/'));
        let auth = format!("Bearer {}", self.c.token.expose());
        let mut headers = vec![("Accept", "application/json")];
        if body.is_some() {
            headers.push(("Content-Type", "application/json"));
        }
        if !self.c.token.is_empty() {
            headers.push(("Authorization", auth.as_str()));
        }
        HttpClient::new(Duration::from_secs(self.c.timeout_seconds.max(1)))
            .request(method, &url, &headers, body.unwrap_or("").as_bytes())
            .await
            .map_err(|source| api_error(method, path, source))
    }

    async fn set_state(&self, account_id: &str, state: AccountState) -> Result<(), AccountError> {
        let body = serde_json::json!({ "state": state }).to_string();
        let path = format!("/accounts/{}", encode(account_id));
        self.call("PATCH", &path, Some(&body))
            .await?
            .success()
            .map_err(|e| api_error("PATCH", &path, e))?;
        Ok(())
    }
}

/// Names the call without its query: an ID number is no log material.
fn api_error(method: &str, path: &str, source: HttpError) -> AccountError {
    let path = path.split_once('?').map_or(path, |(p, _)| p);
    AccountError::Api {
        call: format!("{method} {path}"),
        source,
    }
}

impl AccountStore for RestDirectory {
    async fn find(&self, numbers: &[String]) -> Result<Vec<PortalAccount>, AccountError> {
        let mut out: Vec<PortalAccount> = Vec::new();
        for n in numbers {
            let path = format!("/accounts?id_number={}", encode(n));
            let r = self
                .call("GET", &path, None)
                .await?
                .success()
                .map_err(|e| api_error("GET", &path, e))?;
            let list: Vec<ApiAccount> = serde_json::from_str(&r.body)
                .map_err(|e| AccountError::Unavailable(format!("GET /accounts: {e}")))?;
            for a in list {
                let id = match &a.id {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                if out.iter().any(|o| o.account_id == id) || a.id_number != *n {
                    continue;
                }
                let state = match a.state.as_deref() {
                    None => AccountState::Active,
                    Some(s) => s.parse().map_err(|source| AccountError::Unreadable {
                        account_id: id.clone(),
                        source,
                    })?,
                };
                out.push(PortalAccount {
                    account_id: id,
                    id_number: a.id_number,
                    full_name: a.full_name,
                    birth_date: a.birth_date,
                    phone: a.phone,
                    email: a.email,
                    vneid_linked: i64::from(a.vneid_linked.is_some_and(|v| {
                        v == serde_json::Value::Bool(true) || v == serde_json::json!(1)
                    })),
                    state,
                });
            }
        }
        Ok(out)
    }
    async fn lock(&self, account_id: &str) -> Result<(), AccountError> {
        self.set_state(account_id, AccountState::Locked).await
    }
    async fn unlock(&self, account_id: &str) -> Result<(), AccountError> {
        self.set_state(account_id, AccountState::Active).await
    }
    async fn delete(&self, account_id: &str) -> Result<(), AccountError> {
        let path = format!("/accounts/{}", encode(account_id));
        let r = self.call("DELETE", &path, None).await?;
        if r.status == 404 {
            return Ok(());
        }
        r.success().map_err(|e| api_error("DELETE", &path, e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    //! Answers the real API (json-server, tests/grace.rs) will not give:
    //! an unknown state and a refusal, from a one-shot loopback server.

    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn answer_once(status: &str, body: &str) -> RestDirectory {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        let reply = format!(
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            let _ = s.read(&mut buf).await;
            let _ = s.write_all(reply.as_bytes()).await;
            let _ = s.shutdown().await;
        });
        RestDirectory::new(AccountsConfig {
            kind: crate::config::AccountsKind::Rest,
            url,
            ..Default::default()
        })
        .unwrap()
    }

    #[tokio::test]
    async fn an_unknown_state_is_refused_with_its_value() {
        let d = answer_once(
            "200 OK",
            r#"[{"id": 7, "id_number": "079203001234", "state": "suspended"}]"#,
        )
        .await;
        let e = d.find(&["079203001234".into()]).await.unwrap_err();
        assert!(
            matches!(&e, AccountError::Unreadable { account_id, source }
                if account_id == "7" && source.0 == "suspended"),
            "{e:?}"
        );
    }

    #[tokio::test]
    async fn a_refusal_keeps_its_status_and_names_no_id_number() {
        let d = answer_once("503 Service Unavailable", "maintenance").await;
        let e = d.find(&["079203001234".into()]).await.unwrap_err();
        assert!(
            matches!(
                &e,
                AccountError::Api {
                    source: HttpError::Status { status: 503, .. },
                    ..
                }
            ),
            "{e:?}"
        );
        let shown = e.to_string();
        assert_eq!(
            shown,
            "account API GET /accounts: answered 503: maintenance"
        );
    }
}
