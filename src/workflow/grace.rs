//! From approval to deletion (SPEC section 2): the account is locked, its
//! holder gets the SMS, the window (3 days) starts when the gateway accepts
//! it, the hotline can stop or hasten the deletion, and when the window is
//! over the account is deleted and the citizen told.
//!
//! Every step is a row in the outbox (lock, SMS, unlock, delete, letters)
//! written in the transaction of the state change that causes it, and
//! worked by claiming rows, so nothing happens twice and nothing is lost.
//! The window's end is a column (`grace_deadline`), so a restart, or a
//! daemon down over the deadline, still deletes once, at or after it.

use minijinja::context;

use super::account_jobs::queue_account_job;
use super::desk::Desk;
use super::letters::Letter;
use super::outcome::{Decided, Refusal};
use super::WorkflowError;
use crate::domain::Action;
use crate::domain::RequestState;
use crate::store::{self, OperatorRow, OutboxKind, RequestRow};

impl Desk {
    /// Inside an approval's transaction: where the SMS goes, the lock job,
    /// and the letter telling the citizen.
    pub(super) async fn start_grace(
        &self,
        tx: &mut store::Tx,
        r: &RequestRow,
        account: &crate::accounts::PortalAccount,
        version: i64,
    ) -> Result<(), WorkflowError> {
        // The SMS goes to the phone on the account. The request's phone is
        // only the sender's claim: it is used only where a supervisor
        // confirmed that this account's holder cannot be told otherwise.
        let confirmed = r.holder_risk_account.as_deref() == Some(account.account_id.as_str());
        let sms_to = match &account.phone {
            Some(p) => Some(p.clone()),
            None if confirmed => r.phone.clone(),
            None => None,
        };
        store::set_sms_to(tx, r.id, sms_to.as_deref()).await?;
        self.notify_holder_by_email(tx, r, account, version).await?;
        queue_account_job(
            tx,
            OutboxKind::AccountLock,
            r.id,
            &account.account_id,
            &format!("lock:{}:{version}", r.id),
        )
        .await?;
        self.queue_citizen_letter(
            tx,
            r,
            "approved",
            context! {},
            format!("approved:{}:{version}", r.id),
        )
        .await?;
        Ok(())
    }

    /// Tells the holder at the account's own address, when it has one that
    /// is not the requester's: deletion was asked for, and how to stop it.
    async fn notify_holder_by_email(
        &self,
        tx: &mut store::Tx,
        r: &RequestRow,
        account: &crate::accounts::PortalAccount,
        version: i64,
    ) -> Result<(), WorkflowError> {
        let Some(to) = account.email.as_deref() else {
            return Ok(());
        };
        if to.eq_ignore_ascii_case(&r.email) {
            return Ok(());
        }
        let letter = Letter {
            request_id: r.id,
            reference: &r.reference,
            // The holder is not the requester: no secret to join the thread.
            token: None,
            to,
            template: "holder_notice",
            full_name: Some(&account.full_name),
            id_number: Some(&account.id_number),
            extra: context! { account_id => account.account_id },
            dedupe: format!("holder_notice:{}:{version}", r.id),
            thread: Vec::new(),
        };
        self.queue_letter(tx, letter).await
    }

    /// Requests whose window is over move to `deleting` with their delete
    /// job (each once, whatever the number of replicas).
    pub async fn sweep_deadlines(&self) -> Result<usize, WorkflowError> {
        self.sweep_deadlines_at(self.now()).await
    }

    /// The same, as if the clock read `now` (ms).
    async fn sweep_deadlines_at(&self, now: i64) -> Result<usize, WorkflowError> {
        let mut moved = 0;
        for (id, version, account) in self.store.deadlines_passed(now).await? {
            let mut tx = self.store.begin().await?;
            if store::set_state(&mut tx, id, version, RequestState::Deleting).await? {
                self.queue_delete(&mut tx, id, account.as_deref()).await?;
                store::audit(
                    &mut tx,
                    &self.system(
                        id,
                        Action::WindowOver,
                        Some(RequestState::GracePeriod),
                        Some(RequestState::Deleting),
                        None,
                    ),
                )
                .await?;
                store::commit(tx).await?;
                moved += 1;
            } else {
                store::rollback(tx).await?;
            }
        }
        Ok(moved)
    }

