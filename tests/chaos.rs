//! Many replicas, one truth (issue 11), tried the way an ops team would:
//! three `huytk serve` replicas on one real PostgreSQL, reading a real
//! Dovecot, sending through a real Postfix (the replies land in the
//! citizens' own Dovecot mailboxes), SMS through Kannel's fake SMSC and
//! accounts in OpenLDAP. 1,000 complete requests with distinct ID numbers
//! and senders arrive while a chaos thread SIGKILLs a random replica every
//! 2–4 s and restarts it (every other kill aims at the replica holding the
//! inbox, found through `huytk_inbox_reader`), and 100 approvals go
//! through the API of whichever replica answers.
//!
//! What is checked is what people see: the requests through the API (each
//! ID number exactly once, one `created` line in its history), the letters
//! in each citizen's mailbox (one acknowledgement; at most one duplicate
//! letter per kill in all; never a letter of an earlier state after one of
//! a later state), the SMS at Kannel's fake SMSC (one per approval), the
//! entries in OpenLDAP (each approved account gone, the others kept) and
//! the audit lines' times against the grace deadline (nothing before it).
//!
//! The throughput benchmark (`scripts/bench-replicas`) lives here too,
//! ignored by the suite.

mod support;

use rand::Rng;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::desk::TestDesk;
use support::mail::Mail;
use support::{try_http, Dovecot, HttpResponse, Kannel, Postfix, Postgres, Slapd, LDAP_BASE};

/// Requests delivered.
const REQUESTS: usize = 1000;
/// Of which approved (the first ones).
const APPROVALS: usize = 100;
/// The grace period: a few seconds, so deletions happen during the run.
const GRACE_SECONDS: u64 = 4;
/// How many times at least the inbox reader is killed.
const READER_KILLS: usize = 3;
/// How long the kills go on at least: past the ingest (about 25 s), into
/// the approvals' windows, SMS and deletions.
const CHAOS_AT_LEAST: Duration = Duration::from_secs(50);

fn number(i: usize) -> String {
    format!("079203{i:06}")
}

fn sender(i: usize) -> String {
    format!("c{i:04}@test")
}

fn account(i: usize) -> String {
    format!("DVC-{i:04}")
}

/// The request's phone and the account's (the SMS goes to the account's).
fn phone(i: usize) -> String {
    format!("0912{i:06}")
}

fn request_mail(i: usize) -> Vec<u8> {
    Mail::request(&sender(i), &number(i), "Nguyễn Văn An", &phone(i)).bytes()
}

/// The 100 accounts to be deleted, one per approved request, each with the
/// requester's phone (so the holder is told on the account's own number).
fn ldap_accounts(slapd: &Slapd) {
    let ldif: String = (0..APPROVALS)
        .map(|i| {
            format!(
                "dn: uid={a},{LDAP_BASE}\nobjectClass: inetOrgPerson\nuid: {a}\ncn: Nguyễn Văn An\n\
                 sn: An\nemployeeNumber: {n}\nmobile: +84{p}\n\n",
                a = account(i),
                n = number(i),
                p = &phone(i)[1..],
            )
        })
        .collect();
    slapd.add(&ldif);
}

/// An API call on a replica that may be dead at that moment.
fn api(port: u16, token: &str, method: &str, path: &str, body: Option<Value>) -> Option<Value> {
    let auth = format!("Bearer {token}");
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let r: HttpResponse = try_http(
        port,
        method,
        &format!("/api/v1{path}"),
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        body.as_bytes(),
    )
    .ok()?;
    // A replica dying mid-answer, or starting (503): ask another.
    if r.status >= 500 {
        return None;
    }
    serde_json::from_slice(&r.body).ok()
}

/// Which replica reads the inbox now, by its `/metrics`.
fn inbox_reader(ports: &[u16]) -> Option<usize> {
    ports.iter().position(|&p| {
        try_http(p, "GET", "/metrics", &[], b"")
            .is_ok_and(|r| r.text().contains("\nhuytk_inbox_reader 1"))
    })
}

/// One kill of the chaos thread.
#[derive(Debug, Clone)]
struct Kill {
    replica: usize,
    reader: bool,
    after: Duration,
}

