//! Faults: the daemon killed with SIGKILL at random moments while it
//! ingests 500 messages from a real Dovecot, restarted each time. Every
//! message must become exactly one stored message and one request, every
//! reply must reach its citizen, and the archive must hold every message.

mod support;

use futures::StreamExt;
use rand::{Rng, SeedableRng};
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;
use support::{Daemon, Dovecot, Postfix, TempDir, PASSWORD};

const MESSAGES: usize = 500;
const CITIZENS: usize = 5;
const KILLS: usize = 6;

/// Message-IDs in a folder, with how often each occurs.
async fn message_ids(port: u16, user: &str, folder: &str) -> HashMap<String, usize> {
    let mut s = support::imap_login(port, user).await;
    let mut out = HashMap::new();
    if s.select(folder).await.map(|m| m.exists).unwrap_or(0) == 0 {
        return out;
    }
    {
        let mut st = s
            .fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
            .await
            .unwrap();
        while let Some(f) = st.next().await {
            let f = f.unwrap();
            let h = String::from_utf8_lossy(f.header().unwrap_or_default())
                .trim()
                .to_owned();
            *out.entry(h).or_insert(0) += 1;
        }
    }
    out
}

fn request(i: usize) -> Vec<u8> {
    // Text only (no photos): each is an incomplete request answered with
    // a needs-info letter; distinct numbers, so 500 requests.
    format!(
        "From: Công dân {i} <c{}@test>\r\nTo: desk@test\r\nSubject: Yêu cầu hủy tài khoản + 0792030{i:05}\r\n\
         Message-ID: <fault-{i}@test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         Họ và tên: Nguyễn Văn {i}\r\nSố điện thoại: 0912{i:06}\r\nYêu cầu hủy tài khoản 0792030{i:05}\r\n",
        i % CITIZENS
    )
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_moments_loses_and_doubles_nothing() {
    let users: Vec<String> = std::iter::once("desk@test".to_owned())
        .chain((0..CITIZENS).map(|c| format!("c{c}@test")))
        .collect();
    let user_refs: Vec<&str> = users.iter().map(String::as_str).collect();
    let dovecot = Dovecot::start(&user_refs);
    let postfix = Postfix::start(dovecot.lmtp_port);
    let dir = TempDir::new("faults");
    let db = dir.path().join("desk.db");
    let conf = format!(
        "[database]\nurl = \"sqlite://{}\"\n[desk]\naddress = \"desk@test\"\nmax_mails_per_address_per_day = 100000\n\
         [mailbox]\nkind = \"imap\"\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"plain\"\nusername = \"desk@test\"\n\
         password = \"{PASSWORD}\"\npoll_seconds = 2\nbatch = 25\n\
         [mail_out]\nkind = \"smtp\"\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"plain\"\nretry_base_seconds = 1\n\
         [templates]\ndir = \"{}\"\n[web]\nbind = \"\"\n",
        db.display(),
        dovecot.imap_port,
        postfix.port,
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("templates").display()
    );
    let config = dir.path().join("huytk.toml");
    std::fs::write(&config, conf).unwrap();

    let mut s = support::imap_login(dovecot.imap_port, "desk@test").await;
    for i in 0..MESSAGES {
        s.append("INBOX", None, None, &request(i)).await.unwrap();
    }
    s.logout().await.ok();

    let spawn = |n: usize| {
        let log = std::fs::File::create(dir.path().join(format!("daemon-{n}.log"))).unwrap();
        Daemon(
            Command::new(env!("CARGO_BIN_EXE_huytk"))
                .arg("--config")
                .arg(&config)
                .arg("serve")
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap(),
        )
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(20241123);
    for n in 0..KILLS {
        let mut d = spawn(n);
        tokio::time::sleep(Duration::from_millis(rng.gen_range(300..1500))).await;
        support::signal(d.0.id(), "KILL");
        let _ = d.0.wait();
    }
    let mut last = spawn(KILLS);

    // Wait until every reply is in, then stop cleanly.
    let what = format!("a reply to each of the {MESSAGES} messages");
    let replies = support::wait_for(&what, Duration::from_secs(240), || async {
        let mut replies: HashMap<String, usize> = HashMap::new();
        for c in 0..CITIZENS {
            for (id, n) in message_ids(dovecot.imap_port, &format!("c{c}@test"), "INBOX").await {
                *replies.entry(id).or_insert(0) += n;
            }
        }
        if replies.len() >= MESSAGES {
            Ok(replies)
        } else {
            Err(format!("{} replied to", replies.len()))
        }
    })
    .await;
    support::signal(last.0.id(), "TERM");
    assert!(last.0.wait().unwrap().success());

    let store = huytk::store::Store::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    assert_eq!(
        store.count("raw_messages", "").await.unwrap(),
        MESSAGES as i64,
        "each message stored once"
    );
    assert_eq!(
        store
            .count("raw_messages", "status = 'processed'")
            .await
            .unwrap(),
        MESSAGES as i64
    );
    assert_eq!(
        store.count("requests", "").await.unwrap(),
        MESSAGES as i64,
        "one request per message"
    );
    assert_eq!(
        store.count("request_messages", "").await.unwrap(),
        MESSAGES as i64
    );
    assert_eq!(
        store.count("outbox", "").await.unwrap(),
        MESSAGES as i64,
        "one reply queued per message"
    );
    assert_eq!(
        store.count("outbox", "state = 'sent'").await.unwrap(),
        MESSAGES as i64
    );
    assert!(
        message_ids(dovecot.imap_port, "desk@test", "INBOX")
            .await
            .is_empty(),
        "inbox emptied"
    );
    assert_eq!(
        message_ids(dovecot.imap_port, "desk@test", "Archive")
            .await
            .len(),
        MESSAGES,
        "all archived"
    );
    assert_eq!(replies.len(), MESSAGES, "every citizen got every reply");
    // A kill between the SMTP server's acceptance and our commit cannot be
    // told from a kill before it: that mail is sent again, with the same
    // Message-ID (mail clients show it once). At most one per kill.
    let doubled: usize = replies.values().map(|n| n - 1).sum();
    for n in 0..=KILLS {
        let log =
            std::fs::read_to_string(dir.path().join(format!("daemon-{n}.log"))).unwrap_or_default();
        for line in log
            .lines()
            .filter(|l| l.contains("ERROR") || l.contains("WARN"))
        {
            eprintln!("daemon {n}: {line}");
        }
    }
    assert!(
        doubled <= KILLS,
        "{doubled} replies delivered twice after {KILLS} kills"
    );
    eprintln!("{KILLS} kills: {doubled} replies delivered twice (same Message-ID)");
}
