//! The embedded directory: the `portal_accounts` table in the desk's own
//! database (the embedded default's account store, seeded by `--demo` or
//! `huytk accounts load`). The table is reached through [`DirectoryTable`],
//! which the store implements, so this layer never names the store.

use std::sync::Arc;

use futures::future::BoxFuture;

use super::{AccountError, AccountState, AccountStore, PortalAccount};

/// The embedded directory's table, as the desk's database keeps it.
pub trait DirectoryTable: std::fmt::Debug + Send + Sync {
    /// Rows (any state) whose CCCD or CMND number is one of `numbers`.
    fn accounts<'a>(
        &'a self,
        numbers: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<PortalAccount>, AccountError>>;
    /// Sets an account's state; a deleted row stays deleted.
    fn set_state<'a>(
        &'a self,
        account_id: &'a str,
        state: AccountState,
    ) -> BoxFuture<'a, Result<(), AccountError>>;
    /// Removes an account's row (gone already is fine).
    fn remove<'a>(&'a self, account_id: &'a str) -> BoxFuture<'a, Result<(), AccountError>>;
}

/// The embedded directory.
#[derive(Debug, Clone)]
pub struct EmbeddedDirectory {
    table: Arc<dyn DirectoryTable>,
}

impl EmbeddedDirectory {
    /// Over the desk's database (or any other [`DirectoryTable`]).
    pub fn new(table: impl DirectoryTable + 'static) -> Self {
        EmbeddedDirectory {
            table: Arc::new(table),
        }
    }
}

impl AccountStore for EmbeddedDirectory {
    async fn find(&self, numbers: &[String]) -> Result<Vec<PortalAccount>, AccountError> {
        Ok(self
            .table
            .accounts(numbers)
            .await?
            .into_iter()
            .filter(|a| a.state != AccountState::Deleted)
            .collect())
    }
    async fn lock(&self, account_id: &str) -> Result<(), AccountError> {
        self.table.set_state(account_id, AccountState::Locked).await
    }
    async fn unlock(&self, account_id: &str) -> Result<(), AccountError> {
        self.table.set_state(account_id, AccountState::Active).await
    }
    async fn delete(&self, account_id: &str) -> Result<(), AccountError> {
        self.table.remove(account_id).await
    }
}