/// Kills a replica every 2–4 s and restarts it, until `done`, for
/// `CHAOS_AT_LEAST` and until at least `READER_KILLS` of the kills hit the
/// inbox reader; every other kill aims at the reader.
fn chaos(
    mut desks: Vec<TestDesk>,
    done: Arc<AtomicBool>,
    start: Instant,
) -> (Vec<TestDesk>, Vec<Kill>) {
    let ports: Vec<u16> = desks.iter().map(|d| d.web).collect();
    let mut rng = rand::thread_rng();
    let mut kills: Vec<Kill> = Vec::new();
    loop {
        std::thread::sleep(Duration::from_millis(rng.gen_range(2000..=4000)));
        let reader_kills = kills.iter().filter(|k| k.reader).count();
        if done.load(Ordering::SeqCst)
            && reader_kills >= READER_KILLS
            && start.elapsed() >= CHAOS_AT_LEAST
        {
            return (desks, kills);
        }
        let reader = inbox_reader(&ports);
        let target = match reader {
            Some(r) if kills.len().is_multiple_of(2) => r,
            _ => rng.gen_range(0..desks.len()),
        };
        desks[target].stop(); // SIGKILL
        kills.push(Kill {
            replica: target,
            reader: reader == Some(target),
            after: start.elapsed(),
        });
        let desk = desks.remove(target);
        desks.insert(target, desk.restart());
    }
}

