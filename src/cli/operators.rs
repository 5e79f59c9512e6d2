//! `huytk operator …`: console operators from the command line.

use anyhow::{Context, Result};
use clap::Subcommand;

/// `huytk operator …`.
#[derive(Subcommand)]
pub enum OperatorCommand {
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

/// Runs `huytk operator …`.
pub async fn run(store: &huytk::store::Store, command: OperatorCommand) -> Result<()> {
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
