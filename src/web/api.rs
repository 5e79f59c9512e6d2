//! `/api/v1`: the console's reads and actions as JSON, for scripts and
//! other desks' tools. Authenticated by per-operator API tokens
//! (`Authorization: Bearer …`), never by the session cookie, so no
//! cross-site form can reach it. Roles apply exactly as in the pages.
//! The contract is `/api/v1/openapi.json` (kept in `docs/openapi.json`).

use axum::extract::{ConnectInfo, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use std::net::SocketAddr;

use super::audit::{self as audit_log, AuditParams};
use super::pages::{self, ActInput, QueueParams};
use super::views::request_view;
use super::{auth, Console, WebError};
use crate::domain::Role;
use crate::store::OperatorRow;
use crate::workflow::operators::{Actor, Operators};
use crate::workflow::{reports, WorkflowError};

/// The OpenAPI document.
pub const OPENAPI: &str = include_str!("../../docs/openapi.json");

/// The routes under `/api/v1`.
pub fn routes() -> Router<Console> {
    Router::new()
        .route("/openapi.json", get(openapi))
        .route("/login", post(login))
        .route("/me", get(me))
        .route("/requests", get(requests))
        .route("/requests/{reference}", get(request))
        .route("/requests/{reference}/photos/{sha}", get(photo))
        .route("/requests/{reference}/{action}", post(act))
        .route("/dashboard", get(dashboard))
        .route("/reports", get(reports))
        .route("/audit", get(audit))
        .route("/reject-reasons", get(reject_reasons))
        .route("/sms/dlr", get(sms_dlr))
        .route("/operators", get(list_operators).post(manage_operator))
        .fallback(|| async { error(&WebError::NotFound) })
        .layer(axum::middleware::map_response(json_errors))
}

/// Every API error is JSON (`{"error": code, "message": text}`), also the
/// ones axum's extractors answer in plain text (a body that is not JSON,
/// a wrong content type, a bad path or query): a client reads one shape.
async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let code = match status {
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::PAYLOAD_TOO_LARGE => "too_large",
        StatusCode::UNPROCESSABLE_ENTITY | StatusCode::BAD_REQUEST => "bad_request",
        s if s.is_server_error() => "internal",
        _ => "bad_request",
    };
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 4096)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let message = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_owned()
    } else {
        text
    };
    let mut out = (status, Json(json!({ "error": code, "message": message }))).into_response();
    for (k, v) in parts.headers.iter() {
        if k != header::CONTENT_TYPE && k != header::CONTENT_LENGTH {
            out.headers_mut().insert(k.clone(), v.clone());
        }
    }
    out
}

/// An API error: `{"error": code, "message": text}`.
fn error(e: &WebError) -> Response {
    let status = e.status();
    if status.is_server_error() {
        tracing::error!(error = %e, "API call failed");
    }
    let code = e.code();
    let extra = match e {
        WebError::Workflow(WorkflowError::Refused(crate::workflow::Refusal::HeldBy(h))) => {
            json!({ "holder": h })
        }
        _ => json!({}),
    };
    let message = if matches!(e, WebError::Workflow(WorkflowError::Accounts(_))) {
        "the account store did not answer; nothing changed, try again".to_owned()
    } else if status.is_server_error() {
        "internal error; see the server log".to_owned()
    } else {
        e.to_string()
    };
    let mut body = json!({ "error": code, "message": message });
    if let (Some(b), Some(x)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(x.clone());
    }
    (status, Json(body)).into_response()
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        Json(json!({ "error": "unauthorized", "message": "an API token is required: Authorization: Bearer …" })),
    )
        .into_response()
}

/// The operator an API call is made by, from its bearer token: a call
/// without a valid one is answered 401 before its handler runs.
pub struct ApiOperator(pub OperatorRow);

impl FromRequestParts<Console> for ApiOperator {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, c: &Console) -> Result<Self, Response> {
        match c.bearer(&parts.headers).await {
            Ok(Some(op)) => Ok(ApiOperator(op)),
            Ok(None) => Err(unauthorized()),
            Err(e) => Err(error(&e)),
        }
    }
}

/// docs/openapi.json with the desk's reject reason codes (templates, read
/// at start) as the enum of `RejectBody.reason_code`: the document says
/// exactly which codes this server accepts.
pub fn served_openapi(reasons: &[(String, String)]) -> String {
    let Ok(mut doc) = serde_json::from_str::<serde_json::Value>(OPENAPI) else {
        return OPENAPI.to_owned();
    };
    let codes: Vec<&str> = reasons.iter().map(|(k, _)| k.as_str()).collect();
    if let Some(slot) =
        doc.pointer_mut("/components/schemas/RejectBody/allOf/1/properties/reason_code/enum")
    {
        *slot = json!(codes);
    }
    doc.to_string()
}

