//! The supervisors' dashboard tells the truth (issue 15): a desk on the
//! embedded default is seeded through the store with requests received on
//! past working days (one on a day off, one before the 90 days), decisions
//! by three operators (some after the due date), and grace periods ended
//! every way; the test counts from the database what each chart should
//! show, and checks that the charts' bars in Chromium (their data
//! attributes), the tables beside them, each chart's CSV and
//! `/api/v1/reports` all say exactly that; and `/api/v1/reports` again on
//! PostgreSQL. Screenshot:
//! `target/artifacts/dashboard.png`.

mod support;

use chrono::{Datelike, Days, NaiveDate};
use huytk::domain::calendar::Calendar;
use huytk::domain::thread::ThreadToken;
use huytk::domain::time::{vietnam, Clock};
use huytk::domain::RequestState;
use huytk::store::{self, AuditEntry, NewRequest, Store};
use serde_json::Value;
use sqlx::Row;
use std::collections::BTreeMap;
use support::desk::{TestDesk, OPERATOR_PASSWORD};
use support::{browser_login, http, ChromeDriver, Postgres};

/// Working days reported.
const WINDOW: usize = 90;

/// Vietnam midnight of `d` plus `minutes`, in ms.
fn at(d: NaiveDate, minutes: i64) -> i64 {
    d.and_hms_opt(0, 0, 0)
        .unwrap()
        .and_local_timezone(vietnam())
        .unwrap()
        .timestamp_millis()
        + minutes * 60_000
}

/// The Vietnam date of an instant.
fn date_of(ms: i64) -> NaiveDate {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap()
        .with_timezone(&vietnam())
        .date_naive()
}

/// The `k`-th working day before today (0: today, or the last before it).
fn working_day_back(cal: &Calendar, today: NaiveDate, k: usize) -> NaiveDate {
    let mut d = today;
    let mut seen = 0;
    loop {
        if cal.is_working_day(d) {
            if seen == k {
                return d;
            }
            seen += 1;
        }
        d = d.pred_opt().unwrap();
    }
}

async fn new_request(
    s: &Store,
    n: usize,
    received: i64,
    state: RequestState,
    cal: &Calendar,
) -> i64 {
    let due = cal.add_working_days(date_of(received), 20).to_string();
    let mut token = [0u8; 10];
    token[..8].copy_from_slice(&(n as u64 + 1).to_be_bytes());
    token[8] = 0xab;
    let mut tx = s.begin().await.unwrap();
    let (id, _) = store::insert_request(
        &mut tx,
        &NewRequest {
            email: &format!("cong-dan-{n}@example.vn"),
            received_at: received,
            due_date: &due,
            reference_day: "261201",
            thread_token: &ThreadToken::from_bytes(token),
            linked_to: None,
        },
    )
    .await
    .unwrap();
    if state != RequestState::NeedsInfo {
        assert!(store::set_state(&mut tx, id, 0, state).await.unwrap());
    }
    store::commit(tx).await.unwrap();
    id
}

async fn log(s: &Store, id: i64, at: i64, actor: &str, action: &str) {
    let mut tx = s.begin().await.unwrap();
    store::audit(
        &mut tx,
        &AuditEntry {
            at,
            request_id: Some(id),
            actor: actor.into(),
            action: action.into(),
            from_state: None,
            to_state: None,
            detail: None,
        },
    )
    .await
    .unwrap();
    store::commit(tx).await.unwrap();
}

