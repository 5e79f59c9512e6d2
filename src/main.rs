//! The `huytk` command line.

use anyhow::{Context, Result};
use chrono::Datelike;
use clap::{Parser, Subcommand};
use rayon::prelude::*;
use std::io::Write;
use std::path::PathBuf;

use huytk::intake::{inspect, InspectOptions, Report, Verdict};

#[derive(Parser)]
#[command(
    name = "huytk",
    version,
    about = "The account-deletion desk of the national public-service portal"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Inspect request emails exactly as the desk does (SPEC section 3).
    Inspect {
        /// Print one JSON object per line and file.
        #[arg(long)]
        json: bool,
        /// Worker threads (default: all cores).
        #[arg(long)]
        jobs: Option<usize>,
        /// The .eml files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Measure inspection speed on a folder of .eml files.
    Bench(huytk::bench::BenchArgs),
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Inspect { json, jobs, files } => run_inspect(json, jobs, &files),
        Command::Bench(args) => huytk::bench::run(&args).map_err(Into::into),
    }
}

fn options() -> InspectOptions {
    InspectOptions {
        current_year: chrono::Local::now().year(),
    }
}

fn run_inspect(json: bool, jobs: Option<usize>, files: &[PathBuf]) -> Result<()> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs.unwrap_or(0))
        .build()
        .context("starting worker threads")?;
    let opts = options();
    let stdout = std::io::stdout();
    let mut failed = false;
    // Chunks keep memory bounded on long lists while output stays in order.
    for chunk in files.chunks(256) {
        let results: Vec<std::io::Result<Report>> = pool.install(|| {
            chunk
                .par_iter()
                .map(|path| {
                    let raw = std::fs::read(path)?;
                    Ok(inspect(&raw, Some(&path.to_string_lossy()), &opts))
                })
                .collect()
        });
        let mut out = stdout.lock();
        for (path, r) in chunk.iter().zip(results) {
            match r {
                Ok(report) if json => {
                    serde_json::to_writer(&mut out, &report)?;
                    writeln!(out)?;
                }
                Ok(report) => write_summary(&mut out, &report)?,
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