async fn openapi(State(c): State<Console>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        c.openapi().to_owned(),
    )
        .into_response()
}

/// `POST /login` body.
#[derive(Debug, Deserialize)]
pub struct LoginBody {
    login: String,
    password: String,
    /// Label of the new token.
    name: Option<String>,
}

/// Exchanges a login and password for a new API token (same failure
/// limits as the login page).
async fn login(
    State(c): State<Console>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Json(b): Json<LoginBody>,
) -> Response {
    match super::locks::try_login(&c, &b.login, &b.password, &peer.ip().to_string()).await {
        Ok(super::locks::LoginResult::Ok(op)) => {
            if op.must_change {
                return (
                    StatusCode::FORBIDDEN,
                    Json(json!({ "error": "must_change_password", "message": "log in to the console once and choose a new password" })),
                )
                    .into_response();
            }
            let service = Operators::new(c.store(), c.passwords());
            let name = b.name.as_deref().unwrap_or("api login");
            let days = c.web().api_token_days;
            let actor = Actor::Operator(&op);
            match service.create_token(&actor, op.login.as_str(), Some(name), days).await {
                Ok(token) => Json(json!({ "token": token.expose(), "login": op.login, "role": op.role })).into_response(),
                Err(e) => error(&e.into()),
            }
        }
        Ok(super::locks::LoginResult::Wrong) => (
            StatusCode::UNAUTHORIZED,
            Json(json!({ "error": "wrong_login", "message": "wrong login or password" })),
        )
            .into_response(),
        Ok(super::locks::LoginResult::Blocked(m)) => (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, (m * 60).to_string())],
            Json(json!({ "error": "too_many_failures", "message": format!("too many failed logins; try again in {m} minutes") })),
        )
            .into_response(),
        Err(e) => error(&e),
    }
}

async fn me(ApiOperator(op): ApiOperator) -> Response {
    Json(op).into_response()
}

async fn requests(
    State(c): State<Console>,
    _: ApiOperator,
    Query(p): Query<QueueParams>,
) -> Response {
    let run = async {
        let f = pages::queue_filter(&c, &p)?;
        let crate::workflow::queue::QueuePage {
            rows: items,
            total,
            next_after,
        } = c.desk().queue_page(&f).await?;
        Ok::<_, WebError>(json!({
            "total": total, "total_capped": total > crate::store::COUNT_CAP,
            "page": f.offset / f.limit + 1, "limit": f.limit,
            "next_after": next_after, "items": items,
        }))
    };
    match run.await {
        Ok(v) => Json(v).into_response(),
        Err(e) => error(&e),
    }
}

async fn request(
    State(c): State<Console>,
    ApiOperator(op): ApiOperator,
    Path(reference): Path<String>,
) -> Response {
    let run = async {
        let r = c
            .store()
            .request_by_reference(&reference)
            .await?
            .ok_or(WebError::NotFound)?;
        let mut v = request_view(c.desk(), r).await?;
        // The view carries the messages' text: recorded before it is sent,
        // and in the history it returns.
        audit_log::record_thread_view(&c, op.login.as_str(), &v).await?;
        v.history = c.store().audit_for(v.request.id).await?;
        Ok::<_, WebError>(v)
    };
    match run.await {
        Ok(v) => Json(v).into_response(),
        Err(e) => error(&e),
    }
}

async fn photo(
    State(c): State<Console>,
    ApiOperator(op): ApiOperator,
    Path((reference, sha)): Path<(String, String)>,
) -> Response {
    match pages::photo_response(&c, op.login.as_str(), &reference, &sha).await {
        Ok(r) => r,
        Err(e) => error(&e),
    }
}

/// An action's JSON body.
#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct ActBody {
    version: Option<i64>,
    account: String,
    reason: String,
    /// Reject: a reason code from `/reject-reasons` instead of a text.
    reason_code: Option<String>,
    message: String,
    text: String,
}