    async fn queue_delete(
        &self,
        tx: &mut store::Tx,
        id: i64,
        account: Option<&str>,
    ) -> Result<(), WorkflowError> {
        queue_account_job(
            tx,
            OutboxKind::AccountDelete,
            id,
            account.unwrap_or_default(),
            &format!("delete:{id}"),
        )
        .await
    }

    /// Hotline: the holder objects; the account is unlocked and the request
    /// cancelled.
    pub async fn hotline_object(
        &self,
        who: &OperatorRow,
        id: i64,
        note: &str,
    ) -> Result<Decided, WorkflowError> {
        let mut tx = self.store.begin().await?;
        let r = match leave_grace(&mut tx, id, RequestState::Cancelled).await {
            Ok(r) => r,
            Err(e) => {
                store::rollback(tx).await?;
                return Err(e);
            }
        };
        if let Some(account) = &r.approved_account {
            queue_account_job(
                &mut tx,
                OutboxKind::AccountUnlock,
                id,
                account,
                &format!("unlock:{id}:{}", r.version),
            )
            .await?;
        }
        store::audit(
            &mut tx,
            &self.history(
                Some(id),
                who.login.as_str(),
                Action::HotlineObjected,
                Some(RequestState::GracePeriod),
                Some(RequestState::Cancelled),
                Some(note.trim().to_owned()).filter(|n| !n.is_empty()),
            ),
        )
        .await?;
        self.queue_citizen_letter(
            &mut tx,
            &r,
            "cancelled",
            context! {},
            format!("cancelled:{id}"),
        )
        .await?;
        store::commit(tx).await?;
        Ok(Decided::Moved {
            state: RequestState::Cancelled,
        })
    }

    /// Hotline: the holder confirms; the account is deleted now.
    pub async fn hotline_confirm(
        &self,
        who: &OperatorRow,
        id: i64,
        note: &str,
    ) -> Result<Decided, WorkflowError> {
        let mut tx = self.store.begin().await?;
        let r = match leave_grace(&mut tx, id, RequestState::Deleting).await {
            Ok(r) => r,
            Err(e) => {
                store::rollback(tx).await?;
                return Err(e);
            }
        };
        self.queue_delete(&mut tx, id, r.approved_account.as_deref())
            .await?;
        store::audit(
            &mut tx,
            &self.history(
                Some(id),
                who.login.as_str(),
                Action::HotlineConfirmed,
                Some(RequestState::GracePeriod),
                Some(RequestState::Deleting),
                Some(note.trim().to_owned()).filter(|n| !n.is_empty()),
            ),
        )
        .await?;
        store::commit(tx).await?;
        Ok(Decided::Moved {
            state: RequestState::Deleting,
        })
    }
}

