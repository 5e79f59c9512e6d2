//! The supervisors' dashboard: the desk's counts, the charts of the
//! reports (drawn by [`crate::web::charts`] from what the template says
//! of them, so every word is the template's), and each chart's numbers as
//! CSV.

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use minijinja::context;
use minijinja::value::{Value, ViaDeserialize};

use super::{Page, Signed};
use crate::web::audit::csv_field;
use crate::web::charts::{bar_chart, BarChart};
use crate::web::WebError;
use crate::workflow::reports::{self, Reports};

/// The charts whose numbers download as `/dashboard/<name>.csv`.
pub const CHARTS: [&str; 6] = [
    "days-30",
    "days-90",
    "service-level",
    "open-age",
    "operators",
    "grace",
];

/// The dashboard page.
pub async fn dashboard(op: Signed) -> Page {
    let desk = op.c.desk();
    let d = reports::dashboard_numbers(desk)
        .await
        .map_err(|e| op.fail(e))?;
    let r = reports::reports(desk).await.map_err(|e| op.fail(e))?;
    let days_30 = r.last_30_days().to_vec();
    // The template describes each chart (its words and its numbers); this
    // draws it, already escaped.
    let chart = Value::from_function(|spec: ViaDeserialize<BarChart>| {
        Value::from_safe_string(bar_chart(&spec))
    });
    op.render(
        "dashboard.html",
        StatusCode::OK,
        context! { d, r, days_30, chart },
    )
}

/// One chart's numbers as CSV: `/dashboard/<chart>.csv`.
pub async fn dashboard_csv(op: Signed, Path(file): Path<String>) -> Page {
    let name = file
        .strip_suffix(".csv")
        .filter(|n| CHARTS.contains(n))
        .ok_or_else(|| op.fail(WebError::NotFound))?;
    let r = reports::reports(op.c.desk())
        .await
        .map_err(|e| op.fail(e))?;
    let body = report_csv(&r, name).ok_or_else(|| op.fail(WebError::NotFound))?;
    let disposition = format!("attachment; filename=\"huytk-{name}.csv\"");
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response())
}

/// The rows of one chart, header first, as the JSON names its fields.
fn report_rows(r: &Reports, chart: &str) -> Option<Vec<Vec<String>>> {
    let n = |v: i64| v.to_string();
    let days = |rows: &[reports::DayRow]| {
        let mut out = vec![vec!["day".into(), "received".into(), "decided".into()]];
        out.extend(
            rows.iter()
                .map(|d| vec![d.day.clone(), n(d.received), n(d.decided)]),
        );
        out
    };
    let rows = match chart {
        "days-30" => days(r.last_30_days()),
        "days-90" => days(&r.days),
        "service-level" => {
            let mut out = vec![vec![
                "week".into(),
                "decided".into(),
                "within".into(),
                "share_percent".into(),
            ]];
            out.extend(r.weeks.iter().map(|w| {
                let share = w.share_percent.map(|p| format!("{p:.1}"));
                vec![
                    w.week.clone(),
                    n(w.decided),
                    n(w.within),
                    share.unwrap_or_default(),
                ]
            }));
            out
        }
        "open-age" => {
            let mut out = vec![vec!["bucket".into(), "count".into()]];
            out.extend(
                r.open_by_age
                    .iter()
                    .map(|a| vec![a.bucket.clone(), n(a.count)]),
            );
            out
        }
        "operators" => {
            let mut out = vec![vec![
                "operator".into(),
                "approve_first".into(),
                "approve".into(),
                "reject".into(),
                "ask".into(),
                "total".into(),
            ]];
            out.extend(r.operators.iter().map(|o| {
                vec![
                    o.operator.clone(),
                    n(o.approve_first),
                    n(o.approve),
                    n(o.reject),
                    n(o.ask),
                    n(o.total),
                ]
            }));
            out
        }
        "grace" => {
            let mut out = vec![vec!["outcome".into(), "count".into()]];
            out.extend(
                r.grace_outcomes
                    .iter()
                    .map(|g| vec![g.outcome.clone(), n(g.count)]),
            );
            out
        }
        _ => return None,
    };
    Some(rows)
}

