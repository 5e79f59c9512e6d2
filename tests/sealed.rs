//! Citizens' mail and photos sealed at rest, the master key's handling, and
//! purged means gone (issue: data at rest). Every byte the desk wrote is
//! read as an auditor would: the database with its free pages and WAL,
//! every folder of its data directory, PostgreSQL's tables.

mod support;

use base64::Engine;
use serde_json::json;
use std::path::{Path, PathBuf};

use support::desk::TestDesk;
use support::desk::OPERATOR_PASSWORD;
use support::mail::Mail;
use support::{browser_login, huytk_cli, ChromeDriver, Postgres};

/// Byte strings that only the citizen's mail holds: pieces of each photo,
/// as sent (base64 lines) and decoded, and a header no letter repeats.
fn needles(mail: &Mail, raw: &[u8], marker: &str) -> Vec<Vec<u8>> {
    let mut out = vec![marker.as_bytes().to_vec()];
    for (_, photo) in &mail.files {
        let mid = photo.len() / 2;
        out.push(photo[mid..mid + 48].to_vec());
        let b64 = base64::engine::general_purpose::STANDARD.encode(photo);
        out.push(b64.as_bytes()[400..460].to_vec());
    }
    // A whole base64 line as it sits in the raw mail.
    let text = String::from_utf8_lossy(raw);
    let line = text
        .lines()
        .find(|l| {
            l.len() >= 60
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
        })
        .expect("the mail has base64 lines");
    out.push(line.as_bytes().to_vec());
    out
}

/// Every file under `dir` (recursively) that holds one of `needles`.
fn files_holding(dir: &Path, needles: &[Vec<u8>]) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let bytes = std::fs::read(&p).unwrap_or_default();
            for n in needles {
                if bytes.windows(n.len()).any(|w| w == n.as_slice()) {
                    found.push(format!(
                        "{} holds {:?}",
                        p.display(),
                        String::from_utf8_lossy(&n[..n.len().min(24)])
                    ));
                    break;
                }
            }
        }
    }
    found
}

fn request_mail(number: &str) -> (Mail, Vec<u8>, String) {
    let marker = format!("sealed-marker-{}", std::process::id());
    let mail = Mail::request("an@test", number, "Nguyễn Văn An", "0912345678")
        .header("X-Test-Marker", &marker);
    let raw = mail.bytes();
    (mail, raw, marker)
}

