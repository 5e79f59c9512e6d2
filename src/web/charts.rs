//! Bar charts drawn on the server as SVG: data in, an SVG string out, no
//! script (the console's CSP forbids inline code; presentation attributes
//! are not styles, so the strict `style-src` holds too). Every word comes
//! from the caller (the page template), so a chart speaks the console's
//! Vietnamese; the SVG carries its title and description for screen
//! readers, and each bar its category and value as data attributes (and a
//! tooltip), which is what the tests read back.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt::Write;

/// The drawing's size in SVG units (it scales to the page's width).
const WIDTH: f64 = 880.0;
const HEIGHT: f64 = 300.0;
/// Room for the y axis's numbers and title, the legend, the x labels.
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 36.0;
const BOTTOM: f64 = 44.0;
/// Series colours, each at least 4.5:1 against white (WCAG 1.4.11 asks
/// 3:1 of graphics): blue, rust, green, purple.
const COLOURS: [&str; 4] = ["#1f5fa8", "#a34700", "#2e7d32", "#6a1b9a"];
/// Text and axes.
const INK: &str = "#222222";
/// Grid lines (decoration; the numbers are on the axis).
const GRID: &str = "#d0d0d0";
/// At most this many category labels under the x axis.
const MAX_X_LABELS: usize = 15;

/// One series of bars.
#[derive(Debug, Clone, Deserialize)]
pub struct Series {
    /// A stable key (`received`, `decided`…): the bars' `data-series`.
    pub key: String,
    /// Its name as the legend and tooltips say it.
    pub name: String,
    /// One value per category; none draws no bar.
    pub values: Vec<Option<f64>>,
}

/// A bar chart: categories along the x axis, one bar per series in each.
#[derive(Debug, Clone, Deserialize)]
pub struct BarChart {
    /// The SVG's id, unique in the page (its title and description hang
    /// off it).
    pub id: String,
    /// The chart's name.
    pub title: String,
    /// What the y axis counts.
    pub unit: String,
    /// The categories (a `YYYY-MM-DD` date is shown as `dd/mm`).
    pub categories: Vec<String>,
    /// How to show a category that is a key (`deleted` → its words).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The series.
    pub series: Vec<Series>,
    /// A share in percent: the axis runs from 0 to 100 %.
    #[serde(default)]
    pub percent: bool,
}

/// Escapes text for SVG content and attributes.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A category as the chart shows it: its label if it has one, `dd/mm` for
/// a date, else at most 14 characters.
fn shown(chart: &BarChart, c: &str) -> String {
    chart
        .labels
        .get(c)
        .cloned()
        .unwrap_or_else(|| short_label(c))
}

/// `dd/mm` for a date, else at most 14 characters.
fn short_label(c: &str) -> String {
    let b = c.as_bytes();
    if b.len() == 10 && b[4] == b'-' && b[7] == b'-' {
        return format!("{}/{}", &c[8..10], &c[5..7]);
    }
    if c.chars().count() > 14 {
        let head: String = c.chars().take(13).collect();
        return format!("{head}…");
    }
    c.to_owned()
}

/// A number as the chart writes it: no decimals when whole, else one,
/// with a decimal comma as Vietnamese writes it.
fn number(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}").replace('.', ",")
    }
}

/// The y axis's top and step: a 1, 2 or 5 times a power of ten step, about
/// five ticks, covering `max` (at least 1).
pub fn ticks(max: f64) -> (f64, f64) {
    let max = max.max(1.0);
    let raw = max / 5.0;
    let power = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * power)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * power)
        .max(1.0);
    ((max / step).ceil() * step, step)
}

