//! The console's pages: login, queue, request, dashboard, audit log,
//! account. Every page needs a live session; every form post needs the
//! session's CSRF token and a same-origin `Origin`.

// Handlers return a finished response (a redirect or an error page) as
// their error: that is axum's way, and it is built once per request.
#![allow(clippy::result_large_err)]

use axum::extract::{ConnectInfo, Form, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::context;
use serde::Deserialize;
use std::net::SocketAddr;

use super::auth::{self, same_secret};
use super::views::{self, request_view};
use super::{Console, WebError, SESSION_COOKIE};
use crate::domain::time::now_ms;
use crate::domain::{Phone, RequestState, Role};
use crate::store::{QueueFilter, Search, SessionRow};
use crate::workflow::{Decided, Decision, WorkflowError, ALL_STATES};

/// A page or a redirect.
pub(super) type Page = Result<Response, Response>;

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
    let code = match e {
        WebError::Workflow(WorkflowError::Refused(r)) => r.code(),
        WebError::NotFound => "not_found",
        WebError::Forbidden => "forbidden",
        WebError::BadRequest(_) => "bad_request",
        WebError::Conflict(code, _) => code,
        _ => "internal",
    };
    let detail = match e {
        WebError::Workflow(WorkflowError::Refused(r)) => r.to_string(),
        WebError::BadRequest(m) | WebError::Conflict(_, m) => m.clone(),
        _ => String::new(),
    };
    let ctx = context! { me => who.map(me), csrf => who.map(|s| s.csrf.clone()), code, detail, status => status.as_u16() };
    match c.render("error.html", ctx) {
        Ok(body) => html(status, body),
        Err(_) => (status, e.to_string()).into_response(),
    }
}

