//! Operators, their sessions and API tokens, and failed logins. Secrets
//! (session cookies, API tokens) are stored as SHA-256 only: a copy of the
//! database does not let anyone in.

use sqlx::Row;

use super::{AuditEntry, Store, StoreError, Tx};
use crate::domain::operator::TokenId;
use crate::domain::time::now_ms;
use crate::domain::{Login, Role};

/// An operator as stored.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OperatorRow {
    /// Row id.
    pub id: i64,
    /// Login name.
    pub login: Login,
    /// Name shown in the console.
    pub display_name: String,
    /// Role.
    pub role: Role,
    /// argon2id PHC string.
    #[serde(skip)]
    pub password_hash: String,
    /// Cannot log in.
    pub disabled: bool,
    /// Logged in with a one-time password and must choose a new one.
    pub must_change: bool,
}

const OPERATOR_COLUMNS: &str =
    "o.id, o.login, o.display_name, o.role, o.password_hash, o.disabled, o.must_change";

fn by_login() -> String {
    format!("SELECT {OPERATOR_COLUMNS} FROM operators o WHERE o.login = $1")
}

fn operator_row(r: &sqlx::any::AnyRow) -> Result<OperatorRow, StoreError> {
    let login: String = r.try_get("login")?;
    let role: String = r.try_get("role")?;
    Ok(OperatorRow {
        id: r.try_get("id")?,
        login: Login::parse(&login).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        display_name: r.try_get("display_name")?,
        role: Role::parse(&role).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        password_hash: r.try_get("password_hash")?,
        disabled: r.try_get::<i64, _>("disabled")? != 0,
        must_change: r.try_get::<i64, _>("must_change")? != 0,
    })
}

/// A live session and who it belongs to.
#[derive(Debug, Clone)]
pub struct SessionRow {
    /// The operator.
    pub operator: OperatorRow,
    /// The session's CSRF token, put in every form.
    pub csrf: String,
    /// Last request seen (ms).
    pub last_seen: i64,
}

/// An API token as listed (never the secret).
#[derive(Debug, Clone, serde::Serialize)]
pub struct ApiTokenInfo {
    /// Its label.
    pub name: String,
    /// Created (ms).
    pub created_at: i64,
    /// Last used (ms).
    pub last_used: Option<i64>,
    /// When it stops working (ms).
    pub expires_at: Option<i64>,
    /// First 12 hex digits of its hash, to tell tokens apart.
    pub id: TokenId,
}

