//! The console's speed (issue 4): the queue page and `/api/v1/requests`
//! with 100,000 requests in the database, under load from a second process
//! (wrk), on SQLite and on PostgreSQL; p50 and p99 latency. Target: p99
//! under 50 ms.
//!
//!     cargo bench --bench console -- [N=100000] [SECONDS=15]
//!     (scripts/bench-console installs wrk and builds the release binary)

#[path = "../tests/support/mod.rs"]
mod support;

use rand::{Rng, SeedableRng};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;
use support::{http, Daemon, TempDir};

const STATES: [(&str, u32); 8] = [
    ("pending_review", 20),
    ("needs_info", 10),
    ("grace_period", 3),
    ("deleting", 1),
    ("deleted", 40),
    ("rejected", 10),
    ("cancelled", 2),
    ("closed_incomplete", 14),
];

/// Fills the database with `n` requests (and one audit line each).
async fn seed(url: &str, n: usize) {
    let store = huytk::store::Store::connect(url).await.unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(4);
    let total: u32 = STATES.iter().map(|s| s.1).sum();
    let names = [
        "Nguyễn Văn An",
        "Trần Thị Bình",
        "Lê Hoàng Long",
        "Võ Thị Hoa",
        "Đặng Trung Dũng",
        "Phạm Thu Hương",
    ];
    let start = Instant::now();
    let now = huytk::domain::time::now_ms();
    for chunk in (0..n).collect::<Vec<_>>().chunks(500) {
        let mut tx = store.pool().begin().await.unwrap();
        let mut sql = String::from(
            "INSERT INTO requests (reference, state, email, id_number, id_type, full_name, phone, reason, received_at, due_date, updated_at) VALUES ",
        );
        let mut audit = String::from(
            "INSERT INTO audit_log (at, request_id, actor, action, from_state, to_state, detail) VALUES ",
        );
        for (k, i) in chunk.iter().enumerate() {
            let mut pick = rng.gen_range(0..total);
            let state = STATES
                .iter()
                .find(|(_, w)| {
                    if pick < *w {
                        true
                    } else {
                        pick -= w;
                        false
                    }
                })
                .unwrap()
                .0;
            let age_days = rng.gen_range(0..60i64);
            let received = now - age_days * 86_400_000;
            let due = chrono::DateTime::from_timestamp_millis(received + 28 * 86_400_000)
                .unwrap()
                .date_naive();
            let number = format!("0{:02}{:09}", rng.gen_range(1..96), i);
            if k > 0 {
                sql.push(',');
                audit.push(',');
            }
            sql.push_str(&format!(
                "('HTK-BENCH-{i}', '{state}', 'citizen{i}@example.vn', '{number}', 'cccd', '{} {i}', '+8491{:07}', 'trùng tài khoản', {received}, '{due}', {received})",
                names[i % names.len()],
                i % 10_000_000
            ));
            audit.push_str(&format!(
                "({received}, {}, 'system', 'inspected', NULL, '{state}', NULL)",
                i + 1
            ));
        }
        sqlx::query(&sql).execute(&mut *tx).await.unwrap();
        sqlx::query(&audit).execute(&mut *tx).await.unwrap();
        tx.commit().await.unwrap();
    }
    if url.starts_with("postgres") {
        // What autovacuum does after a bulk load.
        sqlx::query("VACUUM ANALYZE")
            .execute(store.pool())
            .await
            .unwrap();
    } else {
        sqlx::query("ANALYZE").execute(store.pool()).await.unwrap();
    }
    println!(
        "  seeded {n} requests in {:.1} s",
        start.elapsed().as_secs_f64()
    );
}