/// Draws `chart` as an SVG element to put in the page.
pub fn bar_chart(chart: &BarChart) -> String {
    let n = chart.categories.len().max(1);
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let max = chart
        .series
        .iter()
        .flat_map(|s| s.values.iter().flatten())
        .fold(0.0f64, |m, v| m.max(*v));
    let (top, step) = if chart.percent {
        (100.0, 20.0)
    } else {
        ticks(max)
    };
    let y = |v: f64| TOP + plot_h - (v / top * plot_h);
    let id = esc(&chart.id);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="{id}" role="img" viewBox="0 0 {WIDTH} {HEIGHT}" aria-labelledby="{id}-title {id}-desc" font-family="sans-serif" font-size="12" fill="{INK}">"#
    );
    let _ = write!(
        s,
        r#"<title id="{id}-title">{}</title><desc id="{id}-desc">{}</desc>"#,
        esc(&chart.title),
        esc(&describe(chart))
    );
    axes(&mut s, chart, top, step, &y);
    let slot = plot_w / n as f64;
    let k = chart.series.len().max(1) as f64;
    let bar_w = (slot * 0.8 / k).max(1.0);
    for (i, series) in chart.series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let _ = write!(
            s,
            r#"<g data-series="{}" fill="{colour}">"#,
            esc(&series.key)
        );
        for (j, c) in chart.categories.iter().enumerate() {
            let Some(v) = series.values.get(j).copied().flatten() else {
                continue;
            };
            let x = LEFT + slot * j as f64 + slot * 0.1 + bar_w * i as f64;
            let unit = if chart.percent { " %" } else { "" };
            let _ = write!(
                s,
                r#"<rect x="{x:.1}" y="{:.1}" width="{bar_w:.1}" height="{:.1}" data-category="{}" data-value="{}"><title>{} · {}: {}{unit}</title></rect>"#,
                y(v),
                TOP + plot_h - y(v),
                esc(c),
                v,
                esc(&shown(chart, c)),
                esc(&series.name),
                number(v)
            );
        }
        s.push_str("</g>");
    }
    legend(&mut s, chart);
    s.push_str("</svg>");
    s
}

/// The description a screen reader gives after the title.
fn describe(chart: &BarChart) -> String {
    let (first, last) = (
        chart.categories.first().map(|c| shown(chart, c)),
        chart.categories.last().map(|c| shown(chart, c)),
    );
    let names: Vec<&str> = chart.series.iter().map(|s| s.name.as_str()).collect();
    match (first, last) {
        (Some(a), Some(b)) if chart.categories.len() > 1 => format!(
            "{} ({}), {a} – {b}; {}",
            names.join(", "),
            chart.unit,
            chart.categories.len()
        ),
        _ => format!("{} ({})", names.join(", "), chart.unit),
    }
}

/// The y axis with its grid and numbers, the x axis with its labels.
fn axes(s: &mut String, chart: &BarChart, top: f64, step: f64, y: &dyn Fn(f64) -> f64) {
    let plot_w = WIDTH - LEFT - RIGHT;
    let mut v = 0.0;
    while v <= top + step / 2.0 {
        let yy = y(v);
        let suffix = if chart.percent { " %" } else { "" };
        let _ = write!(
            s,
            r#"<line x1="{LEFT}" x2="{:.1}" y1="{yy:.1}" y2="{yy:.1}" stroke="{GRID}"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}{suffix}</text>"#,
            LEFT + plot_w,
            LEFT - 6.0,
            yy + 4.0,
            number(v)
        );
        v += step;
    }
    let base = y(0.0);
    let _ = write!(
        s,
        r#"<line x1="{LEFT}" x2="{:.1}" y1="{base:.1}" y2="{base:.1}" stroke="{INK}"/><line x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{base:.1}" stroke="{INK}"/>"#,
        LEFT + plot_w
    );
    let _ = write!(
        s,
        r#"<text transform="translate(14 {:.1}) rotate(-90)" text-anchor="middle">{}</text>"#,
        TOP + (base - TOP) / 2.0,
        esc(&chart.unit)
    );
    let n = chart.categories.len().max(1);
    let every = n.div_ceil(MAX_X_LABELS);
    let slot = plot_w / n as f64;
    for (j, c) in chart.categories.iter().enumerate() {
        if j % every != 0 {
            continue;
        }
        let x = LEFT + slot * (j as f64 + 0.5);
        let _ = write!(
            s,
            r#"<text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            base + 18.0,
            esc(&shown(chart, c))
        );
    }
}

