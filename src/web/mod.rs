//! The operator console and its JSON API, on axum: server-rendered pages
//! from `templates/web/`, sessions in the database, CSRF tokens on every
//! form, a strict Content-Security-Policy, and `/api/v1` with bearer tokens.
//! Also `/healthz`, `/readyz` and `/metrics` (Prometheus).
//!
//! Every byte of a request was written by a stranger: the page templates
//! escape everything they print (minijinja's HTML auto-escaping), photos are
//! re-encoded before they are served, and the CSP forbids inline script.

pub mod api;
pub mod audit;
pub mod auth;
pub mod charts;
pub mod labels;
pub mod locks;
pub mod pages;
pub mod photos;
pub mod serve;
pub mod views;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use minijinja::Environment;
use std::path::Path;
use std::sync::Arc;

use crate::config::WebConfig;
use crate::domain::time::now_ms;
use crate::store::{OperatorRow, SessionRow, Store, StoreError};
use crate::workflow::{Desk, WorkflowError};

/// The page templates, read at start-up.
pub const PAGES: [&str; 13] = [
    "base.html",
    "login.html",
    "queue.html",
    "request.html",
    "dashboard.html",
    "audit.html",
    "account.html",
    "error.html",
    "password.html",
    "hotline.html",
    "operators.html",
    "sender_auth.html",
    "audit_detail.html",
];