/// Runs wrk against one URL; returns (p50 ms, p99 ms, requests/s).
fn wrk(url: &str, header: &str, seconds: u32) -> (f64, f64, f64) {
    let out = Command::new("wrk")
        .args([
            "-t1",
            "-c8",
            &format!("-d{seconds}s"),
            "--latency",
            "-H",
            header,
            url,
        ])
        .output()
        .expect("wrk (Debian package wrk; scripts/bench-console installs it)");
    let text = String::from_utf8_lossy(&out.stdout);
    let ms = |label: &str| -> f64 {
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with(label))
            .unwrap_or_else(|| panic!("no {label} in wrk output:\n{text}"));
        let v = line.split_whitespace().nth(1).unwrap();
        let (num, mult) = if let Some(x) = v.strip_suffix("ms") {
            (x, 1.0)
        } else if let Some(x) = v.strip_suffix("us") {
            (x, 0.001)
        } else if let Some(x) = v.strip_suffix('s') {
            (x, 1000.0)
        } else {
            (v, 1.0)
        };
        num.parse::<f64>().unwrap() * mult
    };
    let rps = text
        .lines()
        .find(|l| l.starts_with("Requests/sec:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    let non2xx = text.lines().find(|l| l.contains("Non-2xx"));
    assert!(non2xx.is_none(), "errors under load: {text}");
    (ms("50%"), ms("99%"), rps)
}

async fn run(label: &str, url: String, n: usize, seconds: u32) {
    println!("{label}:");
    seed(&url, n).await;
    let dir = TempDir::new("bench-console");
    let web = support::free_port();
    let config = dir.path().join("huytk.toml");
    std::fs::write(
        &config,
        format!(
            "[database]\nurl = \"{url}\"\n[mailbox]\npath = \"{d}/spool\"\n[mail_out]\npath = \"{d}/outbox\"\n\
             [web]\nbind = \"127.0.0.1:{web}\"\n[templates]\ndir = \"{t}\"\n",
            d = dir.path().display(),
            t = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("templates").display()
        ),
    )
    .unwrap();
    let bin = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/release/huytk");
    let cli = |args: &[&str], stdin: &str| {
        use std::io::Write;
        let mut c = Command::new(&bin)
            .arg("--config")
            .arg(&config)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("target/release/huytk: run `cargo build --release` first");
        c.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        String::from_utf8(c.wait_with_output().unwrap().stdout).unwrap()
    };
    cli(
        &["operator", "add", "bench", "--password-stdin"],
        "mat-khau-do-tai\n",
    );
    let token = cli(&["operator", "token", "bench"], "").trim().to_owned();
    let _daemon = Daemon(
        Command::new(&bin)
            .arg("--config")
            .arg(&config)
            .arg("serve")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    support::wait_for_port(web, "the console");
    let r = http(
        web,
        "POST",
        "/login",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        b"login=bench&password=mat-khau-do-tai",
    );
    assert_eq!(r.status, 303, "{}", r.text());
    let cookie = r
        .header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let page = http(web, "GET", "/queue", &[("Cookie", &cookie)], b"");
    assert_eq!(page.status, 200);
    let deep_after = {
        let body = http(
            web,
            "GET",
            "/api/v1/requests?page=200",
            &[("Authorization", &format!("Bearer {token}"))],
            b"",
        )
        .json();
        body["next_after"].as_str().unwrap().to_owned()
    };
    let search_number = {
        let body = http(
            web,
            "GET",
            "/api/v1/requests?state=all&limit=1&page=5000",
            &[("Authorization", &format!("Bearer {token}"))],
            b"",
        )
        .json();
        body["items"][0]["id_number"].as_str().unwrap().to_owned()
    };
    let base = format!("http://127.0.0.1:{web}");
    let cases = [
        (
            "queue page (pending_review, page 1)",
            format!("{base}/queue"),
            format!("Cookie: {cookie}"),
        ),
        (
            "queue page, 10,000 rows deep (keyset)",
            format!("{base}/queue?state=pending_review&after={deep_after}"),
            format!("Cookie: {cookie}"),
        ),
        (
            "queue page, search by ID number",
            format!("{base}/queue?state=all&q={search_number}"),
            format!("Cookie: {cookie}"),
        ),
        (
            "queue page, open and overdue",
            format!("{base}/queue?state=open&due=overdue"),
            format!("Cookie: {cookie}"),
        ),
        (
            "GET /api/v1/requests",
            format!("{base}/api/v1/requests"),
            format!("Authorization: Bearer {token}"),
        ),
        (
            "GET /api/v1/requests?state=all",
            format!("{base}/api/v1/requests?state=all"),
            format!("Authorization: Bearer {token}"),
        ),
    ];
    for (what, url, header) in cases {
        let (p50, p99, rps) = wrk(&url, &header, seconds);
        println!("  {what:40} p50 {p50:6.2} ms  p99 {p99:6.2} ms  {rps:7.0} req/s");
    }
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!(
            "console benchmark: run it with `cargo bench --bench console` or scripts/bench-console"
        );
        return;
    }
    let nums: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let n = nums.first().copied().unwrap_or(100_000);
    let seconds = nums.get(1).copied().unwrap_or(15) as u32;
    println!("{n} requests; wrk: 1 thread, 8 connections, {seconds} s per case; 2-core machine shared by server and wrk");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let tmp = TempDir::new("bench-console-sqlite");
        run(
            "SQLite",
            format!("sqlite://{}", tmp.path().join("desk.db").display()),
            n,
            seconds,
        )
        .await;
        let pg = support::Postgres::start();
        run("PostgreSQL", pg.fresh_database("bench"), n, seconds).await;
    });
}
