//! The card's QR code: found cheaply, decoded, and parsed.
//!
//! Decoding a QR code over a whole 1600×1010 photo costs about 20 ms; once
//! its region is known, a few. So a quarter-size picture is scanned for the
//! one thing a QR code is: a compact patch dense with sharp black/white
//! edges in both directions. Only those patches are handed to the decoder,
//! at a resolution that keeps modules at least ~3 pixels wide.

use serde::Serialize;

use super::photos::{shrink, Gray};
use crate::domain::text::fold;

/// What the card's QR code says. It raises confidence; it proves nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CardQr {
    /// Field 0: the 12-digit number of the card.
    pub id_number: String,
    /// The old 9-digit CMND, or "".
    pub old_id_number: String,
    /// The holder's name.
    pub full_name: String,
    /// Birth date, ISO (`2003-05-12`), or "".
    pub birth_date: String,
    /// "Nam" or "Nữ", or "".
    pub sex: String,
    /// Issue date, ISO, or "" (not part of the report: it tells the 2021
    /// card, QR on the front, from the 2024 card, QR on the back).
    #[serde(skip)]
    pub issue_date: String,
}

fn iso_date(s: &str) -> Option<String> {
    if s.len() != 8 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (d, m, y) = (&s[..2], &s[2..4], &s[4..]);
    let (dn, mn): (u32, u32) = (d.parse().ok()?, m.parse().ok()?);
    ((1..=31).contains(&dn) && (1..=12).contains(&mn)).then(|| format!("{y}-{m}-{d}"))
}

/// Parses the text of a card QR code: `id|old_cmnd|name|ddmmyyyy|sex|…`.
/// Field 0 must be the 12-digit number; the rest is found by its shape,
/// not by position, since card generations differ.
pub fn parse_card_qr(text: &str) -> Option<CardQr> {
    let fields: Vec<&str> = text.trim().split('|').map(str::trim).collect();
    let id = *fields.first()?;
    if id.len() != 12 || !id.bytes().all(|b| b.is_ascii_digit()) || fields.len() < 3 {
        return None;
    }
    let rest = &fields[1..];
    let old_id = rest
        .iter()
        .find(|f| f.len() == 9 && f.bytes().all(|b| b.is_ascii_digit()))
        .copied()
        .unwrap_or("");
    let dates: Vec<String> = rest.iter().filter_map(|f| iso_date(f)).collect();
    let sex = rest
        .iter()
        .find(|f| matches!(fold(f).as_str(), "nam" | "nu"))
        .map(|s| crate::domain::text::nfc(s))
        .unwrap_or_default();
    // The name: the first field with letters that is neither the sex nor an
    // address (addresses carry commas).
    let name = rest
        .iter()
        .find(|f| {
            f.chars().any(char::is_alphabetic)
                && !matches!(fold(f).as_str(), "nam" | "nu")
                && !f.contains(',')
                && !f.bytes().any(|b| b.is_ascii_digit())
        })
        .map(|s| crate::domain::text::nfc(s))
        .unwrap_or_default();
    Some(CardQr {
        id_number: id.to_owned(),
        old_id_number: old_id.to_owned(),
        full_name: name,
        birth_date: dates.first().cloned().unwrap_or_default(),
        sex,
        issue_date: if dates.len() > 1 {
            dates.last().cloned().unwrap_or_default()
        } else {
            String::new()
        },
    })
}

/// A rectangle in picture coordinates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    /// Left.
    pub x: u32,
    /// Top.
    pub y: u32,
    /// Width.
    pub w: u32,
    /// Height.
    pub h: u32,
}

/// Side of an analysis cell, in quarter-picture pixels (16 full pixels).
const CELL: u32 = 4;

/// Finds patches of a picture that may hold a QR code, best first, in the
/// picture's coordinates. `quarter` is the picture shrunk 4×.
pub fn candidate_regions(quarter: &Gray) -> Vec<Region> {
    let Some(busy) = Cells::busy(quarter) else {
        return Vec::new();
    };
    // Close one-cell gaps (quiet modules inside the code), then open
    // (erode, then dilate): the card's border and other thin edges, which
    // rotated photos make busy too, vanish and stop merging with the code;
    // a solid patch of modules survives.
    let closed = busy.closed();
    let eroded = closed.map(|c, x, y| c.at(x, y) && c.neighbours(x, y) >= 5);
    let opened =
        closed.map(|c, x, y| c.at(x, y) && (eroded.at(x, y) || eroded.neighbours(x, y) > 0));
    let mut regions: Vec<(f32, Region)> = opened
        .groups()
        .into_iter()
        .filter_map(|g| g.as_candidate())
        .collect();
    regions.sort_by(|a, b| b.0.total_cmp(&a.0));
    regions.into_iter().map(|(_, r)| r).collect()
}

