//! Issue 10's limits, measured: the heap one hostile message needs, and
//! the time budget that stops a long inspection.
//!
//! A counting allocator records the peak of live heap bytes while a
//! message is inspected (the process's RSS adds the binary and the
//! allocator's slack: see docs/performance.md for `/usr/bin/time -v`).

use base64::Engine;
use huytk::intake::{try_examine_within, try_inspect, InspectOptions, Refused};
use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

struct Counting;
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
/// One measurement at a time (the tests of this file run in parallel).
static MEASURING: Mutex<()> = Mutex::new(());

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            let now = LIVE.fetch_add(l.size(), Ordering::Relaxed) + l.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) };
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        let q = unsafe { System.realloc(p, l, new) };
        if !q.is_null() {
            if new > l.size() {
                let now = LIVE.fetch_add(new - l.size(), Ordering::Relaxed) + new - l.size();
                PEAK.fetch_max(now, Ordering::Relaxed);
            } else {
                LIVE.fetch_sub(l.size() - new, Ordering::Relaxed);
            }
        }
        q
    }
}

#[global_allocator]
static A: Counting = Counting;

/// Peak heap above what was live before, while `f` runs.
fn peak_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let out = f();
    (out, PEAK.load(Ordering::Relaxed) - base)
}

/// A w x h 16-bit RGBA PNG with ramps in both directions (not blank).
fn png16_rgba(w: u32, h: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let mut e = png::Encoder::new(&mut out, w, h);
    e.set_color(png::ColorType::Rgba);
    e.set_depth(png::BitDepth::Sixteen);
    e.set_compression(png::Compression::Fastest);
    let mut header = e.write_header().unwrap();
    let mut s = header.stream_writer().unwrap();
    let mut row = vec![0u8; w as usize * 8];
    for y in 0..h {
        for x in 0..w as usize {
            let v = ((x as u32 * 65535 / w) as u16 ^ ((y / 500) as u16 * 4099)).to_be_bytes();
            row[x * 8..x * 8 + 8].copy_from_slice(&[v[0], v[1], v[1], v[0], 0x80, 0, 0xFF, 0xFF]);
        }
        s.write_all(&row).unwrap();
    }
    s.finish().unwrap();
    drop(header);
    out
}

fn request_with(png: &[u8]) -> Vec<u8> {
    let b64 = base64::engine::general_purpose::STANDARD.encode(png);
    let mut raw = String::from(
        "From: an@gmail.com\r\nTo: dichvucong@chinhphu.vn\r\nSubject: Yêu cầu hủy tài khoản 079203001234\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHọ và tên: Nguyễn Văn An\r\nSĐT: 0912345678\r\n--b\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"chan_dung.png\"\r\n\r\n",
    );
    for line in b64.as_bytes().chunks(76) {
        raw.push_str(std::str::from_utf8(line).unwrap());
        raw.push_str("\r\n");
    }
    raw.push_str("--b--\r\n");
    raw.into_bytes()
}

#[test]
fn a_49_megapixel_16_bit_png_is_read_in_under_200_mb() {
    let raw = request_with(&png16_rgba(7000, 7000));
    let _one = MEASURING.lock().unwrap();
    let opts = InspectOptions { current_year: 2026 };
    let (report, peak) = peak_during(|| try_inspect(&raw, None, &opts).unwrap());
    let a = &report.assessment.attachments[0];
    assert_eq!((a.width, a.height), (Some(7000), Some(7000)));
    assert!(a.usable, "{:?}", a.problems);
    // 16-bit RGBA would be 392 MB of pixels; grey is 49 MB.
    assert!(peak < 200 << 20, "peak heap {} MB", peak >> 20);
}

#[test]
fn an_inspection_past_its_time_budget_is_refused_with_the_reason() {
    let raw = request_with(&png16_rgba(7000, 7000));
    let _one = MEASURING.lock().unwrap();
    // The budget runs out inside the PNG's rows (decoding them takes far
    // longer than 20 ms), not only before parsing starts.
    let started = std::time::Instant::now();
    let e = try_examine_within(&raw, Duration::from_millis(20)).unwrap_err();
    assert!(matches!(e, Refused::OverBudget(_)), "{e}");
    assert_eq!(
        e.to_string(),
        "message refused: time budget of 0.020 s exceeded"
    );
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
    // The same message within the default budget is inspected.
    assert!(try_examine_within(&raw, Duration::from_secs(60)).is_ok());
}

/// `raw` grown to exactly `size` bytes with an attached file of random-
/// looking base64 before the closing boundary.
fn padded_to(mut raw: Vec<u8>, size: usize) -> Vec<u8> {
    let end = b"--b--\r\n";
    assert!(raw.ends_with(end));
    raw.truncate(raw.len() - end.len());
    let head = b"--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"ho_so.bin\"\r\n\r\n";
    raw.extend_from_slice(head);
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut x: u32 = 2463534242;
    let body = size - raw.len() - end.len();
    let mut written = 0;
    while written < body {
        if written % 78 == 76 || (written % 78 == 77) {
            raw.push(if written % 78 == 76 { b'\r' } else { b'\n' });
        } else {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            raw.push(alphabet[(x % 64) as usize]);
        }
        written += 1;
    }
    // End the base64 on a line of its own.
    let n = raw.len();
    raw[n - 2..].copy_from_slice(b"\r\n");
    raw.extend_from_slice(end);
    assert_eq!(raw.len(), size);
    raw
}

#[test]
fn the_largest_message_accepted_is_read_in_under_200_mb_and_a_larger_one_is_refused() {
    let limit = huytk::intake::MAX_MESSAGE_BYTES;
    let raw = padded_to(request_with(&png16_rgba(7000, 7000)), limit);
    let _one = MEASURING.lock().unwrap();
    let opts = InspectOptions { current_year: 2026 };
    let (report, peak) = peak_during(|| try_inspect(&raw, None, &opts).unwrap());
    let photo = &report.assessment.attachments[0];
    assert_eq!((photo.width, photo.height), (Some(7000), Some(7000)));
    assert_eq!(report.assessment.attachments.len(), 2);
    assert!(peak < 200 << 20, "peak heap {} MB", peak >> 20);

    let mut bigger = raw;
    bigger.insert(0, b' ');
    let started = std::time::Instant::now();
    let (e, peak) =
        peak_during(|| try_examine_within(&bigger, Duration::from_secs(30)).unwrap_err());
    assert_eq!(
        e,
        Refused::TooLarge {
            bytes: limit + 1,
            limit
        }
    );
    assert_eq!(
        e.to_string(),
        "message refused: 41 MB, larger than the 40 MB a message may be"
    );
    assert!(peak < 1 << 20, "refusing took {} bytes", peak);
    assert!(started.elapsed() < Duration::from_millis(100));
}
