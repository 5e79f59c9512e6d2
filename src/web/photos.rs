//! Photos as the console serves them: decoded from the citizen's bytes and
//! re-encoded as a fresh JPEG, upright, at most 1600 pixels on the long
//! side. Nothing of the original file survives (no EXIF, no GPS, no
//! trailing payload), and only content that decodes as a picture is ever
//! served, always as `image/jpeg`: an SVG or HTML file named `.jpg` is not.

use std::io::Cursor;

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

/// Decodes, orients, shrinks and re-encodes a photo as JPEG.
pub fn reencode(bytes: &[u8]) -> Result<Vec<u8>, PhotoServeError> {
    let format = photos::sniff(bytes).ok_or(PhotoServeError::NotAPhoto)?;
    if let Some((w, h)) = photos::declared_size(bytes, format) {
        photos::check_size(w, h).map_err(|e| PhotoServeError::TooLarge(e.to_string()))?;
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
    let img = if img.width().max(img.height()) > MAX_SIDE {
        img.resize(MAX_SIDE, MAX_SIDE, image::imageops::FilterType::Triangle)
    } else {
        img
    };
    let rgb = img.into_rgb8();
    let mut out = Vec::new();
    let enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85);
    rgb.write_with_encoder(enc)
        .map_err(|e| PhotoServeError::Unreadable(e.to_string()))?;
    Ok(out)
}

fn decode_color(bytes: &[u8], format: Format) -> Result<image::DynamicImage, PhotoServeError> {
    use image::ImageDecoder;
    let fmt = match format {
        Format::Jpeg => image::ImageFormat::Jpeg,
        Format::Png => image::ImageFormat::Png,
        Format::Gif => image::ImageFormat::Gif,
        Format::Webp => image::ImageFormat::WebP,
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