/// Rejects a request, so retention can purge it.
fn close(desk: &TestDesk, reference: &str) {
    let r = desk.api(
        "POST",
        &format!("/requests/{reference}/reject"),
        Some(json!({ "reason": "Thông tin không khớp với hồ sơ." })),
    );
    assert!(r.status == 200, "reject: {} {}", r.status, r.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_file_of_the_desk_holds_readable_mail_and_a_purge_leaves_no_copy() {
    let mut desk = TestDesk::embedded("sealed")
        .desk("retention_days = 0\n")
        .start();
    let (mail, raw, marker) = request_mail("079203001234");
    let needles = needles(&mail, &raw, &marker);
    desk.deliver(&raw);
    let v = desk.settle("079203001234", 1).await;
    let reference = v[0]["request"]["reference"].as_str().unwrap().to_owned();
    let photo = v[0]["photos"][0]["sha256"].as_str().unwrap().to_owned();
    // The console still shows the photo: it is opened with the key.
    let r = desk.api(
        "GET",
        &format!("/requests/{reference}/photos/{photo}"),
        None,
    );
    assert_eq!(r.status, 200);
    desk.stop();

    // Not in the database (nor its WAL), the spool, the outbox, the log.
    let found = files_holding(desk.path(), &needles);
    assert!(found.is_empty(), "readable without the key: {found:#?}");
    // Python's email package reads nothing out of the stored rows either.
    let db = desk.path().join("desk.db");
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(
            "import sqlite3,email,sys\n\
             c=sqlite3.connect(sys.argv[1])\n\
             n=0\n\
             for (r,) in c.execute('select raw from raw_messages'):\n\
             \x20 m=email.message_from_bytes(r)\n\
             \x20 n+=sum(1 for p in m.walk() if p.get_content_maintype()=='image')\n\
             print(n)",
        )
        .arg(&db)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "0", "{out:?}");
    // What the sealed blob looks like, to look for its copies after the purge.
    let sealed: Vec<Vec<u8>> = rows(&db, "select hex(substr(raw, 100, 48)) from raw_messages")
        .iter()
        .map(|h| hex::decode(h).unwrap())
        .collect();
    assert!(!sealed.is_empty());

    // Purged means gone: closed, purged, and no copy anywhere, sealed or not.
    let mut desk = desk.restart();
    close(&desk, &reference);
    desk.stop();
    let out = huytk_cli(&desk.config, &["purge"], "");
    assert!(out.contains("1 closed requests purged"), "{out}");
    let mut all = needles.clone();
    all.extend(sealed);
    let found = files_holding(desk.path(), &all);
    assert!(found.is_empty(), "left after the purge: {found:#?}");
    assert_eq!(
        rows(&db, "select count(*) from data_keys"),
        vec!["0"],
        "its data key is gone"
    );
    // The spool and the outbox keep nothing of it: the letters to the
    // citizen and the SMS lines about it are removed.
    let outbox = desk.path().join("outbox");
    let letters: Vec<_> = ["new", "cur"]
        .iter()
        .flat_map(|s| {
            std::fs::read_dir(outbox.join(s))
                .into_iter()
                .flatten()
                .flatten()
        })
        .collect();
    assert!(letters.is_empty(), "{letters:?}");
    // The daemon's logs never carried the citizen.
    let logs = logs_of(desk.path());
    for secret in ["an@test", "079203001234", "912345678", "Nguyễn Văn An"] {
        assert!(!logs.contains(secret), "the log carries {secret}:\n{logs}");
    }
    assert!(logs.contains("mail sent"), "the logs were read: {logs}");
}

/// Every daemon log of a test desk, together.
fn logs_of(dir: &Path) -> String {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .collect()
}

fn rows(db: &Path, sql: &str) -> Vec<String> {
    let out = std::process::Command::new("sqlite3")
        .arg(db)
        .arg(sql)
        .output()
        .expect("sqlite3");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_the_tables_hold_no_readable_mail_and_a_purge_drops_the_key() {
    let pg = Postgres::start();
    let url = pg.fresh_database("sealed");
    let key_dir = support::TempDir::new("sealed-pg-key");
    let key = key_dir.path().join("master.key");
    let mut desk = TestDesk::embedded("sealed-pg")
        .database(&url)
        .desk("retention_days = 0\n")
        .database_config(&format!("master_key_file = \"{}\"\n", key.display()))
        .start();
    let (mail, raw, marker) = request_mail("079203001235");
    let needles = needles(&mail, &raw, &marker);
    desk.deliver(&raw);
    let v = desk.settle("079203001235", 1).await;
    let reference = v[0]["request"]["reference"].as_str().unwrap().to_owned();
    let dump = pg.dump(&url);
    for n in &needles {
        assert!(
            !dump.windows(n.len()).any(|w| w == n.as_slice()),
            "pg_dump shows {:?}",
            String::from_utf8_lossy(&n[..24])
        );
    }
    close(&desk, &reference);
    desk.stop();
    let out = huytk_cli(&desk.config, &["purge"], "");
    assert!(out.contains("1 closed requests purged"), "{out}");
    let store = support::open_store_with(&url, &key).await;
    assert_eq!(store.count("data_keys", "").await.unwrap(), 0);
    assert_eq!(
        store
            .count("raw_messages", "raw IS NOT NULL")
            .await
            .unwrap(),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_or_wrong_key_stops_the_desk_and_loses_nothing_and_rotation_keeps_every_photo() {
    let mut desk = TestDesk::embedded("keys").start();
    let (_, raw, _) = request_mail("079203001236");
    desk.deliver(&raw);
    let v = desk.settle("079203001236", 1).await;
    let reference = v[0]["request"]["reference"].as_str().unwrap().to_owned();
    let photo = v[0]["photos"][0]["sha256"].as_str().unwrap().to_owned();
    desk.stop();
    let key = desk.path().join("master.key");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&key).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    let (_, second, _) = request_mail("079203001237");
    desk.deliver(&second);

    // Missing: refused at start, the new mail stays in the inbox.
    let kept = desk.path().join("kept.key");
    std::fs::rename(&key, &kept).unwrap();
    let out = serve_once(&desk.config);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no master key"), "{err}");
    assert_eq!(inbox(desk.path()), 1, "the mail waits in the inbox");
    assert!(!key.exists(), "no new key was made over a sealed database");
    // Wrong: another key.
    let other = huytk_cli(&desk.config, &["keys", "new", key.to_str().unwrap()], "");
    assert!(other.contains("written"), "{other}");
    let out = serve_once(&desk.config);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("wrong master key"),
        "{err}"
    );
    assert_eq!(inbox(desk.path()), 1);
    // The right one: the waiting mail goes in.
    std::fs::rename(&kept, &key).unwrap();
    let out = serve_once(&desk.config);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(inbox(desk.path()), 0);

    // Rotation: data keys re-wrapped, the old key retired, photos still open.
    let before = huytk_cli(&desk.config, &["keys", "status"], "");
    let out = huytk_cli(&desk.config, &["keys", "rotate"], "");
    assert!(out.contains("2 data keys re-wrapped"), "{out}");
    let status = huytk_cli(&desk.config, &["keys", "status"], "");
    assert!(status.contains("current\t2 data keys"), "{status}");
    assert!(status.contains("retired\t0 data keys"), "{status}");
    assert_ne!(before, status);
    let retired: Vec<PathBuf> = std::fs::read_dir(desk.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(".retired"))
        .collect();
    assert_eq!(retired.len(), 1, "{retired:?}");
    let desk = desk.restart();
    let r = desk.api(
        "GET",
        &format!("/requests/{reference}/photos/{photo}"),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.body.starts_with(&[0xFF, 0xD8]), "a JPEG");
    let v = desk.requests_for("079203001237");
    assert_eq!(v.len(), 1);
    // And as an operator sees them: every photo of the page decodes in
    // Chromium after the rotation.
    let driver = ChromeDriver::start();
    let b = driver.browser().await;
    let base = format!("http://127.0.0.1:{}", desk.web);
    browser_login(&b, &base, "lan", OPERATOR_PASSWORD).await;
    b.goto(&format!("{base}/requests/{reference}"))
        .await
        .unwrap();
    let widths = b
        .execute(
            "const imgs = [...document.querySelectorAll('img')];\
             return Promise.all(imgs.map(i => { i.loading = 'eager'; return i.decode().then(() => i.naturalWidth, () => 0); }));",
            vec![],
        )
        .await
        .unwrap();
    let widths: Vec<u64> = widths
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_u64().unwrap_or(0))
        .collect();
    assert!(widths.len() >= 3, "{widths:?}");
    assert!(
        widths.iter().all(|w| *w > 0),
        "a photo does not show: {widths:?}"
    );
    b.close().await.unwrap();
}

fn serve_once(config: &Path) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_huytk"))
        .arg("--config")
        .arg(config)
        .args(["serve", "--once"])
        .env_remove("HUYTK_MASTER_KEY")
        .output()
        .unwrap()
}

