//! huytk: the account-deletion desk of the national public-service portal.
//!
//! The data flows mailbox → intake → store → workflow → notify/accounts.
//! [`domain`] and [`intake`] are pure (no I/O); [`mailbox`], [`store`],
//! [`workflow`], [`notify`] and [`accounts`] talk to the world; [`app`]
//! assembles them.

#![warn(missing_docs)]
// A function is one step, read at a glance: clippy refuses one over 100
// lines (the house rule of docs/spec.md section 6).
#![warn(clippy::too_many_lines)]

pub mod accounts;
pub mod app;
pub mod bench;
pub mod config;
pub mod domain;
pub mod intake;
pub mod logs;
pub mod mailbox;
pub mod net;
pub mod notify;
pub mod private;
pub mod store;
pub mod web;
pub mod workflow;
