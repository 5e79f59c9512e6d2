//! What the supervisors see of the desk: the dashboard's counts, and the
//! reports behind its charts (requests received and decided per working
//! day, the share decided within the service level per week, the waiting
//! requests' ages, decisions per operator, how grace periods ended). The
//! store counts per day; the working days, weeks and buckets are computed
//! here, in Vietnam time, with the desk's calendar.

use chrono::{Datelike, Days, NaiveDate};
use std::collections::BTreeMap;

use super::desk::Desk;
use super::WorkflowError;
use crate::domain::calendar::Calendar;
use crate::domain::request_state::ALL_STATES;
use crate::domain::time::{vietnam, Millis};
use crate::domain::Action;

/// The longest report, in working days.
pub const REPORT_WORKING_DAYS: usize = 90;
/// The short one.
pub const SHORT_WORKING_DAYS: usize = 30;

/// Audit actions that decide a request (written by `decide.rs`): the
/// final approval (the grace period starts) and a rejection.
const DECISIONS: [Action; 2] = [Action::Approve, Action::Reject];
/// Audit actions counted per operator, in the chart's order.
pub const OPERATOR_ACTIONS: [Action; 4] = [
    Action::ApproveFirst,
    Action::Approve,
    Action::Reject,
    Action::Ask,
];
/// Audit actions that end a grace period (`grace.rs`, `sms.rs`), and the
/// outcome each counts as: the window over or confirmed on the hotline
/// (the account goes), stopped on the hotline, or the SMS failed and the
/// request went back to an operator.
const GRACE_ENDS: [(Action, &str); 4] = [
    (Action::WindowOver, "deleted"),
    (Action::HotlineConfirmed, "deleted"),
    (Action::HotlineObjected, "cancelled"),
    (Action::BackToOperator, "returned"),
];
/// The outcomes, in the chart's order.
pub const GRACE_OUTCOMES: [&str; 3] = ["deleted", "cancelled", "returned"];
/// Requests waiting for the desk (the citizen or an operator): their age
/// counts against the service level.
const WAITING: [&str; 2] = ["needs_info", "pending_review"];

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
pub async fn dashboard_numbers(desk: &Desk) -> Result<Dashboard, WorkflowError> {
    let store = &desk.store;
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
    let today = desk.clock.today();
    let soon = desk.due_soon_by(today);
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

/// One working day's requests.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DayRow {
    /// The working day (YYYY-MM-DD).
    pub day: String,
    /// Requests received that day (or on the days off just before it:
    /// mail of a weekend is the desk's on the next working day).
    pub received: i64,
    /// Requests decided (approved or rejected) that day, the days off
    /// just before it counted with it.
    pub decided: i64,
}

/// One week's decisions against the service level.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct WeekRow {
    /// Its Monday (YYYY-MM-DD).
    pub week: String,
    /// Decisions made that week.
    pub decided: i64,
    /// Of those, made on or before the request's due date.
    pub within: i64,
    /// `within` in percent of `decided` (one decimal), none without
    /// decisions.
    pub share_percent: Option<f64>,
}

/// Waiting requests of one age.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AgeRow {
    /// `0-5`, …, `>20`.
    pub bucket: String,
    /// Fewest working days since receipt in it.
    pub from: i64,
    /// Most, none for the last bucket.
    pub to: Option<i64>,
    /// How many requests.
    pub count: i64,
}

/// One operator's decisions.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OperatorDecisions {
    /// The operator's login.
    pub operator: String,
    /// First approvals (four-eyes: a second operator must confirm).
    pub approve_first: i64,
    /// Approvals (the grace period started).
    pub approve: i64,
    /// Rejections.
    pub reject: i64,
    /// Requests sent back to the citizen for more.
    pub ask: i64,
    /// All of them.
    pub total: i64,
}

/// How many grace periods ended one way.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OutcomeRow {
    /// `deleted` (the window ran out, or the holder confirmed on the
    /// hotline), `cancelled` (the holder objected on the hotline),
    /// `returned` (the SMS failed; back to an operator).
    pub outcome: String,
    /// How many.
    pub count: i64,
}

/// The reports behind the dashboard's charts.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Reports {
    /// Today in Vietnam (YYYY-MM-DD).
    pub today: String,
    /// The first working day reported.
    pub from: String,
    /// The service level, in working days after receipt.
    pub service_level_days: u32,
    /// The last 90 working days, oldest first.
    pub days: Vec<DayRow>,
    /// The weeks of those days, oldest first.
    pub weeks: Vec<WeekRow>,
    /// Waiting requests (needs_info, pending_review) by working days since
    /// receipt.
    pub open_by_age: Vec<AgeRow>,
    /// Decisions per operator over the reported days.
    pub operators: Vec<OperatorDecisions>,
    /// Grace periods ended over the reported days, by outcome.
    pub grace_outcomes: Vec<OutcomeRow>,
}

