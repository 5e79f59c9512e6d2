//! `huytk audit …`: the audit log's hash chain.

use anyhow::{Context, Result};
use clap::Subcommand;

use huytk::config::Config;

/// `huytk audit …`.
#[derive(Subcommand)]
pub enum AuditCommand {
    /// Walk the chain from its first row: exit 0 when no row was edited,
    /// deleted or reordered, else name the first such row and exit 1.
    Verify {
        /// A head a digest named, `ID:HASH`: it must still be in the chain
        /// (catches rows removed from the end).
        #[arg(long)]
        head: Option<String>,
    },
}

/// Runs `huytk audit …`.
pub async fn run(config: &Config, command: AuditCommand) -> Result<()> {
    let AuditCommand::Verify { head } = command;
    let head = match head.as_deref().map(|h| h.split_once(':')) {
        None => None,
        Some(Some((id, hash))) => Some((
            id.parse::<i64>()
                .context("--head ID:HASH: the id is a number")?,
            hash.to_owned(),
        )),
        Some(None) => anyhow::bail!("--head ID:HASH, as the digest gives it"),
    };
    let store = huytk::store::Store::connect(&config.database.url).await?;
    let report = store
        .verify_audit(head.as_ref().map(|(id, h)| (*id, h.as_str())))
        .await?;
    if let Some(broken) = report.broken {
        anyhow::bail!("{broken}");
    }
    match report.head {
        Some(h) => println!(
            "audit log intact: {} rows, head {}:{}",
            report.rows, h.id, h.hash
        ),
        None => println!("audit log intact: empty"),
    }
    Ok(())
}
