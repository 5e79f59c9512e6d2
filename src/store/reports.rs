//! What the supervisors' reports read: counts grouped by Vietnam day (or by
//! operator and action), never a row per request, each from an index
//! (`requests_received`, `requests_state_received`, `audit_log_action`).
//! The same statements run on SQLite and PostgreSQL: the day is integer
//! arithmetic on the stored milliseconds, which both do alike.

use sqlx::Row;

use super::{Store, StoreError};

/// One day in milliseconds.
const DAY_MS: i64 = 86_400_000;

/// The Vietnam day of the column `col`: days since 1970-01-01, Vietnam
/// time (every stored instant is after the epoch, so division truncates
/// the same way on both databases).
fn vietnam_day(col: &str) -> String {
    let offset_ms = i64::from(crate::domain::time::vietnam().local_minus_utc()) * 1000;
    format!("(({col} + {offset_ms}) / {DAY_MS})")
}

/// `$first, $first+1, …` for `n` bound values.
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A count on one Vietnam day (days since 1970-01-01).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayCount {
    /// Days since 1970-01-01, Vietnam time.
    pub day: i64,
    /// How many.
    pub n: i64,
}

/// Decisions on one Vietnam day for requests due on one date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionCount {
    /// Days since 1970-01-01, Vietnam time, of the decision.
    pub day: i64,
    /// The request's due date (YYYY-MM-DD).
    pub due_date: String,
    /// How many.
    pub n: i64,
}

/// How many audit rows of one action one actor wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActorCount {
    /// The operator's login (or `system`).
    pub actor: String,
    /// The action.
    pub action: String,
    /// How many.
    pub n: i64,
}

impl Store {
    /// Requests received since `since_ms`, per Vietnam day.
    pub async fn received_per_day(&self, since_ms: i64) -> Result<Vec<DayCount>, StoreError> {
        let day = vietnam_day("received_at");
        let sql = format!(
            "SELECT {day} AS day, COUNT(*) AS n FROM requests WHERE received_at >= $1 GROUP BY {day} ORDER BY 1"
        );
        let rows = sqlx::query(&sql)
            .bind(since_ms)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(day_count).collect()
    }

    /// Requests in one of `states`, per Vietnam day of their receipt.
    pub async fn received_days_in(&self, states: &[&str]) -> Result<Vec<DayCount>, StoreError> {
        let day = vietnam_day("received_at");
        let sql = format!(
            "SELECT {day} AS day, COUNT(*) AS n FROM requests WHERE state IN ({}) GROUP BY {day} ORDER BY 1",
            placeholders(1, states.len())
        );
        let mut q = sqlx::query(&sql);
        for s in states {
            q = q.bind(*s);
        }
        let rows = q.fetch_all(self.pool()).await?;
        rows.iter().map(day_count).collect()
    }

    /// Audit rows of `actions` since `since_ms`, per Vietnam day and their
    /// request's due date.
    pub async fn actions_per_day_and_due_date(
        &self,
        since_ms: i64,
        actions: &[&str],
    ) -> Result<Vec<DecisionCount>, StoreError> {
        let day = vietnam_day("a.at");
        let sql = format!(
            "SELECT {day} AS day, r.due_date AS due_date, COUNT(*) AS n
             FROM audit_log a JOIN requests r ON r.id = a.request_id
             WHERE a.action IN ({}) AND a.at >= $1
             GROUP BY {day}, r.due_date ORDER BY 1, 2",
            placeholders(2, actions.len())
        );
        let mut q = sqlx::query(&sql).bind(since_ms);
        for a in actions {
            q = q.bind(*a);
        }
        let rows = q.fetch_all(self.pool()).await?;
        rows.iter()
            .map(|r| {
                Ok(DecisionCount {
                    day: r.try_get("day")?,
                    due_date: r.try_get("due_date")?,
                    n: r.try_get("n")?,
                })
            })
            .collect()
    }

    /// Audit rows of `actions` since `since_ms`, per actor and action.
    pub async fn actions_per_actor(
        &self,
        since_ms: i64,
        actions: &[&str],
    ) -> Result<Vec<ActorCount>, StoreError> {
        let sql = format!(
            "SELECT actor, action, COUNT(*) AS n FROM audit_log
             WHERE action IN ({}) AND at >= $1 GROUP BY actor, action ORDER BY actor, action",
            placeholders(2, actions.len())
        );
        let mut q = sqlx::query(&sql).bind(since_ms);
        for a in actions {
            q = q.bind(*a);
        }
        let rows = q.fetch_all(self.pool()).await?;
        rows.iter()
            .map(|r| {
                Ok(ActorCount {
                    actor: r.try_get("actor")?,
                    action: r.try_get("action")?,
                    n: r.try_get("n")?,
                })
            })
            .collect()
    }
}

fn day_count(r: &sqlx::any::AnyRow) -> Result<DayCount, StoreError> {
    Ok(DayCount {
        day: r.try_get("day")?,
        n: r.try_get("n")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_day_is_vietnam_midnight_to_midnight() {
        // 2026-11-22 17:00 UTC is 2026-11-23 00:00 in Vietnam.
        assert_eq!(vietnam_day("at"), "((at + 25200000) / 86400000)");
        let midnight_vn = 1_795_366_800_000_i64;
        let day = (midnight_vn + 25_200_000) / DAY_MS;
        let date = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap()
            + chrono::Days::new(u64::try_from(day).unwrap());
        assert_eq!(date.to_string(), "2026-11-23");
        assert_eq!((midnight_vn - 1 + 25_200_000) / DAY_MS, day - 1);
        assert_eq!(placeholders(2, 3), "$2, $3, $4");
    }
}
