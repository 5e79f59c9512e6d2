//! The command families of `huytk`, one file each; `main.rs` parses the
//! command line and hands each command to its family here.

pub mod accounts;
pub mod audit;
pub mod database;
pub mod doctor;
pub mod inspect;
pub mod keys;
pub mod operators;
pub mod requests;
pub mod serve;
