use super::decode::*;
use super::*;

fn gradient(w: u32, h: u32) -> Gray {
    let pixels = (0..h)
        .flat_map(|y| (0..w).map(move |x| ((x * 7 + y * 3) % 256) as u8))
        .collect();
    Gray {
        width: w,
        height: h,
        pixels,
    }
}

#[test]
fn sniffs_by_content() {
    assert_eq!(sniff(&[0xFF, 0xD8, 0xFF, 0xE0]), Some(Format::Jpeg));
    assert_eq!(sniff(b"\x89PNG\r\n\x1a\n...."), Some(Format::Png));
    assert_eq!(sniff(b"GIF89a......"), Some(Format::Gif));
    assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 "), Some(Format::Webp));
    assert_eq!(sniff(b"\0\0\0\x18ftypheic\0\0\0\0"), Some(Format::Heic));
    let mut bmp = b"BM\0\0\0\0\0\0\0\0\x36\0\0\0\x28\0\0\0".to_vec();
    bmp.resize(30, 0);
    assert_eq!(sniff(&bmp), Some(Format::Bmp));
    assert_eq!(sniff(b"BMW service booking for Monday.."), None);
    assert_eq!(sniff(b"II*\0\x08\0\0\0"), Some(Format::Tiff));
    assert_eq!(sniff(b"MM\0*\0\0\0\x08"), Some(Format::Tiff));
    assert_eq!(sniff(b"%PDF-1.7"), None);
    assert_eq!(sniff(b"<svg xmlns="), None);
}

#[test]
fn names_and_types_that_say_picture() {
    assert!(looks_like_image(Some("a.JPG"), "application/octet-stream"));
    assert!(looks_like_image(None, "image/png"));
    assert!(!looks_like_image(Some("don.pdf"), "application/pdf"));
}

#[test]
fn oversized_png_is_refused_before_decoding() {
    let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    png.extend_from_slice(&30000u32.to_be_bytes());
    png.extend_from_slice(&30000u32.to_be_bytes());
    png.extend_from_slice(&[8, 0, 0, 0, 0]);
    assert_eq!(
        decode(&png, Format::Png).unwrap_err(),
        PhotoError::Oversized {
            width: 30000,
            height: 30000
        }
    );
}

/// A PNG of 8-bit grey `pixels` (w x h), stored with no compression,
/// Adam7-interlaced when `interlaced`.
fn grey_png(w: u32, h: u32, pixels: &[u8], interlaced: bool) -> Vec<u8> {
    let mut raw = Vec::new();
    if interlaced {
        for (xs, xo, ys, yo) in ADAM7 {
            let xs_: Vec<u32> = (xo..w).step_by(xs as usize).collect();
            if xs_.is_empty() {
                continue;
            }
            for y in (yo..h).step_by(ys as usize) {
                raw.push(0);
                raw.extend(xs_.iter().map(|&x| pixels[(y * w + x) as usize]));
            }
        }
    } else {
        for row in pixels.chunks(w as usize) {
            raw.push(0);
            raw.extend_from_slice(row);
        }
    }
    // zlib, one stored block.
    let mut z = vec![0x78, 0x01, 0x01];
    z.extend_from_slice(&(raw.len() as u16).to_le_bytes());
    z.extend_from_slice(&(!(raw.len() as u16)).to_le_bytes());
    z.extend_from_slice(&raw);
    let (mut a, mut b) = (1u32, 0u32);
    for &x in &raw {
        a = (a + u32::from(x)) % 65521;
        b = (b + a) % 65521;
    }
    z.extend_from_slice(&((b << 16) | a).to_be_bytes());
    let chunk = |t: &[u8], d: &[u8]| {
        let mut c = (d.len() as u32).to_be_bytes().to_vec();
        c.extend_from_slice(t);
        c.extend_from_slice(d);
        // The decoder is told to ignore CRCs below; any value will do.
        c.extend_from_slice(&[0, 0, 0, 0]);
        c
    };
    let mut ihdr = w.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, u8::from(interlaced)]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(chunk(b"IHDR", &ihdr));
    png.extend(chunk(b"IDAT", &z));
    png.extend(chunk(b"IEND", b""));
    png
}

#[test]
fn interlaced_and_plain_png_give_the_same_grey_levels() {
    let (w, h) = (13, 11);
    let pixels: Vec<u8> = (0..w * h).map(|i| (i * 37 % 256) as u8).collect();
    for interlaced in [false, true] {
        let png = grey_png(w, h, &pixels, interlaced);
        let g = decode_png_unchecked_crc(&png).unwrap();
        assert_eq!((g.width, g.height), (w, h));
        assert_eq!(g.pixels, pixels, "interlaced: {interlaced}");
    }
}

#[test]
fn a_big_progressive_jpeg_is_refused_before_its_coefficients_are_held() {
    // SOI, SOF2 (progressive): 7000 x 7000, three components, 4:2:0.
    let sof = |w: u16, h: u16| {
        let mut j = vec![0xFF, 0xD8, 0xFF, 0xC2, 0, 17, 8];
        j.extend_from_slice(&h.to_be_bytes());
        j.extend_from_slice(&w.to_be_bytes());
        j.extend_from_slice(&[3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]);
        j.extend_from_slice(&[0xFF, 0xD9]);
        j
    };
    let big = sof(7000, 7000);
    // 875 x 875 luma blocks and 2 x 438 x 438 chroma blocks of 64
    // coefficients, two bytes each.
    assert_eq!(progressive_coefficient_bytes(&big), Some(147_112_064));
    assert_eq!(
        decode(&big, Format::Jpeg).unwrap_err(),
        PhotoError::Oversized {
            width: 7000,
            height: 7000
        }
    );
    // A phone-sized progressive picture is decoded as usual (this one
    // then fails for want of scan data, not for its size).
    assert!(matches!(
        decode(&sof(4000, 3000), Format::Jpeg),
        Err(PhotoError::Unreadable(_))
    ));
}

#[test]
fn orientation_rotates() {
    let g = Gray {
        width: 3,
        height: 2,
        pixels: vec![1, 2, 3, 4, 5, 6],
    };
    let r = orient(g.clone(), 6);
    assert_eq!((r.width, r.height), (2, 3));
    assert_eq!(r.pixels, vec![4, 1, 5, 2, 6, 3]);
    let r = orient(g.clone(), 3);
    assert_eq!(r.pixels, vec![6, 5, 4, 3, 2, 1]);
    let r = orient(g, 8);
    assert_eq!(r.pixels, vec![3, 6, 2, 5, 1, 4]);
}

#[test]
fn fingerprint_survives_resizing() {
    let g = gradient(640, 400);
    let small = shrink(&g, 2);
    let a = Fingerprint::of(&g);
    let b = Fingerprint::of(&small);
    assert!(a.near_duplicate(&b), "{}", a.similarity(&b));
    let other = orient(g.clone(), 3);
    assert!(!a.near_duplicate(&Fingerprint::of(&other)));
}
