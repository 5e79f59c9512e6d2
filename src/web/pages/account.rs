//! The account page: one's API tokens, and logging out everywhere.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use minijinja::context;
use serde::Deserialize;

use super::{Page, Posted, Signed, WithCsrf};
use crate::web::locks::PasswordPool;
use crate::workflow::operators::{Actor, Operators};

/// The account page.
pub async fn account(op: Signed) -> Page {
    account_page(&op, None).await
}

fn service(op: &Signed) -> Operators<'_, PasswordPool> {
    Operators::new(op.c.store(), op.c.passwords())
}

async fn account_page(op: &Signed, new_token: Option<String>) -> Page {
    let tokens = service(op)
        .tokens(&Actor::Operator(&op.s.operator), op.login())
        .await
        .map_err(|e| op.fail(e))?;
    op.render(
        "account.html",
        StatusCode::OK,
        context! { tokens, new_token },
    )
}

/// The new-token and revoke forms.
#[derive(Debug, Deserialize)]
pub struct TokenForm {
    csrf: String,
    name: Option<String>,
    id: Option<String>,
}

impl WithCsrf for TokenForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// Creates an API token and shows it once.
pub async fn create_token(Posted { op, form: f }: Posted<TokenForm>) -> Page {
    let days = op.c.web().api_token_days;
    let token = service(&op)
        .create_token(
            &Actor::Operator(&op.s.operator),
            op.login(),
            f.name.as_deref(),
            days,
        )
        .await
        .map_err(|e| op.fail(e))?;
    account_page(&op, Some(token.expose().to_owned())).await
}

/// Revokes an API token.
pub async fn revoke_token(Posted { op, form: f }: Posted<TokenForm>) -> Page {
    service(&op)
        .revoke_token(
            &Actor::Operator(&op.s.operator),
            op.login(),
            f.id.as_deref().unwrap_or(""),
        )
        .await
        .map_err(|e| op.fail(e))?;
    Ok(Redirect::to("/account").into_response())
}