/// A grid of analysis cells, each busy (module edges) or not.
#[derive(Clone)]
struct Cells {
    w: u32,
    h: u32,
    on: Vec<bool>,
}

/// A connected group of busy cells: its bounding box and size, in cells.
struct Group {
    x0: u32,
    y0: u32,
    x1: u32,
    y1: u32,
    count: u32,
}

impl Cells {
    /// Marks the cells that span strong contrast and where most pixel
    /// steps, across and down, are large; `None` for a picture too small.
    fn busy(quarter: &Gray) -> Option<Cells> {
        let (w, h) = (quarter.width / CELL, quarter.height / CELL);
        if w < 3 || h < 3 {
            return None;
        }
        let mut on = vec![false; (w * h) as usize];
        for cy in 0..h {
            for cx in 0..w {
                on[(cy * w + cx) as usize] = cell_is_busy(quarter, cx, cy);
            }
        }
        Some(Cells { w, h, on })
    }

    /// Whether the cell at (x, y) is busy; outside the grid, no.
    fn at(&self, x: i64, y: i64) -> bool {
        x >= 0
            && y >= 0
            && x < i64::from(self.w)
            && y < i64::from(self.h)
            && self.on[(y * i64::from(self.w) + x) as usize]
    }

    /// Busy cells among the eight around (x, y).
    fn neighbours(&self, x: i64, y: i64) -> usize {
        let mut n = 0;
        for dy in -1i64..=1 {
            for dx in -1i64..=1 {
                if (dx, dy) != (0, 0) && self.at(x + dx, y + dy) {
                    n += 1;
                }
            }
        }
        n
    }

    /// A grid of the same size, each cell computed from this one.
    fn map(&self, f: impl Fn(&Cells, i64, i64) -> bool) -> Cells {
        let mut on = vec![false; self.on.len()];
        for y in 0..i64::from(self.h) {
            for x in 0..i64::from(self.w) {
                on[(y * i64::from(self.w) + x) as usize] = f(self, x, y);
            }
        }
        Cells { on, ..*self }
    }

    /// One-cell gaps between busy cells (across or down) filled.
    fn closed(&self) -> Cells {
        self.map(|c, x, y| {
            c.at(x, y) || (c.at(x - 1, y) && c.at(x + 1, y)) || (c.at(x, y - 1) && c.at(x, y + 1))
        })
    }

    /// The connected groups of busy cells (eight-connected).
    fn groups(&self) -> Vec<Group> {
        let mut seen = vec![false; self.on.len()];
        let mut out = Vec::new();
        let mut stack = Vec::new();
        for start in 0..self.on.len() {
            if !self.on[start] || seen[start] {
                continue;
            }
            seen[start] = true;
            stack.push(start);
            let mut g = Group {
                x0: u32::MAX,
                y0: u32::MAX,
                x1: 0,
                y1: 0,
                count: 0,
            };
            while let Some(i) = stack.pop() {
                let (x, y) = (i as u32 % self.w, i as u32 / self.w);
                g.count += 1;
                g.x0 = g.x0.min(x);
                g.y0 = g.y0.min(y);
                g.x1 = g.x1.max(x);
                g.y1 = g.y1.max(y);
                for dy in -1i64..=1 {
                    for dx in -1i64..=1 {
                        let (nx, ny) = (i64::from(x) + dx, i64::from(y) + dy);
                        if self.at(nx, ny) {
                            let j = (ny * i64::from(self.w) + nx) as usize;
                            if !seen[j] {
                                seen[j] = true;
                                stack.push(j);
                            }
                        }
                    }
                }
            }
            out.push(g);
        }
        out
    }
}

impl Group {
    /// The group as a scored candidate region in picture pixels, if it is
    /// shaped like a code: big enough, squarish, mostly filled.
    fn as_candidate(&self) -> Option<(f32, Region)> {
        let (bw, bh) = (self.x1 - self.x0 + 1, self.y1 - self.y0 + 1);
        let fill = self.count as f32 / (bw * bh) as f32;
        let aspect = bw.max(bh) as f32 / bw.min(bh) as f32;
        if bw < 2 || bh < 2 || aspect > 2.5 || fill < 0.3 {
            return None;
        }
        let score = self.count as f32 * fill / aspect;
        let scale = CELL * 4;
        let region = Region {
            x: self.x0 * scale,
            y: self.y0 * scale,
            w: bw * scale,
            h: bh * scale,
        };
        Some((score, region))
    }
}

