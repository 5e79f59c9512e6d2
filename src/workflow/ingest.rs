//! One message in: store, inspect, join or open a request, reply.

use minijinja::context;
use regex::Regex;
use sha2::{Digest, Sha256};
use std::sync::LazyLock;

use super::desk::Desk;
use super::letters::Letter;
use super::WorkflowError;
use crate::domain::thread::{OurMessageId, ThreadToken};
use crate::domain::Action;
use crate::domain::{IdNumber, RequestState};
use crate::intake::{assess, Assessment, Examined, Kind};
use crate::store::{self, NewRequest, PhotoRow, RequestRow, RequestUpdate};

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

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
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
        let (message_id, sender, subject) = crate::intake::mime::header_summary(raw);
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

    /// Processes a stored message. One whose inspection has begun more than
    /// `MAX_INSPECTIONS` times without ending (it stopped the process each
    /// time) is quarantined: marked failed with the reason, never retried.
    pub async fn process_stored(&self, sha: &str, raw: Vec<u8>) -> Result<Ingested, WorkflowError> {
        let starts = self.store.begin_inspection(sha).await?;
        if starts > MAX_INSPECTIONS {
            let error = format!(
                "quarantined: the daemon stopped {} times while inspecting this message",
                starts - 1
            );
            self.store.mark_failed(sha, &error).await?;
            tracing::error!(sha256 = %sha, %error, "message quarantined");
            return Ok(Ingested::Failed {
                sha256: sha.to_owned(),
                error,
            });
        }
        let examined = self.inspectors.examine(raw).await;
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
        // 2. Inspect in parallel (pure CPU work), each start counted first
        //    so a message that kills the process is known at the next one.
        for (i, sha) in &todo {
            if let Err(e) = self.store.begin_inspection(sha).await {
                out[*i] = Err(e.into());
                out.truncate(i + 1);
                return out;
            }
        }
        // The stored bytes move to the inspection task: nothing after it
        // needs them, and messages run to several hundred kilobytes.
        let raws: Vec<Vec<u8>> = todo
            .iter()
            .map(|(i, _)| std::mem::take(&mut batch[*i].0))
            .collect();
        let examined = self.inspectors.examine_all(raws).await;
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
        // Inspected once: follow-ups judge the request from this.
        self.store
            .set_inspection(sha, &examined.to_stored())
            .await?;
        if examined.kind != Kind::DeletionRequest {
            let mut tx = self.store.begin().await?;
            if !store::mark_processed(&mut tx, sha, examined.kind.as_str(), None).await? {
                store::rollback(tx).await?;
                return Ok(already(sha));
            }
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

    /// An earlier message's inspection: the stored one, or (stored by an
    /// older version, or never) the raw mail inspected again and stored.
    async fn examined(&self, sha: &str) -> Result<Examined, WorkflowError> {
        if let Some(stored) = self.store.inspection(sha).await? {
            match Examined::from_stored(&stored) {
                Ok(e) => return Ok(e),
                Err(error) => tracing::info!(sha256 = %sha, %error, "inspecting the message again"),
            }
        }
        let raw = self
            .store
            .raw(sha)
            .await?
            .ok_or_else(|| WorkflowError::MissingRaw(sha.to_owned()))?;
        let e = self
            .inspectors
            .examine(raw)
            .await
            .map_err(|_| WorkflowError::MissingRaw(sha.to_owned()))?;
        self.store.set_inspection(sha, &e.to_stored()).await?;
        Ok(e)
    }

    /// How a message relates to the requests the desk has.
    async fn relation(&self, e: &Examined) -> Result<Option<Relation>, WorkflowError> {
        let from = e.from.as_deref().unwrap_or_default();
        let related = |r: RequestRow, how: Link| {
            if !from.is_empty() && r.email.eq_ignore_ascii_case(from) {
                Relation::Joins(r, how)
            } else {
                Relation::About(r, how)
            }
        };
        // 1. A reply to one of our letters: its Message-ID carries the
        //    request's secret.
        for id in &e.references {
            let Some(ours) = OurMessageId::parse(id) else {
                continue;
            };
            if let Some(r) = self.store.request_by_reference(&ours.reference).await? {
                if r.thread_token.matches(&ours.token) {
                    return Ok(Some(related(r, Link::Reply)));
                }
            }
        }
        // 2. The secret in the subject's `[#…]` tag.
        if let Some(t) = ThreadToken::in_subject(&e.subject) {
            if let Some(r) = self.store.request_by_token(&t).await? {
                return Ok(Some(related(r, Link::Token)));
            }
        }
        // 3. A new request for a number that already has an open one.
        let number = e.subject_number.as_ref().or(e.body.request_number.as_ref());
        if let Some(n) = number {
            if IdNumber::parse(n, self.inspect_options().current_year).is_ok() {
                if let Some(r) = self.store.open_request_for_number(n).await? {
                    return Ok(Some(related(r, Link::SameNumber)));
                }
            }
        }
        // 4. A reference anyone can guess (in the subject, or a Message-ID
        //    without the secret): about that request, never joining it.
        let guessed = std::iter::once(e.subject.as_str())
            .chain(e.references.iter().map(String::as_str))
            .find_map(|s| REFERENCE.find(s));
        if let Some(m) = guessed {
            if let Some(r) = self.store.request_by_reference(m.as_str()).await? {
                return Ok(Some(Relation::About(r, Link::GuessedReference)));
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
        let (target, about) = match self.relation(e).await? {
            Some(Relation::Joins(r, how)) => (Some((r, how)), None),
            Some(Relation::About(r, how)) => (None, Some((r, how))),
            None => (None, None),
        };
        // A message after an operator decided: attach it for people to read.
        if let Some((req, how)) = &target {
            if !req.state.takes_followups() {
                return self.keep_after_decision(sha, e, req, *how).await;
            }
        }
        let assessment = self.judge(sha, e, target.as_ref().map(|(r, _)| r)).await?;
        let new_state = if assessment.problems.is_empty() {
            RequestState::PendingReview
        } else {
            RequestState::NeedsInfo
        };

        let mut tx = self.store.begin().await?;
        // The message first: a replica that finds it processed already
        // stops here, so one message never becomes two requests.
        if !store::mark_processed(&mut tx, sha, Kind::DeletionRequest.as_str(), None).await? {
            store::rollback(tx).await?;
            return Ok(Some(already(sha)));
        }
        let opened = match &target {
            Some((req, _)) => Opened::joined(req),
            None => {
                let linked_to = about.as_ref().map(|(r, _)| r.id);
                self.open_request(&mut tx, e, linked_to).await?
            }
        };
        let update = request_update(
            &assessment,
            new_state,
            matches!(&target, Some((_, Link::SameNumber))),
        );
        if !store::update_request(&mut tx, opened.id, opened.version, &update).await? {
            store::rollback(tx).await?;
            return Ok(None);
        }
        store::add_request_message(&mut tx, opened.id, sha, e.message_id.as_deref(), None).await?;
        if let Some((other, how)) = &about {
            self.keep_on_related(&mut tx, other, *how, sha, e, &opened.reference)
                .await?;
        }
        add_photos(&mut tx, opened.id, sha, &assessment).await?;
        let action = match (&target, &about) {
            (Some((_, how)), _) => how.followup(),
            (None, Some(_)) => Action::CreatedLinked,
            (None, None) => Action::Created,
        };
        let detail = format!(
            "message {}; problems: [{}]; warnings: [{}]",
            &sha[..12],
            update.problems.join(", "),
            update.warnings.join(", ")
        );
        let line = self.system(
            opened.id,
            action,
            opened.state,
            Some(new_state),
            Some(detail),
        );
        store::audit(&mut tx, &line).await?;
        let reply = Reply {
            id: opened.id,
            reference: &opened.reference,
            token: &opened.token,
            to: &opened.email,
            due_date: &opened.due_date,
            sha,
            old: opened.state,
            new: new_state,
        };
        self.queue_reply(&mut tx, &reply, e, &assessment).await?;
        store::set_message_request(&mut tx, sha, opened.id).await?;
        store::commit(tx).await?;
        let joined = target.is_some();
        tracing::info!(request = %opened.reference, state = %new_state, joined, "request updated");
        Ok(Some(Ingested::Request {
            sha256: sha.to_owned(),
            request_id: opened.id,
            reference: opened.reference,
            state: new_state,
            joined,
        }))
    }

    /// A message joining a request an operator already decided: kept on it
    /// for people to read, the request unchanged.
    async fn keep_after_decision(
        &self,
        sha: &str,
        e: &Examined,
        req: &RequestRow,
        how: Link,
    ) -> Result<Option<Ingested>, WorkflowError> {
        let mut tx = self.store.begin().await?;
        let kind = Kind::DeletionRequest.as_str();
        if !store::mark_processed(&mut tx, sha, kind, Some(req.id)).await? {
            store::rollback(tx).await?;
            return Ok(Some(already(sha)));
        }
        store::add_request_message(&mut tx, req.id, sha, e.message_id.as_deref(), None).await?;
        let detail = Some(format!("joined by {how}; no state change"));
        let line = self.system(
            req.id,
            Action::MessageAfterDecision,
            Some(req.state),
            None,
            detail,
        );
        store::audit(&mut tx, &line).await?;
        store::commit(tx).await?;
        Ok(Some(Ingested::Request {
            sha256: sha.to_owned(),
            request_id: req.id,
            reference: req.reference.clone(),
            state: req.state,
            joined: true,
        }))
    }

    /// Judges the request on all its messages together: the new one and
    /// those the request it joins already has.
    async fn judge(
        &self,
        sha: &str,
        e: &Examined,
        joins: Option<&RequestRow>,
    ) -> Result<Assessment, WorkflowError> {
        let mut all: Vec<Examined> = Vec::new();
        if let Some(req) = joins {
            for prev in self.store.request_message_shas(req.id).await? {
                if prev != sha {
                    all.push(self.examined(&prev).await?);
                }
            }
        }
        all.push(e.clone());
        let refs: Vec<&Examined> = all.iter().collect();
        Ok(assess(&refs, &self.inspect_options()))
    }

    /// Opens a request for the message's sender, due in the service level.
    async fn open_request(
        &self,
        tx: &mut store::Tx,
        e: &Examined,
        linked_to: Option<i64>,
    ) -> Result<Opened, WorkflowError> {
        let now = self.clock.vietnam_now();
        let sender = e.from.clone().unwrap_or_default();
        let token = ThreadToken::from_bytes(rand::random());
        let due = self
            .calendar
            .add_working_days(now.date_naive(), self.config.service_level_days)
            .format("%Y-%m-%d")
            .to_string();
        let (id, reference) = store::insert_request(
            tx,
            &NewRequest {
                email: &sender,
                received_at: self.now(),
                due_date: &due,
                reference_day: &now.format("%y%m%d").to_string(),
                thread_token: &token,
                linked_to,
            },
        )
        .await?;
        Ok(Opened {
            id,
            reference,
            token,
            state: None,
            version: 0,
            email: sender,
            due_date: due,
        })
    }

    /// Keeps a message from another address (or one that names a request
    /// without its thread's secret) on the request it is about, flagged, so
    /// the operator deciding that request sees it; nothing of that request
    /// changes but its version (a decision made without seeing the message
    /// is refused as stale).
    async fn keep_on_related(
        &self,
        tx: &mut store::Tx,
        other: &RequestRow,
        how: Link,
        sha: &str,
        e: &Examined,
        opened: &str,
    ) -> Result<(), WorkflowError> {
        let same_address = e
            .from
            .as_deref()
            .is_some_and(|f| other.email.eq_ignore_ascii_case(f));
        let flag = if same_address {
            "no_thread_secret"
        } else {
            "another_sender"
        };
        store::add_request_message(tx, other.id, sha, e.message_id.as_deref(), Some(flag)).await?;
        store::touch_request(tx, other.id).await?;
        let detail = format!("{flag}, found by {how}; opened {opened}; nothing here changed");
        store::audit(
            tx,
            &self.system(other.id, Action::FlaggedMessage, None, None, Some(detail)),
        )
        .await?;
        Ok(())
    }

    /// Queues the answer to a citizen's message, unless it must not be sent.
    async fn queue_reply(
        &self,
        tx: &mut store::Tx,
        r: &Reply<'_>,
        e: &Examined,
        a: &Assessment,
    ) -> Result<(), WorkflowError> {
        let template = match (r.old, r.new) {
            (_, RequestState::NeedsInfo) => "needs_info",
            (Some(RequestState::PendingReview), RequestState::PendingReview) => return Ok(()),
            (_, RequestState::PendingReview) => "acknowledgement",
            _ => return Ok(()),
        };
        let due = chrono::NaiveDate::parse_from_str(r.due_date, "%Y-%m-%d")
            .unwrap_or_else(|_| self.clock.today());
        let problems: Vec<String> = a
            .problems
            .iter()
            .map(|p| self.templates.problem_sentence(p.code()).to_owned())
            .collect();
        let mut thread = e.references.clone();
        thread.extend(e.message_id.clone());
        let letter = Letter {
            request_id: r.id,
            reference: r.reference,
            token: Some(r.token),
            to: r.to,
            template,
            full_name: a.full_name.as_deref(),
            id_number: a.id_number.as_deref(),
            extra: context! { due_date => due.format("%d/%m/%Y").to_string(), problems },
            dedupe: format!("reply:{}", r.sha),
            thread,
        };
        self.queue_letter(tx, letter).await
    }
}

/// Starts of a message's inspection that may end with the process gone
/// (a kill, an outage) before it is quarantined.
pub const MAX_INSPECTIONS: i64 = 3;

/// What a message another replica processed first came to here.
fn already(sha: &str) -> Ingested {
    Ingested::Duplicate {
        sha256: sha.to_owned(),
        other: false,
    }
}

/// How a message stands to a request the desk already has.
enum Relation {
    /// The request's own address following up through its secret, or
    /// writing again about the same number: it joins.
    Joins(RequestRow, Link),
    /// About that request, but from another address or without its
    /// secret: kept there flagged, and it opens a request of its own.
    About(RequestRow, Link),
}

/// How a message was found to belong to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    /// A reply to one of our letters, its Message-ID carrying the secret.
    Reply,
    /// The request's secret in the subject's `[#…]` tag.
    Token,
    /// A new request for a number that has an open one.
    SameNumber,
    /// A reference anyone can guess, without the secret.
    GuessedReference,
}

impl Link {
    /// How the history names it.
    fn as_str(self) -> &'static str {
        match self {
            Link::Reply => "reply",
            Link::Token => "token",
            Link::SameNumber => "same_number",
            Link::GuessedReference => "guessed_reference",
        }
    }

    /// The history's action for a follow-up joining this way.
    fn followup(self) -> Action {
        match self {
            Link::Reply => Action::FollowupReply,
            Link::Token => Action::FollowupToken,
            // A guessed reference never joins (it is kept flagged): a
            // same-number message is the only other way in.
            Link::SameNumber | Link::GuessedReference => Action::FollowupSameNumber,
        }
    }
}

impl std::fmt::Display for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which request a reply is for and what changed.
#[derive(Debug, Clone, Copy)]
struct Reply<'a> {
    id: i64,
    reference: &'a str,
    token: &'a ThreadToken,
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

/// The request a message opened or joins, as the transaction sees it.
struct Opened {
    id: i64,
    reference: String,
    token: ThreadToken,
    /// Its state before this message (`None`: just opened).
    state: Option<RequestState>,
    version: i64,
    email: String,
    due_date: String,
}

impl Opened {
    fn joined(r: &RequestRow) -> Opened {
        Opened {
            id: r.id,
            reference: r.reference.clone(),
            token: r.thread_token.clone(),
            state: Some(r.state),
            version: r.version,
            email: r.email.clone(),
            due_date: r.due_date.clone(),
        }
    }
}

/// What the assessment makes of the request's row.
fn request_update(a: &Assessment, state: RequestState, duplicate: bool) -> RequestUpdate {
    RequestUpdate {
        state,
        id_number: a.id_number.clone(),
        id_type: a.id_type.map(|t| t.as_str().to_owned()),
        full_name: a.full_name.clone(),
        phone: a.phone.clone(),
        reason: a.reason.clone(),
        problems: a.problems.iter().map(|p| p.code().to_owned()).collect(),
        warnings: a.warnings.iter().map(|w| w.code().to_owned()).collect(),
        assessment: serde_json::to_string(a).unwrap_or_default(),
        duplicate_submission: duplicate,
    }
}

/// The request's photos, as the assessment found them in the message.
async fn add_photos(
    tx: &mut store::Tx,
    id: i64,
    sha: &str,
    a: &Assessment,
) -> Result<(), WorkflowError> {
    for p in &a.attachments {
        let row = PhotoRow {
            sha256: &p.sha256,
            message: sha,
            filename: p.filename.as_deref(),
            format: p.format.map(|f| f.as_str()),
            width: p.width.map(i64::from),
            height: p.height.map(i64::from),
            role: role_name(p.role),
            usable: p.usable,
            dhash: p.fingerprint.as_ref().map(|f| format!("{:016x}", f.dhash)),
        };
        store::add_photo(tx, id, &row).await?;
    }
    Ok(())
}