/// One chart's numbers as CSV (UTF-8 with a byte-order mark, so a
/// spreadsheet reads it as UTF-8; CRLF lines, every field quoted).
pub fn report_csv(r: &Reports, chart: &str) -> Option<String> {
    let rows = report_rows(r, chart)?;
    let mut out = String::from("\u{feff}");
    for row in rows {
        let fields: Vec<String> = row.iter().map(|f| csv_field(f)).collect();
        out.push_str(&fields.join(","));
        out.push_str("\r\n");
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workflow::reports::{DayRow, OutcomeRow, WeekRow};

    fn sample() -> Reports {
        Reports {
            today: "2026-11-25".into(),
            from: "2026-11-24".into(),
            service_level_days: 20,
            days: vec![
                DayRow {
                    day: "2026-11-24".into(),
                    received: 4,
                    decided: 1,
                },
                DayRow {
                    day: "2026-11-25".into(),
                    received: 2,
                    decided: 3,
                },
            ],
            weeks: vec![WeekRow {
                week: "2026-11-23".into(),
                decided: 4,
                within: 3,
                share_percent: Some(75.0),
            }],
            open_by_age: Vec::new(),
            operators: Vec::new(),
            grace_outcomes: vec![OutcomeRow {
                outcome: "deleted".into(),
                count: 2,
            }],
        }
    }

    #[test]
    fn each_chart_downloads_with_a_header_row() {
        let r = sample();
        for c in CHARTS {
            assert!(report_csv(&r, c).is_some(), "{c}");
        }
        assert_eq!(
            report_csv(&r, "days-90").unwrap(),
            "\u{feff}\"day\",\"received\",\"decided\"\r\n\"2026-11-24\",\"4\",\"1\"\r\n\"2026-11-25\",\"2\",\"3\"\r\n"
        );
        assert!(report_csv(&r, "service-level")
            .unwrap()
            .contains("\"2026-11-23\",\"4\",\"3\",\"75.0\""));
        assert!(report_csv(&r, "secrets").is_none());
    }

    #[test]
    fn the_template_draws_every_chart_with_its_words() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/web");
        let mut env = minijinja::Environment::new();
        for name in ["base.html", "dashboard.html"] {
            let text = std::fs::read_to_string(dir.join(name)).unwrap();
            env.add_template_owned(name, text).unwrap();
        }
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        env.add_filter("state_vi", |s: String| s);
        let r = sample();
        let d = context! { overdue => 0, due_soon => 0, failed_messages => 0, failed_mails => 0,
        sender_unauthenticated => 0, followup_unauthenticated => 0, retrying => Vec::<()>::new(),
        by_state => Vec::<()>::new() };
        let chart = Value::from_function(|spec: ViaDeserialize<BarChart>| {
            Value::from_safe_string(bar_chart(&spec))
        });
        let html = env
            .get_template("dashboard.html")
            .unwrap()
            .render(context! { d, days_30 => r.last_30_days().to_vec(), r, chart, me => (), csrf => "" })
            .unwrap();
        for id in ["days-30", "days-90", "service-level", "open-age", "grace"] {
            assert!(
                html.contains(&format!(
                    "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" id=\"chart-{id}\""
                )),
                "{id}"
            );
            assert!(
                html.contains(&format!("href=\"/dashboard/{id}.csv\"")),
                "{id}"
            );
        }
        assert!(html.contains(r#"data-series="received""#));
        assert!(html.contains(r#"data-category="2026-11-25" data-value="3""#));
        assert!(html.contains(r#"data-category="2026-11-23" data-value="75""#));
        assert!(html.contains(r#"data-category="deleted" data-value="2""#));
        assert!(html.contains(">Đã chuyển xóa<"));
        assert!(html.contains("<th scope=\"row\">24/11/2026</th>"));
        assert!(html.contains("Chưa có quyết định nào"));
    }
}