impl Reports {
    /// The last 30 working days.
    pub fn last_30_days(&self) -> &[DayRow] {
        &self.days[self.days.len().saturating_sub(SHORT_WORKING_DAYS)..]
    }
}

/// Vietnam midnight starting `d`, in ms.
fn midnight_ms(d: NaiveDate) -> Millis {
    d.and_hms_opt(0, 0, 0)
        .and_then(|t| t.and_local_timezone(vietnam()).single())
        .map_or(0, |t| t.timestamp_millis())
}

/// A day number of the store (days since 1970-01-01) as a date.
fn date_of(day: i64) -> NaiveDate {
    NaiveDate::default() + Days::new(u64::try_from(day).unwrap_or(0))
}

/// The Monday of `d`'s week.
fn monday_of(d: NaiveDate) -> NaiveDate {
    d - Days::new(u64::from(d.weekday().num_days_from_monday()))
}

/// The last `n` working days up to `today`, oldest first, and the day
/// after the working day before them (days off from then on count with
/// the working day after them).
fn working_window(cal: &Calendar, today: NaiveDate, n: usize) -> (Vec<NaiveDate>, NaiveDate) {
    let mut days = Vec::with_capacity(n);
    let mut d = today;
    while days.len() <= n {
        if cal.is_working_day(d) {
            days.push(d);
        }
        d = d.pred_opt().unwrap_or(d);
    }
    let before = days.pop().unwrap_or(today);
    days.reverse();
    (days, before.succ_opt().unwrap_or(before))
}

/// The working day an event of date `d` counts on: `d`, or the next
/// working day after a day off.
fn working_day_of(cal: &Calendar, d: NaiveDate) -> NaiveDate {
    let mut w = d;
    while !cal.is_working_day(w) {
        w = w.succ_opt().unwrap_or(w);
    }
    w
}

/// The age buckets for a service level of `sl` working days: four equal
/// steps up to it, then beyond it.
fn age_buckets(sl: u32) -> Vec<(i64, Option<i64>)> {
    let sl = i64::from(sl.max(4));
    let step = (sl + 3) / 4;
    let mut out = vec![(0, Some(step))];
    let mut from = step + 1;
    while from <= sl {
        let to = (from + step - 1).min(sl);
        out.push((from, Some(to)));
        from = to + 1;
    }
    out.push((sl + 1, None));
    out
}

/// Computes the reports as of the desk's clock.
pub async fn reports(desk: &Desk) -> Result<Reports, WorkflowError> {
    let store = &desk.store;
    let today = desk.clock.today();
    let (days, window_start) = working_window(&desk.calendar, today, REPORT_WORKING_DAYS);
    let first = days.first().copied().unwrap_or(today);
    let since = midnight_ms(window_start);
    // Weeks are whole: decisions are read from the first week's Monday.
    let week_start = monday_of(first).min(window_start);

    let mut per_day: BTreeMap<NaiveDate, DayRow> = days
        .iter()
        .map(|d| {
            let row = DayRow {
                day: d.to_string(),
                received: 0,
                decided: 0,
            };
            (*d, row)
        })
        .collect();
    for c in store.received_per_day(since).await? {
        if let Some(row) = per_day.get_mut(&working_day_of(&desk.calendar, date_of(c.day))) {
            row.received += c.n;
        }
    }
    let mut weeks: BTreeMap<NaiveDate, (i64, i64)> = BTreeMap::new();
    let mut w = monday_of(first);
    while w <= today {
        weeks.insert(w, (0, 0));
        w = w + Days::new(7);
    }
    let decisions = store
        .actions_per_day_and_due_date(midnight_ms(week_start), &DECISIONS.map(Action::as_str))
        .await?;
    for c in decisions {
        let day = date_of(c.day);
        if day >= window_start {
            if let Some(row) = per_day.get_mut(&working_day_of(&desk.calendar, day)) {
                row.decided += c.n;
            }
        }
        if let Some(week) = weeks.get_mut(&monday_of(day)) {
            week.0 += c.n;
            // The due date is the last day within the service level.
            if c.due_date.as_str() >= day.to_string().as_str() {
                week.1 += c.n;
            }
        }
    }
    Ok(Reports {
        today: today.to_string(),
        from: first.to_string(),
        service_level_days: desk.config.service_level_days,
        days: per_day.into_values().collect(),
        weeks: weeks
            .into_iter()
            .map(|(w, (decided, within))| WeekRow {
                week: w.to_string(),
                decided,
                within,
                share_percent: (decided > 0).then(|| (within * 1000 / decided) as f64 / 10.0),
            })
            .collect(),
        open_by_age: open_by_age(desk, today).await?,
        operators: operators(desk, since).await?,
        grace_outcomes: grace_outcomes(desk, since).await?,
    })
}

