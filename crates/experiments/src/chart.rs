//! The report as an SVG chart: measured decode tok/s (x) against predicted (y), one numbered
//! dot per point, the y = x line and the ±20% band around it.
//!
//! Written by hand: a scatter of a few dozen points is a page of SVG, and plotting crates
//! need a font library to lay out text (plotters' `ttf`), which this chart does not need.

use crate::report::ValidateReport;
use std::fmt::Write;

const W: f64 = 640.0;
const H: f64 = 560.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 60.0;

/// The chart, or None when no point has both speeds.
pub fn svg(r: &ValidateReport) -> Option<String> {
    let pts: Vec<(usize, f64, f64)> = r
        .points
        .iter()
        .enumerate()
        .filter_map(|(i, p)| Some((i + 1, p.run.decode_tok_per_s?, p.sim.decode_tok_per_s?)))
        .collect();
    let top = pts.iter().map(|&(_, x, y)| x.max(y)).fold(0.0, f64::max) * 1.25;
    if pts.is_empty() || top <= 0.0 || !top.is_finite() {
        return None;
    }
    let (pw, ph) = (W - LEFT - RIGHT, H - TOP - BOTTOM);
    let x = |v: f64| LEFT + v / top * pw;
    let y = |v: f64| TOP + ph - v / top * ph;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="22" text-anchor="middle" font-size="14">decode tok/s: predicted (hypura sim) against measured (hypura run)</text>"#,
        W / 2.0
    );
    // The ±20% band and the y = x line.
    let _ = writeln!(
        s,
        r##"<polygon points="{:.1},{:.1} {:.1},{:.1} {:.1},{:.1}" fill="#e8f0fe"/>"##,
        x(0.0),
        y(0.0),
        x(top / 1.2),
        y(top),
        x(top),
        y(top * 0.8)
    );
    let _ = writeln!(
        s,
        r##"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#888" stroke-dasharray="4 3"/>"##,
        x(0.0),
        y(0.0),
        x(top),
        y(top)
    );
    // Axes with five ticks each.
    let _ = writeln!(
        s,
        r#"<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="black"/>"#
    );
    for i in 0..=5 {
        let v = top * f64::from(i) / 5.0;
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            x(v),
            TOP + ph + 18.0,
            tick(v)
        );
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            LEFT - 6.0,
            y(v) + 4.0,
            tick(v)
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">measured decode tok/s</text>"#,
        LEFT + pw / 2.0,
        H - 18.0
    );
    let _ = writeln!(
        s,
        r#"<text transform="translate(18 {:.1}) rotate(-90)" text-anchor="middle">predicted decode tok/s</text>"#,
        TOP + ph / 2.0
    );
    for (n, mx, my) in &pts {
        let _ = writeln!(
            s,
            r##"<circle cx="{:.1}" cy="{:.1}" r="4" fill="#1a73e8"/><text x="{:.1}" y="{:.1}">{n}</text>"##,
            x(*mx),
            y(*my),
            x(*mx) + 6.0,
            y(*my) - 6.0
        );
    }
    s.push_str("</svg>\n");
    Some(s)
}

fn tick(v: f64) -> String {
    if v >= 10.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}
