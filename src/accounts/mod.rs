//! Account stores: where the portal's accounts live, behind one small
//! trait. Every call is idempotent and safe to retry: locking a locked
//! account, unlocking an active one or deleting a deleted one succeeds.
//! `Embedded` is the directory table in the desk's own database (the
//! embedded default, seeded by `--demo`); `Ldap` is a directory server;
//! `Sql` runs statements from config against the portal's database; `Rest`
//! calls the portal's account API.

mod account;
mod embedded;
mod ldap;
mod rest;
mod sql;

pub use account::{AccountState, PortalAccount, UnknownAccountState};
pub use embedded::{DirectoryTable, EmbeddedDirectory};
pub use ldap::LdapDirectory;
pub use rest::RestDirectory;
pub use sql::SqlDirectory;

use std::future::Future;

use crate::net::http::HttpError;

/// Why an account store call failed.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// The store did not answer or refused for now: retry later.
    #[error("account store unavailable: {0}")]
    Unavailable(String),
    /// A call to the portal's account API had no usable answer: retry
    /// later. The cause (status, timeout, TLS, oversized…) is kept.
    #[error("account API {call}: {source}")]
    Api {
        /// Which call, e.g. `PATCH /accounts/42`.
        call: String,
        /// What went wrong.
        source: HttpError,
    },
    /// The embedded directory's table could not be read or written.
    #[error("embedded directory: {0}")]
    Embedded(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The store answered with an account the desk cannot read (a state
    /// it does not know; see [`AccountState`]).
    #[error("account store answered {account_id:?}: {source}")]
    Unreadable {
        /// The account.
        account_id: String,
        /// What did not parse.
        source: UnknownAccountState,
    },
    /// The configuration cannot work (retrying will not help).
    #[error("account store configuration: {0}")]
    Config(String),
}

/// What the desk needs of an account store.
pub trait AccountStore {
    /// Every account whose CCCD or CMND number is one of `numbers`.
    fn find(
        &self,
        numbers: &[String],
    ) -> impl Future<Output = Result<Vec<PortalAccount>, AccountError>> + Send;
    /// Locks an account (no login until unlocked or deleted).
    fn lock(&self, account_id: &str) -> impl Future<Output = Result<(), AccountError>> + Send;
    /// Unlocks a locked account.
    fn unlock(&self, account_id: &str) -> impl Future<Output = Result<(), AccountError>> + Send;
    /// Deletes an account for good.
    fn delete(&self, account_id: &str) -> impl Future<Output = Result<(), AccountError>> + Send;
}

/// The configured account store.
#[derive(Debug, Clone)]
pub enum Accounts {
    /// The directory table in the desk's database.
    Embedded(EmbeddedDirectory),
    /// An LDAP directory.
    Ldap(Box<LdapDirectory>),
    /// A database reached with configured statements.
    Sql(Box<SqlDirectory>),
    /// The portal's REST API (docs/portal-accounts.openapi.json).
    Rest(Box<RestDirectory>),
}

impl Accounts {
    /// Builds the store named by `[accounts]`; `embedded` is the desk's
    /// own table, used when the kind is `embedded`.
    pub fn from_config<T: DirectoryTable + Clone + 'static>(
        c: &crate::config::AccountsConfig,
        embedded: &T,
    ) -> Result<Accounts, AccountError> {
        use crate::config::AccountsKind;
        match c.kind {
            AccountsKind::Embedded => {
                Ok(Accounts::Embedded(EmbeddedDirectory::new(embedded.clone())))
            }
            AccountsKind::Ldap => Ok(Accounts::Ldap(Box::new(LdapDirectory::new(c.clone())?))),
            AccountsKind::Sql => Ok(Accounts::Sql(Box::new(SqlDirectory::new(c.clone())?))),
            AccountsKind::Rest => Ok(Accounts::Rest(Box::new(RestDirectory::new(c.clone())?))),
        }
    }

    /// A short name for logs and `doctor`.
    pub fn describe(&self) -> String {
        match self {
            Accounts::Embedded(_) => "embedded directory".into(),
            Accounts::Ldap(l) => format!("LDAP {}", l.url()),
            Accounts::Sql(_) => "SQL statements".into(),
            Accounts::Rest(r) => format!("REST API {}", r.url()),
        }
    }
}

impl AccountStore for Accounts {
    async fn find(&self, numbers: &[String]) -> Result<Vec<PortalAccount>, AccountError> {
        match self {
            Accounts::Embedded(d) => d.find(numbers).await,
            Accounts::Ldap(d) => d.find(numbers).await,
            Accounts::Sql(d) => d.find(numbers).await,
            Accounts::Rest(d) => d.find(numbers).await,
        }
    }
    async fn lock(&self, account_id: &str) -> Result<(), AccountError> {
        match self {
            Accounts::Embedded(d) => d.lock(account_id).await,
            Accounts::Ldap(d) => d.lock(account_id).await,
            Accounts::Sql(d) => d.lock(account_id).await,
            Accounts::Rest(d) => d.lock(account_id).await,
        }
    }
    async fn unlock(&self, account_id: &str) -> Result<(), AccountError> {
        match self {
            Accounts::Embedded(d) => d.unlock(account_id).await,
            Accounts::Ldap(d) => d.unlock(account_id).await,
            Accounts::Sql(d) => d.unlock(account_id).await,
            Accounts::Rest(d) => d.unlock(account_id).await,
        }
    }
    async fn delete(&self, account_id: &str) -> Result<(), AccountError> {
        match self {
            Accounts::Embedded(d) => d.delete(account_id).await,
            Accounts::Ldap(d) => d.delete(account_id).await,
            Accounts::Sql(d) => d.delete(account_id).await,
            Accounts::Rest(d) => d.delete(account_id).await,
        }
    }
}
