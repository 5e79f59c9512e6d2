//! XOAUTH2 against a real Dovecot whose `oauth2` passdb validates tokens
//! locally (an HS256 key this test makes, JWTs this test signs): `huytk
//! serve` logs in with a valid token read from `oauth2_token_file` and
//! turns delivered mail into a request; an expired token and a wrongly
//! signed one are refused with a clear log line and `huytk_inbox_reader 0`
//! on /metrics while the daemon keeps serving; a fresh token written to
//! the file is picked up at the next attempt, without a restart.

mod support;

use base64::Engine;
use sha2::{Digest, Sha256};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use support::{append, demo, folder, imap_config, start_daemon, wait_until, Dovecot, TempDir};

const USER: &str = "desk@test";

/// HMAC-SHA256 (RFC 2104), to sign the test's tokens.
fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let pad = |b: u8| k.iter().map(|x| x ^ b).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(data)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

/// A JWT for `USER` signed HS256 with `key`, valid from `iat` to `exp`
/// (Unix seconds).
fn jwt(key: &[u8], iat: i64, exp: i64) -> String {
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let header = b64(br#"{"alg":"HS256","typ":"JWT"}"#);
    let claims = b64(
        serde_json::json!({"sub": USER, "email": USER, "iat": iat, "exp": exp})
            .to_string()
            .as_bytes(),
    );
    let signed = format!("{header}.{claims}");
    let sig = b64(&hmac_sha256(key, signed.as_bytes()));
    format!("{signed}.{sig}")
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Replaces the token file's content as a token agent would (write a new
/// file, rename it over the old one), mode 0600.
fn put_token(path: &Path, token: &str) {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("new");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .unwrap();
    std::io::Write::write_all(&mut f, format!("{token}\n").as_bytes()).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// A daemon config reading `USER` with XOAUTH2 from `token_file`, replies
/// to a Maildir outbox.
fn oauth_config(
    dir: &Path,
    dovecot: &Dovecot,
    token_file: &Path,
    web_port: u16,
) -> std::path::PathBuf {
    let db = format!("sqlite://{}/desk.db", dir.display());
    let path = imap_config(dir, dovecot, 25, &db, web_port, "");
    let conf = std::fs::read_to_string(&path).unwrap();
    let conf = conf
        .replacen(
            &format!("password = \"{}\"", support::PASSWORD),
            &format!("oauth2_token_file = \"{}\"", token_file.display()),
            1,
        )
        .replacen(
            "kind = \"smtp\"",
            &format!("kind = \"maildir\"\npath = \"{}/outbox\"", dir.display()),
            1,
        );
    assert!(conf.contains("oauth2_token_file") && !conf.contains("password"));
    std::fs::write(&path, conf).unwrap();
    path
}

fn metric(web_port: u16, name: &str) -> String {
    let m = support::http_get(web_port, "/metrics");
    m.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")).map(str::to_owned))
        .unwrap_or_else(|| panic!("no {name} in /metrics:\n{m}"))
}

fn log_of(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xoauth2_valid_token_reads_the_inbox() {
    let key: [u8; 32] = rand::random();
    let dovecot = Dovecot::start_opts(
        &[USER],
        support::DovecotOptions {
            oauth2_hs256_key: Some(key.to_vec()),
            ..Default::default()
        },
    );
    let dir = TempDir::new("imap-oauth");
    let token_file = dir.path().join("imap.token");
    let token = jwt(&key, now() - 5, now() + 3600);
    put_token(&token_file, &token);
    let web_port = support::free_port();
    let config = oauth_config(dir.path(), &dovecot, &token_file, web_port);
    let log = dir.path().join("daemon.log");
    let mut daemon = start_daemon(&config, &log);
    let imap = dovecot.imap_port;

    append(
        imap,
        USER,
        &demo("1-complete-request.eml", "citizen@gmail.com", "an@test"),
    )
    .await;
    wait_until("the request to be archived", 60, || async {
        folder(imap, USER, "INBOX").await.is_empty()
            && folder(imap, USER, "Archive").await.len() == 1
    })
    .await;
    support::wait_for_port(web_port, "huytk web");
    let metrics = support::http_get(web_port, "/metrics");
    assert!(
        metrics.contains("huytk_requests{state=\"pending_review\"} 1"),
        "{metrics}\n{}",
        log_of(&log)
    );
    assert_eq!(metric(web_port, "huytk_inbox_reader"), "1");
    // Its acknowledgement was written for the citizen.
    let outbox = dir.path().join("outbox").join("new");
    wait_until("the acknowledgement in the outbox", 30, || async {
        std::fs::read_dir(&outbox).is_ok_and(|d| d.count() == 1)
    })
    .await;
    // Dovecot saw an XOAUTH2 login, not a password.
    let dlog = dovecot.log();
    assert!(
        dlog.contains(&format!("Login: user=<{USER}>, method=XOAUTH2")),
        "{dlog}"
    );

    support::signal(daemon.0.id(), "TERM");
    let status = daemon.0.wait().unwrap();
    let text = log_of(&log);
    assert!(status.success(), "{status}: {text}");
    assert!(text.contains("IMAP connected"), "{text}");
    assert!(!text.contains(&token), "the token is never logged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xoauth2_refused_tokens_are_reported_and_the_daemon_keeps_running() {
    let key: [u8; 32] = rand::random();
    let dovecot = Dovecot::start_opts(
        &[USER],
        support::DovecotOptions {
            oauth2_hs256_key: Some(key.to_vec()),
            ..Default::default()
        },
    );
    let dir = TempDir::new("imap-oauth-bad");
    let token_file = dir.path().join("imap.token");
    let expired = jwt(&key, now() - 7200, now() - 3600);
    put_token(&token_file, &expired);
    let web_port = support::free_port();
    let config = oauth_config(dir.path(), &dovecot, &token_file, web_port);
    let log = dir.path().join("daemon.log");
    let mut daemon = start_daemon(&config, &log);
    let imap = dovecot.imap_port;
    append(
        imap,
        USER,
        &demo("1-complete-request.eml", "citizen@gmail.com", "an@test"),
    )
    .await;

    // Expired: the operator reads why in the log, /metrics says nobody
    // reads the inbox (the HuytkNoInboxReader alert), the console serves.
    wait_until("the refusal in the log", 60, || async {
        log_of(&log).contains("cannot open the inbox")
    })
    .await;
    support::wait_for_port(web_port, "huytk web");
    let text = log_of(&log);
    let line = text
        .lines()
        .find(|l| l.contains("cannot open the inbox"))
        .unwrap();
    println!("the operator reads: {line}");
    assert!(line.contains("ERROR"), "{line}");
    assert!(line.contains("XOAUTH2 login as"), "{line}");
    assert!(line.contains("refused"), "{line}");
    // Dovecot's JSON status, answered as XOAUTH2 wants (an empty line).
    assert!(line.contains("server said {\"status\":\"401\""), "{line}");
    assert!(
        dovecot.log().contains("Token has expired"),
        "{}",
        dovecot.log()
    );
    assert_eq!(metric(web_port, "huytk_inbox_reader"), "0");
    assert!(support::http_get(web_port, "/healthz").starts_with("HTTP/1.1 200"));
    assert!(support::http_get(web_port, "/readyz").starts_with("HTTP/1.1 200"));
    assert!(daemon.0.try_wait().unwrap().is_none(), "the daemon runs on");

    // Wrongly signed (another key): refused too, at the next attempt.
    let forged = jwt(b"not the server's key", now() - 5, now() + 3600);
    put_token(&token_file, &forged);
    wait_until("Dovecot to refuse the forged token", 90, || async {
        dovecot.log().contains("Incorrect JWT signature")
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(metric(web_port, "huytk_inbox_reader"), "0");
    assert_eq!(folder(imap, USER, "INBOX").await.len(), 1, "nothing read");
    assert!(daemon.0.try_wait().unwrap().is_none(), "the daemon runs on");
    let retries = log_of(&log)
        .matches("reading the inbox failed; will retry")
        .count();
    assert!(retries >= 2, "each attempt is logged: {}", log_of(&log));

    // A fresh token in the file: read at the next attempt, no restart.
    let good = jwt(&key, now() - 5, now() + 3600);
    put_token(&token_file, &good);
    wait_until("the request after the fresh token", 120, || async {
        folder(imap, USER, "INBOX").await.is_empty()
    })
    .await;
    assert_eq!(folder(imap, USER, "Archive").await.len(), 1);
    assert_eq!(metric(web_port, "huytk_inbox_reader"), "1");
    let metrics = support::http_get(web_port, "/metrics");
    assert!(
        metrics.contains("huytk_requests{state=\"pending_review\"} 1"),
        "{metrics}"
    );

    support::signal(daemon.0.id(), "TERM");
    let status = daemon.0.wait().unwrap();
    let text = log_of(&log);
    assert!(status.success(), "{status}: {text}");
    assert!(text.contains("IMAP connection restored"), "{text}");
    for t in [&expired, &forged, &good] {
        assert!(!text.contains(t.as_str()), "a token is never logged");
    }
}

#[tokio::test]
async fn a_token_file_others_may_read_is_refused() {
    let dir = TempDir::new("imap-oauth-mode");
    let token_file = dir.path().join("imap.token");
    put_token(&token_file, "x.y.z");
    std::fs::set_permissions(
        &token_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    // As the daemon reads it: the token secret's `_file` form.
    let c = huytk::config::Config::parse(
        &format!("[mailbox]\noauth2_token_file = {:?}\n", token_file),
        &Default::default(),
        "test",
    )
    .unwrap()
    .mailbox;
    let err = huytk::mailbox::imap::oauth2_token(&c)
        .unwrap_err()
        .to_string();
    assert!(err.contains("others may read it"), "{err}");
    std::fs::set_permissions(
        &token_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    assert_eq!(
        huytk::mailbox::imap::oauth2_token(&c).unwrap().as_str(),
        "x.y.z"
    );
}
