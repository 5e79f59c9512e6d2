//! Every look is recorded, and the audit log is tamper-evident (issue 12),
//! on the embedded default and on PostgreSQL: a view of a request's mail
//! thread and of each photo, in the console and the API, a cached photo
//! too, is an audit row with who, which request and which photo; the
//! request's history shows it; supervisors filter (operator, request,
//! action, days) and export it as CSV; `huytk audit verify` passes on the
//! untouched log and names the row after an UPDATE, a DELETE and a swap of
//! two rows; writers on two pools at once keep one unbroken chain. The
//! request page's history is checked in Chromium too.

mod support;

use fantoccini::Locator;
use huytk::store::Store;
use serde_json::Value;
use sqlx::Row;
use support::desk::{TestDesk, OPERATOR_PASSWORD};
use support::mail::Mail;
use support::{artifacts, browser_login, http, ChromeDriver, HttpResponse, Postgres};

const AN: &str = "079203001234";

/// `huytk audit verify` on the desk: (exit status 0, what it printed).
fn verify(desk: &TestDesk, extra: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_huytk"))
        .arg("--config")
        .arg(&desk.config)
        .args(["audit", "verify"])
        .args(extra)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn database_url(desk: &TestDesk) -> String {
    let cfg = std::fs::read_to_string(&desk.config).unwrap();
    cfg.lines()
        .find_map(|l| l.strip_prefix("url = \""))
        .and_then(|l| l.strip_suffix('"'))
        .unwrap()
        .to_owned()
}

/// The session cookie of `login`.
fn session(desk: &TestDesk, login: &str) -> String {
    let r = desk.post_login(&format!("login={login}&password={OPERATOR_PASSWORD}"));
    r.header("set-cookie")
        .unwrap_or_else(|| panic!("{login} did not log in: {}", r.text()))
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}

fn page(desk: &TestDesk, cookie: &str, path: &str) -> HttpResponse {
    http(desk.web, "GET", path, &[("Cookie", cookie)], b"")
}

fn views(desk: &TestDesk, query: &str) -> Vec<Value> {
    let r = desk.api_as(&desk.supervisor, "GET", &format!("/audit?{query}"), None);
    assert_eq!(r.status, 200, "{}", r.text());
    r.json().as_array().unwrap().clone()
}

/// (id, seq) of every chained row, in chain order.
async fn chain(store: &Store) -> Vec<(i64, i64)> {
    sqlx::query("SELECT id, seq FROM audit_log WHERE seq IS NOT NULL ORDER BY seq")
        .fetch_all(store.pool())
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get("id"), r.get("seq")))
        .collect()
}

async fn exec(store: &Store, sql: &str) {
    sqlx::query(sql).execute(store.pool()).await.unwrap();
}

