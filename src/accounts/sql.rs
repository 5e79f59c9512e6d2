//! An account store reached with SQL statements from config, for a portal
//! whose accounts live in a database the desk may write to (PostgreSQL or
//! SQLite URL). `find_sql` takes one number as `$1` and returns the columns
//! `account_id, id_number, full_name, birth_date, phone, email,
//! vneid_linked, state`; `lock_sql`, `unlock_sql` and `delete_sql` take the
//! account id as `$1`, and must be idempotent (an UPDATE or DELETE is).

use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Row};
use std::time::Duration;

use super::{AccountError, AccountState, AccountStore, PortalAccount};
use crate::config::AccountsConfig;

/// The SQL account store.
#[derive(Debug, Clone)]
pub struct SqlDirectory {
    pool: AnyPool,
    c: AccountsConfig,
}

fn unavailable(e: impl std::fmt::Display) -> AccountError {
    AccountError::Unavailable(e.to_string())
}

impl SqlDirectory {
    /// Checks the statements and prepares a pool (connected on first use).
    pub fn new(c: AccountsConfig) -> Result<SqlDirectory, AccountError> {
        for (name, sql) in [
            ("find_sql", &c.find_sql),
            ("lock_sql", &c.lock_sql),
            ("unlock_sql", &c.unlock_sql),
            ("delete_sql", &c.delete_sql),
        ] {
            if !sql.contains("$1") {
                return Err(AccountError::Config(format!(
                    "[accounts] {name} must use $1 (the number or the account id)"
                )));
            }
        }
        sqlx::any::install_default_drivers();
        let pool = AnyPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(c.timeout_seconds.max(1)))
            .connect_lazy(&c.url)
            .map_err(|e| AccountError::Config(format!("[accounts] url: {e}")))?;
        Ok(SqlDirectory { pool, c })
    }

    async fn exec(&self, sql: &str, account_id: &str) -> Result<(), AccountError> {
        sqlx::query(sql)
            .bind(account_id)
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}

impl AccountStore for SqlDirectory {
    async fn find(&self, numbers: &[String]) -> Result<Vec<PortalAccount>, AccountError> {
        let mut out: Vec<PortalAccount> = Vec::new();
        for n in numbers {
            let rows = sqlx::query(&self.c.find_sql)
                .bind(n)
                .fetch_all(&self.pool)
                .await
                .map_err(unavailable)?;
            for r in rows {
                let account_id: String = r.try_get("account_id").map_err(unavailable)?;
                let state = match r.try_get::<Option<String>, _>("state").ok().flatten() {
                    None => AccountState::Active,
                    Some(s) => s.parse().map_err(|source| AccountError::Unreadable {
                        account_id: account_id.clone(),
                        source,
                    })?,
                };
                let a = PortalAccount {
                    account_id,
                    id_number: r.try_get("id_number").map_err(unavailable)?,
                    full_name: r.try_get("full_name").map_err(unavailable)?,
                    birth_date: r.try_get("birth_date").ok().flatten(),
                    phone: r.try_get("phone").ok().flatten(),
                    email: r.try_get("email").ok().flatten(),
                    vneid_linked: r.try_get("vneid_linked").unwrap_or(0),
                    state,
                };
                if !out.iter().any(|o| o.account_id == a.account_id) {
                    out.push(a);
                }
            }
        }
        Ok(out)
    }
    async fn lock(&self, account_id: &str) -> Result<(), AccountError> {
        self.exec(&self.c.lock_sql, account_id).await
    }
    async fn unlock(&self, account_id: &str) -> Result<(), AccountError> {
        self.exec(&self.c.unlock_sql, account_id).await
    }
    async fn delete(&self, account_id: &str) -> Result<(), AccountError> {
        self.exec(&self.c.delete_sql, account_id).await
    }
}
