//! One message in: MIME, classification, fields, photos, and the
//! inspection report of SPEC section 3. No I/O happens here: callers pass
//! bytes in and get a report out, so all of it is unit-tested and fuzzed.

pub mod archive;
pub mod auth;
pub mod budget;
pub mod classify;
pub mod fields;
pub mod html;
pub mod mime;
pub mod photos;
pub mod qr;
pub mod report;
pub mod scan;
pub mod tnef;
pub mod viscii;

pub use budget::{peak_memory_estimate, Budget, OverBudget, DEFAULT_TIME_BUDGET};
pub use classify::Kind;
pub use report::{
    assess, examine, inspect, try_examine, try_examine_trusting, try_examine_trusting_within,
    try_examine_within, try_inspect, try_inspect_trusting, try_inspect_within, Assessment,
    AttachmentReport, Examined, InspectOptions, PhotoCount, Problem, Report, Role, Verdict,
    Warning,
};
pub use scan::{Refused, MAX_MESSAGE_BYTES};
