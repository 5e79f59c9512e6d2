//! `huytk doctor`: every configured connection checked, each failure said.

use anyhow::Result;

use huytk::app;
use huytk::config::Config;
use huytk::store::Store;

/// The lines printed so far and how many said FAIL.
#[derive(Default)]
struct Checks {
    bad: usize,
}

impl Checks {
    fn report(&mut self, what: &str, r: std::result::Result<String, String>) {
        match r {
            Ok(ok) => println!("ok    {what}: {ok}"),
            Err(e) => {
                self.bad += 1;
                println!("FAIL  {what}: {e}");
            }
        }
    }
}

/// Runs `huytk doctor`: exits non-zero when any check failed.
pub async fn run(config: Config) -> Result<()> {
    let mut checks = Checks::default();
    files(&mut checks, &config);
    let store = Store::connect(&config.database.url).await;
    database(&mut checks, &config, &store).await;
    checks.report(
        "SMS gateway",
        huytk::notify::sms::SmsGateway::from_config(&config.sms).map(|g| g.describe()),
    );
    checks.report("inbox", inbox(&config).await);
    checks.report("mail out", mail_out(&config).await);
    if checks.bad > 0 {
        anyhow::bail!("{} check(s) failed", checks.bad);
    }
    Ok(())
}

/// The templates and the console's pages.
fn files(checks: &mut Checks, config: &Config) {
    checks.report(
        "templates",
        huytk::notify::Templates::load(&config.templates.dir)
            .map(|t| t.dir().display().to_string())
            .map_err(|e| e.to_string()),
    );
    checks.report(
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
}

/// The operators, the database, and the account store it may hold.
async fn database(
    checks: &mut Checks,
    config: &Config,
    store: &std::result::Result<Store, huytk::store::StoreError>,
) {
    if let Ok(s) = store {
        checks.report(
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
    checks.report(
        "database",
        match store {
            Ok(s) => s
                .ping()
                .await
                .map(|_| app::redact(&config.database.url))
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        },
    );
    if let Ok(st) = store {
        use huytk::accounts::AccountStore;
        checks.report(
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
}

async fn inbox(config: &Config) -> std::result::Result<String, String> {
    if config.mailbox.kind == huytk::config::MailboxKind::Imap {
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
    }
}

async fn mail_out(config: &Config) -> std::result::Result<String, String> {
    match huytk::notify::Mailer::from_config(&config.mail_out) {
        Ok(m) => m
            .check()
            .await
            .map(|_| format!("{:?}", m))
            .map_err(|e| e.message),
        Err(e) => Err(e.message),
    }
}
