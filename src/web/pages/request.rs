//! A request's page, the operator's actions on it, and its photos.

use axum::extract::{Path, Query};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::context;
use serde::Deserialize;

use super::{urlencode, Page, Posted, Signed, WithCsrf};
use crate::domain::time::now_ms;
use crate::web::{views::request_view, Console, WebError};
use crate::workflow::{Decided, Decision, WorkflowError};

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
    let ctx = context! {
        v => view, reasons, mine, done,
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
    match perform(&op.c, &op.s.operator, r.id, &action, input).await {
        Ok(Done::Decided(Decided::Moved { .. }))
            if action == "object" || action == "confirm-delete" =>
        {
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
pub async fn photo(op: Signed, Path((reference, sha)): Path<(String, String)>) -> Page {
    photo_response(&op.c, op.login(), &reference, &sha)
        .await
        .map_err(|e| op.fail(e))
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
    crate::web::audit::record_photo_view(c, who, r.id, sha).await?;
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
