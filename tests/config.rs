//! The configuration as the binary reads it: the committed reference and
//! example are what the declaration prints; every problem is listed at
//! once and stops `serve` and `doctor`; the environment wins over the file;
//! a secret read from a file is used (an IMAP login on a real Dovecot) and
//! never appears in the daemon's log.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use support::{append, demo, folder, wait_until, Daemon, Dovecot, TempDir, PASSWORD};

fn manifest(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(file)
}

/// `huytk ARGS` in `dir` (so a valid default configuration would write
/// only there), with these variables added.
fn huytk(dir: &Path, config: Option<&Path>, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_huytk"));
    c.current_dir(dir).stdin(Stdio::null());
    if let Some(config) = config {
        c.arg("--config").arg(config);
    }
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn committed_reference_and_example_are_what_the_declaration_prints() {
    let dir = TempDir::new("config-reference");
    for (command, file) in [
        ("reference", "docs/configuration.md"),
        ("example", "config.example.toml"),
    ] {
        let out = huytk(dir.path(), None, &["config", command], &[]);
        assert!(out.status.success(), "{}", text(&out));
        let printed = String::from_utf8(out.stdout).unwrap();
        let committed = std::fs::read_to_string(manifest(file)).unwrap();
        assert!(
            printed == committed,
            "{file} is not what `huytk config {command}` prints: run \
             `huytk config {command} > {file}`"
        );
    }
    let reference = std::fs::read_to_string(manifest("docs/configuration.md")).unwrap();
    for must in [
        "| `kind` | one of: maildir, imap | `\"maildir\"` | `HUYTK_MAILBOX__KIND` |",
        "`password` or `password_file`",
        "`HUYTK_MAIL_OUT__PASSWORD` or `HUYTK_MAIL_OUT__PASSWORD_FILE`",
        "## `[sender_auth]`",
    ] {
        assert!(reference.contains(must), "reference lacks {must}");
    }
    let readme = std::fs::read_to_string(manifest("README.md")).unwrap();
    assert!(readme.contains("docs/configuration.md"));
}

#[test]
fn an_unknown_kind_stops_serve_and_doctor_with_its_path_and_the_choices() {
    let dir = TempDir::new("config-kind");
    let config = dir.path().join("huytk.toml");
    std::fs::write(&config, "[mailbox]\nkind = \"pop3\"\n").unwrap();
    for args in [&["serve", "--once"][..], &["doctor"]] {
        let out = huytk(dir.path(), Some(&config), args, &[]);
        let t = text(&out);
        assert!(!out.status.success(), "{args:?} started: {t}");
        assert!(
            t.contains("mailbox.kind: unknown choice \"pop3\"; valid choices: maildir, imap"),
            "{args:?}: {t}"
        );
    }
    // Nothing was created: the desk refused before touching any data.
    assert!(!dir.path().join("huytk-data").exists());
}

#[test]
fn every_problem_of_a_file_is_reported_at_once() {
    let dir = TempDir::new("config-problems");
    let config = dir.path().join("huytk.toml");
    std::fs::write(
        &config,
        "[sms]\nkind = \"smpp\"\n[web]\nmax_connections = \"many\"\n[desk]\nservice_days = 3\n\
         [mail_out]\npassword_file = \"/nonexistent/huytk-smtp-password\"\n",
    )
    .unwrap();
    for args in [&["serve"][..], &["doctor"], &["config", "check"]] {
        let out = huytk(
            dir.path(),
            Some(&config),
            args,
            &[("HUYTK_MAILBOX__POLL_SECONDS", "soon")],
        );
        let t = text(&out);
        assert!(!out.status.success(), "{args:?} started: {t}");
        for must in [
            "5 configuration problems",
            "desk.service_days: unknown key",
            "mail_out.password_file: reading /nonexistent/huytk-smtp-password",
            "web.max_connections: expected an integer, found string",
            "sms.kind: unknown choice \"smpp\"; valid choices: file, kannel, json",
            "HUYTK_MAILBOX__POLL_SECONDS (mailbox.poll_seconds): \"soon\" is not an integer",
        ] {
            assert!(t.contains(must), "{args:?} lacks {must:?}: {t}");
        }
    }
}

#[test]
fn the_environment_wins_over_the_file() {
    let dir = TempDir::new("config-env");
    let config = dir.path().join("huytk.toml");
    std::fs::write(
        &config,
        "[mailbox]\npoll_seconds = 30\n[desk]\nhotline = \"18001096\"\nfour_eyes = false\n",
    )
    .unwrap();
    let out = huytk(
        dir.path(),
        Some(&config),
        &["config", "check"],
        &[
            ("HUYTK_MAILBOX__POLL_SECONDS", "7"),
            ("HUYTK_DESK__HOTLINE", "19009999"),
            ("HUYTK_DESK__FOUR_EYES", "true"),
            ("HUYTK_SMS__KIND", "kannel"),
        ],
    );
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    for must in [
        "poll_seconds: 7,",
        "hotline: \"19009999\",",
        "four_eyes: true,",
        "kind: Kannel,",
    ] {
        assert!(t.contains(must), "lacks {must:?}: {t}");
    }
    // Without the variables, the file's values.
    let out = huytk(dir.path(), Some(&config), &["config", "check"], &[]);
    assert!(text(&out).contains("poll_seconds: 30,"), "{}", text(&out));
}

#[tokio::test]
async fn a_secret_from_a_file_is_used_and_never_reaches_the_log() {
    let dovecot = Dovecot::start(&["desk@test"]);
    let dir = TempDir::new("config-from-file");
    let d = dir.path();
    let password_file = d.join("imap-password");
    std::fs::write(&password_file, format!("{PASSWORD}\n")).unwrap();
    let dlr_file = d.join("dlr-secret");
    std::fs::write(&dlr_file, "dlr-7Qx2-from-a-file").unwrap();
    let config = d.join("huytk.toml");
    std::fs::write(
        &config,
        format!(
            "[database]\nurl = \"sqlite://{d}/desk.db\"\n\
             [desk]\naddress = \"desk@test\"\nmessage_id_domain = \"desk.test\"\n\
             [mailbox]\nkind = \"imap\"\nhost = \"127.0.0.1\"\nport = {port}\nsecurity = \"plain\"\n\
             username = \"desk@test\"\npassword_file = \"{pw}\"\npoll_seconds = 1\n\
             [mail_out]\npath = \"{d}/outbox\"\n\
             [sms]\npath = \"{d}/sms.jsonl\"\n\
             [templates]\ndir = \"{templates}\"\n[web]\nbind = \"\"\n",
            d = d.display(),
            port = dovecot.imap_port,
            pw = password_file.display(),
            templates = manifest("templates").display(),
        ),
    )
    .unwrap();
    let log = d.join("huytk.log");
    let daemon = Daemon(
        Command::new(env!("CARGO_BIN_EXE_huytk"))
            .current_dir(d)
            .arg("--config")
            .arg(&config)
            .arg("serve")
            .env("RUST_LOG", "info,huytk=debug")
            .env("HUYTK_SMS__DLR_SECRET_FILE", &dlr_file)
            .env("HUYTK_ACCOUNTS__TOKEN", "tok-9Rk4-from-the-environment")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let imap = dovecot.imap_port;
    append(
        imap,
        "desk@test",
        &demo("1-complete-request.eml", "citizen@gmail.com", "an@test"),
    )
    .await;
    // The desk logged in with the file's password: the request is handled
    // and moved to the archive.
    wait_until("the request to reach the archive", 60, || async {
        folder(imap, "desk@test", "Archive").await.len() == 1
    })
    .await;
    drop(daemon);
    let log = std::fs::read_to_string(&log).unwrap();
    // `dlr_secret` is a key's name, not a value.
    let values = log.replace("dlr_secret", "");
    for secret in [
        PASSWORD,
        "dlr-7Qx2-from-a-file",
        "tok-9Rk4-from-the-environment",
    ] {
        assert!(!values.contains(secret), "{secret:?} in the log: {log}");
    }
    assert!(
        log.contains("configuration in effect") && log.contains("password: ***"),
        "the configuration is not in the log: {log}"
    );
}
