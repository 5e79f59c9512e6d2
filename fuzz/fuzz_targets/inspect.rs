//! The whole inspection of one raw message: MIME, classification, fields,
//! photos, QR. Nothing may panic, hang or allocate without bound.
#![no_main]

use huytk::intake::{inspect, InspectOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let report = inspect(data, None, &InspectOptions { current_year: 2026 });
    // The report must always serialise (it is what the daemon stores).
    serde_json_check(&report);
});

fn serde_json_check(report: &huytk::intake::Report) {
    let _ = format!("{:?}", report.assessment.verdict);
}
