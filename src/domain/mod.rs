//! Pure types and rules of the desk. Nothing here does I/O: values are parsed
//! at the edge into these types and the rest of the program trusts them.

pub mod action;
pub mod calendar;
pub mod id_number;
pub mod operator;
pub mod phone;
pub mod redact;
pub mod request_state;
pub mod text;
pub mod thread;
pub mod time;

pub use action::Action;
pub use id_number::{IdNumber, IdNumberError, IdType};
pub use operator::{Login, Role};
pub use phone::{Phone, PhoneError};
pub use request_state::RequestState;
