//! The desk: what every step of a request's life needs (the database, the
//! calendar, the letters, the settings, the account store, the clock), and
//! the history lines each step writes with what it does.

use std::sync::Arc;

use chrono::Datelike;

use super::inspection::Inspectors;
use crate::config::DeskConfig;
use crate::domain::calendar::Calendar;
use crate::domain::time::{Clock, Millis};
use crate::domain::{Action, RequestState};
use crate::intake::InspectOptions;
use crate::notify::Templates;
use crate::store::{AuditEntry, Store};

/// The desk: what the workflow's steps share.
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
    /// Where "now" comes from: the machine's clock, or a test's.
    pub clock: Clock,
    /// Inspection's time and memory budgets.
    pub inspectors: Inspectors,
}

impl Desk {
    /// Now, by the desk's clock: every instant the workflow records (a
    /// request received, a history line, a window's start) is read here,
    /// so a test that sets the clock sees the whole desk at that time.
    pub(super) fn now(&self) -> Millis {
        self.clock.now_ms()
    }

    /// What inspection needs of today: the year, to judge birth years.
    pub(super) fn inspect_options(&self) -> InspectOptions {
        InspectOptions {
            current_year: self.clock.vietnam_now().year(),
        }
    }

    /// A line of a request's history (or the desk's, without a request),
    /// stamped now: who did what, the move it made, and why.
    pub(super) fn history(
        &self,
        request_id: Option<i64>,
        actor: &str,
        action: Action,
        from: Option<RequestState>,
        to: Option<RequestState>,
        detail: Option<String>,
    ) -> AuditEntry {
        AuditEntry {
            at: self.now(),
            request_id,
            actor: actor.into(),
            action: action.as_str().into(),
            from_state: from.map(|s| s.as_str().to_owned()),
            to_state: to.map(|s| s.as_str().to_owned()),
            detail,
        }
    }

    /// A history line of something the desk did by itself.
    pub(super) fn system(
        &self,
        request_id: i64,
        action: Action,
        from: Option<RequestState>,
        to: Option<RequestState>,
        detail: Option<String>,
    ) -> AuditEntry {
        self.history(Some(request_id), "system", action, from, to, detail)
    }

    /// The window in whole days, as letters and the SMS say it.
    pub fn grace_days(&self) -> u64 {
        self.config.grace_seconds.div_ceil(86_400).max(1)
    }
}