/// What the web layer can fail with.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// The database.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The workflow (including a refused decision).
    #[error(transparent)]
    Workflow(#[from] WorkflowError),
    /// A page template.
    #[error("page template {0}: {1}")]
    Template(String, minijinja::Error),
    /// A template file could not be read.
    #[error("reading {0}: {1}")]
    Read(String, std::io::Error),
    /// The table of labels (`templates/web/labels.toml`).
    #[error(transparent)]
    Labels(#[from] labels::LabelsError),
    /// Not found.
    #[error("not found")]
    NotFound,
    /// Not allowed for this role.
    #[error("your role does not allow this")]
    Forbidden,
    /// Bad input from the client.
    #[error("{0}")]
    BadRequest(String),
    /// Well-formed, but the desk's state refuses it (409): a stable code
    /// and the text an operator reads.
    #[error("{1}")]
    Conflict(&'static str, String),
}

impl From<photos::PhotoServeError> for WebError {
    fn from(e: photos::PhotoServeError) -> WebError {
        WebError::BadRequest(e.to_string())
    }
}

impl WebError {
    /// The stable code the API answers and the error page is chosen by.
    pub fn code(&self) -> &'static str {
        match self {
            WebError::Workflow(WorkflowError::Refused(r)) => r.code(),
            WebError::Workflow(WorkflowError::Accounts(_)) => "accounts_unavailable",
            WebError::NotFound => "not_found",
            WebError::Forbidden => "forbidden",
            WebError::BadRequest(_) => "bad_request",
            WebError::Conflict(code, _) => code,
            _ => "internal",
        }
    }

    /// The HTTP status for this error.
    pub fn status(&self) -> StatusCode {
        use crate::workflow::Refusal;
        match self {
            WebError::NotFound => StatusCode::NOT_FOUND,
            WebError::Forbidden => StatusCode::FORBIDDEN,
            WebError::BadRequest(_) => StatusCode::BAD_REQUEST,
            WebError::Conflict(..) => StatusCode::CONFLICT,
            WebError::Workflow(WorkflowError::Refused(r)) => match r {
                Refusal::NotFound => StatusCode::NOT_FOUND,
                Refusal::Forbidden(_) => StatusCode::FORBIDDEN,
                Refusal::BadText(_) => StatusCode::UNPROCESSABLE_ENTITY,
                _ => StatusCode::CONFLICT,
            },
            // The directory or the portal did not answer: nothing changed,
            // and the same decision can be made again in a moment.
            WebError::Workflow(WorkflowError::Accounts(_)) => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// Everything the handlers share.
#[derive(Clone)]
pub struct Console {
    inner: Arc<Inner>,
}

struct Inner {
    desk: Desk,
    pages: Environment<'static>,
    labels: Arc<labels::Labels>,
    css: String,
    js: String,
    web: WebConfig,
    four_eyes: bool,
    dlr_secret: String,
    passwords: locks::PasswordPool,
    photos: photos::PhotoCache,
    /// `/api/v1/openapi.json` as served: docs/openapi.json with the desk's
    /// reject reason codes.
    openapi: String,
}

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "huytk_session";

/// The Content-Security-Policy of every response: our own script and style
/// files only, no inline code, no framing, forms post only to us.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

impl Console {
    /// Loads the page templates from `templates/web` and checks they parse.
    /// `dlr_secret` authenticates the SMS gateway's delivery reports.
    pub fn new(desk: Desk, web: WebConfig, dlr_secret: String) -> Result<Console, WebError> {
        let dir = desk.templates.dir().join("web");
        let mut env = Environment::new();
        for name in PAGES {
            let path = dir.join(name);
            let text = std::fs::read_to_string(&path)
                .map_err(|e| WebError::Read(path.display().to_string(), e))?;
            env.add_template_owned(name, text)
                .map_err(|e| WebError::Template(name.to_owned(), e))?;
        }
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
        // A misspelt or unsupplied variable is an error, not a blank on a
        // page (the console's tests render every page).
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        env.add_filter("when", crate::domain::time::format_ms);
        let labels = Arc::new(labels::Labels::load(desk.templates.dir(), &desk.templates)?);
        labels.clone().install(&mut env);
        let read = |name: &str| -> Result<String, WebError> {
            let p = dir.join("static").join(name);
            std::fs::read_to_string(&p).map_err(|e| WebError::Read(p.display().to_string(), e))
        };
        let (css, js) = (read("console.css")?, read("console.js")?);
        let four_eyes = desk.config.four_eyes;
        let openapi = api::served_openapi(desk.templates.reject_reasons());
        Ok(Console {
            inner: Arc::new(Inner {
                passwords: locks::PasswordPool::new(web.password_checks),
                photos: photos::PhotoCache::new(web.photo_cache_mb << 20, web.photo_decodes),
                desk,
                pages: env,
                labels,
                css,
                js,
                web,
                four_eyes,
                dlr_secret,
                openapi,
            }),
        })
    }

    /// The desk.
    pub fn desk(&self) -> &Desk {
        &self.inner.desk
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.inner.desk.store
    }

    /// What an operator reads for each stored code.
    pub fn labels(&self) -> &labels::Labels {
        &self.inner.labels
    }

    /// Web settings.
    pub fn web(&self) -> &WebConfig {
        &self.inner.web
    }

    /// The API's OpenAPI document as served.
    pub fn openapi(&self) -> &str {
        &self.inner.openapi
    }

    /// The secret of SMS delivery reports.
    pub fn sms_dlr_secret(&self) -> String {
        self.inner.dlr_secret.clone()
    }

    /// Where passwords are checked and hashed.
    pub fn passwords(&self) -> &locks::PasswordPool {
        &self.inner.passwords
    }

    /// Re-encoded photos, and the gate on decoding them.
    pub fn photos(&self) -> &photos::PhotoCache {
        &self.inner.photos
    }

    /// Whether approvals need two operators.
    pub fn four_eyes(&self) -> bool {
        self.inner.four_eyes
    }

    /// Renders a page.
    pub fn render(&self, name: &str, ctx: minijinja::Value) -> Result<String, WebError> {
        self.inner
            .pages
            .get_template(name)
            .and_then(|t| t.render(ctx))
            .map_err(|e| WebError::Template(name.to_owned(), e))
    }

    /// The session named by the request's cookie, if live. Touches it at
    /// most once a minute (one write per operator-minute, not per click).
    pub async fn session(&self, headers: &HeaderMap) -> Result<Option<SessionRow>, WebError> {
        let Some(token) = cookie(headers, SESSION_COOKIE) else {
            return Ok(None);
        };
        let hash = auth::secret_hash(&token);
        let idle = self.inner.web.idle_minutes.max(1) as i64 * 60_000;
        let life = self.inner.web.session_hours.max(1) as i64 * 3_600_000;
        let s = self
            .store()
            .session(&hash, now_ms() - idle, now_ms() - life)
            .await?;
        if let Some(s) = &s {
            if now_ms() - s.last_seen > 60_000 {
                self.store().touch_session(&hash).await?;
            }
        }
        Ok(s)
    }

    /// The operator an `Authorization: Bearer` token belongs to.
    pub async fn bearer(&self, headers: &HeaderMap) -> Result<Option<OperatorRow>, WebError> {
        let Some(v) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
        else {
            return Ok(None);
        };
        let Some(token) = v
            .strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))
        else {
            return Ok(None);
        };
        Ok(self
            .store()
            .api_token_operator(&auth::secret_hash(token.trim()))
            .await?)
    }
}

/// A cookie's value from the request headers.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// The routes: console pages, `/api/v1`, health and metrics.
pub fn router(console: Console) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/static/console.css", get(css))
        .route("/static/console.js", get(js))
        .route("/", get(pages::home))
        .route("/login", get(pages::login_page).post(pages::login))
        .route("/logout", post(pages::logout))
        .route("/logout-everywhere", post(pages::logout_everywhere))
        .route("/password", get(pages::password_page).post(pages::password))
        .route("/account", get(pages::account))
        .route(
            "/operators",
            get(pages::operators).post(pages::manage_operator),
        )
        .route("/account/tokens", post(pages::create_token))
        .route("/account/tokens/revoke", post(pages::revoke_token))
        .route("/queue", get(pages::queue))
        .route("/dashboard", get(pages::dashboard))
        .route("/dashboard/{file}", get(pages::dashboard_csv))
        .route("/hotline", get(pages::hotline))
        .route("/audit", get(audit::audit))
        .route("/audit.csv", get(audit::audit_csv))
        .route("/requests/{reference}", get(pages::request))
        .route("/requests/{reference}/photos/{sha}", get(pages::photo))
        .route("/requests/{reference}/{action}", post(pages::act))
        .nest("/api/v1", api::routes())
        .layer(axum::middleware::from_fn(security_headers))
        .with_state(console)
}

/// Headers on every response: CSP, no sniffing, no framing, no referrer
/// to other sites,
/// and no caching of pages and API answers (they carry personal data).
async fn security_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        // not no-referrer: with it, browsers send `Origin: null` on our own
        // form posts, and the same-origin check could not tell them apart.
        HeaderValue::from_static("same-origin"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}

async fn css(State(c): State<Console>) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        c.inner.css.clone(),
    )
        .into_response()
}