/// Waiting requests by working days since receipt.
async fn open_by_age(desk: &Desk, today: NaiveDate) -> Result<Vec<AgeRow>, WorkflowError> {
    let mut rows: Vec<AgeRow> = age_buckets(desk.config.service_level_days)
        .into_iter()
        .map(|(from, to)| AgeRow {
            bucket: to.map_or_else(|| format!(">{}", from - 1), |t| format!("{from}-{t}")),
            from,
            to,
            count: 0,
        })
        .collect();
    for c in desk.store.received_days_in(&WAITING).await? {
        let age = desk
            .calendar
            .working_days_between(date_of(c.day), today)
            .max(0);
        if let Some(row) = rows
            .iter_mut()
            .find(|r| age >= r.from && r.to.is_none_or(|t| age <= t))
        {
            row.count += c.n;
        }
    }
    Ok(rows)
}

/// Decisions per operator since `since` (ms), most first.
async fn operators(desk: &Desk, since: Millis) -> Result<Vec<OperatorDecisions>, WorkflowError> {
    let mut by: BTreeMap<String, OperatorDecisions> = BTreeMap::new();
    for c in desk
        .store
        .actions_per_actor(since, &OPERATOR_ACTIONS.map(Action::as_str))
        .await?
    {
        let row = by
            .entry(c.actor.clone())
            .or_insert_with(|| OperatorDecisions {
                operator: c.actor.clone(),
                approve_first: 0,
                approve: 0,
                reject: 0,
                ask: 0,
                total: 0,
            });
        match c.action.as_str() {
            "approve_first" => row.approve_first += c.n,
            "approve" => row.approve += c.n,
            "reject" => row.reject += c.n,
            _ => row.ask += c.n,
        }
        row.total += c.n;
    }
    let mut rows: Vec<OperatorDecisions> = by.into_values().collect();
    rows.sort_by(|a, b| b.total.cmp(&a.total).then(a.operator.cmp(&b.operator)));
    Ok(rows)
}

/// Grace periods ended since `since` (ms), by outcome.
async fn grace_outcomes(desk: &Desk, since: Millis) -> Result<Vec<OutcomeRow>, WorkflowError> {
    let actions: Vec<&str> = GRACE_ENDS.iter().map(|(a, _)| a.as_str()).collect();
    let counts = desk.store.actions_per_actor(since, &actions).await?;
    Ok(GRACE_OUTCOMES
        .iter()
        .map(|outcome| OutcomeRow {
            outcome: (*outcome).to_owned(),
            count: counts
                .iter()
                .filter(|c| {
                    GRACE_ENDS
                        .iter()
                        .any(|(a, o)| a.as_str() == c.action && o == outcome)
                })
                .map(|c| c.n)
                .sum(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_follow_the_service_level() {
        let b = age_buckets(20);
        assert_eq!(
            b,
            vec![
                (0, Some(5)),
                (6, Some(10)),
                (11, Some(15)),
                (16, Some(20)),
                (21, None)
            ]
        );
        assert_eq!(age_buckets(10).last(), Some(&(11, None)));
    }

    #[test]
    fn weeks_start_on_monday_and_days_are_vietnamese() {
        let d = NaiveDate::from_ymd_opt(2026, 11, 26).unwrap();
        assert_eq!(monday_of(d).to_string(), "2026-11-23");
        assert_eq!(date_of(0).to_string(), "1970-01-01");
        // 2026-11-22 17:00 UTC is midnight of the 23rd in Vietnam.
        assert_eq!(
            midnight_ms(NaiveDate::from_ymd_opt(2026, 11, 23).unwrap()),
            1_795_366_800_000
        );
    }

    #[test]
    fn the_window_is_working_days_and_days_off_count_with_the_next() {
        let cal = Calendar::vietnam();
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        // Wednesday 2026-11-25, three working days back: Mon–Wed; the
        // window's days start after Friday the 20th.
        let (days, start) = working_window(&cal, d("2026-11-25"), 3);
        assert_eq!(
            days,
            vec![d("2026-11-23"), d("2026-11-24"), d("2026-11-25")]
        );
        assert_eq!(start, d("2026-11-21"));
        // From a Sunday the window ends on the Friday before.
        let (days, _) = working_window(&cal, d("2026-11-29"), 1);
        assert_eq!(days, vec![d("2026-11-27")]);
        assert_eq!(working_day_of(&cal, d("2026-11-21")), d("2026-11-23"));
        assert_eq!(working_day_of(&cal, d("2026-11-24")), d("2026-11-24"));
    }
}
