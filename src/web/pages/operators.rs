//! The operators page (admins): add, disable, enable, reset a password,
//! change a role, through the operator service.

use axum::http::StatusCode;
use minijinja::context;
use serde::Deserialize;

use super::{Page, Posted, Signed, WithCsrf};
use crate::domain::Role;
use crate::store::OperatorRow;
use crate::web::{Console, WebError};
use crate::workflow::operators::{Actor, OperatorError, Operators};

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
    let service = Operators::new(op.c.store(), op.c.passwords());
    let actor = Actor::Operator(&op.s.operator);
    let list = service.list(&actor).await.map_err(|e| op.fail(e))?;
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

impl From<OperatorError> for WebError {
    fn from(e: OperatorError) -> WebError {
        let code = e.code();
        match e {
            OperatorError::Store(e) => WebError::Store(e),
            OperatorError::Forbidden(_) => WebError::Forbidden,
            OperatorError::NotFound(_) => WebError::NotFound,
            OperatorError::Invalid(m) => WebError::BadRequest(m),
            OperatorError::Hashing => WebError::BadRequest(e.to_string()),
            OperatorError::Exists(_)
            | OperatorError::OwnAccount
            | OperatorError::LastAdmin(_)
            | OperatorError::Disabled(_) => WebError::Conflict(code, e.to_string()),
        }
    }
}

/// What an admin did to an operator (the form's and the API's `action`:
/// add, reset, disable, enable, role): the one-time password to hand
/// over, when one was drawn.
pub async fn operator_action(
    c: &Console,
    admin: &OperatorRow,
    action: &str,
    login: &str,
    name: Option<&str>,
    role: Option<&str>,
) -> Result<Option<String>, WebError> {
    let service = Operators::new(c.store(), c.passwords());
    let actor = Actor::Operator(admin);
    Ok(service.apply(&actor, action, login, name, role).await?)
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