pub(super) fn me(s: &SessionRow) -> minijinja::Value {
    context! {
        login => s.operator.login.as_str(), name => s.operator.display_name,
        role => s.operator.role.as_str(),
        supervisor => s.operator.role.allows(Role::Supervisor),
        admin => s.operator.role.allows(Role::Admin),
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
fn check_post(
    c: &Console,
    s: &SessionRow,
    headers: &HeaderMap,
    csrf: &str,
) -> Result<(), Response> {
    if !same_origin(headers) || !same_secret(csrf, &s.csrf) {
        tracing::warn!(operator = %s.operator.login, "refused a form post without a valid CSRF token or from another origin");
        let e = WebError::BadRequest(
            "Biểu mẫu không hợp lệ hoặc đã hết hạn. Tải lại trang rồi thử lại.".into(),
        );
        let mut r = error_page(c, Some(s), &e);
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
    match super::locks::try_login(&c, &f.login, &f.password, &peer.ip().to_string()).await {
        Ok(super::locks::LoginResult::Ok(op)) => {
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
        Ok(super::locks::LoginResult::Wrong) => again("wrong", 0, StatusCode::UNAUTHORIZED),
        Ok(super::locks::LoginResult::Blocked(m)) => {
            again("blocked", m, StatusCode::TOO_MANY_REQUESTS)
        }
        Err(e) => error_page(&c, None, &e),
    }
}

/// A form with only its CSRF token.
#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

/// Logs out of this browser.
pub async fn logout(
    State(c): State<Console>,
    headers: HeaderMap,
    uri: Uri,
    Form(f): Form<CsrfForm>,
) -> Page {
    let s = session(&c, &headers, &uri).await?;
    check_post(&c, &s, &headers, &f.csrf)?;
    if let Some(token) = super::cookie(&headers, SESSION_COOKIE) {
        c.store()
            .end_session(&auth::secret_hash(&token))
            .await
            .map_err(|e| error_page(&c, Some(&s), &e.into()))?;
    }
    Ok((
        [(
            header::SET_COOKIE,
            session_cookie(&c, &headers, "", Some(0)),
        )],
        Redirect::to("/login?bye=1"),
    )
        .into_response())
}

/// Ends every session of the operator.
pub async fn logout_everywhere(
    State(c): State<Console>,
    headers: HeaderMap,
    uri: Uri,
    Form(f): Form<CsrfForm>,
) -> Page {
    let s = session(&c, &headers, &uri).await?;
    check_post(&c, &s, &headers, &f.csrf)?;
    let n = c
        .store()
        .end_sessions_of(s.operator.id)
        .await
        .map_err(|e| error_page(&c, Some(&s), &e.into()))?;
    tracing::info!(operator = %s.operator.login, sessions = n, "logged out everywhere");
    Ok((
        [(
            header::SET_COOKIE,
            session_cookie(&c, &headers, "", Some(0)),
        )],
        Redirect::to("/login?bye=1"),
    )
        .into_response())
}

/// The page to change one's password.
pub async fn password_page(State(c): State<Console>, headers: HeaderMap, uri: Uri) -> Page {
    let s = session(&c, &headers, &uri).await?;
    let ctx = context! { me => me(&s), csrf => s.csrf, must_change => s.operator.must_change };
    c.render("password.html", ctx)
        .map(|b| html(StatusCode::OK, b))
        .map_err(|e| error_page(&c, Some(&s), &e))
}

/// The password form.
#[derive(Debug, Deserialize)]
pub struct PasswordForm {
    csrf: String,
    current: String,
    new: String,
    confirm: String,
}

/// Changes one's password; other sessions end and API tokens are revoked.
/// The current password is checked under the same limit as a login.
pub async fn password(
    State(c): State<Console>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    uri: Uri,
    Form(f): Form<PasswordForm>,
) -> Page {
    let s = session(&c, &headers, &uri).await?;
    check_post(&c, &s, &headers, &f.csrf)?;
    let login = s.operator.login.as_str();
    let checked = super::locks::try_login(&c, login, &f.current, &peer.ip().to_string())
        .await
        .map_err(|e| error_page(&c, Some(&s), &e))?;
    let problem = if matches!(checked, super::locks::LoginResult::Blocked(_)) {
        Some("Nhập sai mật khẩu quá nhiều lần; hãy thử lại sau ít phút.")
    } else if !matches!(checked, super::locks::LoginResult::Ok(_)) {
        Some("Mật khẩu hiện tại không đúng.")
    } else if f.new != f.confirm {
        Some("Hai lần nhập mật khẩu mới không giống nhau.")
    } else {
        auth::password_problem(&f.new, s.operator.login.as_str())
    };
    if let Some(error) = problem {
        let ctx =
            context! { me => me(&s), csrf => s.csrf, must_change => s.operator.must_change, error };
        return c
            .render("password.html", ctx)
            .map(|b| html(StatusCode::UNPROCESSABLE_ENTITY, b))
            .map_err(|e| error_page(&c, Some(&s), &e));
    }
    let hash = c
        .passwords()
        .hash(&f.new)
        .await
        .map_err(|e| error_page(&c, Some(&s), &e))?;
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
    match done {
        Ok(token) => Ok((
            [(
                header::SET_COOKIE,
                session_cookie(&c, &headers, &token, None),
            )],
            Redirect::to("/queue?done=password"),
        )
            .into_response()),
        Err(e) => Err(error_page(&c, Some(&s), &e.into())),
    }
}

/// The account page: API tokens, log out everywhere.
pub async fn account(State(c): State<Console>, headers: HeaderMap, uri: Uri) -> Page {
    let s = session(&c, &headers, &uri).await?;
    account_page(&c, &s, None).await
}

async fn account_page(c: &Console, s: &SessionRow, new_token: Option<String>) -> Page {
    let tokens = c
        .store()
        .api_tokens_of(s.operator.id)
        .await
        .map_err(|e| error_page(c, Some(s), &e.into()))?;
    let ctx = context! { me => me(s), csrf => s.csrf, tokens, new_token };
    c.render("account.html", ctx)
        .map(|b| html(StatusCode::OK, b))
        .map_err(|e| error_page(c, Some(s), &e))
}

/// The new-token form.
#[derive(Debug, Deserialize)]
pub struct TokenForm {
    csrf: String,
    name: Option<String>,
    id: Option<String>,
}

/// Creates an API token and shows it once.
pub async fn create_token(
    State(c): State<Console>,
    headers: HeaderMap,
    uri: Uri,
    Form(f): Form<TokenForm>,
) -> Page {
    let s = session(&c, &headers, &uri).await?;
    check_post(&c, &s, &headers, &f.csrf)?;
    let (token, hash) = auth::new_api_token();
    let name = f
        .name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .unwrap_or("token");
    let name: String = name.chars().take(80).collect();
    c.store()
        .add_api_token(
            &hash,
            s.operator.id,
            &name,
            auth::token_expiry(c.web().api_token_days),
        )
        .await
        .map_err(|e| error_page(&c, Some(&s), &e.into()))?;
    account_page(&c, &s, Some(token)).await
}

/// Revokes an API token.
pub async fn revoke_token(
    State(c): State<Console>,
    headers: HeaderMap,
    uri: Uri,
    Form(f): Form<TokenForm>,
) -> Page {
    let s = session(&c, &headers, &uri).await?;
    check_post(&c, &s, &headers, &f.csrf)?;
    c.store()
        .revoke_api_token(s.operator.id, f.id.as_deref().unwrap_or(""))
        .await
        .map_err(|e| error_page(&c, Some(&s), &e.into()))?;
    Ok(Redirect::to("/account").into_response())
}

/// Queue filters from the query string.
#[derive(Debug, Deserialize, Default, Clone)]
pub struct QueueParams {
    /// A state name, `open`, or `all`.
    pub state: Option<String>,
    /// `soon` (within 3 working days) or `overdue`.
    pub due: Option<String>,
    /// ID number, phone, email or reference.
    pub q: Option<String>,
    /// Page number from 1.
    pub page: Option<i64>,
    /// Rows per page (API).
    pub limit: Option<i64>,
    /// Keyset paging: `DUE_DATE.RECEIVED_MS.ID` of the last row seen
    /// (the "next page" link; cheap however deep).
    pub after: Option<String>,
    /// A message after an action.
    pub done: Option<String>,
    /// Its request.
    #[serde(rename = "ref")]
    pub reference: Option<String>,
}

/// Reads the operator's search words.
pub fn parse_search(q: &str) -> Option<Search> {
    let q = q.trim();
    if q.is_empty() {
        return None;
    }
    if q.contains('@') {
        return Some(Search::Email(q.to_lowercase()));
    }
    if q.to_ascii_uppercase().starts_with("HTK-") {
        return Some(Search::Reference(q.to_ascii_uppercase()));
    }
    let digits: String = q.chars().filter(char::is_ascii_digit).collect();
    if q.starts_with('+') || (digits.len() == 10 && digits.starts_with('0')) {
        if let Ok(p) = Phone::parse(q) {
            return Some(Search::Phone(p.as_str().to_owned()));
        }
    }
    Some(Search::IdNumber(digits))
}

/// Turns query parameters into a queue filter.
pub fn queue_filter(c: &Console, p: &QueueParams) -> Result<QueueFilter, WebError> {
    let (state, open_only) = match p.state.as_deref().unwrap_or("pending_review") {
        "" | "all" => (None, false),
        "open" => (None, true),
        s => (
            Some(RequestState::parse(s).map_err(|e| WebError::BadRequest(e.to_string()))?),
            false,
        ),
    };
    let today = c.desk().clock.today();
    let (due_by, open_only) = match p.due.as_deref() {
        Some("soon") => (
            Some(c.desk().calendar.add_working_days(today, 3).to_string()),
            true,
        ),
        Some("overdue") => (Some((today - chrono::Days::new(1)).to_string()), true),
        None | Some("") => (None, open_only),
        Some(other) => {
            return Err(WebError::BadRequest(format!(
                "due={other:?}: soon or overdue"
            )))
        }
    };
    let limit = p
        .limit
        .unwrap_or(i64::from(c.web().page_size))
        .clamp(1, 500);
    let page = p.page.unwrap_or(1).clamp(1, 1_000_000);
    let after = match p.after.as_deref().filter(|a| !a.is_empty()) {
        None => None,
        Some(a) => {
            // `YYYY-MM-DD.MS.ID` as `next_after` writes it (the OpenAPI
            // pattern): the date is compared as text, so its shape is enough.
            let mut it = a.splitn(3, '.');
            let digits = |s: &str, n: std::ops::RangeInclusive<usize>| {
                n.contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
            };
            let parsed = (|| {
                let d = it.next()?;
                let shape: Vec<&str> = d.split('-').collect();
                let date_ok = shape.len() == 3
                    && digits(shape[0], 4..=4)
                    && digits(shape[1], 2..=2)
                    && digits(shape[2], 2..=2);
                let (ms, id) = (it.next()?, it.next()?);
                (date_ok && digits(ms, 1..=18) && digits(id, 1..=18)).then_some(())?;
                Some((d.to_owned(), ms.parse().ok()?, id.parse().ok()?))
            })();
            Some(parsed.ok_or_else(|| WebError::BadRequest(format!("after={a:?}")))?)
        }
    };
    Ok(QueueFilter {
        after,
        state,
        due_by,
        open_only,
        search: p.q.as_deref().and_then(parse_search),
        limit,
        offset: (page - 1) * limit,
    })
}

/// One queue row as shown.
#[derive(Debug, serde::Serialize)]
pub struct QueueRow {
    /// The request.
    #[serde(flatten)]
    pub request: crate::store::RequestRow,
    /// Working days left.
    pub working_days_left: i64,
    /// Who holds it.
    pub holder: Option<String>,
}

/// A page of the queue as pages and API show it.
pub struct QueuePage {
    /// The rows.
    pub rows: Vec<QueueRow>,
    /// How many match (capped).
    pub total: i64,
    /// The `after` of the next page, if there is one.
    pub next_after: Option<String>,
}

/// Reads a page of the queue with each row's working days left and holder.
pub async fn queue_page(c: &Console, f: &QueueFilter) -> Result<QueuePage, WebError> {
    let (rows, total) = c.store().queue(f).await?;
    let now = now_ms();
    let rows: Vec<QueueRow> = rows
        .into_iter()
        .map(|r| QueueRow {
            working_days_left: views::days_left(c.desk(), &r.due_date),
            holder: r.holder(now).map(str::to_owned),
            request: r,
        })
        .collect();
    let next_after = if rows.len() as i64 == f.limit {
        rows.last().map(|r| {
            format!(
                "{}.{}.{}",
                r.request.due_date, r.request.received_at, r.request.id
            )
        })
    } else {
        None
    };
    Ok(QueuePage {
        rows,
        total,
        next_after,
    })
}

/// The queue page.
pub async fn queue(
    State(c): State<Console>,
    headers: HeaderMap,
    uri: Uri,
    Query(p): Query<QueueParams>,
) -> Page {
    let s = session(&c, &headers, &uri).await?;
    let f = queue_filter(&c, &p).map_err(|e| error_page(&c, Some(&s), &e))?;
    let QueuePage {
        rows,
        total,
        next_after,
    } = queue_page(&c, &f)
        .await
        .map_err(|e| error_page(&c, Some(&s), &e))?;
    let first_page = f.after.is_none() && f.offset == 0;
    let states: Vec<(&str, &str)> = ALL_STATES
        .iter()
        .map(|s| (s.as_str(), super::state_label(s.as_str())))
        .collect();
    let ctx = context! {
        me => me(&s), csrf => s.csrf, rows, total, next_after, first_page,
        more_than => (total > crate::store::COUNT_CAP).then_some(crate::store::COUNT_CAP),
        state => p.state.clone().unwrap_or_else(|| "pending_review".into()),
        due => p.due.clone().unwrap_or_default(), q => p.q.clone().unwrap_or_default(),
        states, done => p.done, done_ref => p.reference,
    };
    c.render("queue.html", ctx)
        .map(|b| html(StatusCode::OK, b))
        .map_err(|e| error_page(&c, Some(&s), &e))
}

/// Query of the hotline page.
#[derive(Debug, Deserialize, Default)]
pub struct HotlineQuery {
    /// ID number or phone.
    pub q: Option<String>,
    /// A message after an action.
    pub done: Option<String>,
    /// Its request.
    #[serde(rename = "ref")]
    pub reference: Option<String>,
}

/// The hotline page: find by ID number or phone; stop or confirm.
pub async fn hotline(
    State(c): State<Console>,
    headers: HeaderMap,
    uri: Uri,
    Query(h): Query<HotlineQuery>,
) -> Page {
    let s = session(&c, &headers, &uri).await?;
    let q = h.q.clone().unwrap_or_default();
    let rows = if q.trim().is_empty() {
        Vec::new()
    } else {
        let f = QueueFilter {
            search: parse_search(&q),
            limit: 50,
            ..QueueFilter::default()
        };
        let (rows, _) = c
            .store()
            .queue(&f)
            .await
            .map_err(|e| error_page(&c, Some(&s), &e.into()))?;
        rows
    };
    let ctx =
        context! { me => me(&s), csrf => s.csrf, q, rows, done => h.done, done_ref => h.reference };
    c.render("hotline.html", ctx)
        .map(|b| html(StatusCode::OK, b))
        .map_err(|e| error_page(&c, Some(&s), &e))
}

/// Dashboard numbers.
#[derive(Debug, serde::Serialize)]
pub struct Dashboard {
    /// Requests per state.
    pub by_state: Vec<(String, i64)>,
    /// Open requests due within 3 working days.
    pub due_soon: i64,
    /// Open requests past their due date.
    pub overdue: i64,
    /// Messages that failed processing.
    pub failed_messages: i64,
    /// Mails that failed for good.
    pub failed_mails: i64,
    /// Side effects (account calls, SMS, mails) failing and being retried.
    pub retrying: Vec<(String, i64)>,
    /// Requests with the warning `sender_unauthenticated`.
    pub sender_unauthenticated: i64,
    /// Requests with a follow-up failing where the first mail passed.
    pub followup_unauthenticated: i64,
}

/// Reads the dashboard numbers.
pub async fn dashboard_numbers(c: &Console) -> Result<Dashboard, WebError> {
    let store = c.store();
    let counts = store.group_counts("requests", "state").await?;
    let by_state = ALL_STATES
        .iter()
        .map(|s| {
            let n = counts
                .iter()
                .find(|(k, _)| k == s.as_str())
                .map_or(0, |(_, n)| *n);
            (s.as_str().to_owned(), n)
        })
        .collect();
    let today = c.desk().clock.today();
    let soon = c.desk().calendar.add_working_days(today, 3);
    let (due_soon, overdue) = store
        .due_counts(&soon.to_string(), &today.to_string())
        .await?;
    Ok(Dashboard {
        by_state,
        due_soon,
        overdue,
        failed_messages: store.count("raw_messages", "status = 'failed'").await?,
        failed_mails: store
            .count("outbox", "kind = 'email' AND state = 'failed'")
            .await?,
        retrying: store.retrying_jobs().await?,
        sender_unauthenticated: store
            .count("requests", "warnings LIKE '%sender_unauthenticated%'")
            .await?,
        followup_unauthenticated: store
            .count("requests", "warnings LIKE '%followup_unauthenticated%'")
            .await?,
    })
}

/// The dashboard page.
pub async fn dashboard(State(c): State<Console>, headers: HeaderMap, uri: Uri) -> Page {
    let s = session(&c, &headers, &uri).await?;
    let d = dashboard_numbers(&c)
        .await
        .map_err(|e| error_page(&c, Some(&s), &e))?;
    let ctx = context! { me => me(&s), csrf => s.csrf, d };
    c.render("dashboard.html", ctx)
        .map(|b| html(StatusCode::OK, b))
        .map_err(|e| error_page(&c, Some(&s), &e))
}

/// Query of the request page.
#[derive(Debug, Deserialize, Default)]
pub struct RequestQuery {
    done: Option<String>,
}

/// The request page.
pub async fn request(
    State(c): State<Console>,
    headers: HeaderMap,
    uri: Uri,
    Path(reference): Path<String>,
    Query(q): Query<RequestQuery>,
) -> Page {
    let s = session(&c, &headers, &uri).await?;
    request_page(&c, &s, &reference, q.done.as_deref(), None, StatusCode::OK).await
}

async fn request_page(
    c: &Console,
    s: &SessionRow,
    reference: &str,
    done: Option<&str>,
    refusal: Option<(&str, String)>,
    status: StatusCode,
) -> Page {
    let fail = |e: WebError| error_page(c, Some(s), &e);
    let r = c
        .store()
        .request_by_reference(reference)
        .await
        .map_err(|e| fail(e.into()))?
        .ok_or_else(|| fail(WebError::NotFound))?;
    let mut view = request_view(c.desk(), r)
        .await
        .map_err(|e| fail(e.into()))?;
    // The page shows the mail thread: the look is recorded first, and the
    // history below shows it.
    super::audit::record_thread_view(c, s.operator.login.as_str(), &view)
        .await
        .map_err(fail)?;
    view.history = c
        .store()
        .audit_for(view.request.id)
        .await
        .map_err(|e| fail(e.into()))?;
    let reasons: Vec<(String, String)> = c.desk().templates.reject_reasons().to_vec();
    let mine = view.holder.as_deref() == Some(s.operator.login.as_str());
    let (refusal_code, refusal_detail) = refusal.unzip();
    let ctx = context! {
        me => me(s), csrf => s.csrf, v => view, reasons, mine, done,
        refusal => refusal_code, refusal_detail,
        four_eyes => c.four_eyes(),
    };
    c.render("request.html", ctx)
        .map(|b| html(status, b))
        .map_err(|e| error_page(c, Some(s), &e))
}

/// A decision form.
#[derive(Debug, Deserialize, Default)]
pub struct ActForm {
    csrf: String,
    version: Option<i64>,
    account: Option<String>,
    reason: Option<String>,
    message: Option<String>,
    text: Option<String>,
}

/// Claim, release, approve, reject, ask, note, take over.
pub async fn act(
    State(c): State<Console>,
    headers: HeaderMap,
    uri: Uri,
    Path((reference, action)): Path<(String, String)>,
    Form(f): Form<ActForm>,
) -> Page {
    let s = session(&c, &headers, &uri).await?;
    check_post(&c, &s, &headers, &f.csrf)?;
    let fail = |e: WebError| error_page(&c, Some(&s), &e);
    let r = c
        .store()
        .request_by_reference(&reference)
        .await
        .map_err(|e| fail(e.into()))?
        .ok_or_else(|| fail(WebError::NotFound))?;
    let result = perform(
        &c,
        &s.operator,
        r.id,
        &action,
        ActInput {
            version: f.version.unwrap_or(-1),
            account: f.account.unwrap_or_default(),
            reason: f.reason.unwrap_or_default(),
            message: f.message.unwrap_or_default(),
            text: f.text.unwrap_or_default(),
        },
    )
    .await;
    match result {
        Ok(Done::Decided(Decided::Moved { .. }))
            if action == "object" || action == "confirm-delete" =>
        {
            Ok(Redirect::to(&format!(
                "/hotline?done={action}&ref={}",
                urlencode(&r.reference)
            ))
            .into_response())
        }
        Ok(Done::Decided(Decided::Moved { .. })) => Ok(Redirect::to(&format!(
            "/queue?done={action}&ref={}",
            urlencode(&r.reference)
        ))
        .into_response()),
        Ok(_) => Ok(Redirect::to(&format!(
            "/requests/{}?done={action}",
            urlencode(&r.reference)
        ))
        .into_response()),
        Err(WebError::Workflow(WorkflowError::Refused(refusal))) => {
            let status = WebError::Workflow(WorkflowError::Refused(refusal.clone())).status();
            if status == StatusCode::FORBIDDEN {
                return Err(fail(WebError::Forbidden));
            }
            request_page(
                &c,
                &s,
                &r.reference,
                None,
                Some((refusal.code(), refusal.to_string())),
                status,
            )
            .await
        }
        Err(e) => Err(fail(e)),
    }
}

/// The inputs of an action, from a form or JSON.
#[derive(Debug, Default, Clone)]
pub struct ActInput {
    /// The version the operator saw.
    pub version: i64,
    /// Approve: the account.
    pub account: String,
    /// Reject: the reason text.
    pub reason: String,
    /// Ask: the message.
    pub message: String,
    /// Note: the text.
    pub text: String,
}

/// What an action did.
#[derive(Debug, serde::Serialize)]
#[serde(untagged)]
pub enum Done {
    /// A decision.
    Decided(Decided),
    /// Claimed or released.
    Claim {
        /// `claimed` or `released`.
        claim: &'static str,
    },
}

/// Performs an action for an operator (pages and API share this).
pub async fn perform(
    c: &Console,
    who: &crate::store::OperatorRow,
    id: i64,
    action: &str,
    a: ActInput,
) -> Result<Done, WebError> {
    let decision = match action {
        "claim" => {
            c.desk().claim(who, id, false).await?;
            return Ok(Done::Claim { claim: "claimed" });
        }
        "take-over" => {
            c.desk().claim(who, id, true).await?;
            return Ok(Done::Claim { claim: "claimed" });
        }
        "release" => {
            // Only its holder releases a claim (a supervisor takes over).
            if !c.store().release_request(id, who.login.as_str()).await? {
                let holder = c
                    .store()
                    .request(id)
                    .await?
                    .and_then(|r| r.holder(now_ms()).map(str::to_owned));
                return Err(match holder {
                    Some(h) => WorkflowError::from(crate::workflow::Refusal::HeldBy(h)).into(),
                    None => WorkflowError::from(crate::workflow::Refusal::NotHeld).into(),
                });
            }
            return Ok(Done::Claim { claim: "released" });
        }
        "approve" => Decision::Approve { account: a.account },
        "confirm-holder-risk" => Decision::ConfirmHolderRisk { account: a.account },
        "reject" => Decision::Reject { reason: a.reason },
        "ask" => Decision::Ask { message: a.message },
        "note" => Decision::Note { text: a.text },
        // Hotline: the holder calls within the window.
        "object" => {
            let d = c.desk().hotline_object(who, id, &a.text).await?;
            tracing::info!(operator = %who.login, request = id, "hotline: the holder objected");
            return Ok(Done::Decided(d));
        }
        "confirm-delete" => {
            let d = c.desk().hotline_confirm(who, id, &a.text).await?;
            tracing::info!(operator = %who.login, request = id, "hotline: the holder confirmed");
            return Ok(Done::Decided(d));
        }
        _ => return Err(WebError::NotFound),
    };
    let d = c
        .desk()
        .decide(who, id, a.version, decision, c.four_eyes())
        .await?;
    tracing::info!(operator = %who.login, request = id, action, outcome = ?d, "decision");
    Ok(Done::Decided(d))
}

/// A photo of a request, re-encoded.
pub async fn photo(
    State(c): State<Console>,
    headers: HeaderMap,
    uri: Uri,
    Path((reference, sha)): Path<(String, String)>,
) -> Page {
    let s = session(&c, &headers, &uri).await?;
    photo_response(&c, s.operator.login.as_str(), &reference, &sha)
        .await
        .map_err(|e| error_page(&c, Some(&s), &e))
}

/// Finds a request's photo and serves it re-encoded as JPEG; the view is
/// in the audit log (as `who`) before a byte of it is sent, whether the
/// photo was decoded now or came from the cache.
pub async fn photo_response(
    c: &Console,
    who: &str,
    reference: &str,
    sha: &str,
) -> Result<Response, WebError> {
    if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(WebError::NotFound);
    }
    let r = c
        .store()
        .request_by_reference(reference)
        .await?
        .ok_or(WebError::NotFound)?;
    let photos = c.store().photos_of(r.id).await?;
    let p = photos
        .iter()
        .find(|p| p.sha256 == sha)
        .ok_or(WebError::NotFound)?;
    let message = p.message.clone();
    let key = sha.to_owned();
    let wanted = key.clone();
    let jpeg = c
        .photos()
        .get(&key, || async move {
            let raw = c.store().raw(&message).await?.ok_or(WebError::NotFound)?;
            // Finding the part means parsing the mail: off the runtime.
            tokio::task::spawn_blocking(move || -> Result<Vec<u8>, WebError> {
                use sha2::Digest;
                let msg = crate::intake::mime::parse(&raw).ok_or(WebError::NotFound)?;
                let mail = crate::intake::mime::read(&msg);
                mail.parts
                    .iter()
                    .find(|p| hex::encode(sha2::Sha256::digest(p.bytes)) == wanted)
                    .map(|p| p.bytes.to_vec())
                    .ok_or(WebError::NotFound)
            })
            .await
            .map_err(|e| WebError::BadRequest(e.to_string()))?
        })
        .await?;
    super::audit::record_photo_view(c, who, r.id, sha).await?;
    let jpeg = jpeg.as_ref().clone();
    Ok((
        [
            (header::CONTENT_TYPE, "image/jpeg"),
            (
                header::CONTENT_DISPOSITION,
                "inline; filename=\"photo.jpg\"",
            ),
            // ID card photos never rest in a browser's disk cache.
            (header::CACHE_CONTROL, "no-store"),
        ],
        jpeg,
    )
        .into_response())
}

/// The operators page (admins).
pub async fn operators(State(c): State<Console>, headers: HeaderMap, uri: Uri) -> Page {
    let s = session(&c, &headers, &uri).await?;
    if !s.operator.role.allows(Role::Admin) {
        return Err(error_page(&c, Some(&s), &WebError::Forbidden));
    }
    operators_page(&c, &s, None, None).await
}

async fn operators_page(
    c: &Console,
    s: &SessionRow,
    done: Option<(String, String)>,
    error: Option<String>,
) -> Page {
    let list = c
        .store()
        .operators()
        .await
        .map_err(|e| error_page(c, Some(s), &e.into()))?;
    let (done_login, one_time) = done.unzip();
    let ctx =
        context! { me => me(s), csrf => s.csrf, operators => list, done_login, one_time, error };
    c.render("operators.html", ctx)
        .map(|b| html(StatusCode::OK, b))
        .map_err(|e| error_page(c, Some(s), &e))
}

/// The operators form: add, disable, enable, reset a password.
#[derive(Debug, Deserialize)]
pub struct OperatorForm {
    csrf: String,
    action: String,
    login: String,
    name: Option<String>,
    role: Option<String>,
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
pub async fn manage_operator(
    State(c): State<Console>,
    headers: HeaderMap,
    uri: Uri,
    Form(f): Form<OperatorForm>,
) -> Page {
    let s = session(&c, &headers, &uri).await?;
    check_post(&c, &s, &headers, &f.csrf)?;
    match operator_action(
        &c,
        &s.operator,
        &f.action,
        &f.login,
        f.name.as_deref(),
        f.role.as_deref(),
    )
    .await
    {
        Ok(one_time) => {
            operators_page(
                &c,
                &s,
                one_time.map(|p| (f.login.trim().to_lowercase(), p)),
                None,
            )
            .await
        }
        Err(WebError::BadRequest(m) | WebError::Conflict(_, m)) => {
            operators_page(&c, &s, None, Some(m)).await
        }
        Err(e) => Err(error_page(&c, Some(&s), &e)),
    }
}
