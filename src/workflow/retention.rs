//! Retention: what the desk keeps of a closed request, and for how long.

use super::desk::Desk;
use super::WorkflowError;
use crate::domain::Action;
use crate::store::{self};

impl Desk {
    /// Retention: the raw mail (and so the photos) of requests closed more
    /// than `retention_days` ago is dropped; hashes and the audit trail stay.
    pub async fn purge_closed(&self) -> Result<usize, WorkflowError> {
        let before = self.now() - i64::from(self.config.retention_days) * 86_400_000;
        let mut n = 0;
        for id in self.store.closed_before(before).await? {
            let mut tx = self.store.begin().await?;
            let dropped = store::purge_request(&mut tx, id).await?;
            store::audit(
                &mut tx,
                &self.system(
                    id,
                    Action::Purged,
                    None,
                    None,
                    Some(format!(
                        "{dropped} raw messages dropped after {} days",
                        self.config.retention_days
                    )),
                ),
            )
            .await?;
            store::commit(tx).await?;
            n += 1;
        }
        if n > 0 {
            tracing::info!(requests = n, "closed requests purged");
        }
        Ok(n)
    }
}
