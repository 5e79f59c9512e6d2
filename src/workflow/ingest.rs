//! One message in: store, inspect, join or open a request, reply.

use chrono::{Datelike, FixedOffset, Utc};
use minijinja::context;
use regex::Regex;
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};

use super::WorkflowError;
use crate::config::DeskConfig;
use crate::domain::calendar::Calendar;
use crate::domain::{IdNumber, RequestState};
use crate::intake::{assess, examine, Assessment, Examined, InspectOptions, Kind};
use crate::notify::{OutgoingEmail, Templates};
use crate::store::{
    self, now_ms, AuditEntry, NewRequest, OutboxKind, PhotoRow, RequestRow, RequestUpdate, Store,
};

/// Vietnam's time zone (no daylight saving).
pub fn vietnam() -> FixedOffset {
    FixedOffset::east_opt(7 * 3600).expect("valid offset")
}

/// A request reference anywhere in a subject or a Message-ID.
static REFERENCE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"HTK-\d{6}-\d+").expect("static pattern"));

/// What became of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ingested {
    /// The same bytes were handled before.
    Duplicate {
        /// Content address.
        sha256: String,
        /// It was mail for people (goes to the "other" folder again).
        other: bool,
    },
    /// Not a request: kept for people (other) or ignored (auto-reply, bounce).
    NotRequest {
        /// Content address.
        sha256: String,
        /// Its kind.
        kind: Kind,
    },
    /// It opened or joined a request.
    Request {
        /// Content address.
        sha256: String,
        /// The request.
        request_id: i64,
        /// Its reference.
        reference: String,
        /// Its state now.
        state: RequestState,
        /// It joined an existing request.
        joined: bool,
    },
    /// Processing failed; the message is stored, marked failed, visible.
    Failed {
        /// Content address.
        sha256: String,
        /// Why.
        error: String,
    },
}

impl Ingested {
    /// Whether the message is not a request (goes to the "other" folder).
    pub fn is_other(&self) -> bool {
        matches!(
            self,
            Ingested::NotRequest {
                kind: Kind::Other,
                ..
            } | Ingested::Duplicate { other: true, .. }
        )
    }
}

/// The desk: what ingesting needs.
#[derive(Debug, Clone)]
pub struct Desk {
    /// The database.
    pub store: Store,
    /// Working days.
    pub calendar: Arc<Calendar>,
    /// Letters.
    pub templates: Arc<Templates>,
    /// Desk settings.
    pub config: DeskConfig,
    /// Where portal accounts live.
    pub accounts: Arc<crate::accounts::Accounts>,
}

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

fn inspect_options() -> InspectOptions {
    InspectOptions {
        current_year: Utc::now().with_timezone(&vietnam()).year(),
    }
}

/// The message of a caught panic.
fn panic_text(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .map_or_else(
            || "inspection panicked".into(),
            |m| format!("inspection panicked: {m}"),
        )
}

/// Fault injection for tests, and only for them: no real input makes
/// inspection panic (the fuzzer found none), so the tests that show a
/// broken message is kept, marked failed and does not stop the others set
/// `HUYTK_TEST_PANIC_MARKER`, and a message containing that text panics.
fn injected_fault(raw: &[u8]) -> bool {
    std::env::var("HUYTK_TEST_PANIC_MARKER")
        .ok()
        .filter(|m| !m.is_empty())
        .is_some_and(|m| raw.windows(m.len()).any(|w| w == m.as_bytes()))
}

/// Time spent inspecting in this process (microseconds) and how many
/// messages, for `/metrics`.
static INSPECTION_MICROS: AtomicU64 = AtomicU64::new(0);
static INSPECTIONS: AtomicU64 = AtomicU64::new(0);

/// Seconds spent inspecting and messages inspected by this process.
pub fn inspection_totals() -> (f64, u64) {
    (
        INSPECTION_MICROS.load(Ordering::Relaxed) as f64 / 1e6,
        INSPECTIONS.load(Ordering::Relaxed),
    )
}

