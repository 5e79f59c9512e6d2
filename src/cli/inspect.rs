//! `huytk inspect`: request emails inspected exactly as the desk does
//! (SPEC section 3), in parallel, printed in input order.

use anyhow::{Context, Result};
use chrono::Datelike;
use clap::Args;
use rayon::prelude::*;
use std::io::Write;
use std::path::{Path, PathBuf};

use huytk::config::Config;
use huytk::intake::auth::TrustedServers;
use huytk::intake::{try_inspect_trusting, InspectOptions, Refused, Report, Verdict};
use huytk::mailbox::sender_check::ResolverCheck;

/// One file's outcome: unreadable, refused before parsing, or inspected.
type Inspected = std::io::Result<Result<Report, Refused>>;

/// `huytk inspect`.
#[derive(Args)]
pub struct InspectArgs {
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
}

/// Runs `huytk inspect`; `config` is read only for its `[sender_auth]`.
pub fn run(args: InspectArgs, config: Option<&Path>) -> Result<()> {
    let mut auth = match config {
        Some(path) => Config::load(Some(path))?.sender_auth,
        None => huytk::config::SenderAuthConfig::default(),
    };
    auth.trusted_authserv_ids.extend(args.trusted_authserv_ids);
    auth.trust_unnamed_authserv_id |= args.trust_unnamed_authserv_id;
    if let Some(addr) = args.resolver {
        auth.check = huytk::config::SenderCheckWay::Resolver;
        auth.resolver = addr;
    }
    auth.trusted_received_by.extend(args.trusted_received_by);
    let check = ResolverCheck::from_config(&auth)?;
    inspect_files(
        args.json,
        args.jobs,
        &args.files,
        auth.trusted().as_ref(),
        check.as_ref(),
    )
}

fn options() -> InspectOptions {
    InspectOptions {
        current_year: huytk::domain::time::Clock::system().vietnam_now().year(),
    }
}

fn inspect_files(
    json: bool,
    jobs: Option<usize>,
    files: &[PathBuf],
    trusted: Option<&TrustedServers>,
    check: Option<&ResolverCheck>,
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
    let mut failed = false;
    // Chunks keep memory bounded on long lists while output stays in order.
    for chunk in files.chunks(256) {
        let mut results: Vec<Inspected> = pool.install(|| {
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
        failed |= print_chunk(json, chunk, results)?;
    }
    if failed {
        std::process::exit(1);
    }
    Ok(())
}

/// Prints a chunk's results in order; true when a file could not be read.
fn print_chunk(json: bool, chunk: &[PathBuf], results: Vec<Inspected>) -> Result<bool> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut failed = false;
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
    Ok(failed)
}

/// Fills each inspected report's `auth` with huytk's own check of its
/// file, all of a chunk's checks at once.
fn check_senders(
    rt: &tokio::runtime::Runtime,
    check: &ResolverCheck,
    files: &[PathBuf],
    results: &mut [Inspected],
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
