//! A request waiting for the citizen's answer (`needs_info`): closed as
//! incomplete when no answer comes within `needs_info_days` (SPEC section
//! 2), with a line in its history saying so.

use super::desk::Desk;
use super::WorkflowError;
use crate::domain::Action;
use crate::domain::RequestState;
use crate::store;

impl Desk {
    /// Closes requests left in `needs_info` for `needs_info_days` without
    /// news (SPEC section 2: 30 days silent → closed_incomplete).
    pub async fn close_silent_requests(&self) -> Result<usize, WorkflowError> {
        let before = self.now() - i64::from(self.config.needs_info_days) * 24 * 3600 * 1000;
        let mut closed = 0;
        for (id, version) in self.store.silent_needs_info(before).await? {
            let mut tx = self.store.begin().await?;
            if store::set_state(&mut tx, id, version, RequestState::ClosedIncomplete).await? {
                let detail = format!("no news for {} days", self.config.needs_info_days);
                store::audit(
                    &mut tx,
                    &self.system(
                        id,
                        Action::ClosedSilent,
                        Some(RequestState::NeedsInfo),
                        Some(RequestState::ClosedIncomplete),
                        Some(detail),
                    ),
                )
                .await?;
                store::commit(tx).await?;
                closed += 1;
            } else {
                store::rollback(tx).await?;
            }
        }
        if closed > 0 {
            tracing::info!(closed, "silent needs_info requests closed");
        }
        Ok(closed)
    }
}