/// The series' names with their colours, above the plot.
fn legend(s: &mut String, chart: &BarChart) {
    let mut x = LEFT;
    for (i, series) in chart.series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let _ = write!(
            s,
            r#"<rect x="{x:.1}" y="10" width="14" height="14" fill="{colour}"/><text x="{:.1}" y="22">{}</text>"#,
            x + 20.0,
            esc(&series.name)
        );
        // About 7 units a character at this size, plus the swatch.
        x += 40.0 + 7.0 * series.name.chars().count() as f64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart() -> BarChart {
        BarChart {
            id: "days".into(),
            title: "Yêu cầu nhận và đã quyết định".into(),
            unit: "yêu cầu".into(),
            categories: vec!["2026-11-23".into(), "2026-11-24".into()],
            labels: BTreeMap::new(),
            series: vec![
                Series {
                    key: "received".into(),
                    name: "Nhận".into(),
                    values: vec![Some(3.0), Some(0.0)],
                },
                Series {
                    key: "decided".into(),
                    name: "Đã quyết định <&>".into(),
                    values: vec![Some(1.0), None],
                },
            ],
            percent: false,
        }
    }

    #[test]
    fn every_bar_carries_its_category_and_value() {
        let svg = bar_chart(&chart());
        assert!(svg.starts_with("<svg ") && svg.ends_with("</svg>"));
        assert!(svg.contains(r#"role="img""#));
        assert!(svg.contains(r#"aria-labelledby="days-title days-desc""#));
        assert!(svg.contains("<title id=\"days-title\">Yêu cầu nhận và đã quyết định</title>"));
        assert!(svg.contains(r#"data-category="2026-11-23" data-value="3""#));
        assert!(svg.contains(r#"data-category="2026-11-24" data-value="0""#));
        assert_eq!(svg.matches("data-value=").count(), 3, "no bar for none");
        assert!(svg.contains(">23/11<"), "dates as dd/mm");
        assert!(svg.contains("Đã quyết định &lt;&amp;&gt;"));
        assert!(!svg.contains("<&>"));
        assert!(!svg.contains("style="), "the CSP forbids inline styles");
        assert!(!svg.contains("<script"));
    }

    #[test]
    fn taller_bars_for_bigger_numbers() {
        let svg = bar_chart(&chart());
        let height = |cat_value: &str| -> f64 {
            let at = svg.find(cat_value).unwrap();
            let head = &svg[..at];
            let h = head.rfind("height=\"").unwrap() + 8;
            head[h..].split('"').next().unwrap().parse().unwrap()
        };
        let three = height(r#"data-category="2026-11-23" data-value="3""#);
        let one = height(r#"data-category="2026-11-23" data-value="1""#);
        let zero = height(r#"data-category="2026-11-24" data-value="0""#);
        assert!(three > one && one > zero, "{three} {one} {zero}");
        assert!(
            (three - 3.0 * one).abs() < 0.2,
            "proportional: {three} {one}"
        );
        assert_eq!(zero, 0.0);
    }

    #[test]
    fn ticks_are_round_and_cover_the_top() {
        assert_eq!(ticks(0.0), (1.0, 1.0));
        assert_eq!(ticks(3.0), (3.0, 1.0));
        assert_eq!(ticks(17.0), (20.0, 5.0));
        assert_eq!(ticks(120.0), (150.0, 50.0));
        let mut c = chart();
        c.percent = true;
        let svg = bar_chart(&c);
        assert!(svg.contains(">100 %<") && svg.contains(">0 %<"));
        assert_eq!(number(87.5), "87,5");
    }

    #[test]
    fn keys_are_shown_by_their_labels() {
        let mut c = chart();
        c.categories = vec!["deleted".into(), "cancelled".into()];
        c.labels.insert("deleted".into(), "Đã xóa".into());
        let svg = bar_chart(&c);
        assert!(svg.contains(r#"data-category="deleted" data-value="3""#));
        assert!(svg.contains(">Đã xóa<") && svg.contains(">cancelled<"));
        assert!(!svg.contains(">deleted<"));
    }

    #[test]
    fn long_series_show_a_label_every_few_bars() {
        let mut c = chart();
        c.categories = (1..=90).map(|i| format!("op{i}")).collect();
        c.series.truncate(1);
        c.series[0].values = vec![Some(1.0); 90];
        let svg = bar_chart(&c);
        assert_eq!(svg.matches("<rect x").count(), 91, "90 bars and a swatch");
        let labels = svg.matches(r#"text-anchor="middle">op"#).count();
        assert!((10..=MAX_X_LABELS).contains(&labels), "{labels}");
    }
}
