//! The desk's clock and its time zone.
//!
//! Every "now" of the desk comes through [`Clock`], so the daily timers
//! (the supervisors' digest, silent-close, retention) can be driven by a
//! test at any hour instead of by the machine's wall clock. Days and hours
//! are Vietnam's (UTC+7, no daylight saving), whatever the machine's own
//! time zone.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, FixedOffset, NaiveDate, Timelike};

/// Milliseconds since the Unix epoch, as the database stores instants.
pub type Millis = i64;

/// Vietnam's time zone: UTC+7 all year.
pub fn vietnam() -> FixedOffset {
    FixedOffset::east_opt(7 * 3600).expect("a valid offset")
}

/// The machine's clock, in milliseconds since the epoch.
pub fn now_ms() -> Millis {
    chrono::Utc::now().timestamp_millis()
}

/// Where "now" comes from: the machine's clock, or one a test sets.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    manual: Option<Arc<AtomicI64>>,
}

impl Clock {
    /// The machine's clock.
    pub fn system() -> Clock {
        Clock { manual: None }
    }

    /// A clock that stands at `at` until [`Clock::set`] moves it.
    pub fn manual(at: Millis) -> Clock {
        Clock {
            manual: Some(Arc::new(AtomicI64::new(at))),
        }
    }

    /// Now, in milliseconds since the epoch.
    pub fn now_ms(&self) -> Millis {
        self.manual
            .as_ref()
            .map_or_else(now_ms, |m| m.load(Ordering::SeqCst))
    }

    /// Moves a manual clock to `at`; the machine's clock ignores it.
    pub fn set(&self, at: Millis) {
        if let Some(m) = &self.manual {
            m.store(at, Ordering::SeqCst);
        }
    }

    /// Now in Vietnam.
    pub fn vietnam_now(&self) -> DateTime<FixedOffset> {
        in_vietnam(self.now_ms())
    }

    /// Today's date in Vietnam.
    pub fn today(&self) -> NaiveDate {
        self.vietnam_now().date_naive()
    }
}

/// An instant as Vietnam's local time (the epoch for an instant chrono
/// cannot represent, which no stored value is).
pub fn in_vietnam(ms: Millis) -> DateTime<FixedOffset> {
    DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .with_timezone(&vietnam())
}

/// An instant as operators read it: `dd/mm/YYYY HH:MM`, Vietnam time.
pub fn format_ms(ms: Millis) -> String {
    in_vietnam(ms).format("%d/%m/%Y %H:%M").to_string()
}

/// The day whose digest is due at `now`: today in Vietnam once the local
/// hour has reached `digest_hour`, else none yet.
pub fn digest_day_due(now: Millis, digest_hour: u32) -> Option<NaiveDate> {
    let local = in_vietnam(now);
    (local.hour() >= digest_hour).then(|| local.date_naive())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> Millis {
        DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis()
    }

    #[test]
    fn the_digest_is_due_from_its_vietnam_hour_whatever_the_utc_hour() {
        // 2026-11-23 00:00 in Vietnam is 2026-11-22 17:00 UTC.
        let midnight_vn = utc("2026-11-22T17:00:00Z");
        for hour in 0..24 {
            let at = midnight_vn + i64::from(hour) * 3_600_000 + 59 * 60_000;
            let due = digest_day_due(at, 7);
            if hour < 7 {
                assert_eq!(due, None, "{hour}:59 in Vietnam");
            } else {
                assert_eq!(due, NaiveDate::from_ymd_opt(2026, 11, 23), "{hour}:59");
            }
        }
        assert_eq!(
            digest_day_due(utc("2026-11-23T00:00:00Z"), 7),
            NaiveDate::from_ymd_opt(2026, 11, 23)
        );
        assert_eq!(digest_day_due(utc("2026-11-22T23:59:59Z"), 7), None);
    }

    #[test]
    fn a_manual_clock_stands_until_set() {
        let c = Clock::manual(utc("2026-11-22T16:59:59Z"));
        assert_eq!(c.today(), NaiveDate::from_ymd_opt(2026, 11, 22).unwrap());
        c.set(utc("2026-11-22T17:00:00Z"));
        assert_eq!(c.today(), NaiveDate::from_ymd_opt(2026, 11, 23).unwrap());
        assert_eq!(format_ms(c.now_ms()), "23/11/2026 00:00");
        let sys = Clock::system();
        sys.set(0);
        assert!(sys.now_ms() > utc("2026-01-01T00:00:00Z"));
    }
}