/// Seeds `s` as of `today`: about 40 requests over the last 90 working
/// days, one on a day off, one long before; decisions and grace ends.
async fn seed(s: &Store, cal: &Calendar, today: NaiveDate, now: i64) {
    use RequestState::*;
    let states = [
        NeedsInfo,
        PendingReview,
        Rejected,
        GracePeriod,
        Deleted,
        Cancelled,
        PendingReview,
    ];
    let operators = ["lan", "giamsat", "minh"];
    let mut n = 0;
    for k in [0, 1, 2, 3, 5, 8, 13, 17, 21, 26, 34, 41, 55, 63, 80, 89] {
        let day = working_day_back(cal, today, k);
        for j in 0..(k % 3 + 1) {
            n += 1;
            let received = at(day, 8 * 60 + 17 * j as i64);
            let id = new_request(s, n, received, states[n % states.len()], cal).await;
            // Decided d working days after receipt: every fifth after the
            // 20th (late), the others within it.
            let d = if n % 5 == 0 { 24 } else { (n * 7) % 19 };
            let decided = at(cal.add_working_days(day, d as u32), 10 * 60).min(now - 60_000);
            let who = operators[n % 3];
            match n % 4 {
                0 => log(s, id, decided, who, "approve").await,
                1 => log(s, id, decided, who, "reject").await,
                2 => log(s, id, decided, who, "ask").await,
                _ => log(s, id, decided, who, "approve_first").await,
            }
            let ends = [
                "window_over",
                "hotline_objected",
                "back_to_operator",
                "hotline_confirmed",
                "note",
            ];
            if n % 2 == 0 {
                log(s, id, decided.min(now - 30_000), "system", ends[n % 5]).await;
            }
        }
    }
    // Mail of a day off counts on the next working day.
    let mut off = working_day_back(cal, today, 10);
    while cal.is_working_day(off) {
        off = off.pred_opt().unwrap();
    }
    let id = new_request(s, 900, at(off, 20 * 60), PendingReview, cal).await;
    log(s, id, at(off, 21 * 60), "lan", "reject").await;
    // Long before the window: counted only among the waiting requests' ages.
    let old = working_day_back(cal, today, 120);
    let id = new_request(s, 901, at(old, 9 * 60), PendingReview, cal).await;
    log(s, id, at(old, 11 * 60), "lan", "approve").await;
    log(s, id, at(old, 12 * 60), "system", "window_over").await;
}

/// What the charts must show, counted here from the database's rows.
#[derive(Debug, Default, PartialEq)]
struct Truth {
    /// (working day, received, decided), oldest first.
    days: Vec<(String, i64, i64)>,
    /// (Monday, decided, within).
    weeks: Vec<(String, i64, i64)>,
    /// Waiting requests per age bucket (0-5 … >20).
    ages: Vec<(String, i64)>,
    /// (operator, action) → count.
    operators: BTreeMap<(String, String), i64>,
    /// outcome → count.
    grace: BTreeMap<String, i64>,
}

fn monday(d: NaiveDate) -> NaiveDate {
    d - Days::new(u64::from(d.weekday().num_days_from_monday()))
}

async fn truth(s: &Store, cal: &Calendar, today: NaiveDate) -> Truth {
    let window: Vec<NaiveDate> = (0..WINDOW)
        .rev()
        .map(|k| working_day_back(cal, today, k))
        .collect();
    let since = working_day_back(cal, today, WINDOW).succ_opt().unwrap();
    let next_working = |mut d: NaiveDate| {
        while !cal.is_working_day(d) {
            d = d.succ_opt().unwrap();
        }
        d
    };
    let mut days: BTreeMap<NaiveDate, (i64, i64)> = window.iter().map(|d| (*d, (0, 0))).collect();
    let pool = s.pool();
    for r in sqlx::query("SELECT received_at, state FROM requests")
        .fetch_all(pool)
        .await
        .unwrap()
    {
        let d = date_of(r.get::<i64, _>("received_at"));
        if d >= since {
            if let Some(e) = days.get_mut(&next_working(d)) {
                e.0 += 1;
            }
        }
    }
    let mut weeks: BTreeMap<NaiveDate, (i64, i64)> = BTreeMap::new();
    let mut w = monday(window[0]);
    while w <= today {
        weeks.insert(w, (0, 0));
        w = w + Days::new(7);
    }
    let mut operators = BTreeMap::new();
    let mut grace = BTreeMap::new();
    for o in ["deleted", "cancelled", "returned"] {
        grace.insert(o.to_owned(), 0);
    }
    for r in sqlx::query(
        "SELECT a.at, a.actor, a.action, r.due_date FROM audit_log a JOIN requests r ON r.id = a.request_id",
    )
    .fetch_all(pool)
    .await
    .unwrap()
    {
        let (when, actor, action, due): (i64, String, String, String) = (
            r.get("at"),
            r.get("actor"),
            r.get("action"),
            r.get("due_date"),
        );
        let d = date_of(when);
        let decision = action == "approve" || action == "reject";
        if decision {
            if let Some(week) = weeks.get_mut(&monday(d)) {
                week.0 += 1;
                week.1 += i64::from(due >= d.to_string());
            }
        }
        if d < since {
            continue;
        }
        if decision {
            if let Some(e) = days.get_mut(&next_working(d)) {
                e.1 += 1;
            }
        }
        if ["approve", "reject", "ask", "approve_first"].contains(&action.as_str()) {
            *operators.entry((actor, action.clone())).or_insert(0) += 1;
        }
        let outcome = match action.as_str() {
            "window_over" | "hotline_confirmed" => "deleted",
            "hotline_objected" => "cancelled",
            "back_to_operator" => "returned",
            _ => continue,
        };
        *grace.get_mut(outcome).unwrap() += 1;
    }
    let mut ages: Vec<(String, i64)> = ["0-5", "6-10", "11-15", "16-20", ">20"]
        .iter()
        .map(|b| (b.to_string(), 0))
        .collect();
    for r in sqlx::query(
        "SELECT received_at FROM requests WHERE state IN ('needs_info', 'pending_review')",
    )
    .fetch_all(pool)
    .await
    .unwrap()
    {
        let age = cal.working_days_between(date_of(r.get("received_at")), today);
        let i = if age > 20 {
            4
        } else {
            (age.max(1) - 1) as usize / 5
        };
        ages[i].1 += 1;
    }
    Truth {
        days: days
            .into_iter()
            .map(|(d, (a, b))| (d.to_string(), a, b))
            .collect(),
        weeks: weeks
            .into_iter()
            .map(|(d, (a, b))| (d.to_string(), a, b))
            .collect(),
        ages,
        operators,
        grace,
    }
}

