//! From approval to deletion (issue 5), on real parts started here: the
//! account is locked, the holder's SMS goes out (Kannel with its fake SMSC,
//! or the embedded file outbox), the window passes, the account is deleted
//! (OpenLDAP, or the embedded directory) and the citizen's mailbox gets the
//! final letter; a request stopped through the hotline keeps its account,
//! unlocked. Faults: the daemon killed during the window, the account store
//! down at the deadline, the SMS gateway down at approval.

mod support;

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use support::desk::TestDesk;
use support::mail::Mail;
use support::{
    append, demo, folder, http, huytk_cli, start_daemon, wait_for, wait_until, Daemon, Dovecot,
    FakeClock, Kannel, Postfix, Slapd, TempDir, LDAP_BASE,
};

const PASSWORD: &str = support::desk::OPERATOR_PASSWORD;

fn console_message(name: &str, to: &str) -> Vec<u8> {
    let raw = std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/console")
            .join(name),
    )
    .unwrap();
    String::from_utf8_lossy(&raw)
        .replace("an@test", to)
        .into_bytes()
}

struct Api {
    port: u16,
    token: String,
    supervisor: String,
}

impl Api {
    /// The API of a [`TestDesk`], as its operator `lan` and supervisor
    /// `giamsat` (whose password is this file's `PASSWORD` too).
    fn of(desk: &TestDesk) -> Api {
        Api {
            port: desk.web,
            token: desk.operator.clone(),
            supervisor: desk.supervisor.clone(),
        }
    }

    fn new(config: &Path, port: u16) -> Api {
        huytk_cli(
            config,
            &["operator", "add", "lan", "--password-stdin"],
            &format!("{PASSWORD}\n"),
        );
        huytk_cli(
            config,
            &[
                "operator",
                "add",
                "giamsat",
                "--role",
                "supervisor",
                "--password-stdin",
            ],
            &format!("{PASSWORD}\n"),
        );
        let token = |login: &str| {
            huytk_cli(config, &["operator", "token", login], "")
                .trim()
                .to_owned()
        };
        Api {
            port,
            token: token("lan"),
            supervisor: token("giamsat"),
        }
    }
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.call_as(&self.token, method, path, body)
    }
    /// An account whose holder cannot be told through its own phone (or
    /// found only through the card QR): the operator's approval is refused
    /// until the supervisor confirms; then it goes.
    fn approve_with_supervisor(&self, reference: &str, account: &str) -> Value {
        let body = Some(json!({ "account": account }));
        let approve = format!("/requests/{reference}/approve");
        let r = self.call("POST", &approve, body.clone());
        assert_eq!(r["error"], "needs_supervisor", "{r}");
        let confirm = format!("/requests/{reference}/confirm-holder-risk");
        let r = self.call_as(&self.supervisor, "POST", &confirm, body.clone());
        assert_eq!(r["result"]["outcome"], "noted", "{r}");
        self.call("POST", &approve, body)
    }
    fn call_as(&self, token: &str, method: &str, path: &str, body: Option<Value>) -> Value {
        let auth = format!("Bearer {token}");
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let r = http(
            self.port,
            method,
            &format!("/api/v1{path}"),
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
            ],
            body.as_bytes(),
        );
        assert!(r.status < 500, "{method} {path}: {} {}", r.status, r.text());
        r.json()
    }
    fn request(&self, number: &str) -> Value {
        let list = self.call("GET", &format!("/requests?state=all&q={number}"), None);
        let reference = list["items"][0]["reference"]
            .as_str()
            .unwrap_or_else(|| panic!("no request for {number}: {list}"))
            .to_owned();
        self.call("GET", &format!("/requests/{reference}"), None)
    }
    async fn wait_state(&self, number: &str, state: &str, secs: u64) -> Value {
        let what = format!("request {number} in {state}");
        wait_for(&what, Duration::from_secs(secs), || async {
            let list = self.call("GET", &format!("/requests?state=all&q={number}"), None);
            if list["items"][0]["state"] == state {
                return Ok(());
            }
            Err(list["items"][0].to_string())
        })
        .await;
        self.request(number)
    }
}

