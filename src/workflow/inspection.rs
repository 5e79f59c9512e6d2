//! Inspecting stored messages within the desk's budgets.
//!
//! Inspection is pure CPU work on a stranger's bytes. It runs off the async
//! threads, a panic becomes an error that names it, at most as many
//! messages are inspected at once as the memory budget allows, and one that
//! runs over its time budget is given up (marked failed with the reason)
//! while the others go on.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use crate::intake::auth::TrustedServers;
use crate::intake::{try_examine_trusting, Examined};

/// The most one message's inspection holds in memory (intake bounds it;
/// see docs/performance.md), used to turn the memory budget into a number
/// of messages inspected at once.
pub const PEAK_MB_PER_MESSAGE: u64 = 200;

/// How many messages may be inspected at once, and for how long each.
#[derive(Debug, Clone)]
pub struct Inspectors {
    slots: Arc<Semaphore>,
    width: usize,
    budget: Duration,
    trusted: Option<Arc<TrustedServers>>,
}

impl Inspectors {
    /// Budgets from the configuration: `memory_mb` for all inspections
    /// together (at least one runs), `seconds` for each.
    pub fn new(memory_mb: u64, seconds: u64) -> Inspectors {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let width = usize::try_from(memory_mb / PEAK_MB_PER_MESSAGE)
            .unwrap_or(usize::MAX)
            .clamp(1, cores);
        Inspectors {
            slots: Arc::new(Semaphore::new(width)),
            width,
            budget: Duration::from_secs(seconds.max(1)),
            trusted: None,
        }
    }

    /// Reads each mail's sender authentication from the headers of these
    /// trusted receiving servers (`[sender_auth]`); `None`: not at all.
    pub fn trusting(mut self, trusted: Option<TrustedServers>) -> Inspectors {
        self.trusted = trusted.map(Arc::new);
        self
    }

    /// How many messages are inspected at once.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Inspects one message off the async threads. A message still being
    /// inspected when its budget is spent is given up; its thread keeps its
    /// slot until it ends, so the memory budget holds even then.
    pub async fn examine(&self, raw: Vec<u8>) -> Result<Examined, String> {
        let slot = Arc::clone(&self.slots)
            .acquire_owned()
            .await
            .expect("the inspection slots are never closed");
        let trusted = self.trusted.clone();
        let job = tokio::task::spawn_blocking(move || {
            let _slot = slot;
            examine_guarded(&raw, trusted.as_deref())
        });
        match tokio::time::timeout(self.budget, job).await {
            Ok(Ok(result)) => result,
            Ok(Err(e)) => Err(format!("inspection task failed: {e}")),
            Err(_) => {
                TIMEOUTS.fetch_add(1, Ordering::Relaxed);
                Err(format!(
                    "inspection ran over its time budget of {} s",
                    self.budget.as_secs()
                ))
            }
        }
    }

    /// Inspects messages in parallel within the budgets; one result each,
    /// in order.
    pub async fn examine_all(&self, raws: Vec<Vec<u8>>) -> Vec<Result<Examined, String>> {
        futures::future::join_all(raws.into_iter().map(|raw| self.examine(raw))).await
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
/// inspection panic or stop the process (the fuzzer found none once the
/// nesting scan was in), so the tests that show a broken message is kept,
/// marked failed and does not stop the others set `HUYTK_TEST_PANIC_MARKER`
/// (a message containing that text panics) or `HUYTK_TEST_ABORT_MARKER`
/// (it aborts the process, as a stack overflow would) or
/// `HUYTK_TEST_STALL_MARKER` (it takes a minute, as a decoder caught in a
/// hostile image might). Read once.
enum Fault {
    Panic,
    Abort,
    Stall,
}

fn injected_fault(raw: &[u8]) -> Option<Fault> {
    static MARKERS: LazyLock<[Option<String>; 3]> = LazyLock::new(|| {
        [
            "HUYTK_TEST_PANIC_MARKER",
            "HUYTK_TEST_ABORT_MARKER",
            "HUYTK_TEST_STALL_MARKER",
        ]
        .map(|k| std::env::var(k).ok().filter(|m| !m.is_empty()))
    });
    let has = |m: &Option<String>| {
        m.as_ref()
            .is_some_and(|m| raw.windows(m.len()).any(|w| w == m.as_bytes()))
    };
    if has(&MARKERS[0]) {
        Some(Fault::Panic)
    } else if has(&MARKERS[1]) {
        Some(Fault::Abort)
    } else if has(&MARKERS[2]) {
        Some(Fault::Stall)
    } else {
        None
    }
}

/// Time spent inspecting in this process (microseconds) and how many
/// messages, for `/metrics`.
static INSPECTION_MICROS: AtomicU64 = AtomicU64::new(0);
static INSPECTIONS: AtomicU64 = AtomicU64::new(0);
/// Messages given up for running over the time budget.
static TIMEOUTS: AtomicU64 = AtomicU64::new(0);

/// Seconds spent inspecting and messages inspected by this process.
pub fn inspection_totals() -> (f64, u64) {
    (
        INSPECTION_MICROS.load(Ordering::Relaxed) as f64 / 1e6,
        INSPECTIONS.load(Ordering::Relaxed),
    )
}

/// Messages this process gave up for running over the time budget.
pub fn inspection_timeouts() -> u64 {
    TIMEOUTS.load(Ordering::Relaxed)
}

/// Inspects, turning a panic into an error that names it.
fn examine_guarded(raw: &[u8], trusted: Option<&TrustedServers>) -> Result<Examined, String> {
    let start = Instant::now();
    let result = std::panic::catch_unwind(|| {
        match injected_fault(raw) {
            Some(Fault::Panic) => panic!("injected fault (HUYTK_TEST_PANIC_MARKER)"),
            Some(Fault::Abort) => std::process::abort(),
            Some(Fault::Stall) => std::thread::sleep(Duration::from_secs(60)),
            None => {}
        }
        try_examine_trusting(raw, trusted)
    })
    .map_err(|p| panic_text(&p))
    .and_then(|r| r.map_err(|refused| refused.to_string()));
    INSPECTION_MICROS.fetch_add(start.elapsed().as_micros() as u64, Ordering::Relaxed);
    INSPECTIONS.fetch_add(1, Ordering::Relaxed);
    result
}
