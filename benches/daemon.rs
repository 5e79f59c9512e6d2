//! The daemon's ingest speed (issue 3): N realistic requests appended to a
//! real Dovecot, then `huytk serve` started; the clock runs until every
//! message is stored, inspected and processed. SQLite and PostgreSQL.
//!
//!     cargo bench --bench daemon -- DIR      (DIR of .eml files, e.g. from
//!     scripts/gen_corpus.py bench-fast DIR 1000; scripts/bench-daemon does it all)

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::{Daemon, Dovecot, TempDir, PASSWORD};

fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

async fn run(label: &str, files: &[PathBuf], db_url: String) {
    let dovecot = Dovecot::start(&["desk@test"]);
    let dir = TempDir::new("bench-daemon");
    let mut s = support::imap_login(dovecot.imap_port, "desk@test").await;
    let t = Instant::now();
    let mut bytes = 0;
    for f in files {
        let raw = std::fs::read(f).unwrap();
        bytes += raw.len();
        s.append("INBOX", None, None, &raw).await.unwrap();
    }
    s.logout().await.ok();
    println!(
        "{label}: appended {} messages ({:.0} MB) to Dovecot in {:.1} s",
        files.len(),
        bytes as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );
    let conf = format!(
        "[database]\nurl = \"{db_url}\"\n[desk]\naddress = \"desk@test\"\n\
         [mailbox]\nkind = \"imap\"\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"plain\"\nusername = \"desk@test\"\n\
         password = \"{PASSWORD}\"\npoll_seconds = 1\nbatch = 50\n[mail_out]\npath = \"{}\"\n[templates]\ndir = \"{}\"\n[web]\nbind = \"\"\n",
        dovecot.imap_port,
        dir.path().join("outbox").display(),
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("templates").display()
    );
    let config = dir.path().join("huytk.toml");
    std::fs::write(&config, conf).unwrap();
    let store = huytk::store::Store::connect(&db_url).await.unwrap();
    let bin = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/release/huytk");
    let start = Instant::now();
    let daemon = Daemon(
        Command::new(&bin)
            .arg("--config")
            .arg(&config)
            .arg("serve")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("target/release/huytk: run `cargo build --release` first"),
    );
    let n = files.len() as i64;
    let mut peak = 0;
    loop {
        peak = peak.max(peak_rss_kib(daemon.0.id()));
        let done = store
            .count("raw_messages", "status <> 'stored'")
            .await
            .unwrap();
        if done >= n {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(1800),
            "not done after 30 min: {done}/{n}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{label}: {n} messages stored and inspected in {secs:.1} s = {:.1} messages/s; daemon peak memory {:.0} MiB",
        n as f64 / secs,
        peak as f64 / 1024.0
    );
}

fn main() {
    // `cargo test --all-targets` runs bench binaries too: only `cargo bench`
    // (which passes --bench) measures.
    if !std::env::args().any(|a| a == "--bench") {
        println!("daemon benchmark: run it with `cargo bench --bench daemon -- DIR` or scripts/bench-daemon");
        return;
    }
    let dir = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("bench-data/daemon-1000"));
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e} (make it with scripts/bench-daemon)", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect();
    files.sort();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let tmp = TempDir::new("bench-sqlite");
        run(
            "SQLite",
            &files,
            format!(
                "sqlite://{}",
                Path::new(tmp.path()).join("desk.db").display()
            ),
        )
        .await;
        let pg = support::Postgres::start();
        run("PostgreSQL", &files, pg.fresh_database("bench")).await;
    });
}
