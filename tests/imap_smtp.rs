//! The daemon against real servers: Dovecot (IMAP with IDLE, LMTP) and
//! Postfix delivering into it. Citizen mail appended to the desk's inbox
//! becomes requests; replies arrive in the citizens' mailboxes with the
//! right headers; a follow-up completes a request; processed mail sits in
//! the archive folder; an SMTP outage delays replies without losing or
//! doubling them; a Dovecot restart is survived.

mod support;

use std::time::Duration;
use support::{
    append, demo, folder, imap_config, start_daemon, wait_until, Dovecot, Postfix, TempDir,
};

async fn scenario(db: Option<String>) {
    let mut dovecot = Dovecot::start(&["desk@test", "an@test", "dung@test"]);
    let postfix = Postfix::start(dovecot.lmtp_port);
    let dir = TempDir::new("imap");
    let db = db.unwrap_or_else(|| format!("sqlite://{}/desk.db", dir.path().display()));
    let web_port = support::free_port();
    let config = imap_config(dir.path(), &dovecot, postfix.port, &db, web_port, "");
    let log = dir.path().join("daemon.log");
    let mut daemon = start_daemon(&config, &log);
    let imap = dovecot.imap_port;

    // A complete request, a read one (\Seen) incomplete, an auto-reply, an other.
    append(
        imap,
        "desk@test",
        &demo("1-complete-request.eml", "citizen@gmail.com", "an@test"),
    )
    .await;
    append(
        imap,
        "desk@test",
        &demo("4-two-photos.eml", "dung.dang@gmail.com", "dung@test"),
    )
    .await;
    append(
        imap,
        "desk@test",
        &demo("6-auto-reply.eml", "an.nguyen@gmail.com", "an@test"),
    )
    .await;
    append(
        imap,
        "desk@test",
        &demo("7-other-question.eml", "an.nguyen@gmail.com", "an@test"),
    )
    .await;

    wait_until("the acknowledgement in an@test", 60, || async {
        !folder(imap, "an@test", "INBOX").await.is_empty()
    })
    .await;
    wait_until("the needs-info reply in dung@test", 60, || async {
        !folder(imap, "dung@test", "INBOX").await.is_empty()
    })
    .await;
    let an = folder(imap, "an@test", "INBOX").await;
    assert_eq!(
        an.len(),
        1,
        "only the request is answered: {:?}",
        an.iter().map(|m| &m.0).collect::<Vec<_>>()
    );
    let ack = mail_parser::MessageParser::default()
        .parse(&an[0].1)
        .unwrap();
    assert!(
        an[0]
            .0
            .contains("Đã tiếp nhận yêu cầu hủy tài khoản 079203001234"),
        "{}",
        an[0].0
    );
    assert_eq!(
        ack.header_raw("Auto-Submitted").map(str::trim),
        Some("auto-replied")
    );
    assert!(ack.in_reply_to().as_text().is_some());
    assert!(ack.message_id().unwrap().contains("HTK-"));
    let needs = folder(imap, "dung@test", "INBOX").await;
    assert!(needs[0].0.contains("cần bổ sung"), "{}", needs[0].0);
    let needs_msg = mail_parser::MessageParser::default()
        .parse(&needs[0].1)
        .unwrap();
    assert!(needs_msg.body_text(0).unwrap().contains("3 ảnh khác nhau"));

    // The inbox is empty; requests in Archive, the other question in Khác.
    wait_until("the inbox to empty", 30, || async {
        folder(imap, "desk@test", "INBOX").await.is_empty()
    })
    .await;
    assert_eq!(folder(imap, "desk@test", "Archive").await.len(), 3);
    assert_eq!(folder(imap, "desk@test", "Khác").await.len(), 1);

    // SMTP down: the follow-up is processed, its reply waits, then goes once.
    postfix.stop();
    let reference = needs[0].0.split(['[', ']']).nth(1).unwrap().to_owned();
    let needs_id = needs_msg.message_id().unwrap().to_owned();
    let followup = String::from_utf8_lossy(&demo(
        "5-followup-with-portrait.eml",
        "dung.dang@gmail.com",
        "dung@test",
    ))
    .replacen(
        "Subject: ",
        &format!("In-Reply-To: <{needs_id}>\r\nSubject: [{reference}] "),
        1,
    )
    .into_bytes();
    append(imap, "desk@test", &followup).await;
    wait_until("the follow-up to be archived", 60, || async {
        folder(imap, "desk@test", "Archive").await.len() == 4
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        folder(imap, "dung@test", "INBOX").await.len(),
        1,
        "no mail while SMTP is down"
    );
    postfix.restart();
    wait_until("the acknowledgement after SMTP came back", 90, || async {
        folder(imap, "dung@test", "INBOX").await.len() == 2
    })
    .await;
    let dung = folder(imap, "dung@test", "INBOX").await;
    assert!(dung[1].0.contains("Đã tiếp nhận"), "{}", dung[1].0);

    // Dovecot restarted mid-run: the daemon reconnects and goes on.
    dovecot.stop();
    tokio::time::sleep(Duration::from_secs(2)).await;
    dovecot.restart();
    let second = demo("3-missing-phone.eml", "citizen@gmail.com", "an@test");
    append(imap, "desk@test", &second).await;
    wait_until("the reply after the Dovecot restart", 90, || async {
        folder(imap, "an@test", "INBOX").await.len() == 2
    })
    .await;

    // Health and metrics, as Prometheus and a load balancer see them.
    support::wait_for_port(web_port, "huytk web");
    assert!(support::http_get(web_port, "/healthz").starts_with("HTTP/1.1 200"));
    assert!(support::http_get(web_port, "/readyz").starts_with("HTTP/1.1 200"));
    let metrics = support::http_get(web_port, "/metrics");
    assert!(
        metrics.contains("huytk_requests{state=\"pending_review\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("huytk_requests{state=\"needs_info\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("huytk_messages{status=\"processed\"} 6"),
        "{metrics}"
    );
    assert!(
        metrics.contains("huytk_mails{state=\"sent\"} 4"),
        "{metrics}"
    );
    // Every message was inspected by this daemon, in measurable time.
    let inspected: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("huytk_inspection_seconds_count "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no inspection count: {metrics}"));
    assert!(inspected >= 6, "{metrics}");

    // SIGTERM: a clean stop.
    support::signal(daemon.0.id(), "TERM");
    let status = daemon.0.wait().unwrap();
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert!(status.success(), "daemon exit {status}: {log_text}");
    assert!(
        log_text.contains("IMAP connection lost") || log_text.contains("reconnecting"),
        "the log says what happened:\n{log_text}"
    );
    assert!(
        log_text.contains("will retry"),
        "the SMTP outage is in the log"
    );
    // Exactly once: nothing doubled anywhere.
    assert_eq!(folder(imap, "an@test", "INBOX").await.len(), 2);
    assert_eq!(folder(imap, "dung@test", "INBOX").await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_with_dovecot_and_postfix_on_sqlite() {
    scenario(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_with_dovecot_and_postfix_on_postgres() {
    let pg = support::Postgres::start();
    scenario(Some(pg.fresh_database("imap"))).await;
}
