//! A request's page, the operator's actions on it, and its photos.

use axum::extract::{Path, Query};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::context;
use serde::Deserialize;

use super::{urlencode, Page, Posted, Signed, WithCsrf};
use crate::web::{views::request_view, Console, WebError};
use crate::workflow::review::ReviewAction;
pub use crate::workflow::review::{ActInput, Done};
use crate::workflow::{Decided, WorkflowError};

/// Query of the request page.
#[derive(Debug, Deserialize, Default)]
pub struct RequestQuery {
    done: Option<String>,
}

/// The request page.
pub async fn request(
    op: Signed,
    Path(reference): Path<String>,
    Query(q): Query<RequestQuery>,
) -> Page {
    request_page(&op, &reference, q.done.as_deref(), None, StatusCode::OK).await
}

async fn request_page(
    op: &Signed,
    reference: &str,
    done: Option<&str>,
    refusal: Option<(&str, String)>,
    status: StatusCode,
) -> Page {
    let c = &op.c;
    let r = c
        .store()
        .request_by_reference(reference)
        .await
        .map_err(|e| op.fail(e))?
        .ok_or_else(|| op.fail(WebError::NotFound))?;
    let mut view = request_view(c.desk(), r).await.map_err(|e| op.fail(e))?;
    // The page shows the mail thread: the look is recorded first, and the
    // history below shows it.
    crate::web::audit::record_thread_view(c, op.login(), &view)
        .await
        .map_err(|e| op.fail(e))?;
    view.history = c
        .store()
        .audit_for(view.request.id)
        .await
        .map_err(|e| op.fail(e))?;
    let reasons: Vec<(String, String)> = c.desk().templates.reject_reasons().to_vec();
    let mine = view.holder.as_deref() == Some(op.login());
    let (refusal_code, refusal_detail) = refusal.unzip();
    let next = c
        .desk()
        .next_for_review(&view.request)
        .await
        .map_err(|e| op.fail(e))?;
    let ctx = context! {
        v => view, reasons, mine, done, next,
        refusal => refusal_code, refusal_detail,
        four_eyes => c.four_eyes(),
    };
    op.render("request.html", status, ctx)
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

impl WithCsrf for ActForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// Claim, release, approve, reject, ask, note, take over; the hotline's
/// objection and confirmation.
pub async fn act(
    Path((reference, action)): Path<(String, String)>,
    Posted { op, form: f }: Posted<ActForm>,
) -> Page {
    let r =
        op.c.store()
            .request_by_reference(&reference)
            .await
            .map_err(|e| op.fail(e))?
            .ok_or_else(|| op.fail(WebError::NotFound))?;
    let input = ActInput {
        version: f.version.unwrap_or(-1),
        account: f.account.unwrap_or_default(),
        reason: f.reason.unwrap_or_default(),
        message: f.message.unwrap_or_default(),
        text: f.text.unwrap_or_default(),
    };
    let to = urlencode(&r.reference);
    let hotline = ReviewAction::parse(&action).is_some_and(ReviewAction::is_hotline);
    match perform(&op.c, &op.s.operator, r.id, &action, input).await {
        Ok(Done::Decided(Decided::Moved { .. })) if hotline => {
            Ok(Redirect::to(&format!("/hotline?done={action}&ref={to}")).into_response())
        }
        Ok(Done::Decided(Decided::Moved { .. })) => {
            Ok(Redirect::to(&format!("/queue?done={action}&ref={to}")).into_response())
        }
        Ok(_) => Ok(Redirect::to(&format!("/requests/{to}?done={action}")).into_response()),
        Err(WebError::Workflow(WorkflowError::Refused(refusal))) => {
            let status = WebError::Workflow(WorkflowError::Refused(refusal.clone())).status();
            if status == StatusCode::FORBIDDEN {
                return Err(op.fail(WebError::Forbidden));
            }
            let shown = Some((refusal.code(), refusal.to_string()));
            request_page(&op, &r.reference, None, shown, status).await
        }
        Err(e) => Err(op.fail(e)),
    }
}

/// The action a URL names, performed for an operator (pages and API share
/// this); an unknown action is not found.
pub async fn perform(
    c: &Console,
    who: &crate::store::OperatorRow,
    id: i64,
    action: &str,
    a: ActInput,
) -> Result<Done, WebError> {
    let action = ReviewAction::parse(action).ok_or(WebError::NotFound)?;
    Ok(c.desk().review(who, id, action, a, c.four_eyes()).await?)
}

/// A photo of a request, re-encoded.
pub async fn photo(op: Signed, Path((reference, sha)): Path<(String, String)>) -> Page {
    photo_response(&op.c, op.login(), &reference, &sha)
        .await
        .map_err(|e| op.fail(e))
}

/// Serves a request's photo re-encoded as JPEG; the view is in the audit
/// log (as `who`) before a byte of it is sent, whether the photo was
/// decoded now or came from the cache.
pub async fn photo_response(
    c: &Console,
    who: &str,
    reference: &str,
    sha: &str,
) -> Result<Response, WebError> {
    let desk = c.desk();
    let p = desk.find_photo(reference, sha).await?;
    let wanted = p.clone();
    let jpeg = c
        .photos()
        .get(&p.sha256, || async move {
            desk.photo_bytes(&wanted).await.map_err(WebError::from)
        })
        .await?;
    crate::web::audit::record_photo_view(c, who, p.request_id, &p.sha256).await?;
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
