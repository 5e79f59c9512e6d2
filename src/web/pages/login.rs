//! Signing in and out, and changing one's password.

use axum::extract::{ConnectInfo, Form, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::context;
use serde::Deserialize;
use std::net::SocketAddr;

use super::{error_page, html, same_origin, session_cookie, Page, Posted, Signed, WithCsrf};
use crate::web::locks::{try_login, LoginResult};
use crate::web::{auth, cookie, Console, WebError, SESSION_COOKIE};

/// `/`: the queue, or the login page.
pub async fn home(State(c): State<Console>, headers: HeaderMap) -> Response {
    match c.session(&headers).await {
        Ok(Some(_)) => Redirect::to("/queue").into_response(),
        _ => Redirect::to("/login").into_response(),
    }
}

/// Query of the login page.
#[derive(Debug, Deserialize, Default)]
pub struct LoginQuery {
    next: Option<String>,
    bye: Option<String>,
}

/// Only our own paths are followed after login.
fn safe_next(next: Option<&str>) -> &str {
    // A path on this site only: one leading slash, then printable ASCII
    // with no backslash or space. Browsers drop tabs and newlines from a
    // URL, so `/\t/evil.example` would become `//evil.example`; control
    // characters would also make the Location header invalid.
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && n.len() <= 2000
                && n.bytes().all(|b| b.is_ascii_graphic() && b != b'\\') =>
        {
            n
        }
        _ => "/queue",
    }
}

/// The login page.
pub async fn login_page(State(c): State<Console>, Query(q): Query<LoginQuery>) -> Response {
    let ctx = context! { next => safe_next(q.next.as_deref()), bye => q.bye.is_some() };
    match c.render("login.html", ctx) {
        Ok(b) => html(StatusCode::OK, b),
        Err(e) => error_page(&c, None, &e),
    }
}

/// The login form.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    login: String,
    password: String,
    next: Option<String>,
}

/// Logs in.
pub async fn login(
    State(c): State<Console>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    if !same_origin(&headers) {
        return error_page(&c, None, &WebError::Forbidden);
    }
    let next = safe_next(f.next.as_deref()).to_owned();
    let again = |error: &str, minutes: i64, status: StatusCode| {
        let ctx = context! { next, error, minutes, login => f.login.clone() };
        match c.render("login.html", ctx) {
            Ok(b) => html(status, b),
            Err(e) => error_page(&c, None, &e),
        }
    };
    match try_login(&c, &f.login, &f.password, &peer.ip().to_string()).await {
        Ok(LoginResult::Ok(op)) => {
            let token = auth::random_secret();
            let csrf = auth::random_secret();
            if let Err(e) = c
                .store()
                .create_session(&auth::secret_hash(&token), op.id, &csrf)
                .await
            {
                return error_page(&c, None, &e.into());
            }
            tracing::info!(operator = %op.login, "logged in");
            let to = if op.must_change { "/password" } else { &next };
            (
                [(
                    header::SET_COOKIE,
                    session_cookie(&c, &headers, &token, None),
                )],
                Redirect::to(to),
            )
                .into_response()
        }
        Ok(LoginResult::Wrong) => again("wrong", 0, StatusCode::UNAUTHORIZED),
        Ok(LoginResult::Blocked(m)) => again("blocked", m, StatusCode::TOO_MANY_REQUESTS),
        Err(e) => error_page(&c, None, &e),
    }
}

/// A form with only its CSRF token.
#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

impl WithCsrf for CsrfForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// The response that ends a browser's session: the cookie cleared, and
/// the login page saying goodbye.
fn signed_out(c: &Console, headers: &HeaderMap) -> Response {
    (
        [(header::SET_COOKIE, session_cookie(c, headers, "", Some(0)))],
        Redirect::to("/login?bye=1"),
    )
        .into_response()
}

/// Logs out of this browser.
pub async fn logout(headers: HeaderMap, Posted { op, .. }: Posted<CsrfForm>) -> Page {
    if let Some(token) = cookie(&headers, SESSION_COOKIE) {
        op.c.store()
            .end_session(&auth::secret_hash(&token))
            .await
            .map_err(|e| op.fail(e))?;
    }
    Ok(signed_out(&op.c, &headers))
}

/// Ends every session of the operator.
pub async fn logout_everywhere(headers: HeaderMap, Posted { op, .. }: Posted<CsrfForm>) -> Page {
    let n =
        op.c.store()
            .end_sessions_of(op.s.operator.id)
            .await
            .map_err(|e| op.fail(e))?;
    tracing::info!(operator = %op.login(), sessions = n, "logged out everywhere");
    Ok(signed_out(&op.c, &headers))
}

/// The page to change one's password.
pub async fn password_page(op: Signed) -> Page {
    let must_change = op.s.operator.must_change;
    op.render("password.html", StatusCode::OK, context! { must_change })
}

/// The password form.
#[derive(Debug, Deserialize)]
pub struct PasswordForm {
    csrf: String,
    current: String,
    new: String,
    confirm: String,
}

impl WithCsrf for PasswordForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// Changes one's password; other sessions end and API tokens are revoked.
/// The current password is checked under the same limit as a login.
pub async fn password(
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Posted { op, form: f }: Posted<PasswordForm>,
) -> Page {
    let (c, s) = (&op.c, &op.s);
    let checked = try_login(c, op.login(), &f.current, &peer.ip().to_string())
        .await
        .map_err(|e| op.fail(e))?;
    let problem = if matches!(checked, LoginResult::Blocked(_)) {
        Some("Nhập sai mật khẩu quá nhiều lần; hãy thử lại sau ít phút.")
    } else if !matches!(checked, LoginResult::Ok(_)) {
        Some("Mật khẩu hiện tại không đúng.")
    } else if f.new != f.confirm {
        Some("Hai lần nhập mật khẩu mới không giống nhau.")
    } else {
        auth::password_problem(&f.new, op.login())
    };
    if let Some(error) = problem {
        let must_change = s.operator.must_change;
        return op.render(
            "password.html",
            StatusCode::UNPROCESSABLE_ENTITY,
            context! { must_change, error },
        );
    }
    let hash = c.passwords().hash(&f.new).await.map_err(|e| op.fail(e))?;
    let store = c.store();
    let done = async {
        store.set_password(&s.operator.login, &hash, false).await?;
        store.end_sessions_of(s.operator.id).await?;
        let token = auth::random_secret();
        store
            .create_session(
                &auth::secret_hash(&token),
                s.operator.id,
                &auth::random_secret(),
            )
            .await?;
        Ok::<_, crate::store::StoreError>(token)
    }
    .await;
    let token = done.map_err(|e| op.fail(e))?;
    Ok((
        [(
            header::SET_COOKIE,
            session_cookie(c, &headers, &token, None),
        )],
        Redirect::to("/queue?done=password"),
    )
        .into_response())
}
