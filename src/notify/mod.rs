//! Email and SMS out: letters rendered from `templates/`, delivered
//! from the outbox by a worker with retries. SMTP down means later, not lost.

pub mod email;
pub mod gsm7;
pub mod sms;
pub mod templates;

pub use email::{Mailer, OutgoingEmail, SendError};
pub use templates::{RenderedEmail, TemplateError, Templates};
