//! `huytk accounts …`: the embedded directory of portal accounts.

use anyhow::Result;
use clap::Subcommand;
use std::path::PathBuf;

use huytk::app;
use huytk::store::Store;

/// `huytk accounts …`.
#[derive(Subcommand)]
pub enum AccountsCommand {
    /// Load accounts from a TOML file of `[[account]]` tables (as `demo/accounts.toml`).
    Load {
        /// The file.
        path: PathBuf,
    },
    /// Accounts with a CCCD/CMND number.
    Find {
        /// The number.
        number: String,
    },
}

/// Runs `huytk accounts …`.
pub async fn run(store: &Store, command: AccountsCommand) -> Result<()> {
    match command {
        AccountsCommand::Load { path } => {
            let n = app::load_accounts(store, &path).await?;
            println!("{n} accounts loaded");
        }
        AccountsCommand::Find { number } => {
            for a in store.portal_accounts(&[number]).await? {
                println!("{}", serde_json::to_string(&a)?);
            }
        }
    }
    Ok(())
}
