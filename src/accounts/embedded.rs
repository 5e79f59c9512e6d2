//! The embedded directory: the `portal_accounts` table in the desk's own
//! database (the embedded default's account store, seeded by `--demo` or
//! `huytk accounts load`).

use super::{AccountError, AccountStore, PortalAccount};
use crate::store::Store;

/// The embedded directory.
#[derive(Debug, Clone)]
pub struct EmbeddedDirectory {
    store: Store,
}

impl EmbeddedDirectory {
    /// Over the desk's database.
    pub fn new(store: Store) -> Self {
        EmbeddedDirectory { store }
    }
}

impl AccountStore for EmbeddedDirectory {
    async fn find(&self, numbers: &[String]) -> Result<Vec<PortalAccount>, AccountError> {
        Ok(self
            .store
            .portal_accounts(numbers)
            .await?
            .into_iter()
            .filter(|a| a.state != "deleted")
            .collect())
    }
    async fn lock(&self, account_id: &str) -> Result<(), AccountError> {
        self.store
            .set_portal_account_state(account_id, "locked")
            .await?;
        Ok(())
    }
    async fn unlock(&self, account_id: &str) -> Result<(), AccountError> {
        self.store
            .set_portal_account_state(account_id, "active")
            .await?;
        Ok(())
    }
    async fn delete(&self, account_id: &str) -> Result<(), AccountError> {
        self.store.delete_portal_account(account_id).await?;
        Ok(())
    }
}
