//! Managing who works the desk: adding an operator, resetting a password,
//! disabling and enabling, changing a role, and API tokens. The CLI, the
//! console's operators and account pages, and the API all come here, so
//! each rule is written once and each change leaves one audit row, written
//! in the same transaction as the change.

use std::future::Future;

use rand::RngCore;

use crate::domain::operator::{password_problem, ApiToken, TokenId, TOKEN_BYTES};
use crate::domain::time::now_ms;
use crate::domain::Action;
use crate::domain::{Login, Role};
use crate::store::{ApiTokenInfo, AuditEntry, OperatorRow, Store, StoreError};

/// Longest display name or token label kept (they are shown in lists).
const MAX_LABEL: usize = 80;

/// Who makes a change: an operator of the console or API, or a person at
/// the server's command line (who can read the database already, so may
/// do everything).
#[derive(Debug, Clone)]
pub enum Actor<'a> {
    /// A signed-in operator.
    Operator(&'a OperatorRow),
    /// The CLI, run by this local user.
    Local(String),
}

impl Actor<'_> {
    /// The CLI run by `user`: audited as `cli:<user>`, a name no login can
    /// take (logins have no `:`).
    pub fn local(user: &str) -> Actor<'static> {
        Actor::Local(format!("cli:{user}"))
    }

    /// The name the audit log records.
    pub fn name(&self) -> &str {
        match self {
            Actor::Operator(op) => op.login.as_str(),
            Actor::Local(name) => name,
        }
    }

    fn require_admin(&self) -> Result<(), OperatorError> {
        match self {
            Actor::Operator(op) if !op.role.allows(Role::Admin) => {
                Err(OperatorError::Forbidden(op.role))
            }
            _ => Ok(()),
        }
    }

    fn is(&self, login: &Login) -> bool {
        matches!(self, Actor::Operator(op) if op.login == *login)
    }

    /// Tokens: an operator manages only their own; the CLI anyone's.
    fn require_self_or_local(&self, login: &Login) -> Result<(), OperatorError> {
        match self {
            Actor::Operator(op) if op.login != *login => Err(OperatorError::Forbidden(op.role)),
            _ => Ok(()),
        }
    }
}

/// Why an operator change was refused, or what failed.
#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    /// The database.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The actor's role does not allow it.
    #[error("your role ({0}) does not allow this")]
    Forbidden(Role),
    /// No operator has this login.
    #[error("no operator {0}")]
    NotFound(Login),
    /// A login, role, password or action we do not accept.
    #[error("{0}")]
    Invalid(String),
    /// The login is taken.
    #[error("{0} đã có")]
    Exists(Login),
    /// An admin tried to disable, enable or change the role of themselves.
    #[error("không tự khóa chính mình")]
    OwnAccount,
    /// The change would leave the desk without an enabled admin.
    #[error("{0} is the last enabled admin: make another admin first")]
    LastAdmin(Login),
    /// A disabled operator gets no token.
    #[error("{0} is disabled")]
    Disabled(Login),
    /// The password hashing pool is gone (the server is stopping).
    #[error("the password could not be hashed")]
    Hashing,
}

impl OperatorError {
    /// A stable code for the API and the console (`login_exists`, …).
    pub fn code(&self) -> &'static str {
        match self {
            OperatorError::Store(_) | OperatorError::Hashing => "internal",
            OperatorError::Forbidden(_) => "forbidden",
            OperatorError::NotFound(_) => "not_found",
            OperatorError::Invalid(_) => "bad_request",
            OperatorError::Exists(_) => "login_exists",
            OperatorError::OwnAccount => "own_account",
            OperatorError::LastAdmin(_) => "last_admin",
            OperatorError::Disabled(_) => "disabled",
        }
    }
}

/// Hashes new passwords (argon2id): the console on its bounded pool of
/// threads, the CLI at once.
pub trait PasswordHashing: Sync {
    /// The PHC string of `password`, or None when it could not be hashed.
    fn hash_password(&self, password: &str) -> impl Future<Output = Option<String>> + Send;
}

