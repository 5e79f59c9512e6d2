//! The account page: one's API tokens, and logging out everywhere.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use minijinja::context;
use serde::Deserialize;

use super::{Page, Posted, Signed, WithCsrf};
use crate::web::auth;

/// The account page.
pub async fn account(op: Signed) -> Page {
    account_page(&op, None).await
}

async fn account_page(op: &Signed, new_token: Option<String>) -> Page {
    let tokens =
        op.c.store()
            .api_tokens_of(op.s.operator.id)
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
    let (token, hash) = auth::new_api_token();
    let name = f
        .name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .unwrap_or("token");
    let name: String = name.chars().take(80).collect();
    op.c.store()
        .add_api_token(
            &hash,
            op.s.operator.id,
            &name,
            auth::token_expiry(op.c.web().api_token_days),
        )
        .await
        .map_err(|e| op.fail(e))?;
    account_page(&op, Some(token)).await
}

/// Revokes an API token.
pub async fn revoke_token(Posted { op, form: f }: Posted<TokenForm>) -> Page {
    op.c.store()
        .revoke_api_token(op.s.operator.id, f.id.as_deref().unwrap_or(""))
        .await
        .map_err(|e| op.fail(e))?;
    Ok(Redirect::to("/account").into_response())
}
