//! The whole inspection of one raw message: MIME, classification, fields,
//! photos, QR. Nothing may panic, hang or allocate without bound; a
//! message refused whole (nesting bomb, part flood, time budget) must say
//! why.
#![no_main]

use huytk::intake::{try_inspect, InspectOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match try_inspect(data, None, &InspectOptions { current_year: 2026 }) {
        // The report must always serialise (it is what the daemon stores).
        Ok(report) => {
            serde_json::to_vec(&report).expect("report serialises");
        }
        Err(refused) => assert!(!refused.to_string().is_empty()),
    }
});