/// The reports as `/api/v1/reports` gives them.
fn from_api(v: &Value) -> Truth {
    let i = |x: &Value| x.as_i64().unwrap();
    let s = |x: &Value| x.as_str().unwrap().to_owned();
    let mut t = Truth {
        days: v["days"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| (s(&d["day"]), i(&d["received"]), i(&d["decided"])))
            .collect(),
        weeks: v["weeks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| (s(&w["week"]), i(&w["decided"]), i(&w["within"])))
            .collect(),
        ages: v["open_by_age"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| (s(&a["bucket"]), i(&a["count"])))
            .collect(),
        ..Truth::default()
    };
    for o in v["operators"].as_array().unwrap() {
        for a in ["approve", "reject", "ask", "approve_first"] {
            if i(&o[a]) > 0 {
                t.operators
                    .insert((s(&o["operator"]), a.to_owned()), i(&o[a]));
            }
        }
    }
    for g in v["grace_outcomes"].as_array().unwrap() {
        t.grace.insert(s(&g["outcome"]), i(&g["count"]));
    }
    t
}

/// The bars of every chart on the page: chart id → (series, category) →
/// value.
type Bars = BTreeMap<String, BTreeMap<(String, String), f64>>;

fn from_bars(bars: &Bars, truth: &Truth) -> Truth {
    let get = |chart: &str, series: &str, cat: &str| -> i64 {
        bars[chart]
            .get(&(series.to_owned(), cat.to_owned()))
            .copied()
            .unwrap_or_else(|| panic!("no bar {chart}/{series}/{cat}")) as i64
    };
    let mut t = Truth {
        days: truth
            .days
            .iter()
            .map(|(d, _, _)| {
                (
                    d.clone(),
                    get("chart-days-90", "received", d),
                    get("chart-days-90", "decided", d),
                )
            })
            .collect(),
        ages: truth
            .ages
            .iter()
            .map(|(b, _)| (b.clone(), get("chart-open-age", "count", b)))
            .collect(),
        weeks: truth.weeks.clone(),
        ..Truth::default()
    };
    for ((series, login), v) in &bars["chart-operators"] {
        if *v > 0.0 {
            t.operators
                .insert((login.clone(), series.clone()), *v as i64);
        }
    }
    for ((_, outcome), v) in &bars["chart-grace"] {
        t.grace.insert(outcome.clone(), *v as i64);
    }
    // The share chart draws percentages: each week's bar is within/decided.
    for (week, decided, within) in &truth.weeks {
        let bar = bars["chart-service-level"].get(&("share_percent".to_owned(), week.clone()));
        match (decided, bar) {
            (0, None) => {}
            (0, Some(v)) => panic!("week {week} has no decisions but a bar of {v}"),
            (_, None) => panic!("week {week}: no bar"),
            (_, Some(v)) => {
                let want = (within * 1000 / decided) as f64 / 10.0;
                assert!((v - want).abs() < 0.01, "week {week}: bar {v}, want {want}");
            }
        }
    }
    // The 30-day chart is the last 30 days of the 90.
    for (d, r, dec) in &truth.days[truth.days.len() - 30..] {
        assert_eq!(get("chart-days-30", "received", d), *r, "{d}");
        assert_eq!(get("chart-days-30", "decided", d), *dec, "{d}");
    }
    assert_eq!(bars["chart-days-30"].len(), 60, "30 days, two series");
    t
}

/// One CSV download, header row and rows, BOM and quotes removed.
fn csv(desk: &TestDesk, cookie: &str, chart: &str) -> Vec<Vec<String>> {
    let r = http(
        desk.web,
        "GET",
        &format!("/dashboard/{chart}.csv"),
        &[("Cookie", cookie)],
        b"",
    );
    assert_eq!(r.status, 200, "{chart}: {}", r.text());
    assert_eq!(r.header("content-type"), Some("text/csv; charset=utf-8"));
    let text = r.text();
    let text = text
        .strip_prefix('\u{feff}')
        .expect("a UTF-8 byte-order mark");
    text.split("\r\n")
        .filter(|l| !l.is_empty())
        .map(|l| {
            l.split(',')
                .map(|f| f.trim_matches('"').to_owned())
                .collect()
        })
        .collect()
}

fn from_csv(desk: &TestDesk, cookie: &str) -> Truth {
    let n = |s: &str| s.parse::<i64>().unwrap();
    let days = csv(desk, cookie, "days-90");
    assert_eq!(days[0], ["day", "received", "decided"]);
    let weeks = csv(desk, cookie, "service-level");
    assert_eq!(weeks[0], ["week", "decided", "within", "share_percent"]);
    let ages = csv(desk, cookie, "open-age");
    assert_eq!(ages[0], ["bucket", "count"]);
    let ops = csv(desk, cookie, "operators");
    assert_eq!(
        ops[0],
        [
            "operator",
            "approve_first",
            "approve",
            "reject",
            "ask",
            "total"
        ]
    );
    let grace = csv(desk, cookie, "grace");
    assert_eq!(grace[0], ["outcome", "count"]);
    assert_eq!(csv(desk, cookie, "days-30")[1..], days[days.len() - 30..]);
    let mut t = Truth {
        days: days[1..]
            .iter()
            .map(|r| (r[0].clone(), n(&r[1]), n(&r[2])))
            .collect(),
        weeks: weeks[1..]
            .iter()
            .map(|r| (r[0].clone(), n(&r[1]), n(&r[2])))
            .collect(),
        ages: ages[1..].iter().map(|r| (r[0].clone(), n(&r[1]))).collect(),
        ..Truth::default()
    };
    for r in &ops[1..] {
        let total: i64 = (1..=4).map(|i| n(&r[i])).sum();
        assert_eq!(total, n(&r[5]), "{r:?}");
        for (i, a) in ["approve_first", "approve", "reject", "ask"]
            .iter()
            .enumerate()
        {
            if n(&r[i + 1]) > 0 {
                t.operators
                    .insert((r[0].clone(), (*a).to_owned()), n(&r[i + 1]));
            }
        }
    }
    for r in &grace[1..] {
        t.grace.insert(r[0].clone(), n(&r[1]));
    }
    t
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

/// The bars of every chart, read from the page in Chromium.
async fn bars_in_chromium(b: &fantoccini::Client) -> Bars {
    let found = b
        .execute(
            "return [...document.querySelectorAll('svg.chart rect[data-value]')].map(r =>
               [r.closest('svg').id, r.closest('g').dataset.series, r.dataset.category, r.dataset.value])",
            vec![],
        )
        .await
        .unwrap();
    let mut bars = Bars::new();
    for bar in found.as_array().unwrap() {
        let f = |i: usize| bar[i].as_str().unwrap().to_owned();
        bars.entry(f(0))
            .or_default()
            .insert((f(1), f(2)), f(3).parse().unwrap());
    }
    bars
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dashboard_charts_csv_and_api_show_the_database() {
    let desk = TestDesk::embedded("reports").start();
    let cal = Calendar::vietnam();
    let clock = Clock::system();
    let today = clock.today();
    let url = format!("sqlite://{}/desk.db", desk.path().display());
    let s = Store::connect(&url).await.unwrap();
    seed(&s, &cal, today, clock.now_ms()).await;
    let want = truth(&s, &cal, today).await;
    // The seed is not trivial: every chart has something to show, and
    // some decisions came after the due date.
    assert!(
        want.days.iter().filter(|d| d.1 > 0).count() >= 10,
        "{want:?}"
    );
    assert!(want.days.iter().any(|d| d.2 > 0));
    assert!(want.weeks.iter().any(|w| w.2 < w.1), "a late decision");
    assert!(want.weeks.iter().any(|w| w.2 > 0), "a timely decision");
    assert!(want.ages.iter().filter(|a| a.1 > 0).count() >= 3);
    assert!(want.ages[4].1 >= 1, "the request from before the window");
    assert!(want.operators.len() >= 8, "{:?}", want.operators);
    assert!(want.grace.values().all(|n| *n > 0), "{:?}", want.grace);
    assert_eq!(want.days.len(), WINDOW);

    // The API.
    let r = desk.api_as(&desk.operator, "GET", "/reports", None);
    assert_eq!(r.status, 200, "{}", r.text());
    let api = r.json();
    assert_eq!(from_api(&api), want, "/api/v1/reports");
    assert_eq!(api["today"], today.to_string());
    assert_eq!(api["service_level_days"], 20);
    let r = http(desk.web, "GET", "/api/v1/reports", &[], b"");
    assert_eq!(r.status, 401, "no token, no reports");

    // The CSV downloads, signed in only.
    let cookie = session(&desk, "giamsat");
    assert_eq!(from_csv(&desk, &cookie), want, "the CSV downloads");
    let r = http(desk.web, "GET", "/dashboard/days-90.csv", &[], b"");
    assert_eq!(r.status, 303, "signed out: to the login page");
    let r = http(
        desk.web,
        "GET",
        "/dashboard/nothing.csv",
        &[("Cookie", &cookie)],
        b"",
    );
    assert_eq!(r.status, 404);

    // The page in Chromium: the bars and the tables.
    let driver = ChromeDriver::start();
    let b = driver.browser().await;
    let base = format!("http://127.0.0.1:{}", desk.web);
    browser_login(&b, &base, "giamsat", OPERATOR_PASSWORD).await;
    b.goto(&format!("{base}/dashboard")).await.unwrap();
    let bars = bars_in_chromium(&b).await;
    assert_eq!(from_bars(&bars, &want), want, "the charts' bars");
    let table = b
        .execute(
            "return [...document.querySelectorAll('#table-days-90 tbody tr')].map(r =>
               [r.dataset.day, +r.querySelector('[data-key=received]').textContent,
                +r.querySelector('[data-key=decided]').textContent])",
            vec![],
        )
        .await
        .unwrap();
    let table: Vec<(String, i64, i64)> = serde_json::from_value(table).unwrap();
    assert_eq!(table, want.days, "the table beside the chart");
    // Each chart is named for a screen reader, in Vietnamese.
    let names = b
        .execute(
            "return [...document.querySelectorAll('svg.chart')].map(s =>
               s.getAttribute('role') + '|' + s.querySelector('title').textContent)",
            vec![],
        )
        .await
        .unwrap();
    let names: Vec<String> = serde_json::from_value(names).unwrap();
    assert_eq!(names.len(), 6, "{names:?}");
    assert!(
        names.iter().all(|n| n.starts_with("img|") && n.len() > 20),
        "{names:?}"
    );
    assert!(names[0].contains("30 ngày làm việc"), "{names:?}");
    // The cards the other tests use are still there.
    for id in ["#overdue", "#due-soon", "#by-state"] {
        b.find(fantoccini::Locator::Css(id)).await.unwrap();
    }
    b.set_window_size(1400, 5200).await.unwrap();
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("dashboard.png"), b.screenshot().await.unwrap()).unwrap();
    b.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_reports_show_the_database_on_postgres() {
    let pg = Postgres::start();
    let db = pg.fresh_database("reports");
    let desk = TestDesk::embedded("reports-pg").database(&db).start();
    let cal = Calendar::vietnam();
    let clock = Clock::system();
    let today = clock.today();
    let s = Store::connect(&db).await.unwrap();
    seed(&s, &cal, today, clock.now_ms()).await;
    let want = truth(&s, &cal, today).await;
    assert!(
        want.days.iter().filter(|d| d.1 > 0).count() >= 10,
        "{want:?}"
    );
    let r = desk.api_as(&desk.supervisor, "GET", "/reports", None);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(from_api(&r.json()), want, "/api/v1/reports on PostgreSQL");
}
