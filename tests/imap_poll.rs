//! The polling fallback against a real Dovecot that does not advertise
//! IDLE: huytk says so at connection (`idle=false`), never sends IDLE,
//! asks the server every `poll_seconds` (measured from Dovecot's rawlog of
//! the session, the commands as the server received them), and a mail
//! delivered after the start becomes a request within two poll intervals.

mod support;

use std::time::{Duration, Instant};
use support::{append, demo, folder, imap_config, start_daemon, wait_until, Dovecot, TempDir};

const USER: &str = "desk@test";
const POLL: u64 = 2;

/// How many times the desk's sessions have asked for new mail so far
/// (each round is a NOOP, then a UID SEARCH).
fn rounds(dovecot: &Dovecot) -> usize {
    dovecot
        .rawlog_in(USER)
        .lines()
        .filter(|l| l.split(' ').nth(1) == Some("NOOP"))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_idle_the_inbox_is_polled_every_poll_seconds() {
    let dovecot = Dovecot::start_opts(
        &[USER],
        support::DovecotOptions {
            no_idle: true,
            rawlog: true,
            ..Default::default()
        },
    );
    let dir = TempDir::new("imap-poll");
    let db = format!("sqlite://{}/desk.db", dir.path().display());
    let web_port = support::free_port();
    let config = imap_config(dir.path(), &dovecot, 25, &db, web_port, "");
    let conf = std::fs::read_to_string(&config)
        .unwrap()
        .replacen("poll_seconds = 5", &format!("poll_seconds = {POLL}"), 1)
        .replacen(
            "kind = \"smtp\"",
            &format!(
                "kind = \"maildir\"\npath = \"{}/outbox\"",
                dir.path().display()
            ),
            1,
        );
    assert!(conf.contains(&format!("poll_seconds = {POLL}")));
    std::fs::write(&config, conf).unwrap();
    let log = dir.path().join("daemon.log");
    let mut daemon = start_daemon(&config, &log);
    let imap = dovecot.imap_port;
    let log_text = || std::fs::read_to_string(&log).unwrap_or_default();

    // The absence is noticed and said.
    wait_until("the connection in the log", 30, || async {
        log_text().contains("IMAP connected")
    })
    .await;
    let text = log_text();
    let connected = text.lines().find(|l| l.contains("IMAP connected")).unwrap();
    assert!(connected.contains("idle=false"), "{connected}");
    assert!(
        text.contains("the IMAP server offers no IDLE: polling for new mail"),
        "{text}"
    );

    // The rounds, timed as Dovecot receives them.
    wait_until("a first round in the rawlog", 30, || async {
        rounds(&dovecot) > 0
    })
    .await;
    let mut seen = rounds(&dovecot);
    let mut times = vec![Instant::now()];
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(5 * POLL + 1) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let n = rounds(&dovecot);
        if n > seen {
            seen = n;
            times.push(Instant::now());
        }
    }
    let gaps: Vec<f64> = times
        .windows(2)
        .map(|w| (w[1] - w[0]).as_secs_f64())
        .collect();
    println!("seconds between polls (poll_seconds = {POLL}): {gaps:.2?}");
    assert!(gaps.len() >= 4, "{gaps:?}\n{}", dovecot.rawlog_in(USER));
    for g in &gaps {
        assert!(
            (POLL as f64 - 0.3..POLL as f64 + 1.0).contains(g),
            "a poll every {POLL} s: {gaps:?}"
        );
    }

    // A mail delivered now is a request within two poll intervals.
    let delivered = Instant::now();
    append(
        imap,
        USER,
        &demo("1-complete-request.eml", "citizen@gmail.com", "an@test"),
    )
    .await;
    wait_until("the request to be archived", 2 * POLL + 2, || async {
        folder(imap, USER, "INBOX").await.is_empty()
            && folder(imap, USER, "Archive").await.len() == 1
    })
    .await;
    let latency = delivered.elapsed().as_secs_f64();
    println!("delivered to archived: {latency:.2} s");
    assert!(latency <= (2 * POLL) as f64 + 1.0, "{latency}");
    support::wait_for_port(web_port, "huytk web");
    let metrics = support::http_get(web_port, "/metrics");
    assert!(
        metrics.contains("huytk_requests{state=\"pending_review\"} 1"),
        "{metrics}"
    );

    support::signal(daemon.0.id(), "TERM");
    let status = daemon.0.wait().unwrap();
    assert!(status.success(), "{status}: {}", log_text());
    // Never an IDLE the server did not offer.
    let sent = dovecot.rawlog_in(USER);
    assert!(
        !sent.lines().any(|l| l.split(' ').nth(1) == Some("IDLE")),
        "{sent}"
    );
}
