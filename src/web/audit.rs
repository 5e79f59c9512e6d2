//! The audit log in the console and the API: every look at a request's
//! photos or mail thread is recorded (who, when, which request, which photo
//! or messages) before it is served, also when the photo comes from the
//! cache; supervisors list, filter (operator, request, action, days) and
//! export the log as CSV.

use axum::extract::Query;
use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use minijinja::context;
use serde::Deserialize;

use super::pages::{Page, Signed};
use super::{Console, WebError};
use crate::domain::{Action, Role};
use crate::store::AuditFilter;

/// Records that `who` looked at photo `sha` of request `request_id`.
pub async fn record_photo_view(
    c: &Console,
    who: &str,
    request_id: i64,
    sha: &str,
) -> Result<(), WebError> {
    Ok(c.store()
        .record_view(who, request_id, Action::ViewedPhoto, sha)
        .await?)
}

/// Records that `who` saw the mail thread of a request: the messages shown.
pub async fn record_thread_view(
    c: &Console,
    who: &str,
    v: &super::views::RequestView,
) -> Result<(), WebError> {
    let shown: Vec<&str> = v.thread.iter().map(|m| m.sha256.as_str()).collect();
    Ok(c.store()
        .record_view(who, v.request.id, Action::ViewedThread, &shown.join(","))
        .await?)
}

/// Audit filters from the query string.
#[derive(Debug, Deserialize, Default)]
pub struct AuditParams {
    /// Who.
    pub actor: Option<String>,
    /// What.
    pub action: Option<String>,
    /// Request reference.
    #[serde(rename = "ref")]
    pub reference: Option<String>,
    /// From day, YYYY-MM-DD (Vietnam time).
    pub from: Option<String>,
    /// To day inclusive, YYYY-MM-DD.
    pub to: Option<String>,
    /// Lines before this id.
    pub before: Option<i64>,
    /// At most this many (API, CSV).
    pub limit: Option<i64>,
}

/// A day as the filter form and the API give it: exactly `YYYY-MM-DD` (a
/// real calendar day), or empty for no bound.
fn day_ms(day: &str, end: bool) -> Result<Option<i64>, WebError> {
    if day.is_empty() {
        return Ok(None);
    }
    let shaped = day.len() == 10
        && day.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            _ => b.is_ascii_digit(),
        });
    let d = shaped
        .then(|| chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").ok())
        .flatten()
        .ok_or_else(|| WebError::BadRequest(format!("ngày {day:?}: dùng dạng YYYY-MM-DD")))?;
    let d = if end { d + chrono::Days::new(1) } else { d };
    Ok(d.and_hms_opt(0, 0, 0)
        .and_then(|t| {
            t.and_local_timezone(crate::domain::time::vietnam())
                .single()
        })
        .map(|t| t.timestamp_millis()))
}

/// Turns query parameters into an audit filter.
pub fn audit_filter(p: &AuditParams, default_limit: i64) -> Result<AuditFilter, WebError> {
    let nonempty = |s: &Option<String>| {
        s.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    Ok(AuditFilter {
        actor: nonempty(&p.actor),
        action: nonempty(&p.action),
        reference: nonempty(&p.reference).map(|r| r.to_ascii_uppercase()),
        from_ms: day_ms(p.from.as_deref().unwrap_or(""), false)?,
        until_ms: day_ms(p.to.as_deref().unwrap_or(""), true)?,
        before_id: p.before,
        limit: p.limit.unwrap_or(default_limit).clamp(1, 100_000),
    })
}

/// The audit lines `p` asks for, at most `limit` unless it says fewer,
/// for a supervisor (anyone else gets the error page).
async fn supervisors_lines(
    op: &Signed,
    p: &AuditParams,
    limit: i64,
) -> Result<(AuditFilter, Vec<crate::store::AuditLine>), Response> {
    op.require(Role::Supervisor)?;
    let f = audit_filter(p, limit).map_err(|e| op.fail(e))?;
    let lines = op.c.store().audit_lines(&f).await.map_err(|e| op.fail(e))?;
    Ok((f, lines))
}

/// The audit log (supervisors).
pub async fn audit(op: Signed, uri: Uri, Query(p): Query<AuditParams>) -> Page {
    let (f, lines) = supervisors_lines(&op, &p, 200).await?;
    let next_before = if lines.len() as i64 == f.limit {
        lines.last().map(|l| l.id)
    } else {
        None
    };
    let csv_query = uri.query().unwrap_or("").to_owned();
    let ctx = context! {
        lines, next_before, csv_query,
        actor => p.actor, action => p.action, reference => p.reference, from => p.from, to => p.to,
    };
    op.render("audit.html", StatusCode::OK, ctx)
}

/// One CSV field, quoted; a leading `=`, `+`, `-` or `@` is defused so a
/// spreadsheet does not run it as a formula.
pub fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// The audit log as CSV (supervisors).
pub async fn audit_csv(op: Signed, Query(p): Query<AuditParams>) -> Page {
    let (_, lines) = supervisors_lines(&op, &p, 100_000).await?;
    Ok(audit_csv_response(&lines))
}

/// Renders audit lines as a CSV download.
pub fn audit_csv_response(lines: &[crate::store::AuditLine]) -> Response {
    let mut out =
        String::from("\u{feff}id,at,reference,actor,action,from_state,to_state,detail\r\n");
    for l in lines {
        let at = chrono::DateTime::from_timestamp_millis(l.at)
            .map(|t| {
                t.with_timezone(&crate::domain::time::vietnam())
                    .to_rfc3339()
            })
            .unwrap_or_default();
        let row = [
            l.id.to_string(),
            at,
            l.reference.clone().unwrap_or_default(),
            l.actor.clone(),
            l.action.clone(),
            l.from_state.clone().unwrap_or_default(),
            l.to_state.clone().unwrap_or_default(),
            l.detail.clone().unwrap_or_default(),
        ];
        out.push_str(
            &row.iter()
                .map(|f| csv_field(f))
                .collect::<Vec<_>>()
                .join(","),
        );
        out.push_str("\r\n");
    }
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"huytk-audit.csv\"",
            ),
        ],
        out,
    )
        .into_response()
}