/// Moves a request out of its grace period inside `tx` (the hotline);
/// any other state, or a change made meanwhile, is refused.
async fn leave_grace(
    tx: &mut store::Tx,
    id: i64,
    to: RequestState,
) -> Result<RequestRow, WorkflowError> {
    let r = store::request_in(tx, id).await?;
    if r.state != RequestState::GracePeriod {
        return Err(Refusal::WrongState(r.state).into());
    }
    if !store::set_state(tx, id, r.version, to).await? {
        return Err(Refusal::Stale.into());
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    //! A property test of the state machine over the real workflow and a
    //! real (SQLite) store, with the clock and the SMS gateway's answers
    //! chosen by the test: no sequence of events deletes an account without
    //! an accepted SMS and a full window (or the holder's own confirmation),
    //! and no request reaches two final states.

    use super::*;
    use crate::accounts::{AccountState, PortalAccount};
    use crate::domain::calendar::Calendar;
    use crate::domain::{Login, Role};
    use crate::store::Store;
    use crate::workflow::Decision;
    use crate::workflow::RetryPolicy;
    use proptest::prelude::*;
    use std::sync::Arc;

    #[derive(Debug, Clone)]
    enum Event {
        Approve,
        RunAccountJobs,
        GatewayAccepts,
        GatewayRefuses,
        ReportUndelivered,
        Sweep,
        Wait(i64),
        HotlineObjects,
        HotlineConfirms,
        Reject,
    }

    fn event() -> impl Strategy<Value = Event> {
        prop_oneof![
            3 => Just(Event::Approve),
            3 => Just(Event::RunAccountJobs),
            2 => Just(Event::GatewayAccepts),
            1 => Just(Event::GatewayRefuses),
            1 => Just(Event::ReportUndelivered),
            3 => Just(Event::Sweep),
            3 => (0i64..150_000).prop_map(Event::Wait),
            1 => Just(Event::HotlineObjects),
            1 => Just(Event::HotlineConfirms),
            1 => Just(Event::Reject),
        ]
    }

    const WINDOW_MS: i64 = 100_000;
    const FINAL: [&str; 4] = ["deleted", "rejected", "cancelled", "closed_incomplete"];

    async fn desk(dir: &std::path::Path) -> (Desk, OperatorRow, i64) {
        let store = Store::connect(&format!("sqlite://{}/p.db", dir.display()))
            .await
            .unwrap();
        let templates = crate::notify::Templates::load(
            &std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("templates"),
        )
        .unwrap();
        let config = crate::config::DeskConfig {
            grace_seconds: (WINDOW_MS / 1000) as u64,
            ..Default::default()
        };
        let accounts = crate::accounts::Accounts::Embedded(
            crate::accounts::EmbeddedDirectory::new(store.clone()),
        );
        let desk = Desk {
            store: store.clone(),
            calendar: Arc::new(Calendar::vietnam()),
            templates: Arc::new(templates),
            config,
            accounts: Arc::new(accounts),
            clock: crate::domain::time::Clock::system(),
            inspectors: crate::workflow::Inspectors::new(800, 30),
        };
        let login = Login::parse("lan").unwrap();
        store
            .add_operator(&login, "Lan", Role::Operator, "x", false)
            .await
            .unwrap();
        let op = store.operator(&login).await.unwrap().unwrap();
        store
            .put_portal_account(&PortalAccount {
                account_id: "DVC-1".into(),
                id_number: "079203001234".into(),
                full_name: "Nguyễn Văn An".into(),
                birth_date: None,
                phone: Some("+84912345678".into()),
                email: None,
                vneid_linked: 0,
                state: AccountState::Active,
            })
            .await
            .unwrap();
        let mut tx = store.begin().await.unwrap();
        let (id, _) = store::insert_request(
            &mut tx,
            &store::NewRequest {
                email: "an@test",
                received_at: 0,
                due_date: "2027-01-01",
                reference_day: "270101",
                thread_token: &crate::domain::thread::ThreadToken::from_bytes([7; 10]),
                linked_to: None,
            },
        )
        .await
        .unwrap();
        sqlx::query("UPDATE requests SET state = 'pending_review', id_number = '079203001234' WHERE id = $1").bind(id).execute(&mut *tx).await.unwrap();
        store::commit(tx).await.unwrap();
        (desk, op, id)
    }

    async fn pending_sms(desk: &Desk, id: i64) -> Option<i64> {
        desk.store
            .jobs_of(id)
            .await
            .unwrap()
            .into_iter()
            .find(|j| j.kind == "sms" && j.state == "pending")
            .map(|j| j.id)
    }

    /// Applies one event to the request, as the desk's parts would.
    async fn apply(
        desk: &Desk,
        op: &OperatorRow,
        id: i64,
        e: Event,
        clock: &mut i64,
        confirmed: &mut bool,
    ) -> Result<(), TestCaseError> {
        let r = desk.store.request(id).await.unwrap().unwrap();
        match e {
            Event::Approve => {
                let _ = desk
                    .decide(
                        op,
                        id,
                        r.version,
                        Decision::Approve {
                            account: "DVC-1".into(),
                        },
                        false,
                    )
                    .await;
            }
            Event::RunAccountJobs => {
                desk.run_account_jobs(
                    RetryPolicy {
                        max_attempts: 5,
                        base_seconds: 1,
                    },
                    20,
                )
                .await
                .unwrap();
            }
            Event::GatewayAccepts => {
                if let Some(sms) = pending_sms(desk, id).await {
                    desk.sms_accepted(sms, id, *clock).await.unwrap();
                }
            }
            Event::GatewayRefuses => {
                if let Some(sms) = pending_sms(desk, id).await {
                    desk.sms_failed_for_good(sms, id, "refused").await.unwrap();
                }
            }
            Event::ReportUndelivered => {
                if let Some(j) = desk
                    .store
                    .jobs_of(id)
                    .await
                    .unwrap()
                    .into_iter()
                    .find(|j| j.kind == "sms" && j.state == "sent")
                {
                    desk.sms_report(j.id, 16).await.unwrap();
                }
            }
            Event::Sweep => {
                let before = desk.store.request(id).await.unwrap().unwrap();
                desk.sweep_deadlines_at(*clock).await.unwrap();
                let after = desk.store.request(id).await.unwrap().unwrap();
                if before.state == RequestState::GracePeriod
                    && after.state == RequestState::Deleting
                {
                    let d = before
                        .grace_deadline
                        .expect("a window moved without a deadline");
                    prop_assert!(*clock >= d, "moved {} ms early", d - *clock);
                    prop_assert!(before.sms_accepted_at.is_some());
                    prop_assert!(d >= before.sms_accepted_at.unwrap() + WINDOW_MS);
                }
            }
            Event::Wait(ms) => *clock += ms,
            Event::HotlineObjects => {
                let _ = desk.hotline_object(op, id, "").await;
            }
            Event::HotlineConfirms => {
                if desk.hotline_confirm(op, id, "").await.is_ok() {
                    *confirmed = true;
                }
            }
            Event::Reject => {
                let _ = desk
                    .decide(
                        op,
                        id,
                        r.version,
                        Decision::Reject {
                            reason: "không khớp".into(),
                        },
                        false,
                    )
                    .await;
            }
        }
        Ok(())
    }

    /// What must hold after every event: no account gone without a full
    /// window (or the hotline's confirmation), one final state at most.
    async fn holds(
        desk: &Desk,
        id: i64,
        confirmed: bool,
        finals_seen: &mut Vec<String>,
    ) -> Result<(), TestCaseError> {
        let now = desk.store.request(id).await.unwrap().unwrap();
        let gone = desk
            .store
            .portal_accounts(&["079203001234".to_owned()])
            .await
            .unwrap()
            .is_empty();
        if gone {
            prop_assert!(
                matches!(now.state, RequestState::Deleting | RequestState::Deleted),
                "account gone in {}",
                now.state
            );
            let history: Vec<String> = desk
                .store
                .audit_for(id)
                .await
                .unwrap()
                .into_iter()
                .map(|a| a.action)
                .collect();
            prop_assert!(
                confirmed || history.iter().any(|a| a == "window_over"),
                "deleted without a full window: {history:?}"
            );
            prop_assert!(
                confirmed || now.sms_accepted_at.is_some(),
                "deleted without an accepted SMS"
            );
        }
        if FINAL.contains(&now.state.as_str()) {
            if finals_seen.last() != Some(&now.state.as_str().to_owned()) {
                finals_seen.push(now.state.as_str().to_owned());
            }
            prop_assert_eq!(finals_seen.len(), 1, "two final states: {:?}", finals_seen);
        } else {
            prop_assert!(
                finals_seen.is_empty(),
                "left the final state {:?} for {}",
                finals_seen,
                now.state
            );
        }
        Ok(())
    }

    async fn run(events: Vec<Event>) -> Result<(), TestCaseError> {
        let dir = std::env::temp_dir().join(format!(
            "huytk-prop-{}-{}",
            std::process::id(),
            rand::random::<u64>()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let (desk, op, id) = desk(&dir).await;
        let mut clock: i64 = 1_800_000_000_000;
        // The moment the window of the current approval started, if it did.
        let mut confirmed = false;
        let mut finals_seen: Vec<String> = Vec::new();
        for e in events {
            apply(&desk, &op, id, e, &mut clock, &mut confirmed).await?;
            holds(&desk, id, confirmed, &mut finals_seen).await?;
        }
        let history = desk.store.audit_for(id).await.unwrap();
        let final_moves = history
            .iter()
            .filter(|a| a.to_state.as_deref().is_some_and(|s| FINAL.contains(&s)))
            .count();
        prop_assert!(final_moves <= 1, "{final_moves} moves into a final state");
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    }

    /// A delete job that names no account (a request in its window
    /// without an approved account) fails for good, visibly, instead of
    /// being reported done by an account store that was asked nothing.
    #[test]
    fn an_account_job_without_an_account_fails_for_good() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let dir = std::env::temp_dir().join(format!("huytk-noaccount-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let (desk, _, id) = desk(&dir).await;
            sqlx::query("UPDATE requests SET state = 'deleting' WHERE id = $1")
                .bind(id)
                .execute(desk.store.pool())
                .await
                .unwrap();
            let mut tx = desk.store.begin().await.unwrap();
            desk.queue_delete(&mut tx, id, None).await.unwrap();
            store::commit(tx).await.unwrap();
            let retry = RetryPolicy {
                max_attempts: 5,
                base_seconds: 1,
            };
            desk.run_account_jobs(retry, 10).await.unwrap();
            let (state, error): (String, Option<String>) = sqlx::query_as(
                "SELECT state, last_error FROM outbox WHERE request_id = $1 AND kind = 'account_delete'",
            )
            .bind(id)
            .fetch_one(desk.store.pool())
            .await
            .unwrap();
            assert_eq!(state, "failed");
            assert!(error.unwrap().contains("no portal account named"));
            let r = desk.store.request(id).await.unwrap().unwrap();
            assert_eq!(r.state, RequestState::Deleting, "not recorded as deleted");
            std::fs::remove_dir_all(&dir).ok();
        });
    }

    /// The property is not vacuous: the happy path does delete, at the
    /// deadline and not a millisecond before.
    #[test]
    fn the_happy_path_deletes_at_the_deadline() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let dir = std::env::temp_dir().join(format!("huytk-happy-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let (desk, op, id) = desk(&dir).await;
            let retry = RetryPolicy {
                max_attempts: 5,
                base_seconds: 1,
            };
            let t0 = 1_800_000_000_000;
            desk.decide(
                &op,
                id,
                0,
                Decision::Approve {
                    account: "DVC-1".into(),
                },
                false,
            )
            .await
            .unwrap();
            desk.run_account_jobs(retry, 20).await.unwrap();
            let sms = pending_sms(&desk, id)
                .await
                .expect("the SMS queued after the lock");
            desk.sms_accepted(sms, id, t0).await.unwrap();
            assert_eq!(
                desk.sweep_deadlines_at(t0 + WINDOW_MS - 1).await.unwrap(),
                0
            );
            assert_eq!(desk.sweep_deadlines_at(t0 + WINDOW_MS).await.unwrap(), 1);
            desk.run_account_jobs(retry, 20).await.unwrap();
            assert_eq!(
                desk.store.request(id).await.unwrap().unwrap().state,
                RequestState::Deleted
            );
            assert!(desk
                .store
                .portal_accounts(&["079203001234".to_owned()])
                .await
                .unwrap()
                .is_empty());
            let _ = std::fs::remove_dir_all(&dir);
        });
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
        #[test]
        fn no_deletion_without_an_accepted_sms_and_a_full_window(events in proptest::collection::vec(event(), 1..24)) {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(run(events))?;
        }
    }
}
