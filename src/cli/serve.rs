//! `huytk serve` and the commands that drive the desk itself once:
//! `import`, `purge`, `digest`.

use anyhow::Result;
use std::path::Path;

use huytk::app::{self, App};
use huytk::config::Config;

/// Runs `huytk serve [--demo] [--once]`.
pub async fn serve(config: Config, demo: bool, once: bool) -> Result<()> {
    if demo {
        let n = app::fill_demo(&config.mailbox.path, &app::demo_dir(&config.templates.dir))?;
        tracing::info!(messages = n, spool = %config.mailbox.path.display(), "demo requests delivered to the spool");
    }
    let demo_accounts = app::demo_dir(&config.templates.dir).join("accounts.toml");
    let app = App::build(config).await?;
    if demo {
        let n = app::load_accounts(&app.desk.store, &demo_accounts).await?;
        tracing::info!(
            accounts = n,
            "demo portal accounts in the embedded directory"
        );
    }
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal(once).await;
        let _ = tx.send(true);
    });
    if once {
        app.run_once().await?;
        return Ok(());
    }
    app.serve(rx).await?;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal(once: bool) {
    if once {
        std::future::pending::<()>().await;
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("signal handler");
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: finishing the message in hand"),
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupted: finishing the message in hand"),
    }
}

/// Runs `huytk import mbox|maildir PATH`: a backlog through the same path
/// as live mail.
pub async fn import(config: Config, format: &str, path: &Path) -> Result<()> {
    let app = App::build(config).await?;
    let messages = if format == "mbox" {
        huytk::mailbox::mbox::read_mbox(path)?
    } else {
        huytk::mailbox::mbox::read_maildir(path)?
    };
    let bar = indicatif::ProgressBar::new(messages.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} {per_sec} eta {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let (mut new, mut known, mut failed) = (0, 0, 0);
    for m in messages {
        match app.desk.ingest(&m.raw, &m.origin).await? {
            huytk::workflow::Ingested::Duplicate { .. } => known += 1,
            huytk::workflow::Ingested::Failed { .. } => failed += 1,
            _ => new += 1,
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    println!("imported {new} new messages, {known} already known, {failed} failed (see `huytk messages --failed`)");
    Ok(())
}

/// Runs `huytk purge`.
pub async fn purge(config: Config) -> Result<()> {
    let app = App::build(config).await?;
    let n = app.purge().await?;
    println!("{n} closed requests purged");
    Ok(())
}

/// Runs `huytk digest [--day D]`.
pub async fn digest(config: Config, day: Option<String>) -> Result<()> {
    if config.desk.digest_to.is_empty() {
        anyhow::bail!("no supervisors to send it to: set [desk] digest_to = [\"…\"]");
    }
    let app = App::build(config).await?;
    let day = day.unwrap_or_else(|| app.desk.clock.today().to_string());
    if app.desk.send_digest(&day).await? {
        app.run_once_outbox().await?;
        println!(
            "digest for {day} sent to {}",
            app.config.desk.digest_to.join(", ")
        );
    } else {
        println!("digest for {day} was sent before");
    }
    Ok(())
}