impl Store {
    /// How many operators exist (disabled ones included).
    pub async fn operator_count(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query("SELECT COUNT(*) AS n FROM operators")
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?)
    }

    /// Adds an operator, unaudited (the first admin at the first start);
    /// false when the login is taken. Operators made by a person go
    /// through `workflow::operators`, which audits them.
    pub async fn add_operator(
        &self,
        login: &Login,
        display_name: &str,
        role: Role,
        password_hash: &str,
        must_change: bool,
    ) -> Result<bool, StoreError> {
        let mut change = self.operator_change().await?;
        let added = change
            .add_operator(login, display_name, role, password_hash, must_change)
            .await?;
        change.tx.commit().await?;
        Ok(added)
    }

    /// Starts a change of operators or their tokens: one transaction,
    /// committed with the audit row that says who made it.
    pub async fn operator_change(&self) -> Result<OperatorChange, StoreError> {
        Ok(OperatorChange {
            tx: self.begin().await?,
        })
    }

    /// An operator by login.
    pub async fn operator(&self, login: &Login) -> Result<Option<OperatorRow>, StoreError> {
        let row = sqlx::query(&by_login())
            .bind(login.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(operator_row).transpose()
    }

    /// Every operator, by login.
    pub async fn operators(&self) -> Result<Vec<OperatorRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {OPERATOR_COLUMNS} FROM operators o ORDER BY o.login"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(operator_row).collect()
    }

    /// An operator's own new password, chosen on the password page (the
    /// audit log records people's changes to others, see
    /// `OperatorChange::set_password`). False when there is no such
    /// operator.
    pub async fn set_password(
        &self,
        login: &Login,
        password_hash: &str,
        must_change: bool,
    ) -> Result<bool, StoreError> {
        let mut change = self.operator_change().await?;
        let done = change
            .set_password(login, password_hash, must_change)
            .await?;
        change.tx.commit().await?;
        Ok(done)
    }

    /// Disables or enables an operator, unaudited (store-level tests);
    /// false when there is no such operator. A person's change goes
    /// through `workflow::operators`, which keeps the rules and audits it.
    pub async fn set_disabled(&self, login: &Login, disabled: bool) -> Result<bool, StoreError> {
        let mut change = self.operator_change().await?;
        let Some(op) = change.operator(login).await? else {
            return Ok(false);
        };
        change.set_disabled(op.id, disabled).await?;
        change.tx.commit().await?;
        Ok(true)
    }

    /// Opens a session.
    pub async fn create_session(
        &self,
        token_hash: &str,
        operator_id: i64,
        csrf: &str,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        sqlx::query(
            "INSERT INTO sessions (token_hash, operator_id, csrf, created_at, last_seen) VALUES ($1, $2, $3, $4, $4)",
        )
        .bind(token_hash)
        .bind(operator_id)
        .bind(csrf)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A session of an enabled operator, if it was seen after `idle_since`
    /// and opened after `opened_since` (its absolute lifetime).
    pub async fn session(
        &self,
        token_hash: &str,
        idle_since: i64,
        opened_since: i64,
    ) -> Result<Option<SessionRow>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {OPERATOR_COLUMNS}, s.csrf, s.last_seen FROM sessions s
             JOIN operators o ON o.id = s.operator_id
             WHERE s.token_hash = $1 AND s.last_seen > $2 AND s.created_at > $3 AND o.disabled = 0"
        ))
        .bind(token_hash)
        .bind(idle_since)
        .bind(opened_since)
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else { return Ok(None) };
        Ok(Some(SessionRow {
            operator: operator_row(&r)?,
            csrf: r.try_get("csrf")?,
            last_seen: r.try_get("last_seen")?,
        }))
    }

    /// Marks a session as used now.
    pub async fn touch_session(&self, token_hash: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE sessions SET last_seen = $1 WHERE token_hash = $2")
            .bind(now_ms())
            .bind(token_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Ends one session.
    pub async fn end_session(&self, token_hash: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Ends every session of an operator ("log out everywhere").
    pub async fn end_sessions_of(&self, operator_id: i64) -> Result<u64, StoreError> {
        Ok(sqlx::query("DELETE FROM sessions WHERE operator_id = $1")
            .bind(operator_id)
            .execute(&self.pool)
            .await?
            .rows_affected())
    }

    /// Deletes sessions idle since before `idle_since`.
    pub async fn purge_sessions(&self, idle_since: i64) -> Result<u64, StoreError> {
        Ok(sqlx::query("DELETE FROM sessions WHERE last_seen <= $1")
            .bind(idle_since)
            .execute(&self.pool)
            .await?
            .rows_affected())
    }

    /// The enabled operator an unrevoked API token belongs to.
    pub async fn api_token_operator(
        &self,
        token_hash: &str,
    ) -> Result<Option<OperatorRow>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {OPERATOR_COLUMNS}, t.last_used FROM api_tokens t
             JOIN operators o ON o.id = t.operator_id
             WHERE t.token_hash = $1 AND t.revoked = 0 AND o.disabled = 0
             AND (t.expires_at IS NULL OR t.expires_at > $2)"
        ))
        .bind(token_hash)
        .bind(now_ms())
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else { return Ok(None) };
        let last: Option<i64> = r.try_get("last_used")?;
        // One write a minute at most: the API is read far more than written.
        if last.is_none_or(|t| now_ms() - t > 60_000) {
            sqlx::query("UPDATE api_tokens SET last_used = $1 WHERE token_hash = $2")
                .bind(now_ms())
                .bind(token_hash)
                .execute(&self.pool)
                .await?;
        }
        Ok(Some(operator_row(&r)?))
    }

    /// An operator's tokens.
    pub async fn api_tokens_of(&self, operator_id: i64) -> Result<Vec<ApiTokenInfo>, StoreError> {
        let rows = sqlx::query(
            "SELECT token_hash, name, created_at, last_used, expires_at FROM api_tokens
             WHERE operator_id = $1 AND revoked = 0 AND (expires_at IS NULL OR expires_at > $2)
             ORDER BY created_at",
        )
        .bind(operator_id)
        .bind(now_ms())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let h: String = r.try_get("token_hash")?;
                Ok(ApiTokenInfo {
                    name: r.try_get("name")?,
                    created_at: r.try_get("created_at")?,
                    last_used: r.try_get("last_used")?,
                    expires_at: r.try_get("expires_at")?,
                    id: TokenId::of_hash(&h),
                })
            })
            .collect()
    }

    /// Records a login attempt as failed before its password is checked
    /// (a success forgets it): concurrent attempts each see the others, so
    /// no burst can get more tries than the limit.
    pub async fn record_login_attempt(&self, login: &str, client: &str) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO login_failures (login, client, at) VALUES ($1, $2, $3)")
            .bind(login)
            .bind(client)
            .bind(now_ms())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Failed logins since `since` for this login from this client, and
    /// from this client for any login, and the oldest of them (to tell when
    /// the block lifts).
    pub async fn login_failures(
        &self,
        login: &str,
        client: &str,
        since: i64,
    ) -> Result<(i64, i64, Option<i64>), StoreError> {
        let r = sqlx::query(
            "SELECT
               (SELECT COUNT(*) FROM login_failures WHERE login = $1 AND client = $2 AND at > $3) AS by_pair,
               (SELECT COUNT(*) FROM login_failures WHERE client = $2 AND at > $3) AS by_client,
               (SELECT MIN(at) FROM login_failures WHERE client = $2 AND at > $3) AS oldest",
        )
        .bind(login)
        .bind(client)
        .bind(since)
        .fetch_one(&self.pool)
        .await?;
        Ok((
            r.try_get("by_pair")?,
            r.try_get("by_client")?,
            r.try_get("oldest")?,
        ))
    }

    /// Forgets a login's failures from this client after it succeeded.
    pub async fn clear_login_failures(&self, login: &str, client: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM login_failures WHERE login = $1 AND client = $2")
            .bind(login)
            .bind(client)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

/// One change of operators or tokens in progress (see
/// `Store::operator_change`); dropped without `commit`, nothing happened.
pub struct OperatorChange {
    tx: Tx,
}

impl OperatorChange {
    /// An operator by login, as this transaction sees it.
    pub async fn operator(&mut self, login: &Login) -> Result<Option<OperatorRow>, StoreError> {
        let row = sqlx::query(&by_login())
            .bind(login.as_str())
            .fetch_optional(&mut *self.tx)
            .await?;
        row.as_ref().map(operator_row).transpose()
    }

    /// Enabled admins other than operator `id`.
    pub async fn other_enabled_admins(&mut self, id: i64) -> Result<i64, StoreError> {
        Ok(sqlx::query(
            "SELECT COUNT(*) AS n FROM operators WHERE role = 'admin' AND disabled = 0 AND id <> $1",
        )
        .bind(id)
        .fetch_one(&mut *self.tx)
        .await?
        .try_get("n")?)
    }

    /// Adds an operator; false when the login is taken.
    pub async fn add_operator(
        &mut self,
        login: &Login,
        display_name: &str,
        role: Role,
        password_hash: &str,
        must_change: bool,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO operators (login, display_name, role, password_hash, must_change, created_at)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (login) DO NOTHING",
        )
        .bind(login.as_str())
        .bind(display_name)
        .bind(role.as_str())
        .bind(password_hash)
        .bind(i64::from(must_change))
        .bind(now_ms())
        .execute(&mut *self.tx)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Sets a password; false when there is no such operator. Every
    /// session of the operator ends and every API token is revoked with
    /// it: whoever had the old password may have opened or made one.
    pub async fn set_password(
        &mut self,
        login: &Login,
        password_hash: &str,
        must_change: bool,
    ) -> Result<bool, StoreError> {
        let Some(op) = self.operator(login).await? else {
            return Ok(false);
        };
        sqlx::query("UPDATE operators SET password_hash = $1, must_change = $2 WHERE id = $3")
            .bind(password_hash)
            .bind(i64::from(must_change))
            .bind(op.id)
            .execute(&mut *self.tx)
            .await?;
        self.lock_out(op.id).await?;
        Ok(true)
    }

    /// Ends an operator's sessions and revokes their API tokens.
    async fn lock_out(&mut self, id: i64) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM sessions WHERE operator_id = $1")
            .bind(id)
            .execute(&mut *self.tx)
            .await?;
        sqlx::query("UPDATE api_tokens SET revoked = 1 WHERE operator_id = $1")
            .bind(id)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Disables or enables operator `id`; disabling ends their sessions
    /// and revokes their API tokens.
    pub async fn set_disabled(&mut self, id: i64, disabled: bool) -> Result<(), StoreError> {
        sqlx::query("UPDATE operators SET disabled = $1 WHERE id = $2")
            .bind(i64::from(disabled))
            .bind(id)
            .execute(&mut *self.tx)
            .await?;
        if disabled {
            self.lock_out(id).await?;
        }
        Ok(())
    }

    /// Gives operator `id` another role. It holds from their next click:
    /// sessions and tokens read the role at each request.
    pub async fn set_role(&mut self, id: i64, role: Role) -> Result<(), StoreError> {
        sqlx::query("UPDATE operators SET role = $1 WHERE id = $2")
            .bind(role.as_str())
            .bind(id)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Stores a new API token by its hash.
    pub async fn add_api_token(
        &mut self,
        token_hash: &str,
        operator_id: i64,
        name: &str,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO api_tokens (token_hash, operator_id, name, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(token_hash)
        .bind(operator_id)
        .bind(name)
        .bind(now_ms())
        .bind(expires_at)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Revokes an operator's live token by the start of its hash; false
    /// when none matched.
    pub async fn revoke_api_token(
        &mut self,
        operator_id: i64,
        id: &TokenId,
    ) -> Result<bool, StoreError> {
        // The id is hex only (TokenId), so it cannot carry a LIKE wildcard.
        let done = sqlx::query(
            "UPDATE api_tokens SET revoked = 1
             WHERE operator_id = $1 AND token_hash LIKE $2 AND revoked = 0",
        )
        .bind(operator_id)
        .bind(format!("{id}%"))
        .execute(&mut *self.tx)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Writes the audit row and commits the change with it.
    pub async fn commit(mut self, entry: &AuditEntry) -> Result<(), StoreError> {
        super::audit(&mut self.tx, entry).await?;
        self.tx.commit().await?;
        Ok(())
    }
}
