//! `huytk migrate`, `backup` and `restore`: the database itself.

use anyhow::Result;
use std::path::Path;

use huytk::app;
use huytk::config::Config;

/// Runs `huytk migrate`.
pub async fn migrate(config: &Config) -> Result<()> {
    app::open_store(config).await?;
    println!("schema up to date: {}", app::redact(&config.database.url));
    Ok(())
}

/// Runs `huytk backup TO`.
pub async fn backup(config: &Config, to: &Path) -> Result<()> {
    let store = app::open_store(config).await?;
    store.backup_to(to).await?;
    println!(
        "backup written to {} (mode 0600). It holds the mail sealed: without the master key \
         ({}) it cannot be read, so back the key up too, apart from this file.",
        to.display(),
        config.database.master_key_path().display()
    );
    Ok(())
}

/// Runs `huytk restore FROM`.
pub async fn restore(config: &Config, from: &Path) -> Result<()> {
    let kept = huytk::store::backup::restore_sqlite(&config.database.url, from).await?;
    // The restored database must open with this desk's master key.
    app::open_store(config).await?;
    println!(
        "restored {}{}",
        from.display(),
        kept.map(|k| format!("; the database it replaced is kept as {}", k.display()))
            .unwrap_or_default()
    );
    Ok(())
}
