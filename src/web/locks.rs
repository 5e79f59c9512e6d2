//! The console's locks: the login limit, the bounded pool that checks and
//! hashes passwords, and the gate on photo decoding.
//!
//! The login limit counts failures per login name *and client address*
//! together, plus per client whatever the name. Each attempt is written as
//! a failure before its password is checked (a success forgets it), so
//! concurrent attempts all see each other: a burst of 100 gets exactly as
//! many password checks as the limit allows. A stranger's failures lock
//! out only the stranger's own address: the operator, from anywhere else,
//! logs in as usual (`docs/operations.md`, "Logging in").

use std::sync::Arc;
use tokio::sync::Semaphore;

use super::{auth, Console, WebError};
use crate::domain::time::now_ms;
use crate::store::OperatorRow;

/// What a login attempt came to.
pub enum LoginResult {
    /// Logged in.
    Ok(OperatorRow),
    /// Wrong login or password.
    Wrong,
    /// Too many failures from this client: minutes until the next try.
    Blocked(i64),
}

/// Runs argon2 off the async runtime, a bounded number at a time.
#[derive(Clone)]
pub struct PasswordPool {
    permits: Arc<Semaphore>,
}

impl PasswordPool {
    /// At most `n` checks or hashes at once.
    pub fn new(n: usize) -> PasswordPool {
        PasswordPool {
            permits: Arc::new(Semaphore::new(n.max(1))),
        }
    }

    /// Checks a password against a stored hash.
    pub async fn verify(&self, password: &str, phc: &str) -> bool {
        let (password, phc) = (password.to_owned(), phc.to_owned());
        self.run(move || auth::verify_password(&password, &phc))
            .await
            .unwrap_or(false)
    }

    /// Hashes a new password.
    pub async fn hash(&self, password: &str) -> Result<String, WebError> {
        let password = password.to_owned();
        self.run(move || auth::hash_password(&password))
            .await
            .ok_or_else(|| WebError::BadRequest("the password could not be hashed".into()))
    }

    async fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
        let _permit = self.permits.acquire().await.ok()?;
        tokio::task::spawn_blocking(f).await.ok()
    }
}

/// Checks a login from `client`, under the limit.
pub async fn try_login(
    c: &Console,
    login: &str,
    password: &str,
    client: &str,
) -> Result<LoginResult, WebError> {
    let key = login.trim().to_ascii_lowercase();
    let window = c.web().login_window_minutes.max(1) as i64 * 60_000;
    let store = c.store();
    // Counted first, checked after: this attempt is among those counted.
    store.record_login_attempt(&key, client).await?;
    let (by_pair, by_client, oldest) = store
        .login_failures(&key, client, now_ms() - window)
        .await?;
    if by_pair > i64::from(c.web().max_failed_logins)
        || by_client > i64::from(c.web().max_failed_logins_per_client)
    {
        let lifts = oldest.unwrap_or_else(now_ms) + window;
        let minutes = ((lifts - now_ms()) as f64 / 60_000.0).ceil().max(1.0) as i64;
        tracing::warn!(client, "login refused: too many failures from this client");
        return Ok(LoginResult::Blocked(minutes));
    }
    let op = match crate::domain::Login::parse(login) {
        Ok(l) => store.operator(&l).await?,
        Err(_) => None,
    };
    // A login that does not exist costs as much as a wrong password.
    let hash = op
        .as_ref()
        .map_or(auth::dummy_hash().to_owned(), |o| o.password_hash.clone());
    let ok = c.passwords().verify(password, &hash).await;
    match op {
        Some(op) if ok && !op.disabled => {
            store.clear_login_failures(&key, client).await?;
            Ok(LoginResult::Ok(op))
        }
        _ => Ok(LoginResult::Wrong),
    }
}