/// A new password: typed by the person setting it, or a one-time one the
/// desk draws, to be changed at the next login.
#[derive(Debug, Clone)]
pub enum NewPassword {
    /// Chosen by whoever sets it; checked against the password rules.
    Given(String),
    /// Drawn at random and shown once.
    OneTime,
}

/// A password easy to type from a printout: 4 groups of 5 letters and digits
/// without look-alikes (about 100 bits).
pub fn random_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    let mut b = [0u8; 20];
    rand::rngs::OsRng.fill_bytes(&mut b);
    let chars: Vec<char> = b
        .iter()
        .map(|x| ALPHABET[*x as usize % ALPHABET.len()] as char)
        .collect();
    chars
        .chunks(5)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-")
}

/// A display name or label: trimmed, `default` when empty, at most 80
/// characters.
fn label(given: Option<&str>, default: &str) -> String {
    let given = given.map(str::trim).filter(|n| !n.is_empty());
    given.unwrap_or(default).chars().take(MAX_LABEL).collect()
}

fn parse_login(login: &str) -> Result<Login, OperatorError> {
    Login::parse(login).map_err(|e| OperatorError::Invalid(e.to_string()))
}

fn parse_role(role: &str) -> Result<Role, OperatorError> {
    Role::parse(role).map_err(|e| OperatorError::Invalid(e.to_string()))
}

/// The operator service: one per call site, over the desk's store.
pub struct Operators<'a, H> {
    store: &'a Store,
    hasher: &'a H,
}

impl<'a, H: PasswordHashing> Operators<'a, H> {
    /// The service over `store`, hashing with `hasher`.
    pub fn new(store: &'a Store, hasher: &'a H) -> Self {
        Operators { store, hasher }
    }

    /// Every operator, by login (admins, and the CLI).
    pub async fn list(&self, actor: &Actor<'_>) -> Result<Vec<OperatorRow>, OperatorError> {
        actor.require_admin()?;
        Ok(self.store.operators().await?)
    }

    /// The PHC string of a new password, and the one-time password to
    /// hand over when the desk drew it.
    async fn password(
        &self,
        login: &Login,
        password: NewPassword,
    ) -> Result<(String, Option<String>), OperatorError> {
        let (clear, one_time) = match password {
            NewPassword::Given(p) => {
                if let Some(problem) = password_problem(&p, login.as_str()) {
                    return Err(OperatorError::Invalid(problem.to_owned()));
                }
                (p, None)
            }
            NewPassword::OneTime => {
                let p = random_password();
                (p.clone(), Some(p))
            }
        };
        let hash = self
            .hasher
            .hash_password(&clear)
            .await
            .ok_or(OperatorError::Hashing)?;
        Ok((hash, one_time))
    }

    /// Adds an operator; returns the one-time password when the desk drew
    /// it (it must be changed at the first login).
    pub async fn add(
        &self,
        actor: &Actor<'_>,
        login: &str,
        name: Option<&str>,
        role: &str,
        password: NewPassword,
    ) -> Result<Option<String>, OperatorError> {
        actor.require_admin()?;
        let login = parse_login(login)?;
        let role = parse_role(role)?;
        let name = label(name, login.as_str());
        let (hash, one_time) = self.password(&login, password).await?;
        let mut change = self.store.operator_change().await?;
        if !change
            .add_operator(&login, &name, role, &hash, one_time.is_some())
            .await?
        {
            return Err(OperatorError::Exists(login));
        }
        let detail = login.to_string();
        change
            .commit(&entry(actor, Action::OperatorAdd, detail))
            .await?;
        Ok(one_time)
    }

