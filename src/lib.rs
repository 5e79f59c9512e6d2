//! huytk: the account-deletion desk of the national public-service portal.
//!
//! The data flows mailbox → intake → store → workflow → notify/accounts.
//! This crate currently holds the pure layers: [`domain`] (types and rules)
//! and [`intake`] (one message in, one inspection report out).

#![warn(missing_docs)]

pub mod bench;
pub mod domain;
pub mod intake;
