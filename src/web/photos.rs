//! Photos as the console serves them: decoded from the citizen's bytes and
//! re-encoded as a fresh JPEG, upright, at most 1600 pixels on the long
//! side. Nothing of the original file survives (no EXIF, no GPS, no
//! trailing payload), and only content that decodes as a picture is ever
//! served, always as `image/jpeg`: an SVG or HTML file named `.jpg` is not.

use std::collections::HashMap;
use std::io::Cursor;
use std::sync::{Arc, Mutex};
use tokio::sync::Semaphore;

use crate::intake::photos::{self, Format};

/// The longest side of a served photo.
pub const MAX_SIDE: u32 = 1600;

/// Why a photo is not served.
#[derive(Debug, thiserror::Error)]
pub enum PhotoServeError {
    /// The bytes are not a picture we decode.
    #[error("not a photo")]
    NotAPhoto,
    /// Too large to decode safely.
    #[error("photo too large: {0}")]
    TooLarge(String),
    /// Damaged.
    #[error("photo unreadable: {0}")]
    Unreadable(String),
}

/// Re-encoded photos kept for the next view (bounded by bytes, the least
/// recently viewed dropped first), and a gate on how many decodes run at
/// once: eight operators opening the same 49-megapixel photo cost one
/// decode, and no burst of views can decode more than `decodes` at a time.
pub struct PhotoCache {
    max_bytes: usize,
    decodes: Arc<Semaphore>,
    state: Mutex<CacheState>,
}

#[derive(Default)]
struct CacheState {
    tick: u64,
    bytes: usize,
    entries: HashMap<String, (Arc<Vec<u8>>, u64)>,
    /// One lock per photo being decoded, so its other viewers wait for it.
    decoding: HashMap<String, Arc<tokio::sync::Mutex<()>>>,
}

impl PhotoCache {
    /// A cache of `max_bytes`, decoding at most `decodes` photos at once.
    pub fn new(max_bytes: usize, decodes: usize) -> PhotoCache {
        PhotoCache {
            max_bytes,
            decodes: Arc::new(Semaphore::new(decodes.max(1))),
            state: Mutex::new(CacheState::default()),
        }
    }

    fn lookup(&self, key: &str) -> Option<Arc<Vec<u8>>> {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        st.tick += 1;
        let tick = st.tick;
        st.entries.get_mut(key).map(|(jpeg, seen)| {
            *seen = tick;
            jpeg.clone()
        })
    }

    fn keep(&self, key: &str, jpeg: Arc<Vec<u8>>) {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if jpeg.len() > self.max_bytes {
            return;
        }
        st.tick += 1;
        let tick = st.tick;
        st.bytes += jpeg.len();
        if let Some((old, _)) = st.entries.insert(key.to_owned(), (jpeg, tick)) {
            st.bytes -= old.len();
        }
        while st.bytes > self.max_bytes {
            let Some(oldest) = st
                .entries
                .iter()
                .min_by_key(|(_, (_, seen))| *seen)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some((gone, _)) = st.entries.remove(&oldest) {
                st.bytes -= gone.len();
            }
        }
    }

    /// The photo `key` re-encoded: from the cache, or by `original` (the
    /// citizen's bytes) decoded on the blocking pool under the gate.
    pub async fn get<F, Fut, E>(&self, key: &str, original: F) -> Result<Arc<Vec<u8>>, E>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Vec<u8>, E>>,
        E: From<PhotoServeError>,
    {
        if let Some(hit) = self.lookup(key) {
            return Ok(hit);
        }
        let lock = {
            let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
            st.decoding.entry(key.to_owned()).or_default().clone()
        };
        let _mine = lock.lock().await;
        if let Some(hit) = self.lookup(key) {
            return Ok(hit);
        }
        // The gate covers reading the original too: the stored mail and the
        // part cut from it are as big as the photo's file, so eight views of
        // eight different photos hold at most `decodes` of them at once.
        let _permit = self
            .decodes
            .acquire()
            .await
            .map_err(|_| PhotoServeError::Unreadable("shutting down".into()))?;
        let made = async {
            let bytes = original().await?;
            let jpeg = tokio::task::spawn_blocking(move || reencode(&bytes))
                .await
                .map_err(|e| PhotoServeError::Unreadable(e.to_string()))??;
            Ok::<_, E>(Arc::new(jpeg))
        }
        .await;
        if let Ok(jpeg) = &made {
            self.keep(key, jpeg.clone());
        }
        // Failed or not, the next viewer of this photo starts afresh.
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .decoding
            .remove(key);
        made
    }
}

