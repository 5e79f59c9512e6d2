//! Many replicas, one truth (issue 11, the twin fix), on a real PostgreSQL:
//! two replicas' workflows processing the same stored message at the same
//! moment make one request, one reply and no false duplicate (this test
//! fails without the fix: every race made a twin); and three `huytk serve`
//! processes started at once over 400 stored messages (what kills leave
//! behind) make exactly one request and one reply per message. (Here the
//! first replica to start finishes the backlog before the others begin, so
//! that one is the end-to-end check, the first is the race.)

mod support;

use std::time::Duration;
use support::desk::TestDesk;
use support::mail::Mail;
use support::Postgres;

const MESSAGES: usize = 400;

#[tokio::test(flavor = "multi_thread")]
async fn replicas_reprocessing_the_same_stored_messages_make_no_twins() {
    let pg = Postgres::start();
    let db = pg.fresh_database("replicas");
    let store = support::open_store(&db).await;
    for i in 0..MESSAGES {
        let mut m = Mail::request(
            &format!("c{i}@test"),
            &format!("079203{i:06}"),
            "Nguyễn Văn An",
            "0912345678",
        );
        // Text only (needs_info, each answered): many, quickly, so the
        // replicas' reprocessing overlaps.
        m.files.clear();
        let raw = m.bytes();
        let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&raw));
        assert!(store
            .put_raw(&sha, &raw, "test", None, Some(&m.from), None)
            .await
            .unwrap());
    }
    // Three replicas at once, each with its own spool and outbox.
    let first = TestDesk::embedded("replica-a")
        .database(&db)
        .start_deferred();
    let second = TestDesk::embedded("replica-b")
        .database(&db)
        .replica()
        .start_deferred();
    let third = TestDesk::embedded("replica-c")
        .database(&db)
        .replica()
        .start_deferred();
    let desks: Vec<TestDesk> = [first, second, third]
        .into_iter()
        .map(|d| d.run())
        .collect();

    support::wait_for(
        "every message processed",
        Duration::from_secs(120),
        || async {
            let left = store
                .count("raw_messages", "status <> 'processed'")
                .await
                .unwrap();
            if left == 0 {
                Ok(())
            } else {
                Err(format!("{left} messages left"))
            }
        },
    )
    .await;
    let n = MESSAGES as i64;
    assert_eq!(
        store.count("requests", "").await.unwrap(),
        n,
        "one request per message"
    );
    assert_eq!(
        store
            .count("audit_log", "action = 'created'")
            .await
            .unwrap(),
        n
    );
    assert_eq!(
        store
            .count("requests", "duplicate_submissions > 0")
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store
            .count("raw_messages", "request_id IS NULL")
            .await
            .unwrap(),
        0
    );
    // One reply each, across the three replicas' outboxes.
    let sent = support::wait_for(
        "a reply to each message",
        Duration::from_secs(60),
        || async {
            let sent: usize = desks.iter().map(|d| d.letters().len()).sum();
            if sent >= MESSAGES {
                Ok(sent)
            } else {
                Err(format!("{sent} replies sent"))
            }
        },
    )
    .await;
    assert_eq!(sent, MESSAGES);
    let replies = store.count("outbox", "kind = 'email'").await.unwrap();
    assert_eq!(replies, n);
}

/// Two replicas' workflows in one process, on one PostgreSQL, reprocess
/// each stored message at the same moment (what a restart does to the
/// batch the inbox reader is working on): one wins, the other finds it
/// done; no twin request, no false duplicate, one reply.
#[tokio::test(flavor = "multi_thread")]
async fn two_replicas_processing_one_message_at_the_same_moment_make_one_request() {
    let pg = Postgres::start();
    let db = pg.fresh_database("race");
    let dir = support::TempDir::new("race");
    let config = |name: &str| {
        let mut c = huytk::config::Config::default();
        c.database.url = db.clone();
        c.mailbox.path = dir.path().join(name).join("spool");
        c.mail_out.path = dir.path().join(name).join("outbox");
        c.templates.dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("templates");
        c
    };
    let a = huytk::app::App::build(config("a")).await.unwrap();
    let b = huytk::app::App::build(config("b")).await.unwrap();
    const RACES: usize = 30;
    for i in 0..RACES {
        let m = Mail::request(
            &format!("r{i}@test"),
            &format!("079203{i:06}"),
            "Lê Văn Bình",
            "0912345678",
        );
        let raw = m.bytes();
        let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&raw));
        a.desk
            .store
            .put_raw(&sha, &raw, "test", None, Some(&m.from), None)
            .await
            .unwrap();
        let (x, y) = tokio::join!(
            a.desk.process_stored(&sha, raw.clone()),
            b.desk.process_stored(&sha, raw.clone())
        );
        let outcomes = [x.unwrap(), y.unwrap()];
        let made = outcomes
            .iter()
            .filter(|o| matches!(o, huytk::workflow::Ingested::Request { .. }))
            .count();
        assert_eq!(made, 1, "message {i}: {outcomes:?}");
    }
    let store = &a.desk.store;
    let n = RACES as i64;
    assert_eq!(store.count("requests", "").await.unwrap(), n);
    assert_eq!(
        store
            .count("requests", "duplicate_submissions > 0")
            .await
            .unwrap(),
        0
    );
    assert_eq!(store.count("outbox", "kind = 'email'").await.unwrap(), n);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_waiting_replica_takes_the_inbox_within_seconds_of_the_holders_death() {
    let pg = Postgres::start();
    let db = pg.fresh_database("takeover");
    // A 30-second poll: takeover must not wait for it.
    let a = TestDesk::embedded("takeover-a")
        .database(&db)
        .poll_seconds(30)
        .start();
    let b = TestDesk::embedded("takeover-b")
        .database(&db)
        .poll_seconds(30)
        .replica()
        .start();
    let log =
        |d: &TestDesk| std::fs::read_to_string(d.path().join("daemon.log")).unwrap_or_default();
    let waiting = support::wait_for(
        "a replica waiting to take over",
        Duration::from_secs(30),
        || async {
            if log(&a).contains("waiting to take over") {
                Ok(0)
            } else if log(&b).contains("waiting to take over") {
                Ok(1)
            } else {
                Err(String::new())
            }
        },
    )
    .await;
    let (mut holder, heir) = if waiting == 0 { (b, a) } else { (a, b) };
    let m = Mail::request("heir@test", "079203004321", "Lê Văn Bình", "0912345678");
    heir.deliver(&m.bytes());
    let store = support::open_store(&db).await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(
        store.count("requests", "").await.unwrap(),
        0,
        "the heir waits"
    );
    let metrics = |d: &TestDesk| support::http_get(d.web, "/metrics");
    assert!(
        metrics(&heir).contains("huytk_inbox_reader 0"),
        "{}",
        metrics(&heir)
    );
    assert!(
        metrics(&holder).contains("huytk_inbox_reader 1"),
        "{}",
        metrics(&holder)
    );
    holder.stop(); // SIGKILL
    let died = std::time::Instant::now();
    loop {
        if store.count("requests", "").await.unwrap() == 1 {
            break;
        }
        assert!(
            died.elapsed() < std::time::Duration::from_secs(5),
            "no takeover 5 s after the holder died:\n{}",
            log(&heir)
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        metrics(&heir).contains("huytk_inbox_reader 1"),
        "{}",
        metrics(&heir)
    );
}
