//! `huytk bench`: inspection speed on a folder of messages, on one core
//! and on all cores, with peak memory.

use std::path::PathBuf;
use std::time::Instant;

use crate::intake::{inspect, InspectOptions};

/// Arguments of `huytk bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Folder of .eml files.
    pub dir: PathBuf,
    /// Passes over the folder per measurement.
    #[arg(long, default_value_t = 1)]
    pub rounds: usize,
}

/// Why a benchmark could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// Reading the folder failed.
    #[error("reading {0}: {1}")]
    Io(PathBuf, std::io::Error),
    /// No messages.
    #[error("no .eml files in {0}")]
    Empty(PathBuf),
}

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Runs the benchmark and prints its figures.
pub fn run(args: &BenchArgs) -> Result<(), BenchError> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&args.dir)
        .map_err(|e| BenchError::Io(args.dir.clone(), e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect();
    paths.sort();
    if paths.is_empty() {
        return Err(BenchError::Empty(args.dir.clone()));
    }
    let messages: Vec<Vec<u8>> = paths
        .iter()
        .map(|p| std::fs::read(p).map_err(|e| BenchError::Io(p.clone(), e)))
        .collect::<Result<_, _>>()?;
    let bytes: usize = messages.iter().map(Vec::len).sum();
    let opts = InspectOptions { current_year: 2026 };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "{} messages, {:.1} MB, {} rounds, {cores} cores",
        messages.len(),
        bytes as f64 / 1e6,
        args.rounds
    );
    let mut one_core = 0.0;
    for threads in [1, cores] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("thread pool");
        let start = Instant::now();
        let mut complete = 0usize;
        for _ in 0..args.rounds {
            complete += pool.install(|| {
                use rayon::prelude::*;
                messages
                    .par_iter()
                    .map(|m| usize::from(inspect(m, None, &opts).assessment.qr.is_some()))
                    .sum::<usize>()
            });
        }
        let secs = start.elapsed().as_secs_f64();
        let rate = (messages.len() * args.rounds) as f64 / secs;
        if threads == 1 {
            one_core = rate;
        }
        println!(
            "{threads} thread(s): {rate:.1} messages/s ({:.2} ms/message), card QR found in {complete} of {}{}",
            1000.0 / rate * threads as f64,
            messages.len() * args.rounds,
            if threads > 1 { format!(", {:.2}x one core", rate / one_core) } else { String::new() }
        );
    }
    if let Some(kib) = peak_rss_kib() {
        println!("peak memory: {:.1} MiB", kib as f64 / 1024.0);
    }
    Ok(())
}