    /// Sets a password; every session of the operator ends and every token
    /// is revoked. Returns the one-time password when the desk drew it.
    pub async fn set_password(
        &self,
        actor: &Actor<'_>,
        login: &str,
        password: NewPassword,
    ) -> Result<Option<String>, OperatorError> {
        actor.require_admin()?;
        let login = parse_login(login)?;
        let (hash, one_time) = self.password(&login, password).await?;
        let mut change = self.store.operator_change().await?;
        if !change
            .set_password(&login, &hash, one_time.is_some())
            .await?
        {
            return Err(OperatorError::NotFound(login));
        }
        let detail = login.to_string();
        change
            .commit(&entry(actor, Action::OperatorReset, detail))
            .await?;
        Ok(one_time)
    }

    /// Disables an operator (their sessions end, their tokens are revoked)
    /// or enables them again. Nobody disables or enables themselves, and
    /// the last enabled admin stays.
    pub async fn set_disabled(
        &self,
        actor: &Actor<'_>,
        login: &str,
        disabled: bool,
    ) -> Result<(), OperatorError> {
        actor.require_admin()?;
        let login = parse_login(login)?;
        if actor.is(&login) {
            return Err(OperatorError::OwnAccount);
        }
        let mut change = self.store.operator_change().await?;
        let target = change
            .operator(&login)
            .await?
            .ok_or_else(|| OperatorError::NotFound(login.clone()))?;
        let others = change.other_enabled_admins(target.id).await?;
        keeps_an_admin(&target, !disabled, others)?;
        change.set_disabled(target.id, disabled).await?;
        let action = if disabled {
            Action::OperatorDisable
        } else {
            Action::OperatorEnable
        };
        change
            .commit(&entry(actor, action, login.to_string()))
            .await?;
        Ok(())
    }

    /// Gives an operator another role. Nobody changes their own, and the
    /// last enabled admin stays one.
    pub async fn set_role(
        &self,
        actor: &Actor<'_>,
        login: &str,
        role: &str,
    ) -> Result<(), OperatorError> {
        actor.require_admin()?;
        let login = parse_login(login)?;
        let role = parse_role(role)?;
        if actor.is(&login) {
            return Err(OperatorError::OwnAccount);
        }
        let mut change = self.store.operator_change().await?;
        let target = change
            .operator(&login)
            .await?
            .ok_or_else(|| OperatorError::NotFound(login.clone()))?;
        let others = change.other_enabled_admins(target.id).await?;
        keeps_an_admin(&target, role == Role::Admin, others)?;
        change.set_role(target.id, role).await?;
        let detail = format!("{login} {}→{role}", target.role);
        change
            .commit(&entry(actor, Action::OperatorRole, detail))
            .await?;
        Ok(())
    }

    /// Creates an API token for `login`, valid `days` days (at least one);
    /// the token is shown once, the store keeps its hash.
    pub async fn create_token(
        &self,
        actor: &Actor<'_>,
        login: &str,
        name: Option<&str>,
        days: u64,
    ) -> Result<ApiToken, OperatorError> {
        let login = parse_login(login)?;
        actor.require_self_or_local(&login)?;
        let name = label(name, "token");
        let mut bytes = [0u8; TOKEN_BYTES];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let token = ApiToken::from_bytes(&bytes);
        let days = i64::try_from(days.max(1)).unwrap_or(i64::MAX / 86_400_000);
        let expires_at = now_ms().saturating_add(days.saturating_mul(86_400_000));
        let mut change = self.store.operator_change().await?;
        let target = change
            .operator(&login)
            .await?
            .ok_or_else(|| OperatorError::NotFound(login.clone()))?;
        if target.disabled {
            return Err(OperatorError::Disabled(login));
        }
        change
            .add_api_token(&token.hash(), target.id, &name, expires_at)
            .await?;
        let detail = format!("{login} {} {name}", token.id());
        change
            .commit(&entry(actor, Action::TokenCreate, detail))
            .await?;
        Ok(token)
    }