/// Inspects, turning a panic into an error that names it.
fn examine_guarded(raw: &[u8]) -> Result<Examined, String> {
    let start = std::time::Instant::now();
    let result = std::panic::catch_unwind(|| {
        if injected_fault(raw) {
            panic!("injected fault (HUYTK_TEST_PANIC_MARKER)");
        }
        examine(raw)
    })
    .map_err(|p| panic_text(&p));
    INSPECTION_MICROS.fetch_add(start.elapsed().as_micros() as u64, Ordering::Relaxed);
    INSPECTIONS.fetch_add(1, Ordering::Relaxed);
    result
}

/// Inspects off the async threads; a panic in inspection becomes an error.
async fn examine_blocking(raw: Vec<u8>) -> Result<Examined, String> {
    tokio::task::spawn_blocking(move || examine_guarded(&raw))
        .await
        .unwrap_or_else(|e| Err(format!("inspection task failed: {e}")))
}

fn system(
    request_id: Option<i64>,
    action: &str,
    from: Option<RequestState>,
    to: Option<RequestState>,
    detail: Option<String>,
) -> AuditEntry {
    audit_entry(request_id, "system", action, from, to, detail)
}

/// An audit line stamped now.
pub(super) fn audit_entry(
    request_id: Option<i64>,
    actor: &str,
    action: &str,
    from: Option<RequestState>,
    to: Option<RequestState>,
    detail: Option<String>,
) -> AuditEntry {
    AuditEntry {
        at: now_ms(),
        request_id,
        actor: actor.into(),
        action: action.into(),
        from_state: from.map(|s| s.as_str().to_owned()),
        to_state: to.map(|s| s.as_str().to_owned()),
        detail,
    }
}

impl Desk {
    /// Stores a message (first, before anything else) and processes it.
    /// Never fails on a bad message: that is `Ingested::Failed`, stored and
    /// visible. Errors are the database's (retry later).
    pub async fn ingest(&self, raw: &[u8], source: &str) -> Result<Ingested, WorkflowError> {
        let (sha, fresh) = self.store_raw(raw, source).await?;
        if !fresh {
            return self.duplicate(sha).await;
        }
        self.process_stored(&sha, raw.to_vec()).await
    }

    /// What a message handled before was: a copy of mail for people goes
    /// to the "other" folder like the first.
    async fn duplicate(&self, sha: String) -> Result<Ingested, WorkflowError> {
        let other = self
            .store
            .raw_status(&sha)
            .await?
            .and_then(|s| s.kind)
            .as_deref()
            == Some(Kind::Other.as_str());
        Ok(Ingested::Duplicate { sha256: sha, other })
    }

    /// Stores a message; `fresh` is false when it was handled before (the
    /// same bytes, processed or failed), true when it still needs work.
    async fn store_raw(&self, raw: &[u8], source: &str) -> Result<(String, bool), WorkflowError> {
        let sha = sha256_hex(raw);
        let (message_id, sender, subject) = header_summary(raw);
        let inserted = self
            .store
            .put_raw(
                &sha,
                raw,
                source,
                message_id.as_deref(),
                sender.as_deref(),
                subject.as_deref(),
            )
            .await?;
        let fresh = inserted
            || matches!(self.store.raw_status(&sha).await?, Some(s) if s.status == "stored");
        Ok((sha, fresh))
    }

    /// Processes messages left stored but unprocessed (after a crash).
    pub async fn recover(&self) -> Result<usize, WorkflowError> {
        let mut n = 0;
        loop {
            let shas = self.store.unprocessed(100).await?;
            if shas.is_empty() {
                return Ok(n);
            }
            for sha in shas {
                let raw = self
                    .store
                    .raw(&sha)
                    .await?
                    .ok_or_else(|| WorkflowError::MissingRaw(sha.clone()))?;
                let outcome = self.process_stored(&sha, raw).await?;
                tracing::info!(sha256 = %sha, outcome = ?outcome, "recovered a stored message");
                n += 1;
            }
        }
    }

