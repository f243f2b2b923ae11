//! The figures of a benchmark run: a table on stdout, the same as JSON.

use serde_json::{Value, json};

/// How a figure compares with its target.
#[derive(Clone, Copy, Debug)]
pub enum Target {
    AtMost(f64),
    AtLeast(f64),
}

pub struct Figure {
    pub name: String,
    pub value: f64,
    pub unit: &'static str,
    pub target: Option<Target>,
    /// How it was measured, in a few words.
    pub how: String,
}

impl Figure {
    pub fn met(&self) -> Option<bool> {
        self.target.map(|t| match t {
            Target::AtMost(limit) => self.value <= limit,
            Target::AtLeast(limit) => self.value >= limit,
        })
    }
}

#[derive(Default)]
pub struct Report {
    pub figures: Vec<Figure>,
    /// Everything else measured (samples, counts by call), by section.
    pub details: serde_json::Map<String, Value>,
}

impl Report {
    pub fn add(
        &mut self,
        name: impl Into<String>,
        value: f64,
        unit: &'static str,
        target: Option<Target>,
        how: impl Into<String>,
    ) {
        let figure = Figure {
            name: name.into(),
            value,
            unit,
            target,
            how: how.into(),
        };
        eprintln!(
            "  {}: {} {}{}",
            figure.name,
            format_value(figure.value),
            figure.unit,
            match figure.met() {
                Some(true) => " (target met)",
                Some(false) => " (target MISSED)",
                None => "",
            }
        );
        self.figures.push(figure);
    }

    pub fn detail(&mut self, section: &str, value: Value) {
        self.details.insert(section.to_string(), value);
    }

    pub fn table(&self) -> String {
        let rows: Vec<[String; 4]> = self
            .figures
            .iter()
            .map(|f| {
                [
                    f.name.clone(),
                    format!("{} {}", format_value(f.value), f.unit),
                    match f.target {
                        Some(Target::AtMost(l)) => format!("≤ {} {}", format_value(l), f.unit),
                        Some(Target::AtLeast(l)) => format!("≥ {} {}", format_value(l), f.unit),
                        None => String::new(),
                    },
                    match f.met() {
                        Some(true) => "met".into(),
                        Some(false) => "MISSED".into(),
                        None => String::new(),
                    },
                ]
            })
            .collect();
        let header = ["figure", "value", "target", ""].map(String::from);
        let widths: Vec<usize> = (0..4)
            .map(|i| {
                rows.iter()
                    .chain([&header])
                    .map(|r| r[i].chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let line = |r: &[String; 4]| {
            let cells: Vec<String> = r
                .iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c}{}", " ".repeat(w - c.chars().count())))
                .collect();
            format!("| {} |", cells.join(" | "))
        };
        let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
        let mut out = vec![line(&header), format!("|-{}-|", rule.join("-|-"))];
        out.extend(rows.iter().map(line));
        out.join("\n")
    }

    pub fn json(&self, run: Value) -> Value {
        json!({
            "run": run,
            "figures": self.figures.iter().map(|f| json!({
                "name": f.name,
                "value": f.value,
                "unit": f.unit,
                "target": f.target.map(|t| match t {
                    Target::AtMost(l) => json!({"at_most": l}),
                    Target::AtLeast(l) => json!({"at_least": l}),
                }),
                "met": f.met(),
                "how": f.how,
            })).collect::<Vec<_>>(),
            "details": self.details,
        })
    }
}

fn format_value(v: f64) -> String {
    if (v == v.trunc() && v.abs() < 1e15) || v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// The median and the 90th percentile of `samples` (nearest rank).
pub fn median_p90(samples: &[f64]) -> (f64, f64) {
    let mut s = samples.to_vec();
    s.sort_by(f64::total_cmp);
    let rank = |q: f64| s[((q * s.len() as f64).ceil() as usize).clamp(1, s.len()) - 1];
    (rank(0.5), rank(0.9))
}
