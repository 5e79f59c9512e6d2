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
use crate::intake::{peak_memory_estimate, try_examine_trusting_within, Examined};
use crate::mailbox::sender_check::{SenderCheck, AUTHSERV_ID};

/// The most one message's inspection holds in memory (intake bounds it;
/// docs/performance.md): the memory budget always admits one message.
pub const PEAK_MB_PER_MESSAGE: u64 = 200;

/// How many messages may be inspected at once, and for how long each.
#[derive(Debug, Clone)]
pub struct Inspectors {
    /// The memory budget in MiB: a message takes its estimated peak.
    memory: Arc<Semaphore>,
    memory_mb: u64,
    /// At most one inspection a core.
    cores: Arc<Semaphore>,
    budget: Duration,
    trusted: Option<Arc<TrustedServers>>,
    /// huytk's own sender check (`[sender_auth] check = "resolver"`).
    sender_check: Option<Arc<dyn SenderCheck>>,
}

impl Inspectors {
    /// Budgets from the configuration: `memory_mb` for all inspections
    /// together (one message always fits), `seconds` for each.
    pub fn new(memory_mb: u64, seconds: u64) -> Inspectors {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let memory_mb = memory_mb.clamp(PEAK_MB_PER_MESSAGE, u64::from(u32::MAX >> 4));
        Inspectors {
            memory: Arc::new(Semaphore::new(memory_mb as usize)),
            memory_mb,
            cores: Arc::new(Semaphore::new(cores)),
            budget: Duration::from_secs(seconds.max(1)),
            trusted: None,
            sender_check: None,
        }
    }

    /// Reads each mail's sender authentication from the headers of these
    /// trusted receiving servers (`[sender_auth]`); `None`: not at all.
    pub fn trusting(mut self, trusted: Option<TrustedServers>) -> Inspectors {
        self.trusted = trusted.map(Arc::new);
        self
    }

    /// Checks each mail's sender with this check (DNS, at ingest) while it
    /// is inspected: its results become the mail's `auth` evidence, as
    /// trusted headers' would. `None`: not at all.
    pub fn checking(mut self, check: Option<Arc<dyn SenderCheck>>) -> Inspectors {
        self.sender_check = check;
        self
    }

    /// Inspects one message (within the budgets, below) and, with a
    /// sender check, checks its sender at the same time: the check's
    /// bounded time (DNS) overlaps inspection's, and what it found is the
    /// message's `auth`.
    pub async fn examine(&self, raw: Vec<u8>) -> Result<Examined, String> {
        let Some(check) = self.sender_check.clone() else {
            return self.inspect(raw).await;
        };
        let copy = raw.clone();
        let (examined, found) = tokio::join!(self.inspect(raw), check.check(&copy));
        examined.map(|mut e| {
            e.auth = Some(crate::intake::auth::from_results(
                &found,
                e.from.as_deref(),
                AUTHSERV_ID,
            ));
            e
        })
    }

    /// Inspects one message off the async threads, once its estimated
    /// peak memory fits in the budget. Inspection stops itself when its
    /// time budget is spent; should it not, the message is given up a
    /// moment later, and its thread keeps its share of the budgets until it
    /// ends, so the budgets hold even then.
    async fn inspect(&self, raw: Vec<u8>) -> Result<Examined, String> {
        let need = (peak_memory_estimate(raw.len()) >> 20).clamp(1, self.memory_mb) as u32;
        let memory = Arc::clone(&self.memory)
            .acquire_many_owned(need)
            .await
            .expect("the inspection budget is never closed");
        let core = Arc::clone(&self.cores)
            .acquire_owned()
            .await
            .expect("the inspection budget is never closed");
        let budget = self.budget;
        let trusted = self.trusted.clone();
        let job = tokio::task::spawn_blocking(move || {
            let _held = (memory, core);
            examine_guarded(&raw, budget, trusted.as_deref())
        });
        match tokio::time::timeout(budget + Duration::from_secs(5), job).await {
            Ok(Ok(result)) => result.inspect_err(|e| {
                if e.contains("time budget") {
                    TIMEOUTS.fetch_add(1, Ordering::Relaxed);
                }
            }),
            Ok(Err(e)) => Err(format!("inspection task failed: {e}")),
            Err(_) => {
                TIMEOUTS.fetch_add(1, Ordering::Relaxed);
                Err(format!(
                    "inspection ran over its time budget of {} s",
                    budget.as_secs()
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
fn examine_guarded(
    raw: &[u8],
    budget: Duration,
    trusted: Option<&TrustedServers>,
) -> Result<Examined, String> {
    let start = Instant::now();
    let result = std::panic::catch_unwind(|| {
        match injected_fault(raw) {
            Some(Fault::Panic) => panic!("injected fault (HUYTK_TEST_PANIC_MARKER)"),
            Some(Fault::Abort) => std::process::abort(),
            Some(Fault::Stall) => std::thread::sleep(Duration::from_secs(60)),
            None => {}
        }
        try_examine_trusting_within(raw, trusted, budget)
    })
    .map_err(|p| panic_text(&p))
    .and_then(|r| r.map_err(|refused| refused.to_string()));
    INSPECTION_MICROS.fetch_add(start.elapsed().as_micros() as u64, Ordering::Relaxed);
    INSPECTIONS.fetch_add(1, Ordering::Relaxed);
    result
}
