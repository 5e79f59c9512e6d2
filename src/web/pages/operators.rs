//! The operators page (admins): add, disable, enable, reset a password.

use axum::http::StatusCode;
use minijinja::context;
use serde::Deserialize;

use super::{Page, Posted, Signed, WithCsrf};
use crate::domain::time::now_ms;
use crate::domain::Role;
use crate::web::{auth, Console, WebError};

/// The operators page.
pub async fn operators(op: Signed) -> Page {
    op.require(Role::Admin)?;
    operators_page(&op, None, None).await
}

async fn operators_page(
    op: &Signed,
    done: Option<(String, String)>,
    error: Option<String>,
) -> Page {
    let list = op.c.store().operators().await.map_err(|e| op.fail(e))?;
    let (done_login, one_time) = done.unzip();
    let ctx = context! { operators => list, done_login, one_time, error };
    op.render("operators.html", StatusCode::OK, ctx)
}

/// The operators form.
#[derive(Debug, Deserialize)]
pub struct OperatorForm {
    csrf: String,
    action: String,
    login: String,
    name: Option<String>,
    role: Option<String>,
}

impl WithCsrf for OperatorForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// What an admin did to an operator: the login and, when one was set, the
/// one-time password to hand over.
pub async fn operator_action(
    c: &Console,
    admin: &crate::store::OperatorRow,
    action: &str,
    login: &str,
    name: Option<&str>,
    role: Option<&str>,
) -> Result<Option<String>, WebError> {
    if !admin.role.allows(Role::Admin) {
        return Err(WebError::Forbidden);
    }
    let login =
        crate::domain::Login::parse(login).map_err(|e| WebError::BadRequest(e.to_string()))?;
    let store = c.store();
    let one_time = match action {
        "add" => {
            let role = Role::parse(role.unwrap_or("operator"))
                .map_err(|e| WebError::BadRequest(e.to_string()))?;
            let password = auth::random_password();
            let name = name
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .unwrap_or(login.as_str());
            let name: String = name.chars().take(80).collect();
            if !store
                .add_operator(
                    &login,
                    &name,
                    role,
                    &c.passwords().hash(&password).await?,
                    true,
                )
                .await?
            {
                return Err(WebError::Conflict("login_exists", format!("{login} đã có")));
            }
            Some(password)
        }
        "reset" => {
            let password = auth::random_password();
            if !store
                .set_password(&login, &c.passwords().hash(&password).await?, true)
                .await?
            {
                return Err(WebError::NotFound);
            }
            if let Some(op) = store.operator(&login).await? {
                store.end_sessions_of(op.id).await?;
            }
            Some(password)
        }
        "disable" | "enable" => {
            if login == admin.login {
                return Err(WebError::Conflict(
                    "own_account",
                    "không tự khóa chính mình".into(),
                ));
            }
            if !store.set_disabled(&login, action == "disable").await? {
                return Err(WebError::NotFound);
            }
            None
        }
        _ => return Err(WebError::NotFound),
    };
    let entry = crate::store::AuditEntry {
        at: now_ms(),
        request_id: None,
        actor: admin.login.to_string(),
        action: format!("operator_{action}"),
        from_state: None,
        to_state: None,
        detail: Some(login.to_string()),
    };
    let mut tx = store.begin().await?;
    crate::store::audit(&mut tx, &entry).await?;
    crate::store::commit(tx).await?;
    tracing::info!(admin = %admin.login, operator = %login, action, "operator managed");
    Ok(one_time)
}

/// Applies the operators form.
pub async fn manage_operator(Posted { op, form: f }: Posted<OperatorForm>) -> Page {
    let result = operator_action(
        &op.c,
        &op.s.operator,
        &f.action,
        &f.login,
        f.name.as_deref(),
        f.role.as_deref(),
    )
    .await;
    match result {
        Ok(one_time) => {
            let done = one_time.map(|p| (f.login.trim().to_lowercase(), p));
            operators_page(&op, done, None).await
        }
        Err(WebError::BadRequest(m) | WebError::Conflict(_, m)) => {
            operators_page(&op, None, Some(m)).await
        }
        Err(e) => Err(op.fail(e)),
    }
}