    /// Revokes one of `login`'s tokens by its id; false when there was no
    /// such live token (nothing is audited then).
    pub async fn revoke_token(
        &self,
        actor: &Actor<'_>,
        login: &str,
        id: &str,
    ) -> Result<bool, OperatorError> {
        let login = parse_login(login)?;
        actor.require_self_or_local(&login)?;
        let Ok(id) = TokenId::parse(id) else {
            return Ok(false);
        };
        let mut change = self.store.operator_change().await?;
        let target = change
            .operator(&login)
            .await?
            .ok_or_else(|| OperatorError::NotFound(login.clone()))?;
        if !change.revoke_api_token(target.id, &id).await? {
            return Ok(false);
        }
        let detail = format!("{login} {id}");
        change
            .commit(&entry(actor, Action::TokenRevoke, detail))
            .await?;
        Ok(true)
    }

    /// `login`'s live tokens (never their secrets).
    pub async fn tokens(
        &self,
        actor: &Actor<'_>,
        login: &str,
    ) -> Result<Vec<ApiTokenInfo>, OperatorError> {
        let login = parse_login(login)?;
        actor.require_self_or_local(&login)?;
        let target = self
            .store
            .operator(&login)
            .await?
            .ok_or(OperatorError::NotFound(login))?;
        Ok(self.store.api_tokens_of(target.id).await?)
    }

    /// One action of the console's operators form or the API's
    /// `POST /operators`: `add`, `reset`, `disable`, `enable` or `role`.
    /// Returns the one-time password to hand over, if one was drawn.
    pub async fn apply(
        &self,
        actor: &Actor<'_>,
        action: &str,
        login: &str,
        name: Option<&str>,
        role: Option<&str>,
    ) -> Result<Option<String>, OperatorError> {
        let role_given = || role.ok_or_else(|| OperatorError::Invalid("role: required".into()));
        match action {
            "add" => {
                let role = role.unwrap_or("operator");
                self.add(actor, login, name, role, NewPassword::OneTime)
                    .await
            }
            "reset" => self.set_password(actor, login, NewPassword::OneTime).await,
            "disable" | "enable" => {
                self.set_disabled(actor, login, action == "disable").await?;
                Ok(None)
            }
            "role" => {
                self.set_role(actor, login, role_given()?).await?;
                Ok(None)
            }
            other => Err(OperatorError::Invalid(format!(
                "action {other:?}: use add, reset, disable, enable or role"
            ))),
        }
    }
}

/// Refuses a change that leaves `target`, an enabled admin, no longer
/// one (`still_admin` false) when `others` (the other enabled admins) is 0.
fn keeps_an_admin(
    target: &OperatorRow,
    still_admin: bool,
    others: i64,
) -> Result<(), OperatorError> {
    let was_admin = target.role == Role::Admin && !target.disabled;
    if was_admin && !still_admin && others == 0 {
        return Err(OperatorError::LastAdmin(target.login.clone()));
    }
    Ok(())
}

fn entry(actor: &Actor<'_>, action: Action, detail: String) -> AuditEntry {
    tracing::info!(
        actor = actor.name(),
        action = action.as_str(),
        detail,
        "operator managed"
    );
    AuditEntry {
        at: now_ms(),
        request_id: None,
        actor: actor.name().to_owned(),
        action: action.as_str().to_owned(),
        from_state: None,
        to_state: None,
        detail: Some(detail),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_trimmed_defaulted_and_bounded() {
        assert_eq!(label(Some("  Lan  "), "x"), "Lan");
        assert_eq!(label(Some("   "), "token"), "token");
        assert_eq!(label(None, "lan"), "lan");
        assert_eq!(label(Some(&"ă".repeat(100)), "x").chars().count(), 80);
    }

    #[test]
    fn one_time_passwords_are_random_and_typeable() {
        let p = random_password();
        assert_eq!(p.len(), 23);
        assert_ne!(p, random_password());
        assert!(p.bytes().all(|b| b == b'-' || b.is_ascii_alphanumeric()));
    }

    #[test]
    fn the_cli_is_audited_under_a_name_no_login_can_take() {
        let a = Actor::local("root");
        assert_eq!(a.name(), "cli:root");
        assert!(Login::parse(a.name()).is_err());
    }
}