async fn js(State(c): State<Console>) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        c.inner.js.clone(),
    )
        .into_response()
}

async fn readyz(State(c): State<Console>) -> impl IntoResponse {
    match c.store().ping().await {
        Ok(()) => (StatusCode::OK, "ready\n".to_owned()),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("database: {e}\n")),
    }
}

async fn metrics(State(c): State<Console>) -> impl IntoResponse {
    let ct = [(header::CONTENT_TYPE, "text/plain; version=0.0.4")];
    match render_metrics(c.store()).await {
        Ok(text) => (StatusCode::OK, ct, text),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            ct,
            format!("# database: {e}\n"),
        ),
    }
}

/// The Prometheus exposition of the desk's counts.
pub async fn render_metrics(store: &Store) -> Result<String, StoreError> {
    let mut out = String::new();
    out.push_str("# HELP huytk_requests Requests by state.\n# TYPE huytk_requests gauge\n");
    for (state, n) in store.group_counts("requests", "state").await? {
        out.push_str(&format!("huytk_requests{{state=\"{state}\"}} {n}\n"));
    }
    out.push_str("# HELP huytk_messages Stored messages by processing status.\n# TYPE huytk_messages gauge\n");
    for (status, n) in store.group_counts("raw_messages", "status").await? {
        out.push_str(&format!("huytk_messages{{status=\"{status}\"}} {n}\n"));
    }
    let outbox = store.outbox_counts().await?;
    for (metric, kind, help) in [
        ("huytk_mails", "email", "Outgoing mails by delivery state."),
        (
            "huytk_sms",
            "sms",
            "Holder SMS by state (sent = accepted by the gateway).",
        ),
        (
            "huytk_account_locks",
            "account_lock",
            "Account lock calls by state.",
        ),
        (
            "huytk_account_unlocks",
            "account_unlock",
            "Account unlock calls by state.",
        ),
        (
            "huytk_account_deletions",
            "account_delete",
            "Account deletions by state.",
        ),
    ] {
        out.push_str(&format!("# HELP {metric} {help}\n# TYPE {metric} gauge\n"));
        for (k, state, n) in &outbox {
            if k == kind {
                out.push_str(&format!("{metric}{{state=\"{state}\"}} {n}\n"));
            }
        }
    }
    let retrying: i64 = store.retrying_jobs().await?.iter().map(|(_, n)| n).sum();
    out.push_str("# HELP huytk_retrying Side effects that failed at least once and are being retried.\n# TYPE huytk_retrying gauge\n");
    out.push_str(&format!("huytk_retrying {retrying}\n"));
    let (secs, n) = crate::workflow::inspection_totals();
    out.push_str("# HELP huytk_inspection_seconds Time this process spent inspecting messages.\n# TYPE huytk_inspection_seconds summary\n");
    out.push_str(&format!(
        "huytk_inspection_seconds_sum {secs:.6}\nhuytk_inspection_seconds_count {n}\n"
    ));
    out.push_str("# HELP huytk_inspection_timeouts_total Messages given up for running over the inspection time budget.\n# TYPE huytk_inspection_timeouts_total counter\n");
    out.push_str(&format!(
        "huytk_inspection_timeouts_total {}\n",
        crate::workflow::inspection_timeouts()
    ));
    let today = crate::domain::time::Clock::system().today().to_string();
    let (_, overdue) = store.due_counts(&today, &today).await?;
    out.push_str("# HELP huytk_overdue_requests Open requests past their due date.\n# TYPE huytk_overdue_requests gauge\n");
    out.push_str(&format!("huytk_overdue_requests {overdue}\n"));
    out.push_str("# HELP huytk_inbox_reader 1 when this replica reads the inbox.\n# TYPE huytk_inbox_reader gauge\n");
    out.push_str(&format!(
        "huytk_inbox_reader {}\n",
        u8::from(crate::mailbox::reading())
    ));
    let oldest = store.oldest_open_request_ms().await?;
    out.push_str("# HELP huytk_queue_age_seconds Age of the oldest request waiting for the desk or the citizen.\n# TYPE huytk_queue_age_seconds gauge\n");
    out.push_str(&format!(
        "huytk_queue_age_seconds {}\n",
        oldest.map_or(0, |ms| (now_ms() - ms).max(0) / 1000)
    ));
    Ok(out)
}

/// Whether a templates folder has the console's pages (for `doctor`).
pub fn has_pages(templates: &Path) -> bool {
    PAGES
        .iter()
        .all(|p| templates.join("web").join(p).is_file())
}
