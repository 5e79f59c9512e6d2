//! Decodes image files as intake does and prints what it found: size,
//! QR candidate regions, decoded codes, timings. A tool for tuning.
use huytk::intake::{photos, qr};
use std::time::Instant;

fn main() {
    for path in std::env::args().skip(1) {
        let b = std::fs::read(&path).expect("read");
        let fmt = photos::sniff(&b);
        println!(
            "{path}: {fmt:?} declared {:?}",
            fmt.and_then(|f| photos::declared_size(&b, f))
        );
        let Some(fmt) = fmt else { continue };
        let t = Instant::now();
        let g = match photos::decode(&b, fmt) {
            Ok(g) => g,
            Err(e) => {
                println!("  decode error: {e}");
                continue;
            }
        };
        let t_dec = t.elapsed();
        let t = Instant::now();
        let quarter = photos::shrink(&g, 4);
        let regions = qr::candidate_regions(&quarter);
        let t_loc = t.elapsed();
        let t = Instant::now();
        let codes = qr::find_codes(&g, &quarter);
        let t_qr = t.elapsed();
        println!(
            "  {}x{} decode {:?} locate {:?} qr {:?}\n  regions {:?}\n  codes {:?}",
            g.width,
            g.height,
            t_dec,
            t_loc,
            t_qr,
            &regions[..regions.len().min(6)],
            codes
        );
    }
}
