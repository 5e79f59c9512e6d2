//! The queue as operators work it: which requests wait, how many working
//! days each has left before the service level, who holds it, and where
//! the next page starts. The console's queue page and the API's list read
//! it from here.

use chrono::NaiveDate;

use super::desk::Desk;
use super::WorkflowError;
use crate::store::{QueueFilter, RequestRow};

/// How soon an open request is due, as the queue's filter asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// Within 3 working days.
    Soon,
    /// Past its due date.
    Overdue,
}

/// One queue row as shown.
#[derive(Debug, serde::Serialize)]
pub struct QueueRow {
    /// The request.
    #[serde(flatten)]
    pub request: RequestRow,
    /// Working days left.
    pub working_days_left: i64,
    /// Who holds it.
    pub holder: Option<String>,
}

/// A page of the queue.
pub struct QueuePage {
    /// The rows.
    pub rows: Vec<QueueRow>,
    /// How many match (capped).
    pub total: i64,
    /// The `after` of the next page, if there is one.
    pub next_after: Option<String>,
}

/// Working days ahead that count as "due soon": the queue's filter, the
/// dashboard's card and the supervisors' digest all say it with this.
const DUE_SOON_WORKING_DAYS: u32 = 3;

impl Desk {
    /// The last due date a request may have to be due soon, seen from `day`.
    pub fn due_soon_by(&self, day: NaiveDate) -> NaiveDate {
        self.calendar.add_working_days(day, DUE_SOON_WORKING_DAYS)
    }

    /// The last due date (`YYYY-MM-DD`) a request may have to count as due
    /// `how`, today.
    pub fn due_by(&self, how: Due) -> String {
        let today = self.clock.today();
        match how {
            Due::Soon => self.due_soon_by(today).to_string(),
            Due::Overdue => (today - chrono::Days::new(1)).to_string(),
        }
    }

    /// Working days from today to `due` (`YYYY-MM-DD`); negative once past.
    pub fn working_days_left(&self, due: &str) -> i64 {
        NaiveDate::parse_from_str(due, "%Y-%m-%d")
            .map(|d| self.calendar.working_days_between(self.clock.today(), d))
            .unwrap_or(0)
    }

    /// Reads a page of the queue with each row's working days left and
    /// holder.
    pub async fn queue_page(&self, f: &QueueFilter) -> Result<QueuePage, WorkflowError> {
        let (rows, total) = self.store.queue(f).await?;
        let now = self.now();
        let rows: Vec<QueueRow> = rows
            .into_iter()
            .map(|r| QueueRow {
                working_days_left: self.working_days_left(&r.due_date),
                holder: r.holder(now).map(str::to_owned),
                request: r,
            })
            .collect();
        let next_after = (rows.len() as i64 == f.limit)
            .then(|| rows.last())
            .flatten()
            .map(|r| {
                let r = &r.request;
                format!("{}.{}.{}", r.due_date, r.received_at, r.id)
            });
        Ok(QueuePage {
            rows,
            total,
            next_after,
        })
    }
}
