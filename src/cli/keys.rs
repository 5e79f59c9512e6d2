//! `huytk keys …`: the master key that seals citizens' mail.

use anyhow::Result;
use clap::Subcommand;
use std::path::PathBuf;

use huytk::app;
use huytk::config::Config;
use huytk::store::keys::{self, KeySource};
use huytk::store::sealed::MasterKey;

/// `huytk keys …`.
#[derive(Subcommand)]
pub enum KeysCommand {
    /// The master keys the database knows, and how many data keys each wraps.
    Status,
    /// Re-wrap every data key under a new master key (the sealed mail is
    /// not rewritten). The old key file is kept as `….<id>.retired`.
    Rotate {
        /// Where to write the new key when the key comes from
        /// HUYTK_MASTER_KEY (the file must not exist yet).
        #[arg(long)]
        new_key_file: Option<PathBuf>,
    },
    /// Write a new master key to a file (mode 0600), e.g. before the first
    /// start of replicas that share a PostgreSQL database.
    New {
        /// The file (must not exist yet).
        path: PathBuf,
    },
}

/// Runs `huytk keys …`.
pub async fn run(config: &Config, command: KeysCommand) -> Result<()> {
    match command {
        // A new key file needs no database.
        KeysCommand::New { path } => new_key(&path),
        KeysCommand::Status => {
            let store = app::open_store(config).await?;
            for (id, state, n) in store.key_counts().await? {
                println!("{id}\t{state}\t{n} data keys");
            }
            Ok(())
        }
        KeysCommand::Rotate { new_key_file } => rotate(config, new_key_file).await,
    }
}

fn new_key(path: &std::path::Path) -> Result<()> {
    let key = MasterKey::generate();
    keys::write_key_file(path, &key)?;
    println!(
        "master key {} written to {} (mode 0600): back it up apart from the database",
        key.id(),
        path.display()
    );
    Ok(())
}

async fn rotate(config: &Config, new_key_file: Option<PathBuf>) -> Result<()> {
    let store = app::open_store(config).await?;
    match (config.database.key_source(), new_key_file) {
        (KeySource::File(file), None) => {
            let (id, retired, n) = keys::rotate_file(&store, &file).await?;
            println!(
                "{n} data keys re-wrapped under master key {id}, now in {}.\n\
                 The old key is kept in {}: backups made before now need it; \
                 delete it when they expire (or now, if the old key leaked).",
                file.display(),
                retired.display()
            );
        }
        (_, Some(path)) => {
            let key = MasterKey::generate();
            keys::write_key_file(&path, &key)?;
            let n = store.rotate_master_key(&key).await?;
            println!(
                "{n} data keys re-wrapped under master key {}, written to {}.\n\
                 Put its contents in HUYTK_MASTER_KEY (or point master_key_file at it) \
                 before the next start; the old key opens nothing any more.",
                key.id(),
                path.display()
            );
        }
        (KeySource::Environment(_), None) => anyhow::bail!(
            "the key comes from HUYTK_MASTER_KEY: say where to write the new one with --new-key-file"
        ),
    }
    Ok(())
}
