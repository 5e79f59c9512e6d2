//! One message in: MIME, classification, fields, photos, and the
//! inspection report of SPEC section 3. No I/O happens here: callers pass
//! bytes in and get a report out, so all of it is unit-tested and fuzzed.

pub mod auth;
pub mod classify;
pub mod fields;
pub mod html;
pub mod mime;
pub mod photos;
pub mod qr;
pub mod report;
pub mod scan;
pub mod viscii;

pub use classify::Kind;
pub use report::{
    assess, examine, inspect, try_examine, try_examine_trusting, try_inspect, try_inspect_trusting,
    Assessment, AttachmentReport, Examined, InspectOptions, PhotoCount, Problem, Report, Role,
    Verdict, Warning,
};
pub use scan::Refused;
