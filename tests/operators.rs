//! Operator management is one service (issue 14): a change made with
//! `huytk operator …` is in the audit log under `cli:<local user>`, like a
//! change made in the console or the API under the admin's login, and the
//! same rules hold whichever way a change comes (the last enabled admin
//! stays, nobody disables themselves, the password rules, admins only).

mod support;

use serde_json::{json, Value};
use std::process::Command;
use support::desk::{TestDesk, OPERATOR_PASSWORD};
use support::{huytk_cli, huytk_run};

/// Runs `huytk` expecting it to fail; returns its standard error.
fn huytk_refused(desk: &TestDesk, args: &[&str], stdin: &str) -> String {
    let out = huytk_run(&desk.config, args, stdin);
    assert!(
        !out.status.success(),
        "huytk {args:?} should have been refused: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The name the audit log gives whoever runs the CLI here.
fn cli_actor() -> String {
    let out = Command::new("id").arg("-un").output().unwrap();
    format!("cli:{}", String::from_utf8_lossy(&out.stdout).trim())
}

/// `(action, detail)` of every audit line by `actor`, oldest first.
fn audited(desk: &TestDesk, admin: &str, actor: &str) -> Vec<(String, String)> {
    let r = desk.api_as(
        admin,
        "GET",
        &format!("/audit?actor={actor}&limit=500"),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let mut lines: Vec<(String, String)> = r
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|l: &Value| {
            (
                l["action"].as_str().unwrap_or_default().to_owned(),
                l["detail"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    lines.reverse();
    lines
}

fn add_admin(desk: &TestDesk, login: &str) -> String {
    huytk_cli(
        &desk.config,
        &[
            "operator",
            "add",
            login,
            "--role",
            "admin",
            "--password-stdin",
        ],
        &format!("{OPERATOR_PASSWORD}\n"),
    );
    huytk_cli(&desk.config, &["operator", "token", login], "")
        .trim()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn cli_operator_changes_are_audited_as_the_local_user() {
    let desk = TestDesk::embedded("operators-cli").start();
    let admin = add_admin(&desk, "quantri");
    let cli = |args: &[&str], stdin: &str| huytk_cli(&desk.config, args, stdin);
    cli(&["operator", "disable", "lan"], "");
    cli(&["operator", "enable", "lan"], "");
    cli(
        &["operator", "passwd", "lan", "--password-stdin"],
        "mot-mat-khau-moi-1\n",
    );
    let out = cli(&["operator", "role", "lan", "supervisor"], "");
    assert!(out.contains("lan is now supervisor"), "{out}");
    let list = cli(&["operator", "list"], "");
    assert!(
        list.lines()
            .any(|l| l.starts_with("lan ") && l.contains("supervisor")),
        "{list}"
    );

    let lines = audited(&desk, &admin, &cli_actor());
    for (action, detail) in [
        ("operator_add", "lan"),
        ("operator_add", "quantri"),
        ("operator_disable", "lan"),
        ("operator_enable", "lan"),
        ("operator_reset", "lan"),
        ("operator_role", "lan operator→supervisor"),
    ] {
        assert!(
            lines.iter().any(|(a, d)| a == action && d == detail),
            "no {action} {detail} by {} in {lines:?}",
            cli_actor()
        );
    }
    // Each token the CLI made is there, named by its id, never itself.
    let tokens: Vec<&(String, String)> =
        lines.iter().filter(|(a, _)| a == "token_create").collect();
    assert_eq!(tokens.len(), 3, "{lines:?}");
    assert!(
        tokens.iter().all(|(_, d)| !d.contains("htk_")),
        "{tokens:?}"
    );
    // The chain holds with them.
    let verified = cli(&["audit", "verify"], "");
    assert!(verified.contains("audit log intact"), "{verified}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_rules_hold_from_the_cli_and_the_api() {
    let desk = TestDesk::embedded("operators-rules").start();
    let admin = add_admin(&desk, "quantri");
    let manage = |token: &str, body: Value| desk.api_as(token, "POST", "/operators", Some(body));

    // The last enabled admin stays, from the CLI too.
    let e = huytk_refused(&desk, &["operator", "disable", "quantri"], "");
    assert!(e.contains("last enabled admin"), "{e}");
    let e = huytk_refused(&desk, &["operator", "role", "quantri", "operator"], "");
    assert!(e.contains("last enabled admin"), "{e}");
    // The password rules, from the CLI.
    let e = huytk_refused(
        &desk,
        &["operator", "passwd", "lan", "--password-stdin"],
        "ngan\n",
    );
    assert!(e.contains("ít nhất 10 ký tự"), "{e}");
    let e = huytk_refused(
        &desk,
        &["operator", "add", "lan", "--password-stdin"],
        "mot-mat-khau-dai-1\n",
    );
    assert!(e.contains("lan đã có"), "{e}");

    // Through the API: nobody disables themselves; a supervisor manages nobody.
    let r = manage(&admin, json!({ "action": "disable", "login": "quantri" }));
    assert_eq!(r.status, 409, "{}", r.text());
    assert_eq!(r.json()["error"], "own_account");
    let r = manage(
        &desk.supervisor,
        json!({ "action": "role", "login": "lan", "role": "admin" }),
    );
    assert_eq!(r.status, 403, "{}", r.text());

    // An admin's role change through the API, audited under their login.
    let r = manage(
        &admin,
        json!({ "action": "role", "login": "giamsat", "role": "admin" }),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let lines = audited(&desk, &admin, "quantri");
    assert!(
        lines
            .iter()
            .any(|(a, d)| a == "operator_role" && d == "giamsat supervisor→admin"),
        "{lines:?}"
    );
    // With a second admin, the first may now be demoted, from the CLI.
    huytk_cli(
        &desk.config,
        &["operator", "role", "quantri", "supervisor"],
        "",
    );
    let r = desk.api_as(&admin, "GET", "/operators", None);
    assert_eq!(r.status, 403, "quantri is a supervisor now: {}", r.text());
    // A disabled operator gets no token.
    huytk_cli(&desk.config, &["operator", "disable", "lan"], "");
    let e = huytk_refused(&desk, &["operator", "token", "lan"], "");
    assert!(e.contains("lan is disabled"), "{e}");
}