async fn looks_are_recorded_and_the_chain_holds(desk: TestDesk) {
    desk.deliver(&Mail::request("an@example.vn", AN, "Nguyễn Văn An", "0912345678").bytes());
    let v = desk.settle(AN, 1).await.remove(0);
    let reference = v["request"]["reference"].as_str().unwrap().to_owned();
    let sha = v["photos"][0]["sha256"].as_str().unwrap().to_owned();
    // The API's view of the request carries the thread: recorded, and in
    // the history it returns.
    let seen = desk.request(&reference);
    let own = seen["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["action"] == "viewed_thread" && h["actor"] == "lan")
        .count();
    assert!(own >= 1, "{}", seen["history"]);
    // A photo through the API, twice: the second from the cache, recorded
    // all the same.
    let photo = format!("/requests/{reference}/photos/{sha}");
    for _ in 0..2 {
        let r = desk.api("GET", &photo, None);
        assert_eq!(r.status, 200, "{}", r.text());
    }
    // And through the console, as the supervisor.
    let giamsat = session(&desk, "giamsat");
    assert_eq!(page(&desk, &giamsat, &photo).status, 200);
    let html = page(&desk, &giamsat, &format!("/requests/{reference}")).text();
    assert!(
        html.contains("data-action=\"viewed_photo\"") && html.contains("xem ảnh"),
        "the request page's history shows the photo views"
    );
    // Filters: operator, request, action, days.
    let lan_photos = views(
        &desk,
        &format!("actor=lan&action=viewed_photo&ref={reference}"),
    );
    assert_eq!(lan_photos.len(), 2, "{lan_photos:?}");
    assert!(lan_photos.iter().all(|l| l["detail"] == sha.as_str()));
    let sup_photos = views(&desk, "actor=giamsat&action=viewed_photo");
    assert_eq!(sup_photos.len(), 1, "{sup_photos:?}");
    let today = chrono::Utc::now()
        .with_timezone(&huytk::domain::time::vietnam())
        .date_naive();
    let on = |d: chrono::NaiveDate| {
        views(
            &desk,
            &format!("action=viewed_photo&from={d}&to={d}&ref={reference}"),
        )
        .len()
    };
    assert_eq!(on(today), 3);
    assert_eq!(on(today.succ_opt().unwrap()), 0);
    // An operator may not read the log.
    let r = desk.api("GET", "/audit?action=viewed_photo", None);
    assert_eq!(r.status, 403, "{}", r.text());
    // Export: the API with Accept: text/csv, and the console's CSV.
    let r = http(
        desk.web,
        "GET",
        &format!("/api/v1/audit?action=viewed_photo&ref={reference}"),
        &[
            ("Authorization", &format!("Bearer {}", desk.supervisor)),
            ("Accept", "text/csv"),
        ],
        b"",
    );
    assert_eq!(r.status, 200);
    let csv = r.text();
    assert_eq!(
        csv.lines()
            .filter(|l| l.contains("\"viewed_photo\""))
            .count(),
        3,
        "{csv}"
    );
    assert!(csv.contains(&sha));
    let csv = page(
        &desk,
        &giamsat,
        &format!("/audit.csv?actor=lan&action=viewed_thread&ref={reference}"),
    )
    .text();
    assert!(
        csv.contains("\"viewed_thread\"") && csv.contains("\"lan\""),
        "{csv}"
    );

    // The chain: intact now.
    let (ok, out) = verify(&desk, &[]);
    assert!(ok, "{out}");
    let head = out.trim().rsplit(' ').next().unwrap().to_owned();
    let store = Store::connect(&database_url(&desk)).await.unwrap();
    // Writers on two pools at once (as two replicas) keep one chain.
    let other = Store::connect(&database_url(&desk)).await.unwrap();
    let before = chain(&store).await.len();
    let mut writers = Vec::new();
    for i in 0..60 {
        let s = if i % 2 == 0 {
            store.clone()
        } else {
            other.clone()
        };
        let rid = v["request"]["id"].as_i64().unwrap();
        writers.push(tokio::spawn(async move {
            s.record_view(
                "lan",
                rid,
                huytk::domain::Action::ViewedPhoto,
                &format!("race-{i}"),
            )
            .await
            .unwrap();
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    let rows = chain(&store).await;
    assert_eq!(rows.len(), before + 60);
    assert!(rows
        .iter()
        .enumerate()
        .all(|(i, (_, seq))| *seq == i as i64 + 1));
    let (ok, out) = verify(&desk, &[]);
    assert!(ok, "{out}");
    // The digest's head from before the race is still in the chain.
    let (ok, out) = verify(&desk, &["--head", &head]);
    assert!(ok, "{out}");
    // The daily digest names the head as it is now.
    let (_, out) = verify(&desk, &[]);
    let head = out.trim().rsplit(' ').next().unwrap().to_owned();
    let cfg = std::fs::read_to_string(&desk.config).unwrap();
    std::fs::write(
        &desk.config,
        cfg.replace("[desk]\n", "[desk]\ndigest_to = [\"sup@test\"]\n"),
    )
    .unwrap();
    support::huytk_cli(&desk.config, &["digest", "--day", "2026-11-23"], "");
    let digest = desk
        .letter("the digest", |l| {
            l.to == "sup@test" && l.subject.contains("2026-11-23")
        })
        .await;
    assert!(
        digest
            .text
            .contains(&format!("huytk audit verify --head {head}")),
        "{}",
        digest.text
    );

    let (a, _) = rows[3];
    let (b, b_seq) = rows[4];
    // An UPDATE of one row names it.
    let actor_of = |id: i64| {
        let store = store.clone();
        async move {
            sqlx::query("SELECT actor FROM audit_log WHERE id = $1")
                .bind(id)
                .fetch_one(store.pool())
                .await
                .unwrap()
                .get::<String, _>("actor")
        }
    };
    let original = actor_of(a).await;
    exec(
        &store,
        &format!("UPDATE audit_log SET actor = 'eve' WHERE id = {a}"),
    )
    .await;
    let (ok, out) = verify(&desk, &[]);
    assert!(!ok, "an edited row passed: {out}");
    assert!(out.contains(&format!("audit row {a} ")), "{out}");
    assert_eq!(actor_of(a).await, "eve");
    exec(
        &store,
        &format!("UPDATE audit_log SET actor = '{original}' WHERE id = {a}"),
    )
    .await;
    let (ok, out) = verify(&desk, &[]);
    assert!(ok, "restored: {out}");
    // A DELETE names the row after the hole.
    let saved = "at, request_id, actor, action, from_state, to_state, detail, seq, prev_hash, hash";
    exec(
        &store,
        &format!("CREATE TABLE audit_saved AS SELECT id, {saved} FROM audit_log WHERE id = {a}"),
    )
    .await;
    exec(&store, &format!("DELETE FROM audit_log WHERE id = {a}")).await;
    let (ok, out) = verify(&desk, &[]);
    assert!(!ok, "a deleted row passed: {out}");
    assert!(
        out.contains(&format!(
            "position {} is missing before row {b} ",
            b_seq - 1
        )),
        "{out}"
    );
    exec(
        &store,
        &format!("INSERT INTO audit_log (id, {saved}) SELECT id, {saved} FROM audit_saved"),
    )
    .await;
    exec(&store, "DROP TABLE audit_saved").await;
    let (ok, out) = verify(&desk, &[]);
    assert!(ok, "restored: {out}");
    // Swapping two rows' places names the first of them.
    exec(
        &store,
        &format!("UPDATE audit_log SET seq = -1 WHERE id = {a}"),
    )
    .await;
    exec(
        &store,
        &format!("UPDATE audit_log SET seq = {} WHERE id = {b}", b_seq - 1),
    )
    .await;
    exec(
        &store,
        &format!("UPDATE audit_log SET seq = {b_seq} WHERE id = {a}"),
    )
    .await;
    let (ok, out) = verify(&desk, &[]);
    assert!(!ok, "swapped rows passed: {out}");
    assert!(
        out.contains(&format!("audit row {b} (position {})", b_seq - 1)),
        "{out}"
    );
    exec(
        &store,
        &format!("UPDATE audit_log SET seq = -1 WHERE id = {a}"),
    )
    .await;
    exec(
        &store,
        &format!("UPDATE audit_log SET seq = {b_seq} WHERE id = {b}"),
    )
    .await;
    exec(
        &store,
        &format!("UPDATE audit_log SET seq = {} WHERE id = {a}", b_seq - 1),
    )
    .await;
    let (ok, out) = verify(&desk, &[]);
    assert!(ok, "restored: {out}");
    // Rows removed from the end: only the digest's head shows it.
    let (last, _) = *chain(&store).await.last().unwrap();
    let (_, now) = verify(&desk, &[]);
    let newest = now.trim().rsplit(' ').next().unwrap().to_owned();
    exec(&store, &format!("DELETE FROM audit_log WHERE id = {last}")).await;
    let (ok, out) = verify(&desk, &[]);
    assert!(ok, "{out}");
    let (ok, out) = verify(&desk, &["--head", &newest]);
    assert!(!ok && out.contains(&format!("head {last} ")), "{out}");
    // Rows from before the chain (as migration 0009 leaves them) are chained
    // at the next start; a row written around the desk later never is.
    exec(
        &store,
        "UPDATE audit_log SET seq = NULL, prev_hash = NULL, hash = NULL",
    )
    .await;
    exec(
        &store,
        "UPDATE audit_chain_backfill SET legacy_until = (SELECT MAX(id) FROM audit_log)",
    )
    .await;
    assert!(chain(&store).await.is_empty());
    let restarted = Store::connect(&database_url(&desk)).await.unwrap();
    let all: i64 = sqlx::query("SELECT COUNT(*) AS n FROM audit_log")
        .fetch_one(store.pool())
        .await
        .unwrap()
        .get("n");
    assert_eq!(chain(&restarted).await.len() as i64, all);
    let (ok, out) = verify(&desk, &[]);
    assert!(ok, "{out}");
    exec(
        &store,
        "INSERT INTO audit_log (at, actor, action, detail) VALUES (1, 'eve', 'approve', 'forged')",
    )
    .await;
    let forged: i64 = sqlx::query("SELECT MAX(id) AS id FROM audit_log")
        .fetch_one(store.pool())
        .await
        .unwrap()
        .get("id");
    drop(Store::connect(&database_url(&desk)).await.unwrap());
    let (ok, out) = verify(&desk, &[]);
    assert!(
        !ok && out.contains(&format!("audit row {forged} is outside the chain")),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn looks_are_recorded_and_the_chain_holds_on_the_embedded_default() {
    looks_are_recorded_and_the_chain_holds(TestDesk::embedded("audit").start()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn looks_are_recorded_and_the_chain_holds_on_postgres() {
    let pg = Postgres::start();
    let db = pg.fresh_database("audit");
    looks_are_recorded_and_the_chain_holds(TestDesk::embedded("audit-pg").database(&db).start())
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_request_history_shows_each_look_in_chromium() {
    let desk = TestDesk::embedded("audit-chromium").start();
    desk.deliver(&Mail::request("an@example.vn", AN, "Nguyễn Văn An", "0912345678").bytes());
    let v = desk.settle(AN, 1).await.remove(0);
    let reference = v["request"]["reference"].as_str().unwrap().to_owned();
    let sha = v["photos"][0]["sha256"].as_str().unwrap().to_owned();
    let driver = ChromeDriver::start();
    let b = driver.browser().await;
    let base = format!("http://127.0.0.1:{}", desk.web);
    browser_login(&b, &base, "giamsat", OPERATOR_PASSWORD).await;
    // Opening a photo on its own, then the request page.
    b.goto(&format!("{base}/requests/{reference}/photos/{sha}"))
        .await
        .unwrap();
    b.goto(&format!("{base}/requests/{reference}"))
        .await
        .unwrap();
    let rows = b.find_all(Locator::Css("#history tr.view")).await.unwrap();
    let mut seen = Vec::new();
    for r in rows {
        seen.push(r.text().await.unwrap());
    }
    std::fs::write(
        artifacts("audit").join("history.png"),
        b.screenshot().await.unwrap(),
    )
    .unwrap();
    assert!(
        seen.iter()
            .any(|t| t.contains("giamsat") && t.contains("xem ảnh") && t.contains(&sha[..12])),
        "the photo view: {seen:?}"
    );
    assert!(
        seen.iter()
            .any(|t| t.contains("giamsat") && t.contains("xem thư từ")),
        "this very look at the thread: {seen:?}"
    );
    b.close().await.unwrap();
}