/// Approves the first `APPROVALS` requests, each through the next replica
/// that answers; an approval whose answer was lost to a kill is found
/// done when the request is read again. Returns how many POSTs it took.
fn approvals(ports: Vec<u16>, token: String) -> usize {
    let mut posts = 0;
    let start = Instant::now();
    for i in 0..APPROVALS {
        let mut attempt = 0;
        loop {
            assert!(
                start.elapsed() < Duration::from_secs(240),
                "approval {i} not done after 240 s"
            );
            let port = ports[(i + attempt) % ports.len()];
            attempt += 1;
            let Some(list) = api(
                port,
                &token,
                "GET",
                &format!("/requests?state=all&q={}", number(i)),
                None,
            ) else {
                std::thread::sleep(Duration::from_millis(100));
                continue;
            };
            let item = &list["items"][0];
            match item["state"].as_str() {
                Some("pending_review") => {}
                Some("grace_period" | "deleting" | "deleted") => break,
                None => {
                    // Not read from the inbox yet.
                    std::thread::sleep(Duration::from_millis(200));
                    continue;
                }
                Some(other) => panic!("request {} is {other}: {item}", number(i)),
            }
            let reference = item["reference"].as_str().unwrap();
            posts += 1;
            let r = api(
                port,
                &token,
                "POST",
                &format!("/requests/{reference}/approve"),
                Some(json!({ "account": account(i) })),
            );
            if r.as_ref().is_some_and(|r| r["state"] == "grace_period") {
                break;
            }
            // Lost to a kill, or refused (stale, wrong state): look again.
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    posts
}

/// What a citizen's mailbox holds, in arrival order: 0 acknowledgement,
/// 1 approved, 2 deleted, with each letter's Date.
fn letters(raws: &[(String, Vec<u8>)], who: &str) -> Vec<(u8, i64)> {
    raws.iter()
        .map(|(subject, raw)| {
            let rank = if subject.contains("Đã tiếp nhận") {
                0
            } else if subject.contains("đã được duyệt") {
                1
            } else if subject.contains("đã được xóa") {
                2
            } else {
                panic!("{who}: unexpected letter {subject:?}")
            };
            let m = mail_parser::MessageParser::default().parse(raw).unwrap();
            let date = m.date().map_or(0, |d| d.to_timestamp() * 1000);
            (rank, date)
        })
        .collect()
}

fn count(history: &Value, action: &str) -> usize {
    history
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["action"] == action)
        .count()
}

fn at(history: &Value, action: &str) -> i64 {
    history
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["action"] == action)
        .unwrap_or_else(|| panic!("no {action} in {history}"))["at"]
        .as_i64()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn three_replicas_killed_at_random_lose_nothing_and_do_nothing_twice() {
    let t0 = Instant::now();
    let pg = Postgres::start();
    let db = pg.fresh_database("chaos");
    let users: Vec<String> = std::iter::once("desk@test".to_owned())
        .chain((0..REQUESTS).map(sender))
        .collect();
    let user_refs: Vec<&str> = users.iter().map(String::as_str).collect();
    let dovecot = Dovecot::start(&user_refs);
    let postfix = Postfix::start(dovecot.lmtp_port);
    let slapd = Slapd::start();
    ldap_accounts(&slapd);
    let kannel = Kannel::start();
    let replica = |tag: &str| {
        TestDesk::embedded(tag)
            .database(&db)
            .imap(&dovecot, postfix.port)
            .ldap(&slapd)
            .kannel(&kannel)
            .grace_seconds(GRACE_SECONDS)
            .poll_seconds(1)
    };
    let first = replica("chaos-a").start_deferred();
    let others = [
        replica("chaos-b").replica().start_deferred(),
        replica("chaos-c").replica().start_deferred(),
    ];
    let desks: Vec<TestDesk> = std::iter::once(first)
        .chain(others)
        .map(|d| d.run())
        .collect();
    let token = desks[0].operator.clone();
    let ports: Vec<u16> = desks.iter().map(|d| d.web).collect();
    let store = support::open_store(&db).await;
    println!(
        "servers and replicas up in {:.1} s",
        t0.elapsed().as_secs_f64()
    );

    let start = Instant::now();
    let done = Arc::new(AtomicBool::new(false));
    let chaos_thread = {
        let done = done.clone();
        std::thread::spawn(move || chaos(desks, done, start))
    };
    let approval_thread = {
        let (ports, token) = (ports.clone(), token.clone());
        std::thread::spawn(move || approvals(ports, token))
    };

    // The mail arrives while the replicas die: one IMAP session appending.
    let mut imap = support::imap_login(dovecot.imap_port, "desk@test").await;
    for i in 0..REQUESTS {
        imap.append("INBOX", None, None, &request_mail(i))
            .await
            .unwrap();
    }
    imap.logout().await.ok();
    let appended = start.elapsed();

    // Every message read and acted on.
    loop {
        let made = store.count("requests", "").await.unwrap();
        let left = store
            .count("raw_messages", "status <> 'processed'")
            .await
            .unwrap();
        let stored = store.count("raw_messages", "").await.unwrap();
        if stored as usize == REQUESTS && left == 0 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(240),
            "after 240 s: {stored} messages stored, {left} not processed, {made} requests"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let ingested = start.elapsed();
    let posts = approval_thread.join().expect("the approvals");
    let approved = start.elapsed();
    done.store(true, Ordering::SeqCst);
    let (desks, kills) = chaos_thread.join().expect("the chaos thread");
    let calm = start.elapsed();
    println!(
        "appended in {:.1} s; all {REQUESTS} processed at {:.1} s ({:.1} requests/s); \
         {APPROVALS} approved at {:.1} s ({posts} POSTs); chaos over at {:.1} s: {} kills, {} of the inbox reader",
        appended.as_secs_f64(),
        ingested.as_secs_f64(),
        REQUESTS as f64 / ingested.as_secs_f64(),
        approved.as_secs_f64(),
        calm.as_secs_f64(),
        kills.len(),
        kills.iter().filter(|k| k.reader).count()
    );
    for k in &kills {
        println!(
            "  kill at {:.1} s: replica {}{}",
            k.after.as_secs_f64(),
            k.replica,
            if k.reader { " (the inbox reader)" } else { "" }
        );
    }
    assert!(kills.iter().filter(|k| k.reader).count() >= READER_KILLS);

    // Then calm: everything queued goes out (a job claimed by a killed
    // replica waits for its 120 s lease), the windows end, the accounts go.
    loop {
        let pending = store.count("outbox", "state = 'pending'").await.unwrap();
        let deleted = store.count("requests", "state = 'deleted'").await.unwrap();
        if pending == 0 && deleted as usize == APPROVALS {
            break;
        }
        assert!(
            start.elapsed() < calm + Duration::from_secs(150),
            "{pending} outbox jobs pending and {deleted} of {APPROVALS} deleted, 150 s after the last kill"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Postfix hands the last letters to Dovecot.
    let want = |i: usize| if i < APPROVALS { 3 } else { 1 };
    let t = Instant::now();
    loop {
        let missing: Vec<usize> = (0..REQUESTS)
            .filter(|&i| dovecot.inbox_count(&sender(i)) < want(i))
            .collect();
        if missing.is_empty() {
            break;
        }
        if t.elapsed() > Duration::from_secs(60) {
            let mut why = String::new();
            for &i in missing.iter().take(3) {
                let list = api(
                    ports[0],
                    &token,
                    "GET",
                    &format!("/requests?state=all&q={}", number(i)),
                    None,
                )
                .unwrap();
                let reference = list["items"][0]["reference"]
                    .as_str()
                    .unwrap_or("?")
                    .to_owned();
                let v = api(
                    ports[0],
                    &token,
                    "GET",
                    &format!("/requests/{reference}"),
                    None,
                )
                .unwrap();
                why.push_str(&format!(
                    "{} ({} letters): jobs {}\nhistory {}\nsubjects {:?}\n",
                    sender(i),
                    dovecot.inbox_count(&sender(i)),
                    v["jobs"],
                    v["history"],
                    support::folder(dovecot.imap_port, &sender(i), "INBOX")
                        .await
                        .iter()
                        .map(|m| m.0.clone())
                        .collect::<Vec<_>>()
                ));
            }
            panic!(
                "{} mailboxes miss letters 60 s after the outbox emptied: {:?}\n{why}",
                missing.len(),
                missing
                    .iter()
                    .take(20)
                    .map(|&i| sender(i))
                    .collect::<Vec<_>>()
            );
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let settled = start.elapsed();

    // Exactly 1,000 requests, each ID number once, each created once, as
    // the API shows them.
    let port = desks[0].web;
    let mut views: Vec<Value> = Vec::with_capacity(REQUESTS);
    for i in 0..REQUESTS {
        let list = api(
            port,
            &token,
            "GET",
            &format!("/requests?state=all&q={}", number(i)),
            None,
        )
        .unwrap();
        let items = list["items"].as_array().unwrap();
        assert_eq!(items.len(), 1, "{}: {list}", number(i));
        let reference = items[0]["reference"].as_str().unwrap();
        let view = api(port, &token, "GET", &format!("/requests/{reference}"), None).unwrap();
        assert_eq!(view["request"]["id_number"], number(i).as_str());
        assert_eq!(count(&view["history"], "created"), 1, "{}", view["history"]);
        views.push(view);
    }
    assert_eq!(store.count("requests", "").await.unwrap(), REQUESTS as i64);
    assert_eq!(
        store
            .count("audit_log", "action = 'created'")
            .await
            .unwrap(),
        REQUESTS as i64
    );
    assert_eq!(
        store
            .count("requests", "duplicate_submissions > 0")
            .await
            .unwrap(),
        0,
        "false duplicate flags"
    );

    // The approved ones: approved once, one SMS accepted, the window over
    // and the account deleted once, none of it before the deadline.
    let mut deadlines = vec![0i64; APPROVALS];
    for (i, v) in views.iter().enumerate() {
        let h = &v["history"];
        let state = v["request"]["state"].as_str().unwrap();
        if i >= APPROVALS {
            assert_eq!(state, "pending_review", "{}: {}", number(i), v["request"]);
            assert_eq!(count(h, "approve"), 0);
            continue;
        }
        assert_eq!(state, "deleted", "{}: {}", number(i), v["request"]);
        for action in ["approve", "sms_accepted", "window_over", "account_deleted"] {
            assert_eq!(count(h, action), 1, "{} {action}: {h}", number(i));
        }
        // The desk handed the citizen's letters to Postfix one after the
        // other, in the order of the request's life, and every one of them.
        let mut letters: Vec<(i64, Option<i64>, String)> = v["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|j| j["kind"] == "email" && j["recipient"] == sender(i).as_str())
            .map(|j| {
                (
                    j["id"].as_i64().unwrap(),
                    j["sent_at"].as_i64(),
                    j["state"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        letters.sort();
        assert_eq!(letters.len(), 3, "{}: {}", number(i), v["jobs"]);
        assert!(
            letters.iter().all(|l| l.2 == "sent") && letters.windows(2).all(|w| w[0].1 <= w[1].1),
            "{}: letters not sent in order: {}",
            number(i),
            v["jobs"]
        );
        let deadline = v["request"]["grace_deadline"].as_i64().unwrap();
        // The window starts when the gateway took the SMS.
        let accepted = v["request"]["sms_accepted_at"].as_i64().unwrap();
        assert!(
            deadline >= accepted + GRACE_SECONDS as i64 * 1000,
            "{}: {}",
            number(i),
            v["request"]
        );
        assert!(at(h, "window_over") >= deadline, "{}: {h}", number(i));
        assert!(at(h, "account_deleted") >= deadline, "{}: {h}", number(i));
        deadlines[i] = deadline;
    }

    // OpenLDAP: each approved account gone, every delete asked for counted.
    let mut delete_asks = 0;
    for i in 0..APPROVALS {
        assert!(slapd.entry(&account(i)).is_none(), "{} kept", account(i));
        let asks = slapd.delete_requests(&account(i));
        assert!(asks >= 1, "{}: no delete at the server", account(i));
        delete_asks += asks;
    }
    // Kannel's fake SMSC: one SMS per approval, to the account's number.
    let sms = kannel.delivered();
    assert_eq!(sms.lines().count(), APPROVALS, "{sms}");
    for i in 0..APPROVALS {
        let to = format!("84{}", &phone(i)[1..]);
        let n = sms
            .lines()
            .filter(|l| l.split(' ').next().unwrap().ends_with(&to))
            .count();
        assert_eq!(n, 1, "SMS to {to}:\n{sms}");
    }

    // The citizens' mailboxes: one acknowledgement each (approved and
    // deleted letters for the approved), at most one duplicate letter per
    // kill in all, never an earlier state's letter after a later one's,
    // and the "deleted" letter dated after the deadline.
    let imap = dovecot.imap_port;
    let mut duplicates = 0;
    let mut reordered = 0;
    for i in 0..REQUESTS {
        let who = sender(i);
        let got = letters(&support::folder(imap, &who, "INBOX").await, &who);
        for rank in 0..if i < APPROVALS { 3 } else { 1 } {
            let n = got.iter().filter(|(r, _)| *r == rank).count();
            assert!(n >= 1, "{who}: no letter of kind {rank}: {got:?}");
            duplicates += n - 1;
        }
        // A mail program shows letters by their Date: none of an earlier
        // state may be dated after one of a later state. (The order Postfix
        // hands them to Dovecot is its own; counted, not asserted.)
        for x in &got {
            for y in &got {
                assert!(
                    x.0 >= y.0 || x.1 <= y.1,
                    "{who}: a letter of an earlier state dated after a later one: {got:?}"
                );
            }
        }
        if !got.windows(2).all(|w| w[0].0 <= w[1].0) {
            reordered += 1;
        }
        if let Some(&deadline) = deadlines.get(i) {
            let (_, date) = got.iter().find(|(r, _)| *r == 2).unwrap();
            // Date has whole seconds.
            assert!(
                *date + 1000 > deadline,
                "{who}: deleted letter dated before the deadline"
            );
        } else {
            assert!(got.iter().all(|(r, _)| *r == 0), "{who}: {got:?}");
        }
    }
    assert!(
        duplicates <= kills.len(),
        "{duplicates} duplicate letters for {} kills",
        kills.len()
    );
    println!(
        "settled at {:.1} s; {duplicates} duplicate letters for {} kills; {reordered} mailboxes \
         where Postfix delivered two letters in the other order; {delete_asks} LDAP deletes \
         asked for {APPROVALS} accounts; total {:.1} s",
        settled.as_secs_f64(),
        kills.len(),
        t0.elapsed().as_secs_f64()
    );
    drop(desks);
}

/// `scripts/bench-replicas`: requests processed per second from a full
/// inbox (1,000 requests appended before any replica starts), by 1 replica
/// and by 3, on the same real servers; the clock runs from the replicas'
/// start until every message is processed and until every
/// acknowledgement went out through Postfix.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "a benchmark: scripts/bench-replicas"]
async fn bench_replicas() {
    let n: usize = std::env::var("BENCH_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(REQUESTS);
    for replicas in [1, 3] {
        let pg = Postgres::start();
        let db = pg.fresh_database("bench");
        let users: Vec<String> = std::iter::once("desk@test".to_owned())
            .chain((0..n).map(sender))
            .collect();
        let dovecot = Dovecot::start(&users.iter().map(String::as_str).collect::<Vec<_>>());
        let postfix = Postfix::start(dovecot.lmtp_port);
        let mut imap = support::imap_login(dovecot.imap_port, "desk@test").await;
        for i in 0..n {
            imap.append("INBOX", None, None, &request_mail(i))
                .await
                .unwrap();
        }
        imap.logout().await.ok();
        let prepared: Vec<_> = (0..replicas)
            .map(|r| {
                let b = TestDesk::embedded(&format!("bench-{r}"))
                    .database(&db)
                    .imap(&dovecot, postfix.port);
                if r == 0 {
                    b.start_deferred()
                } else {
                    b.replica().start_deferred()
                }
            })
            .collect();
        let store = support::open_store(&db).await;
        let start = Instant::now();
        let desks: Vec<TestDesk> = prepared.into_iter().map(|d| d.spawn()).collect();
        let mut processed = None;
        loop {
            let left = store
                .count("raw_messages", "status = 'processed'")
                .await
                .unwrap();
            if processed.is_none() && left as usize == n {
                processed = Some(start.elapsed());
            }
            let sent = store
                .count("outbox", "kind = 'email' AND state = 'sent'")
                .await
                .unwrap();
            if processed.is_some() && sent as usize == n {
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(900), "not done");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let processed = processed.unwrap().as_secs_f64();
        let sent = start.elapsed().as_secs_f64();
        println!(
            "{replicas} replica(s), {n} requests: all processed in {processed:.1} s = {:.1} requests/s; \
             all acknowledgements sent in {sent:.1} s = {:.1} requests/s",
            n as f64 / processed,
            n as f64 / sent
        );
        drop(desks);
    }
}