fn actions(view: &Value) -> Vec<String> {
    view["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["action"].as_str().unwrap().to_owned())
        .collect()
}

fn at_of(view: &Value, action: &str) -> i64 {
    view["history"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["action"] == action)
        .unwrap_or_else(|| panic!("no {action} in {}", view["history"]))["at"]
        .as_i64()
        .unwrap()
}

/// Polls a request until it is deleted, asserting at every look that it
/// is not deleting or deleted before its deadline.
async fn watch_until_deleted(api: &Api, number: &str, secs: u64) -> Value {
    let deadline = std::cell::Cell::new(None);
    wait_for(
        &format!("request {number} deleted"),
        Duration::from_secs(secs),
        || async {
            let v = api.request(number);
            let state = v["request"]["state"].as_str().unwrap().to_owned();
            if let Some(d) = v["request"]["grace_deadline"].as_i64() {
                deadline.set(Some(d));
            }
            if state == "deleting" || state == "deleted" {
                let d = deadline.get().expect("a deadline before deletion");
                let now = huytk::domain::time::now_ms();
                assert!(now >= d, "{state} {} ms before the deadline", d - now);
                assert!(at_of(&v, "window_over") >= d, "the window closed early");
                if state == "deleted" {
                    assert!(at_of(&v, "account_deleted") >= d);
                    return Ok(v);
                }
            }
            Err(v["request"].to_string())
        },
    )
    .await
}

/// Waits until the window of request `number` has started; its deadline.
async fn window_deadline(api: &Api, number: &str, secs: u64) -> i64 {
    wait_for("the window to start", Duration::from_secs(secs), || async {
        let v = api.request(number);
        v["request"]["grace_deadline"]
            .as_i64()
            .ok_or_else(|| v["request"].to_string())
    })
    .await
}

/// Waits until request `number` went back to an operator; its view.
async fn back_to_operator(api: &Api, number: &str) -> Value {
    wait_for(
        "the request back to an operator",
        Duration::from_secs(30),
        || async {
            let v = api.request(number);
            // The view reads the request and its history one after the
            // other: wait until both show the move, not the first of them.
            if actions(&v).contains(&"back_to_operator".to_owned())
                && v["request"]["state"] == "pending_review"
            {
                Ok(v)
            } else {
                Err(v["history"].to_string())
            }
        },
    )
    .await
}

/// A desk on the embedded default's parts (Maildir spool and outbox, file
/// SMS) with `extra` sections appended (another account store, say).
fn base_config(dir: &Path, web: u16, db: &str, grace: u64, extra: &str) -> PathBuf {
    let config = dir.join("huytk.toml");
    std::fs::write(
        &config,
        format!(
            "[database]\nurl = \"{db}\"\n[desk]\naddress = \"desk@test\"\ngrace_seconds = {grace}\n\
             [mailbox]\npath = \"{d}/spool\"\npoll_seconds = 1\n[mail_out]\npath = \"{d}/outbox\"\n\
             [sms]\nkind = \"file\"\npath = \"{d}/sms.jsonl\"\n\
             [web]\nbind = \"127.0.0.1:{web}\"\n[templates]\ndir = \"{t}\"\n{extra}",
            d = dir.display(),
            t = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("templates").display()
        ),
    )
    .unwrap();
    config
}

/// The embedded default with An's and Long's accounts in its directory.
fn embedded_config(dir: &Path, web: u16, db: &str, grace: u64) -> PathBuf {
    let config = base_config(dir, web, db, grace, "");
    let accounts = dir.join("accounts.toml");
    std::fs::write(&accounts, GRACE_ACCOUNTS).unwrap();
    huytk_cli(
        &config,
        &["accounts", "load", accounts.to_str().unwrap()],
        "",
    );
    config
}

/// Starts the daemon with An's request in its spool; returns the daemon,
/// the API and the request once it is ready for review.
/// An's and Long's portal accounts.
const GRACE_ACCOUNTS: &str = "[[account]]\naccount_id = \"DVC-AN\"\nid_number = \"079203001234\"\n\
     full_name = \"Nguyễn Văn An\"\nphone = \"+84912345678\"\n\
     [[account]]\naccount_id = \"DVC-LONG\"\nid_number = \"040089012345\"\nfull_name = \"Lê Hoàng Long\"\n";

/// The embedded default with An's and Long's accounts in its directory
/// and a window of `grace` seconds (what `embedded_config` writes, as a
/// [`TestDesk`]).
fn embedded_desk(tag: &str, grace: u64) -> support::desk::TestDeskBuilder {
    TestDesk::embedded(tag)
        .accounts(GRACE_ACCOUNTS)
        .grace_seconds(grace)
}

/// Starts `desk`, delivers An's request and waits until it is ready for
/// review.
async fn start_with_an(desk: support::desk::TestDeskBuilder) -> (TestDesk, Api, Value) {
    let desk = desk.start();
    desk.deliver(&console_message("cccd_with_old_cmnd.eml", "an@test"));
    let api = Api::of(&desk);
    let an = api.wait_state("079203001234", "pending_review", 60).await;
    (desk, api, an)
}

fn outbox_subjects(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir.join("outbox/new"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let raw = std::fs::read(e.path()).unwrap();
        let m = mail_parser::MessageParser::default().parse(&raw).unwrap();
        out.push(m.subject().unwrap_or("").to_owned());
    }
    out
}

fn account_state(config: &Path, number: &str) -> Option<String> {
    let out = huytk_cli(config, &["accounts", "find", number], "");
    out.lines().next().map(|l| {
        serde_json::from_str::<Value>(l).unwrap()["state"]
            .as_str()
            .unwrap()
            .to_owned()
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn the_whole_life_on_the_embedded_default() {
    let desk = embedded_desk("grace-embedded", 5).start();
    let (dir, config) = (&desk.dir, desk.config.clone());
    desk.deliver(&console_message("cccd_with_old_cmnd.eml", "an@test"));
    let corpus = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    desk.deliver(&std::fs::read(corpus.join("03_windows1258_body.eml")).unwrap());
    let api = Api::of(&desk);
    let an = api.wait_state("079203001234", "pending_review", 60).await;
    let an_ref = an["request"]["reference"].as_str().unwrap().to_owned();
    let r = api.call(
        "POST",
        &format!("/requests/{an_ref}/approve"),
        Some(json!({ "account": "DVC-AN" })),
    );
    assert_eq!(r["state"], "grace_period", "{r}");

    // Locked, then the SMS, in GSM-7, to the account's phone, in ≤ 2 parts.
    let sms_file = dir.path().join("sms.jsonl");
    wait_until("the SMS", 20, || async { sms_file.exists() }).await;
    let line: Value = serde_json::from_str(
        std::fs::read_to_string(&sms_file)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(line["to"], "+84912345678");
    let text = line["text"].as_str().unwrap();
    assert!(
        text.starts_with("Tai khoan cua ban tren Cong DVCQG da bi xoa."),
        "{text}"
    );
    assert!(text.contains("tong dai 18001096"), "{text}");
    assert!(text.is_ascii());
    assert!(line["segments"].as_u64().unwrap() <= 2, "{line}");
    assert_eq!(
        account_state(&config, "079203001234").as_deref(),
        Some("locked")
    );

    // The window (5 s here) passes; deleted at or after the deadline.
    let v = watch_until_deleted(&api, "079203001234", 30).await;
    let h = actions(&v);
    for a in [
        "approve",
        "account_locked",
        "sms_accepted",
        "window_over",
        "account_deleted",
    ] {
        assert_eq!(h.iter().filter(|x| *x == a).count(), 1, "{a} once: {h:?}");
    }
    assert!(
        v["request"]["sms_accepted_at"].as_i64().unwrap() + 3000
            <= v["request"]["grace_deadline"].as_i64().unwrap()
    );
    assert_eq!(
        account_state(&config, "079203001234"),
        None,
        "the account is gone"
    );
    wait_until("the final letter", 20, || async {
        outbox_subjects(dir.path())
            .iter()
            .any(|s| s.contains(&an_ref) && s.contains("đã được xóa"))
    })
    .await;
    assert!(outbox_subjects(dir.path())
        .iter()
        .any(|s| s.contains(&an_ref) && s.contains("đã được duyệt")));

    // The hotline stops the second one: cancelled, the account unlocked.
    let long = api.wait_state("040089012345", "pending_review", 30).await;
    let long_ref = long["request"]["reference"].as_str().unwrap().to_owned();
    // The account has no phone: only with a supervisor's confirmation may
    // the SMS go to the phone written in the request.
    let v = api.request("040089012345");
    assert_eq!(v["accounts"][0]["sms_source"], "request");
    let r = api.approve_with_supervisor(&long_ref, "DVC-LONG");
    assert_eq!(r["state"], "grace_period", "{r}");
    wait_until("the account locked", 20, || async {
        account_state(&config, "040089012345").as_deref() == Some("locked")
    })
    .await;
    let found = api.call("GET", "/requests?state=all&q=0355111222", None);
    assert_eq!(
        found["items"][0]["reference"],
        long_ref.as_str(),
        "the hotline finds it by the phone"
    );
    let r = api.call(
        "POST",
        &format!("/requests/{long_ref}/object"),
        Some(json!({ "text": "Chủ tài khoản gọi, không đồng ý." })),
    );
    assert_eq!(r["state"], "cancelled", "{r}");
    wait_until("the account unlocked", 20, || async {
        account_state(&config, "040089012345").as_deref() == Some("active")
    })
    .await;
    wait_until("the cancellation letter", 20, || async {
        outbox_subjects(dir.path())
            .iter()
            .any(|s| s.contains(&long_ref) && s.contains("đã dừng"))
    })
    .await;
    // Past its would-be deadline it is still there.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        account_state(&config, "040089012345").as_deref(),
        Some("active")
    );
    assert_eq!(api.request("040089012345")["request"]["state"], "cancelled");
}

/// A desk on real parts: Dovecot in, Postfix out, OpenLDAP accounts, Kannel
/// SMS with delivery reports back to our API.
struct RealDesk {
    dovecot: Dovecot,
    _postfix: Postfix,
    slapd: Slapd,
    kannel: Kannel,
    api: Api,
    _desk: TestDesk,
    _pg: Option<support::Postgres>,
}

impl RealDesk {
    /// Starts everything; `users` get mailboxes besides `desk@test`;
    /// `black_list` is a Kannel number regex ("" for none).
    async fn start(users: &[&str], grace: u64, black_list: &str, pg: bool) -> RealDesk {
        let mut all = vec!["desk@test"];
        all.extend_from_slice(users);
        let dovecot = Dovecot::start(&all);
        let postfix = Postfix::start(dovecot.lmtp_port);
        let slapd = Slapd::start();
        ldap_accounts(&slapd);
        let kannel = Kannel::start_with_black_list(black_list);
        let pg_server = pg.then(support::Postgres::start);
        let mut desk = TestDesk::embedded("grace-real")
            .imap(&dovecot, postfix.port)
            .ldap(&slapd)
            .kannel(&kannel)
            .grace_seconds(grace)
            .desk("message_id_domain = \"desk.test\"\n");
        if let Some(p) = &pg_server {
            desk = desk.database(&p.fresh_database("grace"));
        }
        let desk = desk.start();
        RealDesk {
            dovecot,
            _postfix: postfix,
            slapd,
            kannel,
            api: Api::of(&desk),
            _desk: desk,
            _pg: pg_server,
        }
    }

    /// Appends An's request to the desk's inbox and waits for it to be
    /// ready for review; returns its reference.
    async fn an_pending(&self) -> String {
        append(
            self.dovecot.imap_port,
            "desk@test",
            &console_message("cccd_with_old_cmnd.eml", "an@test"),
        )
        .await;
        let an = self
            .api
            .wait_state("079203001234", "pending_review", 60)
            .await;
        an["request"]["reference"].as_str().unwrap().to_owned()
    }
}

fn ldap_accounts(slapd: &Slapd) {
    slapd.add(&format!(
        "dn: uid=DVC-AN,{LDAP_BASE}\nobjectClass: inetOrgPerson\nuid: DVC-AN\ncn: Nguyễn Văn An\nsn: An\n\
         employeeNumber: 079203001234\nmobile: +84912345678\nmail: an@test\n\n\
         dn: uid=DVC-VIET,{LDAP_BASE}\nobjectClass: inetOrgPerson\nuid: DVC-VIET\ncn: Bùi Quốc Việt\nsn: Viet\n\
         employeeNumber: 034078005566\nmobile: +84818444555\n"
    ));
}

async fn whole_life_on_real_parts(pg: bool) {
    let desk = RealDesk::start(&["an@test", "viet@test"], 5, "", pg).await;
    let (api, slapd, kannel) = (&desk.api, &desk.slapd, &desk.kannel);
    let imap = desk.dovecot.imap_port;
    append(
        imap,
        "desk@test",
        &console_message("cccd_with_old_cmnd.eml", "an@test"),
    )
    .await;
    append(
        imap,
        "desk@test",
        &demo("2-html-only-request.eml", "citizen@gmail.com", "viet@test"),
    )
    .await;
    let an = api.wait_state("079203001234", "pending_review", 60).await;
    let an_ref = an["request"]["reference"].as_str().unwrap().to_owned();
    // The LDAP account shows on the request, with its phone.
    assert_eq!(
        an["accounts"][0]["account_id"], "DVC-AN",
        "{}",
        an["accounts"]
    );
    assert_eq!(an["accounts"][0]["sms_source"], "account");
    let r = api.call(
        "POST",
        &format!("/requests/{an_ref}/approve"),
        Some(json!({ "account": "DVC-AN" })),
    );
    assert_eq!(r["state"], "grace_period", "{r}");
    // Kannel's SMSC gets the text for the holder's number; LDAP marks the lock.
    wait_until("the SMS at the fake SMSC", 30, || async {
        kannel.delivered().contains("tong dai 18001096")
    })
    .await;
    let delivered = kannel.delivered();
    assert!(delivered.contains("84912345678"), "{delivered}");
    assert!(slapd
        .entry("DVC-AN")
        .unwrap()
        .contains("employeeType: locked"));
    let v = watch_until_deleted(api, "079203001234", 60).await;
    assert!(
        slapd.entry("DVC-AN").is_none(),
        "the account is gone from OpenLDAP"
    );
    // Kannel reported the delivery through our dlr-url.
    let h = actions(&v);
    assert!(
        h.iter().any(|a| a == "sms_at_smsc" || a == "sms_delivered"),
        "{h:?}"
    );
    wait_until("the final letter in an@test", 60, || async {
        folder(imap, "an@test", "INBOX")
            .await
            .iter()
            .any(|(s, _)| s.contains("đã được xóa"))
    })
    .await;

    // The second is stopped through the hotline page's API: kept, unlocked.
    let viet = api.wait_state("034078005566", "pending_review", 30).await;
    let viet_ref = viet["request"]["reference"].as_str().unwrap().to_owned();
    api.call(
        "POST",
        &format!("/requests/{viet_ref}/approve"),
        Some(json!({ "account": "DVC-VIET" })),
    );
    wait_until("the lock in LDAP", 30, || async {
        slapd
            .entry("DVC-VIET")
            .is_some_and(|e| e.contains("employeeType: locked"))
    })
    .await;
    let found = api.call("GET", "/requests?state=all&q=0818444555", None);
    assert_eq!(found["items"][0]["reference"], viet_ref.as_str());
    let r = api.call("POST", &format!("/requests/{viet_ref}/object"), None);
    assert_eq!(r["state"], "cancelled", "{r}");
    wait_until("the unlock in LDAP", 30, || async {
        slapd
            .entry("DVC-VIET")
            .is_some_and(|e| !e.contains("employeeType"))
    })
    .await;
    wait_until("the cancellation letter in viet@test", 60, || async {
        folder(imap, "viet@test", "INBOX")
            .await
            .iter()
            .any(|(s, _)| s.contains("đã dừng"))
    })
    .await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert!(
        slapd.entry("DVC-VIET").is_some(),
        "a cancelled request keeps its account"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_whole_life_on_dovecot_postfix_kannel_and_openldap() {
    whole_life_on_real_parts(false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_whole_life_on_postgres() {
    whole_life_on_real_parts(true).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_daemon_killed_during_the_window_deletes_once_after_it() {
    let dir = TempDir::new("grace-kill");
    let web = support::free_port();
    let db = format!("sqlite://{}/desk.db", dir.path().display());
    let config = embedded_config(dir.path(), web, &db, 4);
    let spool = huytk::mailbox::maildir::Spool::open(&dir.path().join("spool")).unwrap();
    spool
        .deliver(
            &console_message("cccd_with_old_cmnd.eml", "an@test"),
            "1-an",
        )
        .unwrap();
    let mut daemon = start_daemon(&config, &dir.path().join("daemon.log"));
    support::wait_for_port(web, "the console");
    let api = Api::new(&config, web);
    let an = api.wait_state("079203001234", "pending_review", 60).await;
    let reference = an["request"]["reference"].as_str().unwrap().to_owned();
    api.call(
        "POST",
        &format!("/requests/{reference}/approve"),
        Some(json!({ "account": "DVC-AN" })),
    );
    let deadline = window_deadline(&api, "079203001234", 20).await;
    // SIGKILL inside the window; down until well past the deadline.
    daemon.0.kill().unwrap();
    daemon.0.wait().unwrap();
    drop(daemon);
    let wait = deadline - huytk::domain::time::now_ms() + 2000;
    tokio::time::sleep(Duration::from_millis(wait.max(0) as u64)).await;
    assert_eq!(
        account_state(&config, "079203001234").as_deref(),
        Some("locked"),
        "nothing deletes while the daemon is down"
    );
    let _daemon: Daemon = start_daemon(&config, &dir.path().join("daemon2.log"));
    support::wait_for_port(web, "the console");
    let v = api.wait_state("079203001234", "deleted", 30).await;
    let h = actions(&v);
    assert_eq!(
        h.iter().filter(|a| *a == "account_deleted").count(),
        1,
        "{h:?}"
    );
    assert_eq!(h.iter().filter(|a| *a == "window_over").count(), 1, "{h:?}");
    assert!(at_of(&v, "window_over") >= deadline);
    wait_until("one final letter", 20, || async {
        outbox_subjects(dir.path())
            .iter()
            .filter(|s| s.contains("đã được xóa"))
            .count()
            == 1
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        outbox_subjects(dir.path())
            .iter()
            .filter(|s| s.contains("đã được xóa"))
            .count(),
        1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn outages_of_the_sms_gateway_and_the_account_store_delay_never_skip() {
    let desk = RealDesk::start(&["an@test"], 6, "", false).await;
    let reference = desk.an_pending().await;
    // The rest of the desk stays up until the end of the test.
    let RealDesk {
        api,
        mut slapd,
        mut kannel,
        ..
    } = desk;

    // The SMS gateway is down at approval: locked, but no window yet.
    kannel.stop();
    api.call(
        "POST",
        &format!("/requests/{reference}/approve"),
        Some(json!({ "account": "DVC-AN" })),
    );
    wait_until("the SMS retried", 30, || async {
        api.request("079203001234")["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|j| j["kind"] == "sms" && j["attempts"].as_i64().unwrap() > 0)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let v = api.request("079203001234");
    assert_eq!(v["request"]["state"], "grace_period");
    assert!(
        v["request"]["grace_deadline"].is_null(),
        "the window started without an SMS"
    );
    assert!(slapd.entry("DVC-AN").is_some());
    let back = huytk::domain::time::now_ms();
    kannel.restart();
    wait_until("the SMS at the fake SMSC", 60, || async {
        kannel.delivered().contains("tong dai 18001096")
    })
    .await;
    let deadline = window_deadline(&api, "079203001234", 30).await;
    assert!(
        deadline >= back + 3000,
        "the window counts from the accepted SMS"
    );

    // The directory is down at the deadline: retried, visible, then done.
    slapd.stop();
    let wait = deadline - huytk::domain::time::now_ms() + 3000;
    tokio::time::sleep(Duration::from_millis(wait.max(0) as u64)).await;
    let v = api.request("079203001234");
    assert_eq!(v["request"]["state"], "deleting", "{}", v["request"]);
    let job = v["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["kind"] == "account_delete")
        .unwrap()
        .clone();
    assert!(job["attempts"].as_i64().unwrap() >= 1, "{job}");
    assert!(
        !job["last_error"].as_str().unwrap_or("").is_empty(),
        "{job}"
    );
    slapd.restart();
    let v = api.wait_state("079203001234", "deleted", 60).await;
    assert!(slapd.entry("DVC-AN").is_none());
    assert_eq!(
        actions(&v)
            .iter()
            .filter(|a| *a == "account_deleted")
            .count(),
        1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_sms_sends_the_request_back_and_never_starts_the_window() {
    // Kannel refuses this holder's number (its black list).
    let desk = RealDesk::start(&["an@test"], 2, "^\\+8491", false).await;
    let reference = desk.an_pending().await;
    let (api, slapd) = (&desk.api, &desk.slapd);
    let web = api.port;
    api.call(
        "POST",
        &format!("/requests/{reference}/approve"),
        Some(json!({ "account": "DVC-AN" })),
    );
    let v = back_to_operator(api, "079203001234").await;
    assert_eq!(v["request"]["state"], "pending_review");
    assert!(v["request"]["grace_deadline"].is_null());
    assert!(actions(&v).contains(&"sms_failed".to_owned()));
    let sms = v["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["kind"] == "sms")
        .unwrap()
        .clone();
    assert_eq!(sms["state"], "failed", "{sms}");
    wait_until("the account unlocked", 30, || async {
        slapd
            .entry("DVC-AN")
            .is_some_and(|e| !e.contains("employeeType"))
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        slapd.entry("DVC-AN").is_some(),
        "never deleted without the holder told"
    );

    // A delivery report of failure does the same, once the gateway took it;
    // a report without the shared secret is refused.
    let r = http(
        web,
        "GET",
        "/api/v1/sms/dlr?id=1&key=wrong&status=16",
        &[],
        b"",
    );
    assert_eq!(r.status, 403);
}

/// The daemon's own timer, on a clock the test holds: the 3-day window of
/// a real approval passes on the desk's clock, the request is still in its
/// grace period a second before the deadline, and at the deadline the
/// timer moves it on and the account is deleted, stamped at that instant.
#[tokio::test(flavor = "multi_thread")]
async fn the_timer_fires_at_the_deadline_never_a_millisecond_before() {
    const WINDOW_MS: i64 = 3 * 86_400_000;
    // A day from now, on a whole second: the desk lives there until moved.
    let t0 = (huytk::domain::time::now_ms() / 1000 + 86_400) * 1000;
    let clock = FakeClock::at(t0);
    let desk = TestDesk::embedded("deadline-timer")
        .accounts(
            "[[account]]\naccount_id = \"DVC-AN\"\nid_number = \"079203001234\"\n\
             full_name = \"Nguyễn Văn An\"\nphone = \"+84912345678\"\n",
        )
        .grace_seconds(3 * 86_400)
        .clock(&clock)
        .start();
    desk.deliver(&Mail::request("an@test", "079203001234", "Nguyễn Văn An", "0912345678").bytes());
    let v = desk.settle("079203001234", 1).await.remove(0);
    let reference = v["request"]["reference"].as_str().unwrap().to_owned();
    let r = desk.approve(&reference, "DVC-AN");
    assert_eq!(r.status, 200, "{}", r.text());
    // The gateway (the file outbox) takes the SMS at once: the window
    // starts at the desk's now.
    let deadline = wait_for("the window to start", Duration::from_secs(30), || async {
        let v = desk.request(&reference);
        v["request"]["grace_deadline"]
            .as_i64()
            .ok_or_else(|| v["request"].to_string())
    })
    .await;
    assert_eq!(
        deadline,
        t0 + WINDOW_MS,
        "the window is 3 days from the SMS"
    );

    // A second before the deadline: the timer (twice a second) passes it
    // over, however many times it looks.
    clock.set(deadline - 1000);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let v = desk.request(&reference);
    assert_eq!(v["request"]["state"], "grace_period", "{}", v["history"]);
    assert!(
        !actions(&v).contains(&"window_over".to_owned()),
        "{}",
        v["history"]
    );
    assert_eq!(
        account_state(&desk.config, "079203001234").as_deref(),
        Some("locked")
    );

    // At the deadline: moved on by the daemon's timer, stamped at the
    // deadline, and the account deleted.
    clock.set(deadline);
    let v = wait_for(
        "the deletion at the deadline",
        Duration::from_secs(30),
        || async {
            let v = desk.request(&reference);
            if v["request"]["state"] == "deleted" {
                Ok(v)
            } else {
                Err(v["history"].to_string())
            }
        },
    )
    .await;
    assert_eq!(at_of(&v, "window_over"), deadline, "{}", v["history"]);
    assert!(at_of(&v, "account_deleted") >= deadline, "{}", v["history"]);
    assert_eq!(account_state(&desk.config, "079203001234"), None);
}

/// The query under the timer: a request in its window is due from its
/// deadline on, to the millisecond, and its window starts once.
#[tokio::test]
async fn deadlines_passed_names_a_request_from_its_deadline_to_the_millisecond() {
    let dir = TempDir::new("deadline");
    let store = huytk::store::Store::connect(&format!("sqlite://{}/d.db", dir.path().display()))
        .await
        .unwrap();
    let deadline = 1_800_000_000_000i64;
    let mut tx = store.begin().await.unwrap();
    let id = huytk::store::insert_request(
        &mut tx,
        &huytk::store::NewRequest {
            email: "a@test",
            received_at: 0,
            due_date: "2027-01-01",
            reference_day: "270101",
            thread_token: &huytk::domain::thread::ThreadToken::from_bytes([9; 10]),
            linked_to: None,
        },
    )
    .await
    .unwrap()
    .0;
    sqlx::query("UPDATE requests SET state = 'grace_period' WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await
        .unwrap();
    assert!(
        huytk::store::start_window(&mut tx, id, deadline - 1000, deadline)
            .await
            .unwrap()
    );
    // The window starts once.
    assert!(
        !huytk::store::start_window(&mut tx, id, deadline, deadline + 5)
            .await
            .unwrap()
    );
    huytk::store::commit(tx).await.unwrap();
    for t in deadline - 1000..deadline + 1000 {
        let due = store.deadlines_passed(t).await.unwrap();
        assert_eq!(!due.is_empty(), t >= deadline, "at {}", t - deadline);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn closed_requests_are_purged_and_supervisors_get_the_digest() {
    let dir = TempDir::new("grace-purge");
    let web = support::free_port();
    let db = format!("sqlite://{}/desk.db", dir.path().display());
    let config = embedded_config(dir.path(), web, &db, 60);
    let mut text = std::fs::read_to_string(&config).unwrap();
    text = text.replace(
        "grace_seconds = 60\n",
        "grace_seconds = 60\nretention_days = 0\ndigest_to = [\"sup@test\"]\n",
    );
    std::fs::write(&config, text).unwrap();
    let spool = huytk::mailbox::maildir::Spool::open(&dir.path().join("spool")).unwrap();
    spool
        .deliver(
            &console_message("cccd_with_old_cmnd.eml", "an@test"),
            "1-an",
        )
        .unwrap();
    let corpus = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    spool
        .deliver(
            &std::fs::read(corpus.join("03_windows1258_body.eml")).unwrap(),
            "2-long",
        )
        .unwrap();
    let daemon = start_daemon(&config, &dir.path().join("daemon.log"));
    support::wait_for_port(web, "the console");
    let api = Api::new(&config, web);
    let an = api.wait_state("079203001234", "pending_review", 60).await;
    api.wait_state("040089012345", "pending_review", 60).await;
    let reference = an["request"]["reference"].as_str().unwrap().to_owned();
    api.call(
        "POST",
        &format!("/requests/{reference}/approve"),
        Some(json!({ "account": "DVC-AN" })),
    );
    // The holder calls and confirms: deleted at once, not after 60 s.
    wait_until("the window", 20, || async {
        api.request("079203001234")["request"]["grace_deadline"].is_i64()
    })
    .await;
    let r = api.call(
        "POST",
        &format!("/requests/{reference}/confirm-delete"),
        None,
    );
    assert_eq!(r["state"], "deleting", "{r}");
    let v = api.wait_state("079203001234", "deleted", 20).await;
    let photo = v["photos"][0]["sha256"].as_str().unwrap().to_owned();
    drop(daemon);

    // Retention 0 days: the purge drops its mail and photos, keeps hashes.
    let out = huytk_cli(&config, &["purge"], "");
    assert!(out.contains("1 closed requests purged"), "{out}");
    let out = huytk_cli(&config, &["purge"], "");
    assert!(out.contains("0 closed requests purged"), "{out}");
    let _daemon = start_daemon(&config, &dir.path().join("daemon2.log"));
    support::wait_for_port(web, "the console");
    let v = api.request("079203001234");
    assert!(
        v["thread"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["purged"] == true),
        "{}",
        v["thread"]
    );
    assert_eq!(v["photos"][0]["sha256"], photo.as_str(), "the hashes stay");
    assert!(actions(&v).contains(&"purged".to_owned()));
    let auth = format!("Bearer {}", api.token);
    let r = http(
        web,
        "GET",
        &format!("/api/v1/requests/{reference}/photos/{photo}"),
        &[("Authorization", &auth)],
        b"",
    );
    assert_eq!(r.status, 404, "a purged photo is gone");
    // The open request is untouched.
    let long = api.request("040089012345");
    assert!(long["thread"]
        .as_array()
        .unwrap()
        .iter()
        .all(|m| m["purged"] == false));

    // The digest lists the overdue and the soon-due open requests, once a day.
    let store = huytk::store::Store::connect(&db).await.unwrap();
    sqlx::query("UPDATE requests SET due_date = '2026-11-20' WHERE id_number = '040089012345'")
        .execute(store.pool())
        .await
        .unwrap();
    let out = huytk_cli(&config, &["digest", "--day", "2026-11-23"], "");
    assert!(out.contains("sent to sup@test"), "{out}");
    let out = huytk_cli(&config, &["digest", "--day", "2026-11-23"], "");
    assert!(out.contains("was sent before"), "{out}");
    // The daemon's own timer may have sent today's digest too (after 07:00
    // in Vietnam): the one asked for is found by its day, not its shape.
    let subjects = outbox_subjects(dir.path());
    let digest = subjects
        .iter()
        .find(|s| s.contains("(2026-11-23)"))
        .unwrap_or_else(|| panic!("{subjects:?}"));
    assert!(digest.contains("1 quá hạn"), "{digest}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_account_store_of_sql_statements_on_postgres() {
    let pg = support::Postgres::start();
    let portal = pg.fresh_database("portal");
    let desk_db = pg.fresh_database("desk");
    let store = huytk::store::Store::connect(&desk_db).await.unwrap();
    drop(store);
    let portal_pool = sqlx::any::AnyPoolOptions::new()
        .connect(&portal)
        .await
        .unwrap();
    for sql in [
        "CREATE TABLE users (uid TEXT PRIMARY KEY, cccd TEXT NOT NULL, ten TEXT NOT NULL, sdt TEXT, locked BOOLEAN NOT NULL DEFAULT FALSE)",
        "INSERT INTO users VALUES ('P-1', '079203001234', 'Nguyễn Văn An', '+84912345678', FALSE)",
        "INSERT INTO users VALUES ('P-OLD', '025123456', 'Nguyen Van An', NULL, FALSE)",
    ] {
        sqlx::query(sql).execute(&portal_pool).await.unwrap();
    }
    let desk = TestDesk::embedded("grace-sql")
        .database(&desk_db)
        .grace_seconds(2)
        .config(&format!(
            "[accounts]\nkind = \"sql\"\nurl = \"{portal}\"\n\
             find_sql = \"SELECT uid AS account_id, cccd AS id_number, ten AS full_name, NULL AS birth_date, sdt AS phone, NULL AS email, 0 AS vneid_linked, CASE WHEN locked THEN 'locked' ELSE 'active' END AS state FROM users WHERE cccd = $1\"\n\
             lock_sql = \"UPDATE users SET locked = TRUE WHERE uid = $1\"\n\
             unlock_sql = \"UPDATE users SET locked = FALSE WHERE uid = $1\"\n\
             delete_sql = \"DELETE FROM users WHERE uid = $1\"\n"
        ));
    let (desk, api, an) = start_with_an(desk).await;
    let dir = &desk.dir;
    // Both the CCCD account and the old CMND one (from the card's QR).
    let ids: Vec<&str> = an["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["account_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["P-1", "P-OLD"]);
    let reference = an["request"]["reference"].as_str().unwrap().to_owned();
    let r = api.approve_with_supervisor(&reference, "P-OLD");
    assert_eq!(r["state"], "grace_period", "{r}");
    let locked = || async {
        sqlx::query("SELECT locked FROM users WHERE uid = 'P-OLD'")
            .fetch_optional(&portal_pool)
            .await
            .unwrap()
            .map(|r| sqlx::Row::try_get::<bool, _>(&r, "locked").unwrap())
    };
    wait_until("the lock", 20, || async { locked().await == Some(true) }).await;
    // P-OLD has no phone: the SMS goes to the request's.
    let sms_file = dir.path().join("sms.jsonl");
    wait_until("the SMS", 20, || async { sms_file.exists() }).await;
    assert!(std::fs::read_to_string(&sms_file)
        .unwrap()
        .contains("+84912345678"));
    watch_until_deleted(&api, "079203001234", 30).await;
    assert_eq!(locked().await, None, "the row is deleted");
    let left: i64 = sqlx::Row::try_get(
        &sqlx::query("SELECT COUNT(*) AS n FROM users")
            .fetch_one(&portal_pool)
            .await
            .unwrap(),
        "n",
    )
    .unwrap();
    assert_eq!(left, 1, "only the chosen account went");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_account_store_behind_the_portal_rest_api() {
    let api_server = support::JsonServer::start(&json!({ "accounts": [
        { "id": "R-1", "id_number": "079203001234", "full_name": "Nguyễn Văn An", "phone": "+84912345678", "state": "active", "vneid_linked": false },
        { "id": "R-2", "id_number": "079203001234", "full_name": "Nguyễn Văn An", "state": "active" },
        { "id": "R-9", "id_number": "001099000001", "full_name": "Người khác", "state": "active" }
    ]}));
    let desk = TestDesk::embedded("grace-rest")
        .grace_seconds(2)
        .config(&format!(
        "[accounts]\nkind = \"rest\"\nurl = \"http://127.0.0.1:{}\"\ntoken = \"portal-token\"\n",
        api_server.port
    ));
    let (_desk, api, an) = start_with_an(desk).await;
    let ids: Vec<&str> = an["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["account_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["R-1", "R-2"]);
    let reference = an["request"]["reference"].as_str().unwrap().to_owned();
    api.call(
        "POST",
        &format!("/requests/{reference}/approve"),
        Some(json!({ "account": "R-1" })),
    );
    wait_until("the lock through the API", 20, || async {
        api_server.get("/accounts/R-1")["state"] == "locked"
    })
    .await;
    watch_until_deleted(&api, "079203001234", 30).await;
    let left = api_server.get("/accounts?id_number=079203001234");
    let left: Vec<&str> = left
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(left, ["R-2"], "only the approved account is deleted");
    assert_eq!(api_server.get("/accounts/R-2")["state"], "active");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_hotline_page_stops_a_deletion_in_chromium() {
    use fantoccini::Locator;
    let (desk, api, an) = start_with_an(embedded_desk("grace-hotline", 600)).await;
    let (config, web) = (desk.config.clone(), desk.web);
    let reference = an["request"]["reference"].as_str().unwrap().to_owned();
    api.call(
        "POST",
        &format!("/requests/{reference}/approve"),
        Some(json!({ "account": "DVC-AN" })),
    );
    wait_until("the window", 20, || async {
        api.request("079203001234")["request"]["grace_deadline"].is_i64()
    })
    .await;

    let driver = support::ChromeDriver::start();
    let b = driver.browser().await;
    support::browser_login(&b, &format!("http://127.0.0.1:{web}"), "lan", PASSWORD).await;
    // The holder calls from the phone the SMS went to.
    b.goto(&format!("http://127.0.0.1:{web}/hotline"))
        .await
        .unwrap();
    let q = b.find(Locator::Css("#hotline-q")).await.unwrap();
    q.send_keys("0912 345 678").await.unwrap();
    b.find(Locator::Css("#hotline-search"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let row = b
        .wait()
        .for_element(Locator::Css(&format!("tr[data-ref='{reference}']")))
        .await
        .unwrap();
    assert!(row.text().await.unwrap().contains("+84912345678"));
    let png = b.screenshot().await.unwrap();
    std::fs::write(support::artifacts("console").join("hotline.png"), png).unwrap();
    row.find(Locator::Css("button.object"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    support::accept_confirmation(&b).await;
    let flash = b.wait().for_element(Locator::Css("#flash")).await.unwrap();
    assert!(flash.text().await.unwrap().contains(&reference));
    let v = api.request("079203001234");
    assert_eq!(v["request"]["state"], "cancelled");
    assert!(actions(&v).contains(&"hotline_objected".to_owned()));
    wait_until("the account unlocked", 20, || async {
        account_state(&config, "079203001234").as_deref() == Some("active")
    })
    .await;
    b.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_json_sms_gateway_posts_each_sms() {
    // json-server stands for a generic JSON-over-HTTP SMS gateway: every
    // POST is stored and answered 201, which the desk counts as accepted.
    let gateway = support::JsonServer::start(&json!({ "messages": [] }));
    let desk = embedded_desk("grace-json-sms", 600).sms(&format!(
        "kind = \"json\"\nurl = \"http://127.0.0.1:{}/messages\"\ntoken = \"gw-token\"\nfrom = \"DVCQG\"\n",
        gateway.port
    ));
    let (_desk, api, an) = start_with_an(desk).await;
    let reference = an["request"]["reference"].as_str().unwrap().to_owned();
    api.call(
        "POST",
        &format!("/requests/{reference}/approve"),
        Some(json!({ "account": "DVC-AN" })),
    );
    wait_until("the SMS at the gateway", 20, || async {
        !gateway.get("/messages").as_array().unwrap().is_empty()
    })
    .await;
    let sent = gateway.get("/messages");
    assert_eq!(sent.as_array().unwrap().len(), 1);
    assert_eq!(sent[0]["to"], "+84912345678");
    assert_eq!(sent[0]["from"], "DVCQG");
    assert!(sent[0]["text"]
        .as_str()
        .unwrap()
        .contains("tong dai 18001096"));
    wait_until("the window", 20, || async {
        api.request("079203001234")["request"]["grace_deadline"].is_i64()
    })
    .await;
}

/// An approval asks the directory for the request's accounts before its
/// transaction opens. While OpenLDAP hangs (SIGSTOP: it takes connections
/// and never answers) the approval waits out the directory's timeout, and
/// the desk's other writers go on meanwhile instead of queueing behind a
/// write lock held across the call. Fails when the lookup moves inside the
/// transaction: the note then lands only after the approval gave up.
#[tokio::test(flavor = "multi_thread")]
async fn an_approval_waiting_on_a_hung_directory_holds_back_no_other_writer() {
    let desk = RealDesk::start(&["an@test"], 60, "", false).await;
    let reference = desk.an_pending().await;
    let (port, token) = (desk.api.port, desk.api.token.clone());
    let post = move |path: String, body: Value| {
        let auth = format!("Bearer {token}");
        let headers = [
            ("Authorization", auth.as_str()),
            ("Content-Type", "application/json"),
        ];
        let r = http(
            port,
            "POST",
            &format!("/api/v1{path}"),
            &headers,
            body.to_string().as_bytes(),
        );
        (r.status, r.text(), Instant::now())
    };
    desk.slapd.pause();
    let approve = {
        let post = post.clone();
        let path = format!("/requests/{reference}/approve");
        std::thread::spawn(move || post(path, json!({ "account": "DVC-AN" })))
    };
    // The approval is waiting on the directory now.
    std::thread::sleep(Duration::from_millis(500));
    let note = post(
        format!("/requests/{reference}/note"),
        json!({ "text": "Đã gọi điện cho công dân" }),
    );
    let approved = approve.join().unwrap();
    desk.slapd.resume();
    assert!(note.0 < 300, "the note: {} {}", note.0, note.1);
    assert!(
        approved.0 == 503,
        "the approval did not wait on the hung directory: {} {}",
        approved.0,
        approved.1
    );
    assert!(
        note.2 < approved.2,
        "the note waited for the approval's call to the directory to end"
    );
    // With the directory back, the approval goes through.
    let v = desk.api.request("079203001234");
    let version = v["request"]["version"].clone();
    let r = desk.api.call(
        "POST",
        &format!("/requests/{reference}/approve"),
        Some(json!({ "account": "DVC-AN", "version": version })),
    );
    assert_eq!(r["result"]["state"], "grace_period", "{r}");
}
