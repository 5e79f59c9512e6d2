//! Working days in Vietnam for the 20-working-day service level.
//!
//! Not a rule but a table (SPEC section 2): Monday–Friday, minus the public
//! holidays of each year, plus the Saturdays worked in exchange. The shipped
//! table is `data/calendar-vn.toml`; config can add to it.

use chrono::{Datelike, NaiveDate, Weekday};
use std::collections::{BTreeMap, BTreeSet};

/// The shipped table (2024–2027).
pub const SHIPPED: &str = include_str!("../../data/calendar-vn.toml");

/// Why a calendar table could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CalendarError {
    /// Not TOML of the expected shape.
    #[error("calendar table: {0}")]
    Format(String),
    /// A date that is not `YYYY-MM-DD`.
    #[error("calendar table: {0:?} is not a date (YYYY-MM-DD)")]
    Date(String),
}

/// A working-day calendar.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Calendar {
    holidays: BTreeSet<NaiveDate>,
    working_saturdays: BTreeSet<NaiveDate>,
    years: BTreeSet<i32>,
}

#[derive(serde::Deserialize)]
struct YearTable {
    #[serde(default)]
    holidays: Vec<String>,
    #[serde(default)]
    working_saturdays: Vec<String>,
}

fn date(s: &str) -> Result<NaiveDate, CalendarError> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").map_err(|_| CalendarError::Date(s.to_owned()))
}

impl Calendar {
    /// The shipped Vietnamese calendar.
    pub fn vietnam() -> Calendar {
        Calendar::from_toml(SHIPPED).expect("the shipped calendar parses")
    }

    /// Reads a table of `[YEAR] holidays = [...] working_saturdays = [...]`.
    pub fn from_toml(text: &str) -> Result<Calendar, CalendarError> {
        let table: BTreeMap<String, YearTable> =
            toml::from_str(text).map_err(|e| CalendarError::Format(e.to_string()))?;
        let mut cal = Calendar::default();
        for (year, t) in table {
            let y: i32 = year
                .parse()
                .map_err(|_| CalendarError::Format(format!("{year:?} is not a year")))?;
            cal.years.insert(y);
            cal.add(&t.holidays, &t.working_saturdays)?;
        }
        Ok(cal)
    }

    /// Adds holidays and worked Saturdays (from config).
    pub fn add(
        &mut self,
        holidays: &[String],
        working_saturdays: &[String],
    ) -> Result<(), CalendarError> {
        for h in holidays {
            self.holidays.insert(date(h)?);
        }
        for s in working_saturdays {
            self.working_saturdays.insert(date(s)?);
        }
        Ok(())
    }

    /// Whether the table covers `year` (outside it only weekends count).
    pub fn covers(&self, year: i32) -> bool {
        self.years.contains(&year)
    }

    /// Whether `d` is a working day.
    pub fn is_working_day(&self, d: NaiveDate) -> bool {
        if self.working_saturdays.contains(&d) {
            return true;
        }
        !matches!(d.weekday(), Weekday::Sat | Weekday::Sun) && !self.holidays.contains(&d)
    }

    /// The date `n` working days after `received`; counting starts the day
    /// after receipt.
    pub fn add_working_days(&self, received: NaiveDate, n: u32) -> NaiveDate {
        let mut d = received;
        let mut left = n;
        while left > 0 {
            d = d.succ_opt().expect("date in range");
            if self.is_working_day(d) {
                left -= 1;
            }
        }
        d
    }

    /// Working days from `from` (exclusive) to `to` (inclusive); negative
    /// when `to` is before `from` (overdue).
    pub fn working_days_between(&self, from: NaiveDate, to: NaiveDate) -> i64 {
        let (a, b, sign) = if to >= from {
            (from, to, 1)
        } else {
            (to, from, -1)
        };
        let mut d = a;
        let mut n = 0;
        while d < b {
            d = d.succ_opt().expect("date in range");
            if self.is_working_day(d) {
                n += 1;
            }
        }
        sign * n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        date(s).unwrap()
    }

    #[test]
    fn shipped_table_covers_2024_to_2027() {
        let c = Calendar::vietnam();
        for y in 2024..=2027 {
            assert!(c.covers(y));
        }
        assert!(!c.is_working_day(d("2025-01-29")), "Tết");
        assert!(!c.is_working_day(d("2024-09-02")), "Quốc khánh");
        assert!(c.is_working_day(d("2024-05-04")), "swapped Saturday");
        assert!(!c.is_working_day(d("2024-05-11")), "plain Saturday");
    }

    #[test]
    fn twenty_working_days_skip_weekends_and_tet() {
        let c = Calendar::vietnam();
        // Received Mon 20 Jan 2025: Tết (27–31 Jan) and four weekends skipped.
        assert_eq!(c.add_working_days(d("2025-01-20"), 20), d("2025-02-24"));
        // No holidays: four weeks.
        assert_eq!(c.add_working_days(d("2025-06-02"), 20), d("2025-06-30"));
        assert_eq!(c.working_days_between(d("2025-06-02"), d("2025-06-30")), 20);
        assert_eq!(
            c.working_days_between(d("2025-06-30"), d("2025-06-02")),
            -20
        );
    }

    #[test]
    fn config_can_add_days() {
        let mut c = Calendar::vietnam();
        c.add(&["2025-06-03".into()], &[]).unwrap();
        assert!(!c.is_working_day(d("2025-06-03")));
        assert!(c.add(&["3/6/2025".into()], &[]).is_err());
    }
}
