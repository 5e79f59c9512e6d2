//! The one way a test waits for something: poll until it holds, or fail
//! naming what never came. Every wait in the tests goes through here, so a
//! timeout always says what was awaited (and, with the `_for` variants,
//! what was seen last) instead of hanging or failing anonymously.

use std::future::Future;
use std::time::{Duration, Instant};

/// How often a condition is polled: often enough that a test is not
/// slowed, rarely enough that the desk is not busied by the test.
const POLL: Duration = Duration::from_millis(100);

/// Polls `f` until it holds; panics naming `what` after `secs` seconds.
pub async fn wait_until<F, Fut>(what: &str, secs: u64, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    wait_for(what, Duration::from_secs(secs), || {
        let fut = f();
        async move { fut.await.then_some(()).ok_or(String::new()) }
    })
    .await;
}

/// Polls `f` until it gives `Ok(value)`, returning the value; panics naming
/// `what` and the last `Err` (what was seen instead) after `timeout`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let start = Instant::now();
    loop {
        match f().await {
            Ok(v) => return v,
            Err(seen) => timed_out(what, start, timeout, &seen),
        }
        tokio::time::sleep(POLL).await;
    }
}

/// `wait_until` for a test outside the async runtime (a server starting).
pub fn wait_until_blocking(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    wait_for_blocking(what, timeout, || f().then_some(()).ok_or(String::new()));
}

/// `wait_for` for a test outside the async runtime.
pub fn wait_for_blocking<T>(
    what: &str,
    timeout: Duration,
    mut f: impl FnMut() -> Result<T, String>,
) -> T {
    let start = Instant::now();
    loop {
        match f() {
            Ok(v) => return v,
            Err(seen) => timed_out(what, start, timeout, &seen),
        }
        std::thread::sleep(POLL.min(Duration::from_millis(50)));
    }
}

/// Panics once `timeout` has passed since `start`, naming what was awaited.
fn timed_out(what: &str, start: Instant, timeout: Duration, seen: &str) {
    if start.elapsed() >= timeout {
        if seen.is_empty() {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        panic!("timed out after {timeout:?} waiting for {what}; last seen:\n{seen}");
    }
}
