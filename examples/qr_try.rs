//! Times rqrr's stages on a region of an image at several scales (tuning aid).
use huytk::intake::{photos, qr};
use std::time::Instant;
fn main() {
    let a: Vec<String> = std::env::args().collect();
    let b = std::fs::read(&a[1]).unwrap();
    let g = photos::decode(&b, photos::sniff(&b).unwrap()).unwrap();
    let (x0, y0, w, h): (u32, u32, u32, u32) = (
        a[2].parse().unwrap(),
        a[3].parse().unwrap(),
        a[4].parse().unwrap(),
        a[5].parse().unwrap(),
    );
    let mut px = Vec::new();
    for y in y0..y0 + h {
        for x in x0..x0 + w {
            px.push(g.at(x, y));
        }
    }
    let c = photos::Gray {
        width: w,
        height: h,
        pixels: px,
    };
    for s in [1.0f32, 1.5, 2.0, 2.5] {
        let p = qr::resize(&c, s);
        let t = Instant::now();
        let mut img = rqrr::PreparedImage::prepare_from_greyscale(
            p.width as usize,
            p.height as usize,
            |x, y| p.pixels[y * p.width as usize + x],
        );
        let t1 = t.elapsed();
        let grids = img.detect_grids();
        let t2 = t.elapsed();
        let res: Vec<_> = grids.iter().map(|g| g.decode().is_ok()).collect();
        let t3 = t.elapsed();
        println!(
            "scale {s} {}x{}: prepare {t1:?} detect {:?} decode {:?} {res:?}",
            p.width,
            p.height,
            t2 - t1,
            t3 - t2
        );
        let t = Instant::now();
        let mut q = quircs::Quirc::default();
        let codes: Vec<_> = q
            .identify(p.width as usize, p.height as usize, &p.pixels)
            .map(|c| {
                c.ok()
                    .and_then(|c| c.decode().ok())
                    .map(|d| d.payload.len())
            })
            .collect();
        println!("   quircs {:?} {codes:?}", t.elapsed());
    }
}

#[allow(dead_code)]
fn unused() {}