/// Whether the cell (cx, cy) of `quarter` spans strong contrast with large
/// pixel steps across and down: module edges everywhere.
fn cell_is_busy(quarter: &Gray, cx: u32, cy: u32) -> bool {
    let qw = quarter.width as usize;
    let px = &quarter.pixels;
    let (x0, y0) = ((cx * CELL) as usize, (cy * CELL) as usize);
    let (mut lo, mut hi) = (255u8, 0u8);
    let (mut steps_x, mut steps_y) = (0u32, 0u32);
    for y in y0..y0 + CELL as usize {
        let row = &px[y * qw..];
        for x in x0..x0 + CELL as usize {
            let v = row[x];
            lo = lo.min(v);
            hi = hi.max(v);
            if x + 1 < qw {
                steps_x += u32::from(v.abs_diff(row[x + 1]));
            }
            if y + 1 < quarter.height as usize {
                steps_y += u32::from(v.abs_diff(px[(y + 1) * qw + x]));
            }
        }
    }
    let range = u32::from(hi - lo);
    let n = CELL * CELL;
    range >= 48 && steps_x >= n * range / 8 && steps_y >= n * range / 8
}

/// Cuts `r` (grown by a margin for the quiet zone) out of `g`.
fn crop(g: &Gray, r: Region) -> Gray {
    let margin = (r.w.max(r.h) / 6).max(16);
    let x0 = r.x.saturating_sub(margin);
    let y0 = r.y.saturating_sub(margin);
    let x1 = (r.x + r.w + margin).min(g.width);
    let y1 = (r.y + r.h + margin).min(g.height);
    let (w, h) = (x1 - x0, y1 - y0);
    let mut pixels = Vec::with_capacity((w * h) as usize);
    for y in y0..y1 {
        let start = (y * g.width + x0) as usize;
        pixels.extend_from_slice(&g.pixels[start..start + w as usize]);
    }
    Gray {
        width: w,
        height: h,
        pixels,
    }
}

/// Otsu's threshold of a grey picture.
fn otsu(g: &Gray) -> u8 {
    let mut hist = [0u32; 256];
    for &v in &g.pixels {
        hist[v as usize] += 1;
    }
    let total = g.pixels.len() as f64;
    let sum: f64 = hist
        .iter()
        .enumerate()
        .map(|(i, &c)| i as f64 * f64::from(c))
        .sum();
    let (mut sum_b, mut w_b, mut best, mut best_t) = (0f64, 0f64, 0f64, 128u8);
    for (t, &c) in hist.iter().enumerate() {
        w_b += f64::from(c);
        if w_b == 0.0 {
            continue;
        }
        let w_f = total - w_b;
        if w_f == 0.0 {
            break;
        }
        sum_b += t as f64 * f64::from(c);
        let (m_b, m_f) = (sum_b / w_b, (sum - sum_b) / w_f);
        let between = w_b * w_f * (m_b - m_f) * (m_b - m_f);
        if between > best {
            best = between;
            best_t = t as u8;
        }
    }
    best_t
}

/// Decodes the QR codes quirc finds in `g`: fast, and good at small
/// modules.
fn quirc_codes(g: &Gray) -> Vec<String> {
    let mut quirc = quircs::Quirc::default();
    quirc
        .identify(g.width as usize, g.height as usize, &g.pixels)
        .filter_map(|c| c.ok()?.decode().ok())
        .filter_map(|d| String::from_utf8(d.payload).ok())
        .collect()
}

/// Decodes the QR codes rqrr finds in `g`, thresholded by rqrr's adaptive
/// rule or by Otsu's global one: slower, and it reads some codes quirc
/// misses (uneven light, blur).
fn rqrr_codes(g: &Gray, binarize: bool) -> Vec<String> {
    let (w, h) = (g.width as usize, g.height as usize);
    let mut img = if binarize {
        let t = otsu(g);
        rqrr::PreparedImage::prepare_from_bitmap(w, h, |x, y| g.pixels[y * w + x] <= t)
    } else {
        rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| g.pixels[y * w + x])
    };
    img.detect_grids()
        .into_iter()
        .filter_map(|grid| grid.decode().ok().map(|(_, text)| text))
        .collect()
}

