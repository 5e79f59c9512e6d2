//! The `huytk` command line.

use anyhow::{Context, Result};
use chrono::Datelike;
use clap::{Parser, Subcommand};
use rayon::prelude::*;
use std::io::Write;
use std::path::PathBuf;

use huytk::app::{self, App};
use huytk::config::Config;
use huytk::domain::RequestState;
use huytk::intake::{try_inspect_trusting, InspectOptions, Report, Verdict};

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
    Messages {
        /// Only messages whose processing failed.
        #[arg(long)]
        failed: bool,
        /// JSON lines.
        #[arg(long)]
        json: bool,
        /// At most this many, newest first.
        #[arg(long, default_value_t = 500)]
        limit: i64,
        /// Every message, however many (read page by page).
        #[arg(long, conflicts_with = "limit")]
        all: bool,
    },
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
    Inspect {
        /// Print one JSON object per line and file.
        #[arg(long)]
        json: bool,
        /// Worker threads (default: all cores).
        #[arg(long)]
        jobs: Option<usize>,
        /// Read the `Authentication-Results` of this receiving server into
        /// an `auth` object (repeatable; added to `[sender_auth]` of
        /// `--config`, which is read only for that).
        #[arg(long = "trusted-authserv-id", value_name = "ID")]
        trusted_authserv_ids: Vec<String>,
        /// Also trust headers without an authserv-id (Microsoft 365).
        #[arg(long)]
        trust_unnamed_authserv_id: bool,
        /// Check DKIM, SPF and DMARC with this DNS server (`IP[:port]`)
        /// instead of reading headers (`[sender_auth] check = "resolver"`).
        #[arg(long, value_name = "ADDR")]
        resolver: Option<String>,
        /// With `--resolver`: the `by` name of the desk's receiving server
        /// whose `Received` line gives the SMTP client (repeatable; added to
        /// `trusted_received_by`).
        #[arg(long = "trusted-received-by", value_name = "NAME")]
        trusted_received_by: Vec<String>,
        /// The .eml files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
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

#[derive(Subcommand)]
enum KeysCommand {
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

#[derive(Subcommand)]
enum RequestsCommand {
    /// Requests, oldest due first.
    List {
        /// Only this state (needs_info, pending_review, …).
        #[arg(long)]
        state: Option<String>,
        /// JSON lines.
        #[arg(long)]
        json: bool,
        /// At most this many.
        #[arg(long, default_value_t = 200)]
        limit: i64,
    },
    /// One request with its messages and history.
    Show {
        /// Reference (HTK-…) or id.
        request: String,
        /// JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Walk the chain from its first row: exit 0 when no row was edited,
    /// deleted or reordered, else name the first such row and exit 1.
    Verify {
        /// A head a digest named, `ID:HASH`: it must still be in the chain
        /// (catches rows removed from the end).
        #[arg(long)]
        head: Option<String>,
    },
}

#[derive(Subcommand)]
enum OperatorCommand {
    /// Add an operator. The password is read from standard input with
    /// --password-stdin, else a random one is printed.
    Add {
        /// Login name.
        login: String,
        /// operator, supervisor or admin.
        #[arg(long, default_value = "operator")]
        role: String,
        /// Name shown in the console (default: the login).
        #[arg(long)]
        name: Option<String>,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Disable an operator: their sessions end and their API tokens stop working.
    Disable {
        /// Login name.
        login: String,
    },
    /// Enable a disabled operator.
    Enable {
        /// Login name.
        login: String,
    },
    /// Set a password (read from standard input with --password-stdin, else
    /// a random one-time password is printed and must be changed at login).
    Passwd {
        /// Login name.
        login: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List operators.
    List,
    /// Create an API token for an operator and print it (shown once).
    Token {
        /// Login name.
        login: String,
        /// A label for the token.
        #[arg(long, default_value = "cli")]
        name: String,
        /// Days until it stops working.
        #[arg(long, default_value_t = 90)]
        days: u64,
    },
}

#[derive(Subcommand)]
enum AccountsCommand {
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

/// `huytk keys …`.
async fn run_keys(config: &Config, command: KeysCommand) -> Result<()> {
    use huytk::store::keys::{self, KeySource};
    use huytk::store::sealed::MasterKey;
    if let KeysCommand::New { path } = &command {
        let key = MasterKey::generate();
        keys::write_key_file(path, &key)?;
        println!(
            "master key {} written to {} (mode 0600): back it up apart from the database",
            key.id(),
            path.display()
        );
        return Ok(());
    }
    let store = app::open_store(config).await?;
    match command {
        KeysCommand::Status => {
            for (id, state, n) in store.key_counts().await? {
                println!("{id}\t{state}\t{n} data keys");
            }
        }
        KeysCommand::Rotate { new_key_file } => match (config.database.key_source(), new_key_file) {
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
        },
        KeysCommand::New { .. } => unreachable!("handled above"),
    }
    Ok(())
}

/// One line of `huytk messages`.
fn print_message(m: &huytk::store::MessageRow, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string(m)?);
    } else {
        println!(
            "{} {:9} {:16} {} {:?}{}",
            &m.sha256[..12],
            m.status,
            m.kind.as_deref().unwrap_or("-"),
            m.sender.as_deref().unwrap_or("-"),
            m.subject.as_deref().unwrap_or(""),
            m.error
                .as_ref()
                .map(|e| format!("  error: {e}"))
                .unwrap_or_default()
        );
    }
    Ok(())
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
        Command::Inspect {
            json,
            jobs,
            trusted_authserv_ids,
            trust_unnamed_authserv_id,
            resolver,
            trusted_received_by,
            files,
        } => {
            let mut auth = match &cli.config {
                Some(path) => Config::load(Some(path))?.sender_auth,
                None => huytk::config::SenderAuthConfig::default(),
            };
            auth.trusted_authserv_ids.extend(trusted_authserv_ids);
            auth.trust_unnamed_authserv_id |= trust_unnamed_authserv_id;
            if let Some(addr) = resolver {
                auth.check = huytk::config::SenderCheckWay::Resolver;
                auth.resolver = addr;
            }
            auth.trusted_received_by.extend(trusted_received_by);
            let check = huytk::mailbox::sender_check::ResolverCheck::from_config(&auth)?;
            run_inspect(json, jobs, &files, auth.trusted().as_ref(), check.as_ref())
        }
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
        Command::Serve { demo, once } => {
            if demo {
                let n =
                    app::fill_demo(&config.mailbox.path, &app::demo_dir(&config.templates.dir))?;
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
        }
        Command::Migrate => {
            app::open_store(&config).await?;
            println!("schema up to date: {}", app::redact(&config.database.url));
        }
        Command::Requests { command } => {
            let store = app::open_store(&config).await?;
            run_requests(&store, command).await?;
        }
        Command::Messages {
            failed,
            json,
            limit,
            all,
        } => {
            let store = app::open_store(&config).await?;
            let status = failed.then_some("failed");
            let page = if all { 1000 } else { limit.max(0) };
            let mut last = None;
            let mut shown = 0;
            loop {
                let rows = store.messages(status, page, last.as_ref()).await?;
                for m in &rows {
                    print_message(m, json)?;
                }
                shown += rows.len() as i64;
                let full = rows.len() as i64 == page;
                last = rows.into_iter().last();
                if !all || !full {
                    if !all && full && store.messages(status, 1, last.as_ref()).await?.len() == 1 {
                        eprintln!(
                            "(showing the newest {shown}: --limit N for more, --all for every one)"
                        );
                    }
                    break;
                }
            }
        }
        Command::Import { format, path } => {
            let app = App::build(config).await?;
            let messages = if format == "mbox" {
                huytk::mailbox::mbox::read_mbox(&path)?
            } else {
                huytk::mailbox::mbox::read_maildir(&path)?
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
        }
        Command::Doctor => doctor(config).await?,
        Command::Keys { command } => run_keys(&config, command).await?,
        Command::Backup { to } => {
            let store = app::open_store(&config).await?;
            store.backup_to(&to).await?;
            println!(
                "backup written to {} (mode 0600). It holds the mail sealed: without the master key \
                 ({}) it cannot be read, so back the key up too, apart from this file.",
                to.display(),
                config.database.master_key_path().display()
            );
        }
        Command::Restore { from } => {
            let kept = huytk::store::backup::restore_sqlite(&config.database.url, &from).await?;
            // The restored database must open with this desk's master key.
            app::open_store(&config).await?;
            println!(
                "restored {}{}",
                from.display(),
                kept.map(|k| format!("; the database it replaced is kept as {}", k.display()))
                    .unwrap_or_default()
            );
        }
        Command::Purge => {
            let app = App::build(config).await?;
            let n = app.purge().await?;
            println!("{n} closed requests purged");
        }
        Command::Audit {
            command: AuditCommand::Verify { head },
        } => {
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
        }
        Command::Digest { day } => {
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
        }
        Command::Operator { command } => {
            let store = app::open_store(&config).await?;
            run_operator(&store, command).await?;
        }
        Command::Accounts { command } => {
            let store = app::open_store(&config).await?;
            match command {
                AccountsCommand::Load { path } => {
                    let n = app::load_accounts(&store, &path).await?;
                    println!("{n} accounts loaded");
                }
                AccountsCommand::Find { number } => {
                    for a in store.portal_accounts(&[number]).await? {
                        println!("{}", serde_json::to_string(&a)?);
                    }
                }
            }
        }
        Command::Inspect { .. } | Command::Bench(_) | Command::Config { .. } => {
            unreachable!("handled without a runtime")
        }
    }
    Ok(())
}

fn read_password(from_stdin: bool) -> Result<(String, bool)> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .context("reading the password from standard input")?;
        let p = line.trim_end_matches(['\r', '\n']).to_owned();
        Ok((p, false))
    } else {
        Ok((huytk::web::auth::random_password(), true))
    }
}

async fn run_operator(store: &huytk::store::Store, command: OperatorCommand) -> Result<()> {
    use huytk::domain::{Login, Role};
    use huytk::web::auth;
    match command {
        OperatorCommand::Add {
            login,
            role,
            name,
            password_stdin,
        } => {
            let login = Login::parse(&login)?;
            let role = Role::parse(&role)?;
            let (password, generated) = read_password(password_stdin)?;
            if let Some(p) = auth::password_problem(&password, login.as_str()) {
                anyhow::bail!("{p}");
            }
            let name = name.unwrap_or_else(|| login.to_string());
            if !store
                .add_operator(
                    &login,
                    &name,
                    role,
                    &auth::hash_password(&password),
                    generated,
                )
                .await?
            {
                anyhow::bail!("an operator {login} exists already");
            }
            if generated {
                println!("added {login} ({role}) with the one-time password {password} (to be changed at first login)");
            } else {
                println!("added {login} ({role})");
            }
        }
        OperatorCommand::Disable { login } => {
            let login = Login::parse(&login)?;
            if !store.set_disabled(&login, true).await? {
                anyhow::bail!("no operator {login}");
            }
            println!("{login} disabled: sessions ended, API tokens revoked");
        }
        OperatorCommand::Enable { login } => {
            let login = Login::parse(&login)?;
            if !store.set_disabled(&login, false).await? {
                anyhow::bail!("no operator {login}");
            }
            println!("{login} enabled");
        }
        OperatorCommand::Passwd {
            login,
            password_stdin,
        } => {
            let login = Login::parse(&login)?;
            let (password, generated) = read_password(password_stdin)?;
            if let Some(p) = auth::password_problem(&password, login.as_str()) {
                anyhow::bail!("{p}");
            }
            if !store
                .set_password(&login, &auth::hash_password(&password), generated)
                .await?
            {
                anyhow::bail!("no operator {login}");
            }
            if let Some(op) = store.operator(&login).await? {
                store.end_sessions_of(op.id).await?;
            }
            if generated {
                println!("{login}: one-time password {password} (to be changed at next login)");
            } else {
                println!("{login}: password set; their sessions ended");
            }
        }
        OperatorCommand::List => {
            for o in store.operators().await? {
                println!(
                    "{:20} {:10} {}{}",
                    o.login,
                    o.role,
                    o.display_name,
                    if o.disabled { "  (disabled)" } else { "" }
                );
            }
        }
        OperatorCommand::Token { login, name, days } => {
            let login = Login::parse(&login)?;
            let op = store
                .operator(&login)
                .await?
                .with_context(|| format!("no operator {login}"))?;
            if op.disabled {
                anyhow::bail!("{login} is disabled");
            }
            let (token, hash) = auth::new_api_token();
            store
                .add_api_token(&hash, op.id, &name, auth::token_expiry(days))
                .await?;
            println!("{token}");
        }
    }
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

async fn run_requests(store: &huytk::store::Store, command: RequestsCommand) -> Result<()> {
    match command {
        RequestsCommand::List { state, json, limit } => {
            let state = state.as_deref().map(RequestState::parse).transpose()?;
            for r in store.requests(state, limit).await? {
                if json {
                    println!("{}", serde_json::to_string(&r)?);
                } else {
                    println!(
                        "{:18} {:15} due {}  {:12} {:24} {}{}",
                        r.reference,
                        r.state.as_str(),
                        r.due_date,
                        r.id_number.as_deref().unwrap_or("—"),
                        r.full_name.as_deref().unwrap_or("—"),
                        r.email,
                        if r.problems.is_empty() {
                            String::new()
                        } else {
                            format!("  [{}]", r.problems.join(", "))
                        }
                    );
                }
            }
        }
        RequestsCommand::Show { request, json } => {
            let row = match request.parse::<i64>() {
                Ok(id) => store.request(id).await?,
                Err(_) => store.request_by_reference(&request).await?,
            };
            let Some(r) = row else {
                anyhow::bail!("no request {request}");
            };
            let audit = store.audit_for(r.id).await?;
            let messages = store.request_message_shas(r.id).await?;
            let assessment: Option<serde_json::Value> = store
                .request_assessment(r.id)
                .await?
                .and_then(|a| serde_json::from_str(&a).ok());
            if json {
                println!(
                    "{}",
                    serde_json::json!({"request": r, "messages": messages, "assessment": assessment, "history": audit})
                );
            } else {
                println!("{}  {}  due {}", r.reference, r.state, r.due_date);
                println!("  from:   {}", r.email);
                println!(
                    "  number: {} ({})",
                    r.id_number.as_deref().unwrap_or("—"),
                    r.id_type.as_deref().unwrap_or("invalid")
                );
                println!("  name:   {}", r.full_name.as_deref().unwrap_or("—"));
                println!("  phone:  {}", r.phone.as_deref().unwrap_or("—"));
                println!("  reason: {}", r.reason.as_deref().unwrap_or("—"));
                println!(
                    "  problems: {}",
                    if r.problems.is_empty() {
                        "none".into()
                    } else {
                        r.problems.join(", ")
                    }
                );
                println!(
                    "  warnings: {}",
                    if r.warnings.is_empty() {
                        "none".into()
                    } else {
                        r.warnings.join(", ")
                    }
                );
                println!("  messages: {}", messages.len());
                for a in audit {
                    println!(
                        "  {} {} {} {}→{} {}",
                        chrono::DateTime::from_timestamp_millis(a.at)
                            .map(|d| d.to_rfc3339())
                            .unwrap_or_default(),
                        a.actor,
                        a.action,
                        a.from_state.unwrap_or_default(),
                        a.to_state.unwrap_or_default(),
                        a.detail.unwrap_or_default()
                    );
                }
            }
        }
    }
    Ok(())
}

async fn doctor(config: Config) -> Result<()> {
    let mut bad = 0;
    let mut report = |what: &str, r: std::result::Result<String, String>| match r {
        Ok(ok) => println!("ok    {what}: {ok}"),
        Err(e) => {
            bad += 1;
            println!("FAIL  {what}: {e}");
        }
    };
    report(
        "templates",
        huytk::notify::Templates::load(&config.templates.dir)
            .map(|t| t.dir().display().to_string())
            .map_err(|e| e.to_string()),
    );
    report(
        "console pages",
        if huytk::web::has_pages(&config.templates.dir) {
            Ok(config.templates.dir.join("web").display().to_string())
        } else {
            Err(format!(
                "{} lacks the console's pages ({})",
                config.templates.dir.join("web").display(),
                huytk::web::PAGES.join(", ")
            ))
        },
    );
    let store = huytk::store::Store::connect(&config.database.url).await;
    if let Ok(s) = &store {
        report(
            "operators",
            match s.operator_count().await {
                Ok(0) => {
                    Ok("none yet: `huytk serve` creates admin with a one-time password".into())
                }
                Ok(n) => Ok(format!("{n}")),
                Err(e) => Err(e.to_string()),
            },
        );
    }
    report(
        "database",
        match &store {
            Ok(s) => s
                .ping()
                .await
                .map(|_| app::redact(&config.database.url))
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        },
    );
    if let Ok(st) = &store {
        use huytk::accounts::AccountStore;
        report(
            "account store",
            match huytk::accounts::Accounts::from_config(&config.accounts, st) {
                Ok(a) => match a.find(&["000000000".to_owned()]).await {
                    Ok(_) => Ok(a.describe()),
                    Err(e) => Err(format!("{}: {e}", a.describe())),
                },
                Err(e) => Err(e.to_string()),
            },
        );
    }
    report(
        "SMS gateway",
        huytk::notify::sms::SmsGateway::from_config(&config.sms).map(|g| g.describe()),
    );
    let inbox = if config.mailbox.kind == huytk::config::MailboxKind::Imap {
        huytk::mailbox::imap::connect(&config.mailbox)
            .await
            .map(|_| {
                format!(
                    "{}:{} as {}",
                    config.mailbox.host, config.mailbox.port, config.mailbox.username
                )
            })
            .map_err(|e| e.to_string())
    } else {
        huytk::mailbox::maildir::Spool::open(&config.mailbox.path)
            .map(|s| format!("maildir {}", s.root().display()))
            .map_err(|e| e.to_string())
    };
    report("inbox", inbox);
    let out = match huytk::notify::Mailer::from_config(&config.mail_out) {
        Ok(m) => m
            .check()
            .await
            .map(|_| format!("{:?}", m))
            .map_err(|e| e.message),
        Err(e) => Err(e.message),
    };
    report("mail out", out);
    if bad > 0 {
        anyhow::bail!("{bad} check(s) failed");
    }
    Ok(())
}

fn options() -> InspectOptions {
    InspectOptions {
        current_year: huytk::domain::time::Clock::system().vietnam_now().year(),
    }
}

fn run_inspect(
    json: bool,
    jobs: Option<usize>,
    files: &[PathBuf],
    trusted: Option<&huytk::intake::auth::TrustedServers>,
    check: Option<&huytk::mailbox::sender_check::ResolverCheck>,
) -> Result<()> {
    // The sender check is DNS: one small runtime asks for a chunk's mails
    // at once, each bounded by the check's own cap.
    let runtime = match check {
        Some(_) => Some(
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("starting the DNS runtime")?,
        ),
        None => None,
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs.unwrap_or(0))
        .build()
        .context("starting worker threads")?;
    let opts = options();
    let stdout = std::io::stdout();
    let mut failed = false;
    // Chunks keep memory bounded on long lists while output stays in order.
    for chunk in files.chunks(256) {
        let mut results: Vec<std::io::Result<Result<Report, huytk::intake::Refused>>> = pool
            .install(|| {
                chunk
                    .par_iter()
                    .map(|path| {
                        let raw = std::fs::read(path)?;
                        Ok(try_inspect_trusting(
                            &raw,
                            Some(&path.to_string_lossy()),
                            &opts,
                            trusted,
                        ))
                    })
                    .collect()
            });
        if let (Some(check), Some(rt)) = (check, &runtime) {
            check_senders(rt, check, chunk, &mut results);
        }
        let mut out = stdout.lock();
        for (path, r) in chunk.iter().zip(results) {
            match r {
                Ok(Ok(report)) if json => {
                    serde_json::to_writer(&mut out, &report)?;
                    writeln!(out)?;
                }
                Ok(Ok(report)) => write_summary(&mut out, &report)?,
                // Read, but refused before parsing (nested too deep …):
                // still one line, saying why.
                Ok(Err(refused)) if json => {
                    let line = serde_json::json!({
                        "file": path.to_string_lossy(),
                        "error": refused.to_string(),
                    });
                    serde_json::to_writer(&mut out, &line)?;
                    writeln!(out)?;
                }
                Ok(Err(refused)) => writeln!(out, "{}: REFUSED ({refused})", path.display())?,
                Err(e) => {
                    failed = true;
                    eprintln!("huytk: cannot read {}: {e}", path.display());
                }
            }
        }
    }
    if failed {
        std::process::exit(1);
    }
    Ok(())
}

/// Fills each inspected report's `auth` with huytk's own check of its
/// file, all of a chunk's checks at once.
fn check_senders(
    rt: &tokio::runtime::Runtime,
    check: &huytk::mailbox::sender_check::ResolverCheck,
    files: &[PathBuf],
    results: &mut [std::io::Result<Result<Report, huytk::intake::Refused>>],
) {
    use huytk::mailbox::sender_check::{SenderCheck, AUTHSERV_ID};
    let raws: Vec<Option<Vec<u8>>> = files
        .iter()
        .zip(results.iter())
        .map(|(path, r)| match r {
            Ok(Ok(_)) => std::fs::read(path).ok(),
            _ => None,
        })
        .collect();
    let found = rt.block_on(futures::future::join_all(raws.iter().map(
        |raw| async move {
            match raw {
                Some(raw) => Some(check.check(raw).await),
                None => None,
            }
        },
    )));
    for (r, found) in results.iter_mut().zip(found) {
        if let (Ok(Ok(report)), Some(found)) = (r, found) {
            report.auth = Some(huytk::intake::auth::from_results(
                &found,
                report.from.as_deref(),
                AUTHSERV_ID,
            ));
        }
    }
}

fn write_summary(out: &mut impl Write, r: &Report) -> std::io::Result<()> {
    let a = &r.assessment;
    let verdict = match a.verdict {
        Verdict::Complete => "COMPLETE",
        Verdict::Incomplete => "INCOMPLETE",
        Verdict::Ignored => "IGNORED",
    };
    writeln!(
        out,
        "{}: {verdict} ({})",
        r.file.as_deref().unwrap_or("-"),
        a.kind.as_str()
    )?;
    if a.verdict == Verdict::Ignored {
        return Ok(());
    }
    let or_dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "—".into());
    writeln!(
        out,
        "  number: {} ({})",
        or_dash(&a.id_number),
        a.id_type.map_or("invalid", |t| t.as_str())
    )?;
    writeln!(out, "  name:   {}", or_dash(&a.full_name))?;
    writeln!(out, "  phone:  {}", or_dash(&a.phone))?;
    writeln!(
        out,
        "  photos: {} usable, {} distinct",
        a.photos.usable, a.photos.distinct
    )?;
    if let Some(auth) = &r.auth {
        let dmarc = auth
            .dmarc
            .as_ref()
            .map_or("no trusted result", |d| d.result.as_str());
        writeln!(out, "  sender: {} (dmarc {dmarc})", auth.verdict.as_str())?;
    }
    for att in &a.attachments {
        writeln!(
            out,
            "    {} {} {}x{} {:?}{}",
            att.filename.as_deref().unwrap_or("(no name)"),
            att.format.map_or("other", |f| f.as_str()),
            att.width.unwrap_or(0),
            att.height.unwrap_or(0),
            att.role,
            if att.problems.is_empty() {
                String::new()
            } else {
                format!(" [{}]", att.problems.join(", "))
            }
        )?;
    }
    if let Some(q) = &a.qr {
        writeln!(
            out,
            "  card QR: {} {} born {}",
            q.id_number, q.full_name, q.birth_date
        )?;
    }
    for p in &a.problems {
        writeln!(out, "  problem: {}", p.describe())?;
    }
    for w in &a.warnings {
        writeln!(out, "  warning: {}", w.describe())?;
    }
    Ok(())
}
