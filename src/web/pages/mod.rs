//! The console's pages, one file per page: sign-in and password
//! ([`login`]), API tokens ([`account`]), the queue and hotline
//! ([`queue`]), the dashboard and its CSV downloads ([`dashboard`]), a
//! request and its photos ([`request`]), operators ([`operators`]). Every
//! page takes a [`Signed`] operator (a live session, else the login page);
//! every form post a [`Posted`] form (the session's CSRF token and a
//! same-origin `Origin`, else refused), so a handler is its business only.

// Handlers return a finished response (a redirect or an error page) as
// their error: that is axum's way, and it is built once per request.
#![allow(clippy::result_large_err)]

mod account;
mod dashboard;
mod login;
mod operators;
mod queue;
mod request;

pub use account::{account, create_token, revoke_token};
pub use dashboard::{dashboard, dashboard_csv, report_csv, CHARTS};
pub use login::{home, login, login_page, logout, logout_everywhere, password, password_page};
pub use operators::{manage_operator, operator_action, operators};
pub use queue::{hotline, parse_search, queue, queue_filter, QueueParams};
pub use request::{act, perform, photo, photo_response, request, ActInput, Done};

use axum::extract::{Form, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::context;
use serde::de::DeserializeOwned;

use super::auth::same_secret;
use super::{Console, WebError, SESSION_COOKIE};
use crate::domain::Role;
use crate::store::SessionRow;

/// A page or a redirect.
pub type Page = Result<Response, Response>;

/// An HTML response.
pub(super) fn html(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response()
}

/// Renders the error page (or plain text if even that fails).
pub(super) fn error_page(c: &Console, who: Option<&SessionRow>, e: &WebError) -> Response {
    let status = e.status();
    if status.is_server_error() {
        tracing::error!(error = %e, "console page failed");
    }
    let code = e.code();
    let detail = match e {
        WebError::Workflow(crate::workflow::WorkflowError::Refused(r)) => r.to_string(),
        WebError::BadRequest(m) | WebError::Conflict(_, m) => m.clone(),
        _ => String::new(),
    };
    let ctx = context! { me => who.map(me), csrf => who.map(|s| s.csrf.clone()), code, detail, status => status.as_u16() };
    match c.render("error.html", ctx) {
        Ok(body) => html(status, body),
        Err(_) => (status, e.to_string()).into_response(),
    }
}

/// The signed-in operator as the page header shows them.
pub(super) fn me(s: &SessionRow) -> minijinja::Value {
    context! {
        login => s.operator.login.as_str(), name => s.operator.display_name,
        role => s.operator.role.as_str(),
        supervisor => s.operator.role.allows(Role::Supervisor),
        admin => s.operator.role.allows(Role::Admin),
    }
}

/// The operator a page is for: a live session. Without one the browser is
/// sent to the login page (and back here after it); an operator who must
/// change their password is sent to `/password` first.
pub struct Signed {
    /// The console.
    pub c: Console,
    /// The session.
    pub s: SessionRow,
}

impl FromRequestParts<Console> for Signed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, c: &Console) -> Result<Self, Response> {
        let s = session(c, &parts.headers, &parts.uri).await?;
        Ok(Signed { c: c.clone(), s })
    }
}

impl Signed {
    /// The error page for this operator.
    pub fn fail(&self, e: impl Into<WebError>) -> Response {
        error_page(&self.c, Some(&self.s), &e.into())
    }

    /// Refused unless the operator has `role`.
    pub fn require(&self, role: Role) -> Result<(), Response> {
        if self.s.operator.role.allows(role) {
            Ok(())
        } else {
            Err(self.fail(WebError::Forbidden))
        }
    }

    /// Renders `template` with `ctx` plus the operator (`me`) and the
    /// session's CSRF token (`csrf`) every page's forms carry.
    pub fn render(&self, template: &str, status: StatusCode, ctx: minijinja::Value) -> Page {
        let ctx = context! { me => me(&self.s), csrf => self.s.csrf.clone(), ..ctx };
        self.c
            .render(template, ctx)
            .map(|b| html(status, b))
            .map_err(|e| self.fail(e))
    }

    /// The operator's login.
    pub fn login(&self) -> &str {
        self.s.operator.login.as_str()
    }
}

/// A form that carries the session's CSRF token.
pub trait WithCsrf {
    /// The token as posted.
    fn csrf(&self) -> &str;
}

/// A form post from one of our own pages by a signed-in operator: same
/// origin and the session's CSRF token, else refused with 403 before the
/// handler runs.
pub struct Posted<T> {
    /// Who posted it.
    pub op: Signed,
    /// The form.
    pub form: T,
}

impl<T: DeserializeOwned + WithCsrf + Send> FromRequest<Console> for Posted<T> {
    type Rejection = Response;

    async fn from_request(req: Request, c: &Console) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let op = Signed::from_request_parts(&mut parts, c).await?;
        // The origin is read before the form takes the request's parts.
        let same_origin = same_origin(&parts.headers);
        let Form(form) = Form::<T>::from_request(Request::from_parts(parts, body), c)
            .await
            .map_err(IntoResponse::into_response)?;
        check_post(&op, same_origin, form.csrf())?;
        Ok(Posted { op, form })
    }
}

/// The logged-in operator, or a redirect to the login page.
pub(super) async fn session(
    c: &Console,
    headers: &HeaderMap,
    uri: &Uri,
) -> Result<SessionRow, Response> {
    match c.session(headers).await {
        Ok(Some(s)) => {
            if s.operator.must_change && uri.path() != "/password" {
                return Err(Redirect::to("/password").into_response());
            }
            Ok(s)
        }
        Ok(None) => {
            let next = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/queue");
            Err(Redirect::to(&format!("/login?next={}", urlencode(next))).into_response())
        }
        Err(e) => Err(error_page(c, None, &e)),
    }
}

/// A form post must come from our own pages: same origin, right token.
fn check_post(op: &Signed, same_origin: bool, csrf: &str) -> Result<(), Response> {
    if !same_origin || !same_secret(csrf, &op.s.csrf) {
        tracing::warn!(operator = %op.s.operator.login, "refused a form post without a valid CSRF token or from another origin");
        let e = WebError::BadRequest(
            "Biểu mẫu không hợp lệ hoặc đã hết hạn. Tải lại trang rồi thử lại.".into(),
        );
        let mut r = op.fail(e);
        *r.status_mut() = StatusCode::FORBIDDEN;
        return Err(r);
    }
    Ok(())
}

/// `Origin` (when the browser sends it) names this host; a cross-site
/// fetch is refused whatever the token says.
pub fn same_origin(headers: &HeaderMap) -> bool {
    // Browsers that send Fetch Metadata say it directly; another port on
    // the same host is "same-site", and refused too.
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        if !matches!(site, "same-origin" | "none") {
            return false;
        }
    }
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let origin_host = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .unwrap_or("");
    !host.is_empty() && origin_host == host
}

/// Percent-encodes all but unreserved characters and `/`.
fn urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The session cookie. `Secure` when configured, or when a reverse proxy
/// says the browser came over TLS (`X-Forwarded-Proto: https`).
fn session_cookie(c: &Console, headers: &HeaderMap, value: &str, max_age: Option<i64>) -> String {
    let mut s = format!("{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict");
    let behind_tls = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"));
    if c.web().secure_cookies || behind_tls {
        s.push_str("; Secure");
    }
    if let Some(a) = max_age {
        s.push_str(&format!("; Max-Age={a}"));
    }
    s
}