/// How many candidate patches are tried per photo.
const MAX_CANDIDATES: usize = 4;

/// Sizes, in pixels, that a candidate patch is scaled to for the slow pass.
/// rqrr finds finder patterns reliably once modules are ~6 px or more; a
/// card's code has 41–57 modules, so ~380 px suits it, and a second, larger
/// try catches denser codes.
const PATCH_SIDES: [f32; 2] = [380.0, 720.0];

/// Scales a grey picture by `s` with bilinear interpolation.
pub fn resize(g: &Gray, s: f32) -> Gray {
    let w = ((g.width as f32 * s).round() as u32).max(1);
    let h = ((g.height as f32 * s).round() as u32).max(1);
    let mut pixels = Vec::with_capacity((w * h) as usize);
    let (gw, gh) = (g.width as usize, g.height as usize);
    for y in 0..h {
        let fy = ((y as f32 + 0.5) / s - 0.5).clamp(0.0, (gh - 1) as f32);
        let y0 = fy as usize;
        let y1 = (y0 + 1).min(gh - 1);
        let wy = fy - y0 as f32;
        for x in 0..w {
            let fx = ((x as f32 + 0.5) / s - 0.5).clamp(0.0, (gw - 1) as f32);
            let x0 = fx as usize;
            let x1 = (x0 + 1).min(gw - 1);
            let wx = fx - x0 as f32;
            let p = |xx: usize, yy: usize| f32::from(g.pixels[yy * gw + xx]);
            let top = p(x0, y0) * (1.0 - wx) + p(x1, y0) * wx;
            let bottom = p(x0, y1) * (1.0 - wx) + p(x1, y1) * wx;
            pixels.push((top * (1.0 - wy) + bottom * wy + 0.5) as u8);
        }
    }
    Gray {
        width: w,
        height: h,
        pixels,
    }
}

/// Finds and decodes the QR codes of an upright picture; `quarter` is the
/// same picture shrunk 4×. Returns the decoded texts.
pub fn find_codes(g: &Gray, quarter: &Gray) -> Vec<String> {
    let regions: Vec<Region> = candidate_regions(quarter)
        .into_iter()
        .take(MAX_CANDIDATES)
        .collect();
    let crops: Vec<Gray> = regions.iter().map(|r| crop(g, *r)).collect();
    // Fast pass: quirc on each patch as it is (very large ones halved).
    for c in &crops {
        let found = if c.width.min(c.height) > 900 {
            quirc_codes(&shrink(c, 2))
        } else {
            quirc_codes(c)
        };
        if !found.is_empty() {
            return found;
        }
    }
    // Slow pass: patches scaled to a module size rqrr reads well.
    for (r, c) in regions.iter().zip(&crops) {
        let side = r.w.max(r.h) as f32;
        for target in PATCH_SIDES {
            let s = target / side;
            if s > 4.0 {
                continue;
            }
            let patch = resize(c, s);
            let found = quirc_codes(&patch);
            if !found.is_empty() {
                return found;
            }
            for binarize in [false, true] {
                let found = rqrr_codes(&patch, binarize);
                if !found.is_empty() {
                    return found;
                }
            }
        }
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_2021_card_text() {
        let q = parse_card_qr(
            "079203001234||Nguyễn Văn An|12052003|Nam|Thôn 3, Xã Hòa Bình, Nghệ An|15082021",
        )
        .unwrap();
        assert_eq!(q.id_number, "079203001234");
        assert_eq!(q.old_id_number, "");
        assert_eq!(q.full_name, "Nguyễn Văn An");
        assert_eq!(q.birth_date, "2003-05-12");
        assert_eq!(q.sex, "Nam");
        assert_eq!(q.issue_date, "2021-08-15");
    }

    #[test]
    fn parses_by_shape_not_position() {
        let q = parse_card_qr(
            "001199012345|187389815|Trần Thị Bình|Nữ|01021999|Hà Nội, Việt Nam|01072024",
        )
        .unwrap();
        assert_eq!(q.old_id_number, "187389815");
        assert_eq!(q.full_name, "Trần Thị Bình");
        assert_eq!(q.sex, "Nữ");
        assert_eq!(q.birth_date, "1999-02-01");
    }

    #[test]
    fn other_qr_codes_are_not_cards() {
        assert_eq!(parse_card_qr("https://dichvucong.gov.vn"), None);
        assert_eq!(parse_card_qr("12345|x|y"), None);
    }
}
