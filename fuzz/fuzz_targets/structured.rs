//! Structure-aware fuzzing of the whole inspection: the input drives a
//! small program that builds a message the way mail programs and
//! attackers do (nested multiparts and message/rfc822 parts, Outlook's
//! winmail.dat, zip archives, images whose headers lie, long lines, odd
//! line endings), so libFuzzer's mutations stay inside MIME instead of
//! breaking its first line. Nothing may panic, hang past the time budget
//! or allocate without bound; every refusal must say why.
//!
//! The program is a flat list of operations run on an explicit stack:
//! nothing here recurses on the input, and neither may the desk.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use base64::Engine;
use huytk::intake::{try_inspect_within, InspectOptions};
use libfuzzer_sys::fuzz_target;
use std::io::Write;

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Container {
    Mixed,
    Alternative,
    Related,
    Report,
    Digest,
    Rfc822,
    Tnef,
    Zip { deflate: bool },
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Encoding {
    Base64,
    QuotedPrintable,
    EightBit,
    /// Base64 with its lines cut mid-quantum and junk between them.
    BrokenBase64,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Picture {
    Png { bit16: bool, alpha: bool },
    Jpeg,
    Gif,
    Bmp,
    Tiff,
}

/// What to do to a picture once encoded.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Damage {
    None,
    /// Cut at this many 256ths of its length.
    Truncate(u8),
    /// Cut, then a forged JPEG end marker (FF D9) or PNG IEND appended.
    TruncateForgeEnd(u8),
    /// The header declares another size (the pixels stay as they are).
    LieAboutSize { width: u16, height: u16 },
    /// One byte flipped at this many 256ths of the length.
    Flip(u8, u8),
}

#[derive(Arbitrary, Debug, Clone)]
enum Leaf {
    Text { html: bool, charset: u8, body: String },
    Request { number: u64, name: String, phone: u64 },
    Picture { kind: Picture, width: u8, height: u8, seed: u8, damage: Damage, name: Option<String>, declared: u8 },
    /// A picture that inflates to many pixels from few bytes (as 16-bit
    /// RGBA when `bit16`), up to 50 megapixels.
    BigPng { width: u16, height: u16, bit16: bool },
    Bytes(Vec<u8>),
    /// One line of `len` bytes (a labelled field line, if `label`).
    LongLine { label: bool, len: u32 },
}

#[derive(Arbitrary, Debug, Clone)]
enum Op {
    Open(Container, Encoding),
    Close,
    Leaf(Leaf, Encoding),
    /// The next operation done `times` times (nesting and part floods).
    Repeat(u16),
}

#[derive(Arbitrary, Debug)]
struct Program {
    subject: u8,
    cr_only: bool,
    ops: Vec<Op>,
}

/// Where one container's parts are gathered.
struct Frame {
    kind: Container,
    encoding: Encoding,
    parts: Vec<Part>,
}

/// One rendered part: its headers (without the blank line) and body.
#[derive(Clone)]
struct Part {
    headers: String,
    body: Vec<u8>,
    filename: String,
}

const MAX_OPS: usize = 20_000;
/// Deepest nesting built: each level copies what it holds, so deeper
/// would cost the builder quadratic time. 2,000 is far past the desk's
/// limits (16 levels, 256 nested messages); its own tests nest 35,000.
const MAX_BUILD_DEPTH: usize = 64;
/// Archives inside archives built: each level re-compresses all it holds,
/// and the desk opens two.
const MAX_ARCHIVE_DEPTH: usize = 6;
const MAX_OUTPUT: usize = 8 << 20;
/// Most parts built: past the desk's 4,000 (so its refusal is still
/// reached), short of the floods whose building alone outlasts the
/// timeout (the desk refuses those in milliseconds).
const MAX_BUILT_PARTS: usize = 6_000;

fn encode(enc: Encoding, data: &[u8]) -> (String, Vec<u8>) {
    match enc {
        Encoding::Base64 | Encoding::BrokenBase64 => {
            let b = base64::engine::general_purpose::STANDARD.encode(data);
            let width = if matches!(enc, Encoding::BrokenBase64) { 77 } else { 76 };
            let mut out = Vec::with_capacity(b.len() + b.len() / 38);
            for (i, line) in b.as_bytes().chunks(width).enumerate() {
                out.extend_from_slice(line);
                if matches!(enc, Encoding::BrokenBase64) && i % 7 == 3 {
                    out.extend_from_slice(b"!*");
                }
                out.extend_from_slice(b"\r\n");
            }
            ("Content-Transfer-Encoding: base64\r\n".into(), out)
        }
        Encoding::QuotedPrintable => {
            let mut out = Vec::new();
            let mut col = 0;
            for &c in data {
                if col > 72 {
                    out.extend_from_slice(b"=\r\n");
                    col = 0;
                }
                if (33..127).contains(&c) && c != b'=' {
                    out.push(c);
                    col += 1;
                } else {
                    write!(out, "={c:02X}").unwrap();
                    col += 3;
                }
            }
            ("Content-Transfer-Encoding: quoted-printable\r\n".into(), out)
        }
        Encoding::EightBit => ("Content-Transfer-Encoding: 8bit\r\n".into(), data.to_vec()),
    }
}

fn picture(kind: Picture, w: u8, h: u8, seed: u8) -> Vec<u8> {
    let (w, h) = (u32::from(w).max(1), u32::from(h).max(1));
    let grey: Vec<u8> = (0..w * h).map(|i| ((i * 7 + u32::from(seed) * 13) % 251) as u8).collect();
    match kind {
        Picture::Png { bit16, alpha } => {
            let mut out = Vec::new();
            let mut e = png::Encoder::new(&mut out, w, h);
            e.set_color(if alpha { png::ColorType::Rgba } else { png::ColorType::Rgb });
            e.set_depth(if bit16 { png::BitDepth::Sixteen } else { png::BitDepth::Eight });
            let per = if alpha { 4 } else { 3 } * if bit16 { 2 } else { 1 };
            let data: Vec<u8> = grey.iter().flat_map(|&g| std::iter::repeat_n(g, per)).collect();
            let mut wr = e.write_header().unwrap();
            wr.write_image_data(&data).unwrap();
            drop(wr);
            out
        }
        other => {
            let img = image::GrayImage::from_raw(w, h, grey).unwrap();
            let fmt = match other {
                Picture::Jpeg => image::ImageFormat::Jpeg,
                Picture::Gif => image::ImageFormat::Gif,
                Picture::Bmp => image::ImageFormat::Bmp,
                _ => image::ImageFormat::Tiff,
            };
            let mut c = std::io::Cursor::new(Vec::new());
            let dynimg = image::DynamicImage::ImageLuma8(img);
            let dynimg = if matches!(fmt, image::ImageFormat::Gif | image::ImageFormat::Bmp) {
                image::DynamicImage::ImageRgb8(dynimg.to_rgb8())
            } else {
                dynimg
            };
            dynimg.write_to(&mut c, fmt).unwrap();
            c.into_inner()
        }
    }
}

fn damage(mut b: Vec<u8>, d: Damage) -> Vec<u8> {
    let at = |x: u8, len: usize| len * usize::from(x) / 256;
    match d {
        Damage::None => {}
        Damage::Truncate(x) => b.truncate(at(x, b.len())),
        Damage::TruncateForgeEnd(x) => {
            let png = b.starts_with(b"\x89PNG");
            b.truncate(at(x, b.len()));
            if png {
                b.extend_from_slice(b"\0\0\0\0IEND\xAE\x42\x60\x82");
            } else {
                b.extend_from_slice(&[0xFF, 0xD9]);
            }
        }
        Damage::LieAboutSize { width, height } => {
            if b.starts_with(b"\x89PNG") && b.len() > 24 {
                b[16..20].copy_from_slice(&u32::from(width).to_be_bytes());
                b[20..24].copy_from_slice(&u32::from(height).to_be_bytes());
            } else if let Some(p) = b.windows(2).position(|w| w == [0xFF, 0xC0]) {
                if b.len() > p + 9 {
                    b[p + 5..p + 7].copy_from_slice(&height.to_be_bytes());
                    b[p + 7..p + 9].copy_from_slice(&width.to_be_bytes());
                }
            } else if b.starts_with(b"BM") && b.len() > 26 {
                b[18..22].copy_from_slice(&i32::from(width).to_le_bytes());
                b[22..26].copy_from_slice(&i32::from(height).to_le_bytes());
            }
        }
        Damage::Flip(x, v) => {
            if !b.is_empty() {
                let i = at(x, b.len()).min(b.len() - 1);
                b[i] ^= v | 1;
            }
        }
    }
    b
}

/// A PNG declaring `w` x `h` whose rows are all zeros: a few kilobytes
/// that inflate to up to 400 MB at 16-bit RGBA.
fn big_png(w: u16, h: u16, bit16: bool) -> Vec<u8> {
    let (w, h) = (u32::from(w).max(1), u32::from(h).max(1));
    let mut out = Vec::new();
    let mut e = png::Encoder::new(&mut out, w, h);
    e.set_color(png::ColorType::Rgba);
    e.set_depth(if bit16 { png::BitDepth::Sixteen } else { png::BitDepth::Eight });
    e.set_compression(png::Compression::Fastest);
    let mut wr = e.write_header().unwrap();
    let mut s = wr.stream_writer().unwrap();
    let row = vec![0u8; w as usize * if bit16 { 8 } else { 4 }];
    for _ in 0..h {
        s.write_all(&row).unwrap();
    }
    s.finish().unwrap();
    drop(wr);
    out
}

/// Big pictures are costly to make: at most this many a message, each
/// made once (the desk still decodes every copy it is given).
const MAX_BIG_PICTURES: usize = 3;

#[derive(Default)]
struct Cache {
    big: Vec<((u16, u16, bool), Vec<u8>)>,
}

fn render_leaf(leaf: &Leaf, enc: Encoding, cache: &mut Cache) -> Part {
    let (ctype, data, filename): (String, Vec<u8>, String) = match leaf {
        Leaf::Text { html, charset, body } => {
            let cs = ["utf-8", "windows-1258", "viscii", "iso-8859-1", "x-unknown"][usize::from(*charset) % 5];
            (format!("text/{}; charset={cs}", if *html { "html" } else { "plain" }), body.as_bytes().to_vec(), String::new())
        }
        Leaf::Request { number, name, phone } => (
            "text/plain; charset=utf-8".into(),
            format!("+ Họ và tên: {name}\n+ Số điện thoại: 0{}\n+ Yêu cầu hủy tài khoản {}\n+ Lý do: trùng\n", phone % 1_000_000_000, number % 1_000_000_000_000).into_bytes(),
            String::new(),
        ),
        Leaf::Picture { kind, width, height, seed, damage: d, name, declared } => {
            let b = damage(picture(*kind, *width, *height, *seed), *d);
            let ct = ["image/jpeg", "image/png", "application/octet-stream", "image/tiff", "image/bmp", "application/pdf"][usize::from(*declared) % 6];
            (ct.into(), b, name.clone().unwrap_or_else(|| "anh.jpg".into()))
        }
        Leaf::BigPng { width, height, bit16 } => {
            let key = if u64::from(*width) * u64::from(*height) <= 50_000_000 {
                (*width, *height, *bit16)
            } else {
                (64, 64, *bit16)
            };
            let b = match cache.big.iter().find(|(k, _)| *k == key) {
                Some((_, b)) => b.clone(),
                None if cache.big.len() < MAX_BIG_PICTURES => {
                    let b = big_png(key.0, key.1, key.2);
                    cache.big.push((key, b.clone()));
                    b
                }
                None => big_png(64, 64, key.2),
            };
            ("image/png".into(), b, "chan_dung.png".into())
        }
        Leaf::Bytes(b) => ("application/octet-stream".into(), b.clone(), "x.bin".into()),
        Leaf::LongLine { label, len } => {
            let len = (*len as usize) % (2 << 20);
            let mut b = if *label { "+ Họ và tên: ".as_bytes().to_vec() } else { Vec::new() };
            b.extend(std::iter::repeat_n(b'a', len));
            b.push(b'\n');
            ("text/plain; charset=utf-8".into(), b, String::new())
        }
    };
    let (cte, body) = encode(enc, &data);
    let mut headers = format!("Content-Type: {ctype}\r\n{cte}");
    if !filename.is_empty() {
        headers.push_str(&format!("Content-Disposition: attachment; filename=\"{}\"\r\n", filename.replace(['"', '\r', '\n'], "_")));
    }
    Part { headers, body, filename }
}

fn close(frame: Frame, boundary: usize) -> Part {
    let files = || -> Vec<(String, Vec<u8>)> {
        frame.parts.iter().map(|p| (if p.filename.is_empty() { "a.txt".into() } else { p.filename.clone() }, decode_body(p))).collect()
    };
    let (ctype, data) = match frame.kind {
        Container::Tnef => {
            let files = files();
            let refs: Vec<(&str, &[u8])> = files.iter().map(|(n, d)| (n.as_str(), d.as_slice())).collect();
            ("application/ms-tnef; name=\"winmail.dat\"".to_string(), huytk::intake::tnef::build(&refs))
        }
        Container::Zip { deflate } => {
            let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
            let method = if deflate { zip::CompressionMethod::Deflated } else { zip::CompressionMethod::Stored };
            let opts = zip::write::SimpleFileOptions::default().compression_method(method);
            for (i, (n, d)) in files().iter().enumerate() {
                if w.start_file(format!("{i}/{n}"), opts).is_ok() {
                    let _ = w.write_all(d);
                }
            }
            ("application/zip".to_string(), w.finish().map(|c| c.into_inner()).unwrap_or_default())
        }
        Container::Rfc822 => {
            let mut inner = b"From: a@b.vn\r\nSubject: Fwd: Yeu cau huy tai khoan 079203001234\r\nMIME-Version: 1.0\r\n".to_vec();
            match frame.parts.into_iter().next() {
                Some(p) => {
                    inner.extend_from_slice(p.headers.as_bytes());
                    inner.extend_from_slice(b"\r\n");
                    inner.extend_from_slice(&p.body);
                }
                None => inner.extend_from_slice(b"\r\nx\r\n"),
            }
            ("message/rfc822".to_string(), inner)
        }
        kind => {
            let sub = match kind {
                Container::Mixed => "mixed",
                Container::Alternative => "alternative",
                Container::Related => "related",
                Container::Report => "report; report-type=delivery-status",
                _ => "digest",
            };
            let b = format!("b{boundary}");
            let mut body = Vec::new();
            for p in frame.parts {
                write!(body, "--{b}\r\n{}\r\n", p.headers).unwrap();
                body.extend_from_slice(&p.body);
                body.extend_from_slice(b"\r\n");
                if body.len() > MAX_OUTPUT {
                    break;
                }
            }
            write!(body, "--{b}--\r\n").unwrap();
            return Part { headers: format!("Content-Type: multipart/{sub}; boundary=\"{b}\"\r\n"), body, filename: String::new() };
        }
    };
    let (cte, body) = match frame.kind {
        Container::Rfc822 => (String::new(), data),
        _ => encode(frame.encoding, &data),
    };
    let filename = match frame.kind {
        Container::Tnef => "winmail.dat",
        Container::Zip { .. } => "anh.zip",
        _ => "",
    };
    let mut headers = format!("Content-Type: {ctype}\r\n{cte}");
    if !filename.is_empty() {
        headers.push_str(&format!("Content-Disposition: attachment; filename=\"{filename}\"\r\n"));
    }
    Part { headers, body, filename: filename.into() }
}

/// A part's content as a container holds it (its transfer encoding undone).
fn decode_body(p: &Part) -> Vec<u8> {
    if p.headers.contains("base64") {
        let clean: Vec<u8> = p.body.iter().copied().filter(|c| c.is_ascii_alphanumeric() || *c == b'+' || *c == b'/').collect();
        let mut clean = clean;
        clean.truncate(clean.len() / 4 * 4);
        base64::engine::general_purpose::STANDARD_NO_PAD.decode(&clean).unwrap_or_default()
    } else {
        p.body.clone()
    }
}

fn build(p: &Program) -> Vec<u8> {
    let mut stack = vec![Frame { kind: Container::Mixed, encoding: Encoding::EightBit, parts: Vec::new() }];
    let mut boundary = 0usize;
    let mut size = 0usize;
    let mut repeat = 1usize;
    let mut cache = Cache::default();
    let mut parts = 0usize;
    for op in p.ops.iter().take(MAX_OPS) {
        let times = std::mem::replace(&mut repeat, 1);
        // A repeated leaf is rendered once: a flood of 50,000 pictures is
        // the same picture over and over, not 50,000 encodings of it.
        let rendered = match op {
            Op::Leaf(leaf, enc) => Some(render_leaf(leaf, *enc, &mut cache)),
            _ => None,
        };
        for _ in 0..times {
            if size > MAX_OUTPUT || parts > MAX_BUILT_PARTS {
                break;
            }
            parts += usize::from(matches!(op, Op::Close | Op::Leaf(..)));
            match op {
                Op::Repeat(n) => repeat = usize::from(*n).max(1),
                Op::Open(..) if stack.len() >= MAX_BUILD_DEPTH => {}
                Op::Open(Container::Zip { .. } | Container::Tnef, _)
                    if stack.iter().filter(|f| matches!(f.kind, Container::Zip { .. } | Container::Tnef)).count()
                        >= MAX_ARCHIVE_DEPTH => {}
                Op::Open(kind, enc) => stack.push(Frame { kind: *kind, encoding: *enc, parts: Vec::new() }),
                Op::Close if stack.len() > 1 => {
                    let f = stack.pop().unwrap();
                    boundary += 1;
                    let part = close(f, boundary);
                    size += part.body.len();
                    stack.last_mut().unwrap().parts.push(part);
                }
                Op::Close => {}
                Op::Leaf(..) => {
                    let part = rendered.clone().expect("rendered above");
                    size += part.body.len();
                    stack.last_mut().unwrap().parts.push(part);
                }
            }
        }
    }
    while stack.len() > 1 {
        let f = stack.pop().unwrap();
        boundary += 1;
        let part = close(f, boundary);
        stack.last_mut().unwrap().parts.push(part);
    }
    let root = close(stack.pop().unwrap(), 0);
    let subject = ["Yêu cầu hủy tài khoản + 079203001234", "Undeliverable: Yêu cầu hủy tài khoản 079203001234", "Re: hỏi"][usize::from(p.subject) % 3];
    let mut raw = format!("From: An <an@gmail.com>\r\nTo: dichvucong@chinhphu.vn\r\nSubject: {subject}\r\nMIME-Version: 1.0\r\n{}\r\n", root.headers).into_bytes();
    raw.extend_from_slice(&root.body);
    if p.cr_only {
        raw.retain(|&c| c != b'\n');
    }
    raw
}

/// A `debug_assert!(false)` in mail-parser 0.11.9 (parsers/message.rs:
/// 485) that nested message/rfc822 parts with bare-CR line ends reach. It
/// exists only in builds with debug assertions (this fuzz build has them;
/// the release build the desk ships has not, and parses the message), so
/// it is let through here instead of stopping the run.
const KNOWN_DEBUG_ASSERTION: &str = "Invalid part ID, could not find multipart.";

fn known(p: &(dyn std::any::Any + Send)) -> bool {
    p.downcast_ref::<&str>().is_some_and(|m| *m == KNOWN_DEBUG_ASSERTION)
        || p.downcast_ref::<String>().is_some_and(|m| m == KNOWN_DEBUG_ASSERTION)
}

fuzz_target!(|data: &[u8]| {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let abort = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !known(info.payload()) {
                abort(info);
            }
        }));
    });
    let Ok(program) = Program::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    let raw = build(&program);
    // To look at a finding: HUYTK_FUZZ_DUMP=file ./structured artifact
    if let Some(path) = std::env::var_os("HUYTK_FUZZ_DUMP") {
        std::fs::write(path, &raw).expect("writing the dump");
        eprintln!("{program:?}");
    }
    // A budget well under libFuzzer's -timeout: an inspection that runs
    // past it by more than one step is a finding.
    let budget = std::time::Duration::from_secs(10);
    let result = std::panic::catch_unwind(|| {
        try_inspect_within(&raw, None, &InspectOptions { current_year: 2026 }, budget)
    });
    let result = match result {
        Ok(r) => r,
        Err(p) if known(&*p) => return,
        Err(p) => std::panic::resume_unwind(p),
    };
    match result {
        Ok(report) => {
            // What the daemon stores: the report always serialises, and
            // every attachment not used says why.
            serde_json::to_vec(&report).expect("report serialises");
            for a in &report.assessment.attachments {
                assert!(a.usable || !a.problems.is_empty(), "unused attachment without a reason: {a:?}");
            }
        }
        Err(refused) => assert!(!refused.to_string().is_empty()),
    }
});
