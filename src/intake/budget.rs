//! The time one message may take to inspect. Inspection is pure code, but
//! a crafted message can still make it long (a huge picture, thousands of
//! parts): the work checks a [`Budget`] between parts and inside its long
//! loops, and stops with [`OverBudget`] once the deadline has passed, so
//! the caller marks that one message failed and goes on with the others.
//!
//! Reading the monotonic clock is not I/O; no wall-clock time enters the
//! report.

use std::time::{Duration, Instant};

/// Time a message may take when the caller names no other budget.
pub const DEFAULT_TIME_BUDGET: Duration = Duration::from_secs(20);

/// A deadline for one message's inspection.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    limit: Duration,
    deadline: Option<Instant>,
}

/// The deadline passed before inspection was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("time budget of {} s exceeded", format_seconds(*.limit))]
pub struct OverBudget {
    /// The budget that was given.
    pub limit: Duration,
}

fn format_seconds(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{}", ms / 1000)
    } else {
        format!("{:.3}", d.as_secs_f64())
    }
}

impl Budget {
    /// A budget of `limit`, counted from now.
    pub fn starting_now(limit: Duration) -> Budget {
        Budget {
            limit,
            // A limit too large for the clock is no limit.
            deadline: Instant::now().checked_add(limit),
        }
    }

    /// No deadline (tests, offline tools that want every answer).
    pub fn unlimited() -> Budget {
        Budget {
            limit: Duration::MAX,
            deadline: None,
        }
    }

    /// `Err` once the deadline has passed.
    pub fn check(&self) -> Result<(), OverBudget> {
        match self.deadline {
            Some(d) if Instant::now() >= d => Err(OverBudget { limit: self.limit }),
            _ => Ok(()),
        }
    }

    /// The budget this one was given.
    pub fn limit(&self) -> Duration {
        self.limit
    }
}

impl Default for Budget {
    /// [`DEFAULT_TIME_BUDGET`] from now.
    fn default() -> Budget {
        Budget::starting_now(DEFAULT_TIME_BUDGET)
    }
}

/// Heap one inspection may need beyond the message itself, at most: the
/// largest picture decode (100 MB of pixels for the formats read whole,
/// or 2 × 50 MB of grey for a 50 MP picture turned upright), the files
/// unpacked from archives (48 MB), and a margin for the report.
pub const PEAK_MEMORY_BASE: u64 = 160 * 1024 * 1024;

/// An upper estimate of the memory inspecting a message of `raw_len`
/// bytes may take: [`PEAK_MEMORY_BASE`] plus three times the message (its
/// line-ending copy, the decoded parts, the parser's tree). The daemon can
/// admit messages into parallel inspection while the sum of their
/// estimates stays within its configured memory budget. Measured peaks
/// (docs/performance.md) stay well under it.
pub fn peak_memory_estimate(raw_len: usize) -> u64 {
    PEAK_MEMORY_BASE.saturating_add((raw_len as u64).saturating_mul(3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spent_budget_says_so_and_names_its_limit() {
        let b = Budget::starting_now(Duration::ZERO);
        let e = b.check().unwrap_err();
        assert_eq!(e.to_string(), "time budget of 0 s exceeded");
        assert_eq!(
            OverBudget {
                limit: Duration::from_secs(20)
            }
            .to_string(),
            "time budget of 20 s exceeded"
        );
        assert!(Budget::starting_now(Duration::from_secs(3600))
            .check()
            .is_ok());
        assert!(Budget::unlimited().check().is_ok());
        assert!(Budget::starting_now(Duration::MAX).check().is_ok());
    }
}
