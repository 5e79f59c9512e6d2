//! `huytk requests …` and `huytk messages`: what the desk holds, read
//! from the command line.

use anyhow::Result;
use clap::{Args, Subcommand};

use huytk::domain::RequestState;
use huytk::store::{AuditEntry, MessageRow, RequestRow, Store};

/// `huytk requests …`.
#[derive(Subcommand)]
pub enum RequestsCommand {
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

/// Runs `huytk requests …`.
pub async fn run(store: &Store, command: RequestsCommand) -> Result<()> {
    match command {
        RequestsCommand::List { state, json, limit } => {
            let state = state.as_deref().map(RequestState::parse).transpose()?;
            for r in store.requests(state, limit).await? {
                if json {
                    println!("{}", serde_json::to_string(&r)?);
                } else {
                    print_row(&r);
                }
            }
            Ok(())
        }
        RequestsCommand::Show { request, json } => show(store, &request, json).await,
    }
}

fn print_row(r: &RequestRow) {
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

async fn show(store: &Store, request: &str, json: bool) -> Result<()> {
    let row = match request.parse::<i64>() {
        Ok(id) => store.request(id).await?,
        Err(_) => store.request_by_reference(request).await?,
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
        print_request(&r, messages.len(), audit);
    }
    Ok(())
}

fn none_or_joined(codes: &[String]) -> String {
    if codes.is_empty() {
        "none".into()
    } else {
        codes.join(", ")
    }
}

fn print_request(r: &RequestRow, messages: usize, audit: Vec<AuditEntry>) {
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
    println!("  problems: {}", none_or_joined(&r.problems));
    println!("  warnings: {}", none_or_joined(&r.warnings));
    println!("  messages: {messages}");
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

/// `huytk messages`.
#[derive(Args)]
pub struct MessagesArgs {
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
}

/// Runs `huytk messages`: newest first, page by page with `--all`.
pub async fn messages(store: &Store, args: &MessagesArgs) -> Result<()> {
    let status = args.failed.then_some("failed");
    let page = if args.all { 1000 } else { args.limit.max(0) };
    let mut last = None;
    let mut shown = 0;
    loop {
        let rows = store.messages(status, page, last.as_ref()).await?;
        for m in &rows {
            print_message(m, args.json)?;
        }
        shown += rows.len() as i64;
        let full = rows.len() as i64 == page;
        last = rows.into_iter().last();
        if !args.all || !full {
            if !args.all && full && store.messages(status, 1, last.as_ref()).await?.len() == 1 {
                eprintln!("(showing the newest {shown}: --limit N for more, --all for every one)");
            }
            return Ok(());
        }
    }
}

/// One line of `huytk messages`.
fn print_message(m: &MessageRow, json: bool) -> Result<()> {
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
