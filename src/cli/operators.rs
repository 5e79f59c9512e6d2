//! `huytk operator …`: console operators from the command line, through
//! the same operator service as the console and the API; each change is
//! audited as `cli:<the local user>`.

use anyhow::{Context, Result};
use clap::Subcommand;
use std::os::unix::fs::MetadataExt;

use huytk::domain::{Login, Role};
use huytk::store::Store;
use huytk::workflow::operators::{Actor, NewPassword, Operators, PasswordHashing};

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
    /// Give an operator another role (the last enabled admin stays one).
    Role {
        /// Login name.
        login: String,
        /// operator, supervisor or admin.
        role: String,
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

/// Hashes at once, on a blocking thread: the CLI hashes one password.
struct Argon2Here;

impl PasswordHashing for Argon2Here {
    async fn hash_password(&self, password: &str) -> Option<String> {
        let password = password.to_owned();
        tokio::task::spawn_blocking(move || huytk::web::auth::hash_password(&password))
            .await
            .ok()
    }
}

/// The local user running the command, by the process's real uid (not
/// `$USER`, which anyone can set): its name in /etc/passwd, else `uid<N>`.
fn local_user() -> String {
    let Ok(uid) = std::fs::metadata("/proc/self").map(|m| m.uid()) else {
        return "unknown".into();
    };
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() > 2 && f[2] == uid.to_string())
        .map_or_else(|| format!("uid{uid}"), |f| f[0].to_owned())
}

fn read_password(from_stdin: bool) -> Result<NewPassword> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .context("reading the password from standard input")?;
        Ok(NewPassword::Given(
            line.trim_end_matches(['\r', '\n']).to_owned(),
        ))
    } else {
        Ok(NewPassword::OneTime)
    }
}

/// A login or role as the service stored it (lower case), for the
/// messages; the service has accepted it by then.
fn shown(login: &str) -> String {
    Login::parse(login).map_or_else(|_| login.to_owned(), |l| l.to_string())
}

fn shown_role(role: &str) -> String {
    Role::parse(role).map_or_else(|_| role.to_owned(), |r| r.to_string())
}

/// Runs `huytk operator …`.
pub async fn run(store: &Store, command: OperatorCommand) -> Result<()> {
    let service = Operators::new(store, &Argon2Here);
    let actor = Actor::local(&local_user());
    match command {
        OperatorCommand::Add {
            login,
            role,
            name,
            password_stdin,
        } => {
            let password = read_password(password_stdin)?;
            let one_time = service
                .add(&actor, &login, name.as_deref(), &role, password)
                .await?;
            let (login, role) = (shown(&login), shown_role(&role));
            match one_time {
                Some(p) => println!("added {login} ({role}) with the one-time password {p} (to be changed at first login)"),
                None => println!("added {login} ({role})"),
            }
        }
        OperatorCommand::Disable { login } => {
            service.set_disabled(&actor, &login, true).await?;
            println!(
                "{} disabled: sessions ended, API tokens revoked",
                shown(&login)
            );
        }
        OperatorCommand::Enable { login } => {
            service.set_disabled(&actor, &login, false).await?;
            println!("{} enabled", shown(&login));
        }
        OperatorCommand::Passwd {
            login,
            password_stdin,
        } => {
            let password = read_password(password_stdin)?;
            let one_time = service.set_password(&actor, &login, password).await?;
            let login = shown(&login);
            match one_time {
                Some(p) => println!("{login}: one-time password {p} (to be changed at next login)"),
                None => println!("{login}: password set; their sessions ended"),
            }
        }
        OperatorCommand::Role { login, role } => {
            service.set_role(&actor, &login, &role).await?;
            println!("{} is now {}", shown(&login), shown_role(&role));
        }
        OperatorCommand::List => {
            for o in service.list(&actor).await? {
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
            let token = service
                .create_token(&actor, &login, Some(&name), days)
                .await?;
            println!("{}", token.expose());
        }
    }
    Ok(())
}
