//! Minimal SVG line charts for the soak report (no font or graphics
//! dependency: the text is left to the viewer).

/// One line of a chart: name, colour, points.
pub struct Series<'a> {
    pub name: &'a str,
    pub color: &'a str,
    pub points: Vec<(f64, f64)>,
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// A line chart, 800×300, with axes, min/max labels and a legend.
pub fn line_chart(title: &str, x_label: &str, y_label: &str, series: &[Series<'_>]) -> String {
    let (w, h, left, right, top, bottom) = (800.0, 300.0, 70.0, 20.0, 40.0, 40.0);
    let all = || series.iter().flat_map(|s| s.points.iter());
    let (x0, x1) = all().fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.0), b.max(p.0)));
    let (y0, y1) = all().fold((0.0f64, f64::MIN), |(a, b), p| (a.min(p.1), b.max(p.1)));
    let (x0, x1) = if x0 < x1 { (x0, x1) } else { (0.0, 1.0) };
    let y1 = if y1 > y0 { y1 * 1.05 } else { y0 + 1.0 };
    let px = |x: f64| left + (x - x0) / (x1 - x0) * (w - left - right);
    let py = |y: f64| h - bottom - (y - y0) / (y1 - y0) * (h - top - bottom);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{}\" y=\"20\" text-anchor=\"middle\" font-size=\"14\">{}</text>\n\
         <line x1=\"{left}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"black\"/>\n\
         <line x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{}\" stroke=\"black\"/>\n\
         <text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n\
         <text x=\"14\" y=\"{}\" transform=\"rotate(-90 14 {})\" text-anchor=\"middle\">{}</text>\n\
         <text x=\"{}\" y=\"{}\" text-anchor=\"end\">{y0:.0}</text><text x=\"{}\" y=\"{}\" text-anchor=\"end\">{y1:.0}</text>\n\
         <text x=\"{left}\" y=\"{}\" text-anchor=\"middle\">{x0:.0}</text><text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{x1:.0}</text>\n",
        w / 2.0,
        esc(title),
        h - bottom,
        w - right,
        h - bottom,
        h - bottom,
        (left + w - right) / 2.0,
        h - 8.0,
        esc(x_label),
        h / 2.0,
        h / 2.0,
        esc(y_label),
        left - 4.0,
        h - bottom,
        left - 4.0,
        top + 4.0,
        h - bottom + 14.0,
        w - right,
        h - bottom + 14.0,
    );
    for (i, s) in series.iter().enumerate() {
        let pts: Vec<String> = s.points.iter().map(|(x, y)| format!("{:.1},{:.1}", px(*x), py(*y))).collect();
        svg.push_str(&format!(
            "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"1.5\" points=\"{}\"/>\n",
            s.color,
            pts.join(" ")
        ));
        let ly = top + 14.0 * i as f64;
        svg.push_str(&format!(
            "<rect x=\"{}\" y=\"{}\" width=\"10\" height=\"10\" fill=\"{}\"/><text x=\"{}\" y=\"{}\">{}</text>\n",
            w - right - 150.0, ly - 9.0, s.color, w - right - 135.0, ly, esc(s.name)
        ));
    }
    svg.push_str("</svg>\n");
    svg
}