/// Decodes, orients, shrinks and re-encodes a photo as JPEG.
pub fn reencode(bytes: &[u8]) -> Result<Vec<u8>, PhotoServeError> {
    let format = photos::sniff(bytes).ok_or(PhotoServeError::NotAPhoto)?;
    if let Some((w, h)) = photos::declared_size(bytes, format) {
        photos::check_size(w, h).map_err(|e| PhotoServeError::TooLarge(e.to_string()))?;
    }
    // A plain PNG is shrunk row by row as it is decoded (16 bits cut to 8):
    // no full-size picture is ever held.
    if format == Format::Png {
        if let Some(small) = png_streamed(bytes)? {
            return jpeg_of(image::DynamicImage::ImageRgb8(small));
        }
    }
    let img = match format {
        Format::Heic => {
            let g = photos::decode(bytes, format)
                .map_err(|e| PhotoServeError::Unreadable(e.to_string()))?;
            let luma = image::GrayImage::from_raw(g.width, g.height, g.pixels)
                .ok_or_else(|| PhotoServeError::Unreadable("bad pixel buffer".into()))?;
            image::DynamicImage::ImageLuma8(luma)
        }
        _ => decode_color(bytes, format)?,
    };
    // Area averaging straight into the small picture: no intermediate as
    // big as the original (a Triangle resize of a 7000-pixel side keeps
    // a 7000x1600 float copy, 180 MB, beside the decoded photo).
    let img = if img.width().max(img.height()) > MAX_SIDE {
        img.thumbnail(MAX_SIDE, MAX_SIDE)
    } else {
        img
    };
    jpeg_of(img)
}

fn jpeg_of(img: image::DynamicImage) -> Result<Vec<u8>, PhotoServeError> {
    let rgb = img.into_rgb8();
    let mut out = Vec::new();
    let enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85);
    rgb.write_with_encoder(enc)
        .map_err(|e| PhotoServeError::Unreadable(e.to_string()))?;
    Ok(out)
}

/// The size a picture of `w`×`h` is served at: within [`MAX_SIDE`], the
/// same shape (what `DynamicImage::thumbnail` gives).
fn served_size(w: u32, h: u32) -> (u32, u32) {
    if w.max(h) <= MAX_SIDE {
        return (w, h);
    }
    let (w64, h64, side) = (u64::from(w), u64::from(h), u64::from(MAX_SIDE));
    if w >= h {
        (MAX_SIDE, ((h64 * side + w64 / 2) / w64).max(1) as u32)
    } else {
        (((w64 * side + h64 / 2) / h64).max(1) as u32, MAX_SIDE)
    }
}

/// Decodes a non-interlaced PNG without EXIF one row at a time, each row
/// added into the served picture's row it falls in (area averaging), so
/// memory is a row and the small picture whatever the PNG's size. None for
/// an interlaced PNG or one with EXIF (the general path handles those).
fn png_streamed(bytes: &[u8]) -> Result<Option<image::RgbImage>, PhotoServeError> {
    let bad = |e: png::DecodingError| match e {
        png::DecodingError::LimitsExceeded => PhotoServeError::TooLarge(e.to_string()),
        other => PhotoServeError::Unreadable(other.to_string()),
    };
    let mut decoder =
        png::Decoder::new_with_limits(Cursor::new(bytes), png::Limits { bytes: 64 << 20 });
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().map_err(bad)?;
    let info = reader.info();
    if info.interlaced || info.exif_metadata.is_some() {
        return Ok(None);
    }
    let (w, h) = (info.width, info.height);
    photos::check_size(w, h).map_err(|e| PhotoServeError::TooLarge(e.to_string()))?;
    let (color, _) = reader.output_color_type();
    let channels = color.samples();
    let (tw, th) = served_size(w, h);
    let column: Vec<usize> = (0..w)
        .map(|x| (u64::from(x) * u64::from(tw) / u64::from(w)) as usize)
        .collect();
    let mut per_column = vec![0u64; tw as usize];
    for &c in &column {
        per_column[c] += 1;
    }
    let mut out = image::RgbImage::new(tw, th);
    let mut sums = vec![0u64; tw as usize * 3];
    let (mut target, mut rows_in) = (0u32, 0u64);
    let mut flush = |target: u32, rows_in: u64, sums: &mut Vec<u64>| {
        for (x, px) in (0..tw as usize).zip(sums.chunks_mut(3)) {
            let n = (per_column[x] * rows_in).max(1);
            let rgb = [0, 1, 2].map(|c| ((px[c] + n / 2) / n) as u8);
            out.put_pixel(x as u32, target, image::Rgb(rgb));
            px.fill(0);
        }
    };
    for y in 0..h {
        let row = reader.next_row().map_err(bad)?.ok_or_else(|| {
            PhotoServeError::Unreadable(format!("the PNG ends at row {y} of {h}"))
        })?;
        let this = (u64::from(y) * u64::from(th) / u64::from(h)) as u32;
        if this != target {
            flush(target, rows_in, &mut sums);
            (target, rows_in) = (this, 0);
        }
        rows_in += 1;
        for (px, &c) in row.data().chunks_exact(channels).zip(&column) {
            let (r, g, b) = match channels {
                1 | 2 => (px[0], px[0], px[0]),
                _ => (px[0], px[1], px[2]),
            };
            sums[c * 3] += u64::from(r);
            sums[c * 3 + 1] += u64::from(g);
            sums[c * 3 + 2] += u64::from(b);
        }
    }
    flush(target, rows_in, &mut sums);
    // Damage after the last row (a bad checksum, a cut-off end) counts too.
    reader.finish().map_err(bad)?;
    Ok(Some(out))
}