    /// Processes a stored message.
    pub async fn process_stored(&self, sha: &str, raw: Vec<u8>) -> Result<Ingested, WorkflowError> {
        let examined = examine_blocking(raw).await;
        self.process_examined(sha, examined).await
    }

    /// Stores a batch, inspects it in parallel on all cores, then processes
    /// each message in order. One result per message, in order; an error
    /// stops the batch there (later messages stay unprocessed, and stored
    /// ones are picked up by `recover`).
    pub async fn ingest_batch(
        &self,
        mut batch: Vec<(Vec<u8>, String)>,
    ) -> Vec<Result<Ingested, WorkflowError>> {
        let mut out: Vec<Result<Ingested, WorkflowError>> = Vec::with_capacity(batch.len());
        // 1. Store every message first.
        let mut todo: Vec<(usize, String)> = Vec::new();
        for (i, (raw, origin)) in batch.iter().enumerate() {
            match self.store_raw(raw, origin).await {
                Ok((sha, fresh)) => {
                    if fresh {
                        todo.push((i, sha.clone()));
                    }
                    out.push(if fresh {
                        Ok(Ingested::Duplicate {
                            sha256: sha,
                            other: false,
                        })
                    } else {
                        self.duplicate(sha).await
                    });
                }
                Err(e) => {
                    out.push(Err(e));
                    return out;
                }
            }
        }
        // 2. Inspect in parallel (pure CPU work).
        // The stored bytes move to the inspection task: nothing after it
        // needs them, and messages run to several hundred kilobytes.
        let raws: Vec<Vec<u8>> = todo
            .iter()
            .map(|(i, _)| std::mem::take(&mut batch[*i].0))
            .collect();
        let examined = tokio::task::spawn_blocking(move || {
            use rayon::prelude::*;
            raws.par_iter()
                .map(|raw| examine_guarded(raw))
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_else(|e| vec![Err(format!("inspection task failed: {e}")); todo.len()]);
        // 3. Process in arrival order (follow-ups after what they follow).
        for ((i, sha), e) in todo.into_iter().zip(examined) {
            let r = self.process_examined(&sha, e).await;
            let failed = r.is_err();
            out[i] = r;
            if failed {
                out.truncate(i + 1);
                break;
            }
        }
        out
    }

    /// Acts on an inspected stored message.
    async fn process_examined(
        &self,
        sha: &str,
        examined: Result<Examined, String>,
    ) -> Result<Ingested, WorkflowError> {
        let examined = match examined {
            Ok(e) => e,
            Err(error) => {
                self.store.mark_failed(sha, &error).await?;
                tracing::error!(sha256 = %sha, %error, "message failed inspection; kept and marked failed");
                return Ok(Ingested::Failed {
                    sha256: sha.to_owned(),
                    error,
                });
            }
        };
        if examined.kind != Kind::DeletionRequest {
            let mut tx = self.store.begin().await?;
            store::mark_processed(&mut tx, sha, examined.kind.as_str(), None).await?;
            store::commit(tx).await?;
            return Ok(Ingested::NotRequest {
                sha256: sha.to_owned(),
                kind: examined.kind,
            });
        }
        for _ in 0..3 {
            if let Some(done) = self.try_request(sha, &examined).await? {
                return Ok(done);
            }
        }
        Err(WorkflowError::Contention(0))
    }

    /// Closes requests left in `needs_info` for `needs_info_days` without
    /// news (SPEC section 2: 30 days silent → closed_incomplete).
    pub async fn close_silent_requests(&self) -> Result<usize, WorkflowError> {
        let before = now_ms() - i64::from(self.config.needs_info_days) * 24 * 3600 * 1000;
        let mut closed = 0;
        for (id, version) in self.store.silent_needs_info(before).await? {
            let mut tx = self.store.begin().await?;
            if store::set_state(&mut tx, id, version, RequestState::ClosedIncomplete).await? {
                let detail = format!("no news for {} days", self.config.needs_info_days);
                store::audit(
                    &mut tx,
                    &system(
                        Some(id),
                        "closed_silent",
                        Some(RequestState::NeedsInfo),
                        Some(RequestState::ClosedIncomplete),
                        Some(detail),
                    ),
                )
                .await?;
                store::commit(tx).await?;
                closed += 1;
            } else {
                store::rollback(tx).await?;
            }
        }
        if closed > 0 {
            tracing::info!(closed, "silent needs_info requests closed");
        }
        Ok(closed)
    }

    /// Finds the request a message belongs to.
    async fn target(
        &self,
        e: &Examined,
    ) -> Result<Option<(RequestRow, &'static str)>, WorkflowError> {
        // 1. A reply: In-Reply-To / References name one of its messages or
        //    one of ours (our Message-IDs carry the reference).
        if let Some(id) = self.store.request_by_message_ids(&e.references).await? {
            if let Some(r) = self.store.request(id).await? {
                return Ok(Some((r, "reply")));
            }
        }
        for r in &e.references {
            if let Some(m) = REFERENCE.find(r) {
                if let Some(req) = self.store.request_by_reference(m.as_str()).await? {
                    return Ok(Some((req, "reply")));
                }
            }
        }
        // 2. The reference in the subject, from the same sender.
        if let Some(m) = REFERENCE.find(&e.subject) {
            if let Some(req) = self.store.request_by_reference(m.as_str()).await? {
                if e.from.as_deref() == Some(req.email.as_str()) {
                    return Ok(Some((req, "reference")));
                }
            }
        }
        // 3. A new request for a number that already has an open one.
        let number = e.subject_number.as_ref().or(e.body.request_number.as_ref());
        if let Some(n) = number {
            if IdNumber::parse(n, inspect_options().current_year).is_ok() {
                if let Some(req) = self.store.open_request_for_number(n).await? {
                    return Ok(Some((req, "same_number")));
                }
            }
        }
        Ok(None)
    }

    /// One optimistic attempt; `None` when the request changed under us.
    async fn try_request(
        &self,
        sha: &str,
        e: &Examined,
    ) -> Result<Option<Ingested>, WorkflowError> {
        let target = self.target(e).await?;
        let now = Utc::now().with_timezone(&vietnam());
        let sender = e.from.clone().unwrap_or_default();

        // A message after an operator decided: attach it for people to read.
        if let Some((req, how)) = &target {
            if !req.state.takes_followups() {
                let mut tx = self.store.begin().await?;
                store::add_request_message(&mut tx, req.id, sha, e.message_id.as_deref()).await?;
                store::audit(
                    &mut tx,
                    &system(
                        Some(req.id),
                        "message_after_decision",
                        Some(req.state),
                        None,
                        Some(format!("joined by {how}; no state change")),
                    ),
                )
                .await?;
                store::mark_processed(&mut tx, sha, Kind::DeletionRequest.as_str(), Some(req.id))
                    .await?;
                store::commit(tx).await?;
                return Ok(Some(Ingested::Request {
                    sha256: sha.to_owned(),
                    request_id: req.id,
                    reference: req.reference.clone(),
                    state: req.state,
                    joined: true,
                }));
            }
        }

        // Judge the request on all its messages together.
        let mut all: Vec<Examined> = Vec::new();
        if let Some((req, _)) = &target {
            for prev in self.store.request_message_shas(req.id).await? {
                if prev == sha {
                    continue;
                }
                let raw = self
                    .store
                    .raw(&prev)
                    .await?
                    .ok_or_else(|| WorkflowError::MissingRaw(prev.clone()))?;
                all.push(
                    examine_blocking(raw)
                        .await
                        .map_err(|_| WorkflowError::MissingRaw(prev.clone()))?,
                );
            }
        }
        all.push(e.clone());
        let refs: Vec<&Examined> = all.iter().collect();
        let assessment = assess(&refs, &inspect_options());
        let new_state = if assessment.problems.is_empty() {
            RequestState::PendingReview
        } else {
            RequestState::NeedsInfo
        };

        let mut tx = self.store.begin().await?;
        let (id, reference, old_state, version, email, due_date, joined) = match &target {
            Some((req, _)) => (
                req.id,
                req.reference.clone(),
                Some(req.state),
                req.version,
                req.email.clone(),
                req.due_date.clone(),
                true,
            ),
            None => {
                let due = self
                    .calendar
                    .add_working_days(now.date_naive(), self.config.service_level_days);
                let due = due.format("%Y-%m-%d").to_string();
                let (id, reference) = store::insert_request(
                    &mut tx,
                    &NewRequest {
                        email: &sender,
                        received_at: now_ms(),
                        due_date: &due,
                        reference_day: &now.format("%y%m%d").to_string(),
                    },
                )
                .await?;
                (id, reference, None, 0, sender.clone(), due, false)
            }
        };
        let duplicate = matches!(&target, Some((_, "same_number")));
        let update = RequestUpdate {
            state: new_state,
            id_number: assessment.id_number.clone(),
            id_type: assessment.id_type.map(|t| t.as_str().to_owned()),
            full_name: assessment.full_name.clone(),
            phone: assessment.phone.clone(),
            reason: assessment.reason.clone(),
            problems: assessment
                .problems
                .iter()
                .map(|p| p.code().to_owned())
                .collect(),
            warnings: assessment
                .warnings
                .iter()
                .map(|w| w.code().to_owned())
                .collect(),
            assessment: serde_json::to_string(&assessment).unwrap_or_default(),
            duplicate_submission: duplicate,
        };
        if !store::update_request(&mut tx, id, version, &update).await? {
            store::rollback(tx).await?;
            return Ok(None);
        }
        store::add_request_message(&mut tx, id, sha, e.message_id.as_deref()).await?;
        for a in &assessment.attachments {
            store::add_photo(
                &mut tx,
                id,
                &PhotoRow {
                    sha256: &a.sha256,
                    message: sha,
                    filename: a.filename.as_deref(),
                    format: a.format.map(|f| f.as_str()),
                    width: a.width.map(i64::from),
                    height: a.height.map(i64::from),
                    role: role_name(a.role),
                    usable: a.usable,
                    dhash: a.fingerprint.as_ref().map(|f| format!("{:016x}", f.dhash)),
                },
            )
            .await?;
        }
        let action = match &target {
            None => "created".to_owned(),
            Some((_, how)) => format!("followup_{how}"),
        };
        let detail = format!(
            "message {}; problems: [{}]; warnings: [{}]",
            &sha[..12],
            update.problems.join(", "),
            update.warnings.join(", ")
        );
        store::audit(
            &mut tx,
            &system(Some(id), &action, old_state, Some(new_state), Some(detail)),
        )
        .await?;
        let reply = Reply {
            id,
            reference: &reference,
            to: &email,
            due_date: &due_date,
            sha,
            old: old_state,
            new: new_state,
        };
        self.queue_reply(&mut tx, &reply, e, &assessment).await?;
        store::mark_processed(&mut tx, sha, Kind::DeletionRequest.as_str(), Some(id)).await?;
        store::commit(tx).await?;
        tracing::info!(request = %reference, state = %new_state, joined, "request updated");
        Ok(Some(Ingested::Request {
            sha256: sha.to_owned(),
            request_id: id,
            reference,
            state: new_state,
            joined,
        }))
    }

    /// Why no letter may go to `to`, if none may: no address, or our own
    /// (a loop with ourselves).
    pub(super) fn unwritable(&self, to: &str) -> Option<&'static str> {
        if !to.contains('@') {
            Some("the request has no sender address")
        } else if to.eq_ignore_ascii_case(&self.config.address) {
            Some("never to our own address")
        } else {
            None
        }
    }

    /// Queues the answer to a citizen's message, unless it must not be sent.
    async fn queue_reply(
        &self,
        tx: &mut store::Tx,
        r: &Reply<'_>,
        e: &Examined,
        a: &Assessment,
    ) -> Result<(), WorkflowError> {
        let Reply {
            id,
            reference,
            to,
            due_date,
            sha,
            old,
            new,
        } = *r;
        let letter = match (old, new) {
            (_, RequestState::NeedsInfo) => "needs_info",
            (Some(RequestState::PendingReview), RequestState::PendingReview) => return Ok(()),
            (_, RequestState::PendingReview) => "acknowledgement",
            _ => return Ok(()),
        };
        let skip = |why: &str| {
            system(
                Some(id),
                "reply_not_sent",
                None,
                None,
                Some(format!("{letter}: {why}")),
            )
        };
        if let Some(why) = self.unwritable(to) {
            store::audit(tx, &skip(why)).await?;
            return Ok(());
        }
        let day_ago = now_ms() - 24 * 3600 * 1000;
        if store::queued_since(tx, OutboxKind::Email, to, day_ago).await?
            >= i64::from(self.config.max_mails_per_address_per_day)
        {
            store::audit(tx, &skip("daily limit of mails to this address reached")).await?;
            return Ok(());
        }
        let due = chrono::NaiveDate::parse_from_str(due_date, "%Y-%m-%d")
            .unwrap_or_else(|_| Utc::now().date_naive());
        let problems: Vec<String> = a
            .problems
            .iter()
            .map(|p| self.templates.problem_sentence(p.code()).to_owned())
            .collect();
        let rendered = self.templates.render(
            letter,
            context! {
                reference, id_number => a.id_number, full_name => a.full_name,
                due_date => due.format("%d/%m/%Y").to_string(),
                service_level_days => self.config.service_level_days, hotline => self.config.hotline,
                desk_name => self.config.name, needs_info_days => self.config.needs_info_days,
                problems,
            },
        )?;
        let mut references = e.references.clone();
        if let Some(m) = &e.message_id {
            references.push(m.clone());
        }
        let mail = OutgoingEmail {
            to: to.to_owned(),
            subject: rendered.subject,
            text: rendered.text,
            html: rendered.html,
            message_id: format!(
                "<{reference}.{}@{}>",
                &sha[..16],
                self.config.message_id_domain
            ),
            in_reply_to: e.message_id.clone(),
            references,
        };
        let payload = serde_json::to_string(&mail).unwrap_or_default();
        store::enqueue(
            tx,
            OutboxKind::Email,
            Some(id),
            &format!("reply:{sha}"),
            to,
            &payload,
        )
        .await?;
        Ok(())
    }
}

/// Which request a reply is for and what changed.
#[derive(Debug, Clone, Copy)]
struct Reply<'a> {
    id: i64,
    reference: &'a str,
    to: &'a str,
    due_date: &'a str,
    sha: &'a str,
    old: Option<RequestState>,
    new: RequestState,
}

fn role_name(r: crate::intake::Role) -> &'static str {
    match r {
        crate::intake::Role::IdFront => "id_front",
        crate::intake::Role::IdBack => "id_back",
        crate::intake::Role::Portrait => "portrait",
        crate::intake::Role::Unknown => "unknown",
    }
}

/// Message-ID, sender and subject from the headers alone (cheap), for the
/// stored row; never fails.
fn header_summary(raw: &[u8]) -> (Option<String>, Option<String>, Option<String>) {
    std::panic::catch_unwind(|| {
        let Some(m) = mail_parser::MessageParser::new().parse_headers(raw) else {
            return (None, None, None);
        };
        (
            m.message_id().map(|i| format!("<{i}>")),
            m.from()
                .and_then(|a| a.first())
                .and_then(|a| a.address())
                .map(|a| a.to_lowercase()),
            m.subject().map(crate::domain::text::nfc),
        )
    })
    .unwrap_or((None, None, None))
}
