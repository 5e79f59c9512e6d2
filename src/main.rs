//! The `huytk` command line.

#![warn(clippy::too_many_lines)]

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use std::path::PathBuf;

use huytk::config::Config;

mod cli;

use cli::accounts::AccountsCommand;
use cli::audit::AuditCommand;
use cli::inspect::InspectArgs;
use cli::keys::KeysCommand;
use cli::operators::OperatorCommand;
use cli::requests::{MessagesArgs, RequestsCommand};

#[derive(Parser)]
#[command(
    name = "huytk",
    version,
    about = "The account-deletion desk of the national public-service portal"
)]
struct Cli {
    /// Configuration file (default: the embedded default, no file).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the desk: read the inbox, store, inspect, answer.
    Serve {
        /// Fill the Maildir spool with sample requests first.
        #[arg(long)]
        demo: bool,
        /// Stop once the inbox is empty and every mail is sent (scripts, tests).
        #[arg(long)]
        once: bool,
    },
    /// Bring the database schema up to date.
    Migrate,
    /// Requests.
    Requests {
        #[command(subcommand)]
        command: RequestsCommand,
    },
    /// Stored messages (all, or those that failed).
    Messages(MessagesArgs),
    /// Load a backlog through the same path as live mail (idempotent).
    Import {
        /// mbox or maildir.
        #[arg(value_parser = ["mbox", "maildir"])]
        format: String,
        /// The file or folder.
        path: PathBuf,
    },
    /// Check every configured connection and say what fails.
    Doctor,
    /// The configuration: its reference, an example file, a check.
    Config {
        #[command(subcommand)]
        command: huytk::config::ConfigCommand,
    },
    /// Console operators: add, disable, enable, set a password, list, API tokens.
    Operator {
        #[command(subcommand)]
        command: OperatorCommand,
    },
    /// Retention: drop the raw mail and photos of requests closed more
    /// than `[desk] retention_days` ago (hashes and the audit trail stay).
    Purge,
    /// The audit log's hash chain.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Queue the supervisors' daily digest now (once per day).
    Digest {
        /// The day (YYYY-MM-DD, default today in Vietnam).
        #[arg(long)]
        day: Option<String>,
    },
    /// The embedded directory of portal accounts (the embedded default's
    /// account store).
    Accounts {
        #[command(subcommand)]
        command: AccountsCommand,
    },
    /// Inspect request emails exactly as the desk does (SPEC section 3).
    Inspect(InspectArgs),
    /// Measure inspection speed on a folder of .eml files.
    Bench(huytk::bench::BenchArgs),
    /// A consistent copy of the SQLite database, taken while the desk runs
    /// (it holds the mail sealed: keep the master key's backup apart).
    Backup {
        /// The file to write (must not exist).
        to: PathBuf,
    },
    /// Put a backup in place of the SQLite database (stop the desk first);
    /// the database it replaces is kept as `….replaced`.
    Restore {
        /// The backup file.
        from: PathBuf,
    },
    /// The master key that seals citizens' mail: status, rotation, a new
    /// key file (README, Operations).
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
}

fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    // Colour only for a person at a terminal: a log file or a service
    // manager's journal gets plain text, and NO_COLOR is respected.
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(|| huytk::logs::RedactingWriter::new(std::io::stderr()));
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

fn main() -> Result<()> {
    // Every file the desk writes (database, spool, outbox) is its own.
    huytk::private::set_umask();
    let cli = Cli::parse();
    match cli.command {
        Command::Inspect(args) => cli::inspect::run(args, cli.config.as_deref()),
        Command::Bench(args) => huytk::bench::run(&args).map_err(Into::into),
        Command::Config { command } => {
            print!(
                "{}",
                huytk::config::run_command(&command, cli.config.as_deref())?
            );
            Ok(())
        }
        command => {
            init_logs(cli.log_format);
            let config = Config::load(cli.config.as_deref())?;
            // Secrets show as *** (config::Secret): the line is safe to keep.
            tracing::debug!(?config, "configuration in effect");
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("starting the runtime")?;
            let result = runtime.block_on(run_async(config, command));
            // An inspection given up for its time budget may still run on
            // a blocking thread: the process does not wait for it.
            runtime.shutdown_timeout(std::time::Duration::from_secs(1));
            result
        }
    }
}

async fn run_async(config: Config, command: Command) -> Result<()> {
    match command {
        Command::Serve { demo, once } => cli::serve::serve(config, demo, once).await,
        Command::Migrate => cli::database::migrate(&config).await,
        Command::Requests { command } => {
            let store = huytk::app::open_store(&config).await?;
            cli::requests::run(&store, command).await
        }
        Command::Messages(args) => {
            let store = huytk::app::open_store(&config).await?;
            cli::requests::messages(&store, &args).await
        }
        Command::Import { format, path } => cli::serve::import(config, &format, &path).await,
        Command::Doctor => cli::doctor::run(config).await,
        Command::Keys { command } => cli::keys::run(&config, command).await,
        Command::Backup { to } => cli::database::backup(&config, &to).await,
        Command::Restore { from } => cli::database::restore(&config, &from).await,
        Command::Purge => cli::serve::purge(config).await,
        Command::Audit { command } => cli::audit::run(&config, command).await,
        Command::Digest { day } => cli::serve::digest(config, day).await,
        Command::Operator { command } => {
            let store = huytk::app::open_store(&config).await?;
            cli::operators::run(&store, command).await
        }
        Command::Accounts { command } => {
            let store = huytk::app::open_store(&config).await?;
            cli::accounts::run(&store, command).await
        }
        Command::Inspect(_) | Command::Bench(_) | Command::Config { .. } => {
            unreachable!("handled without a runtime")
        }
    }
}