fn decode_color(bytes: &[u8], format: Format) -> Result<image::DynamicImage, PhotoServeError> {
    use image::ImageDecoder;
    let fmt = match format {
        Format::Jpeg => image::ImageFormat::Jpeg,
        Format::Png => image::ImageFormat::Png,
        Format::Gif => image::ImageFormat::Gif,
        Format::Webp => image::ImageFormat::WebP,
        Format::Bmp => image::ImageFormat::Bmp,
        Format::Tiff => image::ImageFormat::Tiff,
        Format::Heic => return Err(PhotoServeError::NotAPhoto),
    };
    let bad = |e: image::ImageError| match e {
        image::ImageError::Limits(l) => PhotoServeError::TooLarge(l.to_string()),
        other => PhotoServeError::Unreadable(other.to_string()),
    };
    let mut reader = image::ImageReader::with_format(Cursor::new(bytes), fmt);
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(512 << 20);
    limits.max_image_width = Some(1 << 16);
    limits.max_image_height = Some(1 << 16);
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(bad)?;
    let orientation = decoder.orientation().ok();
    let mut img = image::DynamicImage::from_decoder(decoder).map_err(bad)?;
    if let Some(o) = orientation {
        img.apply_orientation(o);
    }
    Ok(img)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_cache_keeps_what_fits_and_decodes_each_photo_once() {
        let img = image::RgbImage::from_fn(800, 600, |x, y| image::Rgb([x as u8, y as u8, 7]));
        let mut png = Vec::new();
        img.write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        let cache = std::sync::Arc::new(PhotoCache::new(1 << 20, 1));
        let decoded = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut views = Vec::new();
        for _ in 0..8 {
            let (cache, decoded, png) = (cache.clone(), decoded.clone(), png.clone());
            views.push(tokio::spawn(async move {
                cache
                    .get("a", || async move {
                        decoded.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        Ok::<_, PhotoServeError>(png)
                    })
                    .await
                    .unwrap()
                    .len()
            }));
        }
        for v in views {
            assert!(v.await.unwrap() > 0);
        }
        assert_eq!(decoded.load(std::sync::atomic::Ordering::SeqCst), 1);
        // A tiny cache keeps nothing bigger than itself.
        let tiny = PhotoCache::new(10, 1);
        tiny.keep("b", Arc::new(vec![0; 100]));
        assert!(tiny.lookup("b").is_none());
        tiny.keep("c", Arc::new(vec![0; 6]));
        tiny.keep("d", Arc::new(vec![0; 6]));
        assert!(tiny.lookup("c").is_none(), "the older one went");
        assert!(tiny.lookup("d").is_some());
    }

    #[test]
    fn a_16_bit_png_is_shrunk_as_it_is_read() {
        let img = image::ImageBuffer::<image::Rgb<u16>, _>::from_fn(3200, 1000, |x, _| {
            if x < 1600 {
                image::Rgb([65535, 0, 0])
            } else {
                image::Rgb([0, 0, 65535])
            }
        });
        let mut png = Vec::new();
        img.write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        let small = png_streamed(&png).unwrap().expect("a plain PNG streams");
        assert_eq!((small.width(), small.height()), (1600, 500));
        assert_eq!(small.get_pixel(10, 10).0, [255, 0, 0]);
        assert_eq!(small.get_pixel(1590, 490).0, [0, 0, 255]);
        let back = image::load_from_memory(&reencode(&png).unwrap()).unwrap();
        assert_eq!((back.width(), back.height()), (1600, 500));
        // Cut short: refused, not painted grey.
        assert!(reencode(&png[..png.len() / 2]).is_err());
    }

    #[test]
    fn svg_and_html_posing_as_photos_are_refused() {
        let svg = br#"<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>"#;
        assert!(matches!(reencode(svg), Err(PhotoServeError::NotAPhoto)));
        let html = b"<html><body><script>alert(1)</script></body></html>";
        assert!(matches!(reencode(html), Err(PhotoServeError::NotAPhoto)));
    }

    #[test]
    fn a_png_comes_back_as_a_smaller_jpeg_without_its_tail() {
        let img = image::RgbImage::from_fn(2400, 1200, |x, y| {
            image::Rgb([(x % 256) as u8, (y % 256) as u8, 128])
        });
        let mut png = Vec::new();
        img.write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        png.extend_from_slice(b"<script>alert(1)</script>");
        let out = reencode(&png).unwrap();
        assert_eq!(&out[..3], &[0xFF, 0xD8, 0xFF]);
        let back = image::load_from_memory(&out).unwrap();
        assert_eq!((back.width(), back.height()), (1600, 800));
        assert!(!out.windows(8).any(|w| w == b"<script>"));
    }
}