fn inbox(dir: &Path) -> usize {
    huytk::mailbox::maildir::Spool::open(&dir.join("spool"))
        .unwrap()
        .fetch(100)
        .unwrap()
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_restores_every_request_photo_and_audit_row() {
    let mut desk = TestDesk::embedded("backup").start();
    for (i, number) in ["079203001240", "079203001241"].iter().enumerate() {
        let m = Mail::request(&format!("c{i}@test"), number, "Nguyễn Văn An", "0912345678");
        desk.deliver(&m.bytes());
    }
    let a = desk.settle("079203001240", 1).await;
    desk.settle("079203001241", 1).await;
    let reference = a[0]["request"]["reference"].as_str().unwrap().to_owned();
    let photo = a[0]["photos"][0]["sha256"].as_str().unwrap().to_owned();
    // Taken while the desk runs.
    let backup = desk.path().join("backup.db");
    let out = huytk_cli(&desk.config, &["backup", backup.to_str().unwrap()], "");
    assert!(out.contains("backup written"), "{out}");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&backup).unwrap().permissions());
    assert_eq!(mode & 0o077, 0, "{mode:o}");
    let audit_rows = |db: &Path| rows(db, "select count(*) from audit_log")[0].clone();
    let before = audit_rows(&backup);
    desk.stop();
    // The database is lost.
    let db = desk.path().join("desk.db");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    let out = huytk_cli(&desk.config, &["restore", backup.to_str().unwrap()], "");
    assert!(out.contains("restored"), "{out}");
    assert_eq!(audit_rows(&db), before, "every audit row is back");
    let verify = huytk_cli(&desk.config, &["audit", "verify"], "");
    assert!(
        !verify.contains("edited") && !verify.contains("deleted"),
        "{verify}"
    );
    let desk = desk.restart();
    assert_eq!(desk.requests_for("079203001240").len(), 1);
    assert_eq!(desk.requests_for("079203001241").len(), 1);
    let r = desk.api(
        "GET",
        &format!("/requests/{reference}/photos/{photo}"),
        None,
    );
    assert_eq!(r.status, 200, "the photo opens after the restore");
}
