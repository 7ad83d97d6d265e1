//! The chart of recent runs on the front page: SVG drawn when the page is
//! written (no script reads it), three panels on one time axis — versions
//! published, how long each run took, how far behind the upstream it was —
//! with a title and description for screen readers; the page gives the
//! same figures as a table.

use std::fmt::Write;

use super::escape::esc;

/// One run as the chart draws it.
#[derive(Clone, Debug)]
pub struct ChartRun {
    /// `sync` or `import`.
    pub command: String,
    /// When it started (Unix seconds).
    pub started: i64,
    pub published: u64,
    pub seconds: f64,
    /// Seconds behind the upstream, where known.
    pub lag: Option<i64>,
    /// Exited 0 (or, for the run writing the page, got this far).
    pub ok: bool,
}

const WIDTH: f64 = 720.0;
const PANEL: f64 = 70.0;
const GAP: f64 = 34.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 26.0;

/// A duration for an axis or a label: `42 s`, `7 min`, `3.5 h`, `2.0 d`.
/// One chart panel: its title, a value per run (none: not known), how a value is shown.
type Panel<'a> = (&'a str, Vec<Option<f64>>, fn(f64) -> String);

pub fn span(secs: f64) -> String {
    if secs < 90.0 {
        format!("{secs:.0} s")
    } else if secs < 5400.0 {
        format!("{:.0} min", secs / 60.0)
    } else if secs < 172_800.0 {
        format!("{:.1} h", secs / 3600.0)
    } else {
        format!("{:.1} d", secs / 86400.0)
    }
}

/// The SVG of `runs` (oldest first); `None` when there is nothing to draw.
pub fn svg(runs: &[ChartRun]) -> Option<String> {
    if runs.is_empty() {
        return None;
    }
    let n = runs.len() as f64;
    let plot = WIDTH - LEFT - RIGHT;
    let step = plot / n;
    // A few runs still draw bars, not slabs.
    let bar = (step * 0.7).clamp(1.0, 28.0);
    let height = TOP + 3.0 * (PANEL + GAP) + 8.0;
    let mut s = String::new();
    let first = crate::clock::rfc3339(runs[0].started);
    let last = crate::clock::rfc3339(runs[runs.len() - 1].started);
    let total: u64 = runs.iter().map(|r| r.published).sum();
    let failed = runs.iter().filter(|r| !r.ok).count();
    let _ = write!(
        s,
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" role="img" aria-labelledby="chart-title chart-desc">
<title id="chart-title">The last {count} runs</title>
<desc id="chart-desc">From {first} to {last}: {total} versions published in all, {failed} runs that did not succeed. Bars: versions published and duration per run; points: how far behind the upstream each run was.</desc>
<style>text {{ font: 12px system-ui, sans-serif; fill: #1a1a1a; }} .axis {{ stroke: #6b6b6b; stroke-width: 1; }} .bar {{ fill: #0b4f9c; }} .bad {{ fill: #b3261e; }} .lag {{ stroke: #6b3f00; stroke-width: 2; fill: none; }} .dot {{ fill: #6b3f00; }}</style>
"##,
        count = runs.len(),
        first = esc(&first),
        last = esc(&last),
    );
    let panels: [Panel; 3] = [
        (
            "Versions published",
            runs.iter().map(|r| Some(r.published as f64)).collect(),
            |v| format!("{v:.0}"),
        ),
        (
            "Duration",
            runs.iter().map(|r| Some(r.seconds)).collect(),
            span,
        ),
        (
            "Lag behind the upstream",
            runs.iter().map(|r| r.lag.map(|l| l as f64)).collect(),
            span,
        ),
    ];
    for (i, (title, values, label)) in panels.iter().enumerate() {
        let y0 = TOP + i as f64 * (PANEL + GAP);
        let base = y0 + PANEL;
        let max = values.iter().flatten().copied().fold(0.0_f64, f64::max);
        let scale = if max > 0.0 { PANEL / max } else { 0.0 };
        let _ = writeln!(s, r#"<text x="{LEFT}" y="{:.1}">{title}</text>"#, y0 - 8.0);
        let _ = writeln!(
            s,
            r#"<line class="axis" x1="{LEFT}" y1="{base:.1}" x2="{:.1}" y2="{base:.1}"/><line class="axis" x1="{LEFT}" y1="{y0:.1}" x2="{LEFT}" y2="{base:.1}"/>"#,
            WIDTH - RIGHT
        );
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text><text x="{:.1}" y="{base:.1}" text-anchor="end">0</text>"#,
            LEFT - 6.0,
            y0 + 10.0,
            esc(&label(max)),
            LEFT - 6.0
        );
        if i < 2 {
            for (k, (v, r)) in values.iter().zip(runs).enumerate() {
                let v = v.unwrap_or(0.0);
                let h = (v * scale).max(if v > 0.0 { 1.0 } else { 0.0 });
                let x = LEFT + k as f64 * step + (step - bar) / 2.0;
                let _ = writeln!(
                    s,
                    r#"<rect class="{}" x="{x:.1}" y="{:.1}" width="{bar:.1}" height="{h:.1}"><title>{}: {}</title></rect>"#,
                    if r.ok { "bar" } else { "bad" },
                    base - h,
                    esc(&format!(
                        "{} {}",
                        r.command,
                        crate::clock::rfc3339(r.started)
                    )),
                    esc(&label(v))
                );
            }
        } else {
            let points: Vec<(f64, f64, f64)> = values
                .iter()
                .enumerate()
                .filter_map(|(k, v)| {
                    v.map(|v| (LEFT + k as f64 * step + step / 2.0, base - v * scale, v))
                })
                .collect();
            if points.len() > 1 {
                let d: Vec<String> = points
                    .iter()
                    .map(|(x, y, _)| format!("{x:.1},{y:.1}"))
                    .collect();
                let _ = writeln!(s, r#"<polyline class="lag" points="{}"/>"#, d.join(" "));
            }
            for (x, y, v) in &points {
                let _ = writeln!(
                    s,
                    r#"<circle class="dot" cx="{x:.1}" cy="{y:.1}" r="3"><title>{}</title></circle>"#,
                    esc(&span(*v))
                );
            }
            if points.is_empty() {
                let _ = writeln!(
                    s,
                    r#"<text x="{:.1}" y="{:.1}">not measured for this mirror's upstream</text>"#,
                    LEFT + 10.0,
                    base - PANEL / 2.0
                );
            }
        }
    }
    s.push_str("</svg>\n");
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_has_a_bar_per_run_and_says_what_it_shows() {
        let runs: Vec<ChartRun> = (0..5)
            .map(|i| ChartRun {
                command: "sync".into(),
                started: 1_700_000_000 + i * 300,
                published: i as u64 * 10,
                seconds: 12.0,
                lag: (i > 0).then_some(60 * i),
                ok: i != 3,
            })
            .collect();
        let s = svg(&runs).unwrap();
        assert_eq!(s.matches("<rect ").count(), 10);
        assert_eq!(s.matches("class=\"bad\"").count(), 2);
        assert_eq!(s.matches("<circle ").count(), 4);
        assert!(s.contains("<title id=\"chart-title\">The last 5 runs</title>"));
        assert!(s.contains("100 versions published in all, 1 runs"));
        assert!(svg(&[]).is_none());
        assert_eq!(span(30.0), "30 s");
        assert_eq!(span(600.0), "10 min");
        assert_eq!(span(7200.0), "2.0 h");
    }
}
