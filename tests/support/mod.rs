//! Real servers for the integration tests, started on loopback in a temp
//! folder and stopped when dropped, in the shape of zero2prod's
//! `spawn_app`: one file per server, the desk itself in `desk.rs`
//! ([`TestDesk`]), one way to wait in `wait.rs`. Each server needs its
//! Debian package, which `scripts/test` installs (`scripts/deps.sh`); a
//! missing binary is a test failure, not a skip.
//!
//! Every name is re-exported here, so a test writes `support::Dovecot`
//! whichever file holds it.
//!
//! Each test binary compiles this whole module (`mod support;`) and uses
//! the servers it needs, so what one binary leaves unused is not dead:
//! `dead_code` is allowed on the module declarations below, and nowhere
//! else, for that reason only.

#[allow(dead_code)]
pub mod chromium;
#[allow(dead_code)]
pub mod clock;
#[allow(dead_code)]
pub mod desk;
#[allow(dead_code)]
pub mod dns;
#[allow(dead_code)]
pub mod dovecot;
#[allow(dead_code)]
pub mod http;
#[allow(dead_code)]
pub mod kannel;
#[allow(dead_code)]
pub mod ldap;
#[allow(dead_code)]
pub mod mail;
#[allow(dead_code)]
pub mod postfix;
#[allow(dead_code)]
pub mod postgres;
#[allow(dead_code)]
pub mod process;
#[allow(dead_code)]
pub mod wait;

// Each binary uses some of these names, so the rest are unused imports
// there (the same reason as above).
#[allow(unused_imports)]
pub use {
    chromium::*,
    clock::*,
    desk::{
        huytk_cli, huytk_run, imap_config, open_store, open_store_with, start_daemon,
        start_daemon_with,
    },
    dovecot::*,
    http::*,
    kannel::*,
    ldap::*,
    mail::demo,
    postfix::*,
    postgres::*,
    process::*,
    wait::*,
};