async fn act(
    State(c): State<Console>,
    ApiOperator(op): ApiOperator,
    Path((reference, action)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    // claim, release and take-over need no body.
    let b: ActBody = if body.iter().all(u8::is_ascii_whitespace) {
        ActBody::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(b) => b,
            Err(e) => return error(&WebError::BadRequest(format!("request body: {e}"))),
        }
    };
    let run = async {
        let r = c
            .store()
            .request_by_reference(&reference)
            .await?
            .ok_or(WebError::NotFound)?;
        let reason = match &b.reason_code {
            Some(code) => c
                .desk()
                .templates
                .reject_reasons()
                .iter()
                .find(|(k, _)| k == code)
                .map(|(_, t)| t.clone())
                .ok_or_else(|| WebError::BadRequest(format!("unknown reason_code {code:?}")))?,
            None => b.reason.clone(),
        };
        let input = ActInput {
            // Without a version the API acts on the request as it is now.
            version: b.version.unwrap_or(r.version),
            account: b.account.clone(),
            reason,
            message: b.message.clone(),
            text: b.text.clone(),
        };
        let done = pages::perform(&c, &op, r.id, &action, input).await?;
        let now = c.store().request(r.id).await?.ok_or(WebError::NotFound)?;
        Ok::<_, WebError>(json!({ "result": done, "state": now.state, "version": now.version }))
    };
    match run.await {
        Ok(v) => Json(v).into_response(),
        Err(e) => error(&e),
    }
}

async fn dashboard(State(c): State<Console>, _: ApiOperator) -> Response {
    match reports::dashboard_numbers(c.desk()).await {
        Ok(d) => Json(d).into_response(),
        Err(e) => error(&e.into()),
    }
}

/// The reports behind the dashboard's charts (any operator, as the page).
async fn reports(State(c): State<Console>, _: ApiOperator) -> Response {
    match reports::reports(c.desk()).await {
        Ok(r) => Json(r).into_response(),
        Err(e) => error(&e.into()),
    }
}

async fn audit(
    State(c): State<Console>,
    ApiOperator(op): ApiOperator,
    headers: HeaderMap,
    Query(p): Query<AuditParams>,
) -> Response {
    if !op.role.allows(Role::Supervisor) {
        return error(&WebError::Forbidden);
    }
    let run = async {
        let f = audit_log::audit_filter(&p, 200)?;
        Ok::<_, WebError>(c.store().audit_lines(&f).await?)
    };
    match run.await {
        Ok(lines) => {
            if headers
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|a| a.contains("text/csv"))
            {
                audit_log::audit_csv_response(&lines)
            } else {
                Json(lines).into_response()
            }
        }
        Err(e) => error(&e),
    }
}

async fn reject_reasons(State(c): State<Console>, _: ApiOperator) -> Response {
    let v: Vec<_> = c
        .desk()
        .templates
        .reject_reasons()
        .iter()
        .map(|(code, text)| json!({ "code": code, "text": text }))
        .collect();
    Json(v).into_response()
}

/// A delivery report query (Kannel's `dlr-url`).
#[derive(Debug, Deserialize)]
pub struct DlrQuery {
    id: i64,
    key: String,
    status: i64,
}

/// Delivery reports from the SMS gateway, authenticated by the shared
/// `[sms] dlr_secret` (the gateway has no API token).
async fn sms_dlr(State(c): State<Console>, Query(q): Query<DlrQuery>) -> Response {
    let secret = &c.sms_dlr_secret();
    if secret.is_empty() || !auth::same_secret(&q.key, secret) {
        return (StatusCode::FORBIDDEN, "bad key\n").into_response();
    }
    match c.desk().sms_report(q.id, q.status).await {
        Ok(()) => (StatusCode::OK, "ok\n").into_response(),
        Err(e) => error(&e.into()),
    }
}

async fn list_operators(State(c): State<Console>, ApiOperator(op): ApiOperator) -> Response {
    let service = Operators::new(c.store(), c.passwords());
    match service.list(&Actor::Operator(&op)).await {
        Ok(list) => Json(list).into_response(),
        Err(e) => error(&e.into()),
    }
}

/// `POST /operators` body.
#[derive(Debug, Deserialize)]
pub struct OperatorBody {
    /// add, reset, disable, enable.
    action: String,
    login: String,
    name: Option<String>,
    role: Option<String>,
}

async fn manage_operator(
    State(c): State<Console>,
    ApiOperator(op): ApiOperator,
    Json(b): Json<OperatorBody>,
) -> Response {
    if b.login.trim() != b.login {
        return error(&WebError::BadRequest(
            "login: no spaces around it".to_owned(),
        ));
    }
    match pages::operator_action(
        &c,
        &op,
        &b.action,
        &b.login,
        b.name.as_deref(),
        b.role.as_deref(),
    )
    .await
    {
        Ok(one_time) => {
            Json(json!({ "login": b.login.trim().to_lowercase(), "one_time_password": one_time }))
                .into_response()
        }
        Err(e) => error(&e),
    }
}
