//! The queue and the hotline's search.

use axum::extract::Query;
use axum::http::StatusCode;
use minijinja::context;
use serde::Deserialize;

use super::{Page, Signed};
use crate::domain::{Phone, RequestState};
use crate::store::{QueueFilter, Search};
use crate::web::{Console, WebError};
use crate::workflow::queue::{Due, QueuePage};
use crate::workflow::ALL_STATES;

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
    let (due_by, open_only) = match p.due.as_deref() {
        Some("soon") => (Some(c.desk().due_by(Due::Soon)), true),
        Some("overdue") => (Some(c.desk().due_by(Due::Overdue)), true),
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

/// The queue page.
pub async fn queue(op: Signed, Query(p): Query<QueueParams>) -> Page {
    let f = queue_filter(&op.c, &p).map_err(|e| op.fail(e))?;
    let QueuePage {
        rows,
        total,
        next_after,
    } = op.c.desk().queue_page(&f).await.map_err(|e| op.fail(e))?;
    let first_page = f.after.is_none() && f.offset == 0;
    let states: Vec<(&str, &str)> = ALL_STATES
        .iter()
        .map(|s| (s.as_str(), op.c.labels().state(*s)))
        .collect();
    let ctx = context! {
        rows, total, next_after, first_page,
        more_than => (total > crate::store::COUNT_CAP).then_some(crate::store::COUNT_CAP),
        state => p.state.clone().unwrap_or_else(|| "pending_review".into()),
        due => p.due.clone().unwrap_or_default(), q => p.q.clone().unwrap_or_default(),
        states, done => p.done, done_ref => p.reference,
    };
    op.render("queue.html", StatusCode::OK, ctx)
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
pub async fn hotline(op: Signed, Query(h): Query<HotlineQuery>) -> Page {
    let q = h.q.clone().unwrap_or_default();
    let rows = if q.trim().is_empty() {
        Vec::new()
    } else {
        let f = QueueFilter {
            search: parse_search(&q),
            limit: 50,
            ..QueueFilter::default()
        };
        op.c.store().queue(&f).await.map_err(|e| op.fail(e))?.0
    };
    let ctx = context! { q, rows, done => h.done, done_ref => h.reference };
    op.render("hotline.html", StatusCode::OK, ctx)
}
