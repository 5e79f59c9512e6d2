//! The console's locks hold against an attacker (issue 9): a burst of 100
//! concurrent wrong passwords gets no more checks than the limit, and the
//! right password hidden in it does not slip through; a stranger's
//! failures from another address never lock the operator out; API tokens
//! die with every kind of password change and at their expiry; `next`
//! redirects stay on this site and a bad one is never a 5xx; releasing a
//! claim one does not hold is a 409; half-open connections are closed
//! while the console keeps answering; sessions end at their absolute
//! lifetime; the data folder and database are the desk user's alone.

mod support;

use serde_json::{json, Value};
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};
use support::desk::{TestDesk, OPERATOR_PASSWORD};
use support::{http, huytk_cli};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One HTTP request from a chosen loopback source address (127.0.0.x), as
/// a client elsewhere on the network would come.
async fn http_from(
    source: [u8; 4],
    port: u16,
    method: &str,
    path: &str,
    body: &str,
) -> (u16, String) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket
        .bind(std::net::SocketAddr::from((source, 0)))
        .unwrap();
    let mut s = socket
        .connect(std::net::SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, text)
}

fn login_body(password: &str) -> String {
    json!({ "login": "lan", "password": password }).to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_burst_of_wrong_passwords_gets_the_limit_and_no_more_and_locks_out_only_its_sender() {
    let desk = TestDesk::embedded("locks-burst").start();
    let web = desk.web;
    let mut tries = Vec::new();
    for i in 0..100 {
        let password = if i == 36 {
            OPERATOR_PASSWORD.to_owned()
        } else {
            format!("sai-mat-khau-{i}")
        };
        tries.push(tokio::spawn(async move {
            http_from(
                [127, 0, 0, 9],
                web,
                "POST",
                "/api/v1/login",
                &login_body(&password),
            )
            .await
        }));
    }
    let mut statuses = Vec::new();
    for t in tries {
        statuses.push(t.await.unwrap().0);
    }
    let checked = statuses.iter().filter(|s| **s != 429).count();
    assert!(
        checked <= 5,
        "{checked} passwords were checked: {statuses:?}"
    );
    assert!(statuses.iter().filter(|s| **s == 429).count() >= 95);
    // The stranger's address is locked out, even with the right password…
    let (s, _) = http_from(
        [127, 0, 0, 9],
        web,
        "POST",
        "/api/v1/login",
        &login_body(OPERATOR_PASSWORD),
    )
    .await;
    assert_eq!(s, 429);
    // …but the operator, from her own address, is not.
    let (s, text) = http_from(
        [127, 0, 0, 2],
        web,
        "POST",
        "/api/v1/login",
        &login_body(OPERATOR_PASSWORD),
    )
    .await;
    assert_eq!(s, 200, "{text}");
    // Wrong tries for the admin from elsewhere lock nobody but their sender.
    for i in 0..8 {
        let body =
            json!({ "login": "giamsat", "password": format!("x{i}-sai-sai-sai") }).to_string();
        http_from([127, 0, 0, 10], web, "POST", "/api/v1/login", &body).await;
    }
    let body = json!({ "login": "giamsat", "password": OPERATOR_PASSWORD }).to_string();
    let (s, text) = http_from([127, 0, 0, 3], web, "POST", "/api/v1/login", &body).await;
    assert_eq!(s, 200, "{text}");
}

fn me(desk: &TestDesk, token: &str) -> u16 {
    desk.api_as(token, "GET", "/me", None).status
}

#[tokio::test(flavor = "multi_thread")]
async fn api_tokens_die_with_every_password_change_and_at_their_expiry() {
    let desk = TestDesk::embedded("locks-tokens").start();
    huytk_cli(
        &desk.config,
        &[
            "operator",
            "add",
            "quantri",
            "--role",
            "admin",
            "--password-stdin",
        ],
        &format!("{OPERATOR_PASSWORD}\n"),
    );
    let admin = huytk_cli(&desk.config, &["operator", "token", "quantri"], "")
        .trim()
        .to_owned();
    let token = || {
        huytk_cli(&desk.config, &["operator", "token", "lan"], "")
            .trim()
            .to_owned()
    };

    // `huytk operator passwd`.
    let t = token();
    assert_eq!(me(&desk, &t), 200);
    huytk_cli(
        &desk.config,
        &["operator", "passwd", "lan", "--password-stdin"],
        "mot-mat-khau-moi-1\n",
    );
    assert_eq!(me(&desk, &t), 401, "after `operator passwd`");

    // An admin's reset through the API.
    let t = token();
    assert_eq!(me(&desk, &t), 200);
    let r = desk.api_as(
        &admin,
        "POST",
        "/operators",
        Some(json!({ "action": "reset", "login": "lan" })),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(me(&desk, &t), 401, "after an admin's reset");

    // Disabling.
    let t = token();
    let r = desk.api_as(
        &admin,
        "POST",
        "/operators",
        Some(json!({ "action": "disable", "login": "lan" })),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(me(&desk, &t), 401, "after disabling");
    let r = desk.api_as(
        &admin,
        "POST",
        "/operators",
        Some(json!({ "action": "enable", "login": "lan" })),
    );
    assert_eq!(r.status, 200, "{}", r.text());

    // Expiry: a token past its day is refused, and `--days` sets it.
    let t = token();
    assert_eq!(me(&desk, &t), 200);
    let store =
        huytk::store::Store::connect(&format!("sqlite://{}/desk.db", desk.path().display()))
            .await
            .unwrap();
    sqlx::query("UPDATE api_tokens SET expires_at = 1")
        .execute(store.pool())
        .await
        .unwrap();
    assert_eq!(me(&desk, &t), 401, "after its expiry");
    let t = huytk_cli(
        &desk.config,
        &["operator", "token", "lan", "--days", "2"],
        "",
    )
    .trim()
    .to_owned();
    let row = sqlx::query("SELECT MAX(expires_at) - MAX(created_at) AS life FROM api_tokens")
        .fetch_one(store.pool())
        .await
        .unwrap();
    let life: i64 = sqlx::Row::try_get(&row, "life").unwrap();
    assert!(
        (2 * 86_400_000 - 5_000..=2 * 86_400_000 + 5_000).contains(&life),
        "{life}"
    );
    assert_eq!(me(&desk, &t), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn redirects_stay_on_site_and_a_bad_next_is_never_a_server_error() {
    let desk = TestDesk::embedded("locks-next").start();
    let form = |next: &str| {
        format!(
            "login=lan&password={OPERATOR_PASSWORD}&next={}",
            next.bytes()
                .map(|b| format!("%{b:02X}"))
                .collect::<String>()
        )
    };
    for next in [
        "/\t/evil.example/",
        "//evil.example/",
        "/\\evil.example",
        "https://evil.example/",
        "/queue\r\nSet-Cookie: x=1",
        "/\u{0}",
        "/ok path",
    ] {
        let r = desk.post_login(&form(next));
        assert!(r.status < 500, "{next:?}: {}", r.status);
        assert_eq!(r.header("location"), Some("/queue"), "{next:?}");
    }
    let r = desk.post_login(&form("/dashboard?x=1"));
    assert_eq!(r.header("location"), Some("/dashboard?x=1"));
    // The login page's own link does not carry a bad `next` either.
    let r = http(desk.web, "GET", "/login?next=/%09/evil.example", &[], b"");
    assert_eq!(r.status, 200);
    assert!(!r.text().contains("evil.example"), "{}", r.text());
}

#[tokio::test(flavor = "multi_thread")]
async fn releasing_a_claim_one_does_not_hold_is_refused() {
    let desk = TestDesk::embedded("locks-release").start();
    desk.deliver(
        &support::mail::Mail::request("an@test", "079203001234", "Nguyễn Văn An", "0912345678")
            .bytes(),
    );
    let v = desk.settle("079203001234", 1).await.remove(0);
    let reference = v["request"]["reference"].as_str().unwrap().to_owned();
    let r = desk.api_as(
        &desk.supervisor,
        "POST",
        &format!("/requests/{reference}/claim"),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let r = desk.api("POST", &format!("/requests/{reference}/release"), None);
    assert_eq!(r.status, 409, "{}", r.text());
    assert_eq!(r.json()["error"], "held_by_other");
    let v: Value = desk.request(&reference);
    assert_eq!(v["holder"], "giamsat", "the claim stays");
    let r = desk.api_as(
        &desk.supervisor,
        "POST",
        &format!("/requests/{reference}/release"),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let r = desk.api("POST", &format!("/requests/{reference}/release"), None);
    assert_eq!(r.status, 409, "{}", r.text());
    assert_eq!(r.json()["error"], "not_held");
}

#[tokio::test(flavor = "multi_thread")]
async fn half_open_connections_are_closed_and_the_console_answers_meanwhile() {
    let desk = TestDesk::embedded("locks-slow").start();
    // The shipped header timeout is 10 s.
    let mut slow = Vec::new();
    for i in 0..200 {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", desk.web))
            .await
            .unwrap();
        if i % 2 == 0 {
            // Slowloris: a request line and one header, then nothing.
            s.write_all(b"GET /queue HTTP/1.1\r\nHost: x\r\n")
                .await
                .unwrap();
        }
        slow.push(s);
    }
    let start = Instant::now();
    let r = http(desk.web, "GET", "/healthz", &[], b"");
    assert_eq!(r.status, 200);
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    // Every one of them is closed by the server within the timeout.
    let deadline = Instant::now() + Duration::from_secs(20);
    for mut s in slow {
        let mut buf = [0u8; 512];
        let left = deadline.saturating_duration_since(Instant::now());
        let closed = tokio::time::timeout(left, async {
            loop {
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        })
        .await;
        assert!(
            closed.is_ok(),
            "a half-open connection was still open after 20 s"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_end_at_their_absolute_lifetime_and_the_data_is_private() {
    let desk = TestDesk::embedded("locks-life").start();
    let r = desk.post_login(&format!("login=lan&password={OPERATOR_PASSWORD}"));
    let cookie = r
        .header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let queue = || http(desk.web, "GET", "/queue", &[("Cookie", &cookie)], b"");
    assert_eq!(queue().status, 200);
    let store =
        huytk::store::Store::connect(&format!("sqlite://{}/desk.db", desk.path().display()))
            .await
            .unwrap();
    // Busy all along (seen a second ago), but logged in 13 hours ago.
    let now = huytk::domain::time::now_ms();
    sqlx::query("UPDATE sessions SET created_at = $1, last_seen = $2")
        .bind(now - 13 * 3_600_000)
        .bind(now - 1_000)
        .execute(store.pool())
        .await
        .unwrap();
    let r = queue();
    assert_eq!(r.status, 303, "{}", r.text());
    assert!(r.header("location").unwrap().starts_with("/login"));

    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&desk.path().join("desk.db")), 0o600);
    for dir in ["spool", "outbox"] {
        assert_eq!(mode(&desk.path().join(dir)), 0o700, "{dir}");
    }
}

/// Method, path, headers, body, the status it must get.
type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], &'a [u8], u16);

#[tokio::test(flavor = "multi_thread")]
async fn every_api_error_is_json() {
    let desk = TestDesk::embedded("locks-json").start();
    let auth = format!("Bearer {}", desk.operator);
    let cases: [Case; 5] = [
        (
            "POST",
            "/api/v1/requests/HTK-261201-1/approve",
            &[("Content-Type", "application/json")],
            b"{not json",
            400,
        ),
        (
            "POST",
            "/api/v1/login",
            &[("Content-Type", "text/plain")],
            b"{}",
            415,
        ),
        (
            "POST",
            "/api/v1/login",
            &[("Content-Type", "application/json")],
            br#"{"login":1}"#,
            422,
        ),
        ("GET", "/api/v1/no-such-thing", &[], b"", 404),
        ("GET", "/api/v1/requests?limit=abc", &[], b"", 400),
    ];
    for (method, path, headers, body, want) in cases {
        let mut h: Vec<(&str, &str)> = headers.to_vec();
        h.push(("Authorization", &auth));
        let r = http(desk.web, method, path, &h, body);
        assert_eq!(r.status, want, "{method} {path}: {}", r.text());
        let v = r.json();
        assert!(
            v["error"].is_string() && v["message"].is_string(),
            "{path}: {v}"
        );
    }
}
