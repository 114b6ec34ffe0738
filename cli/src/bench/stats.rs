//! Latency percentiles and the output: one JSON line on stdout, a summary on stderr.

use std::io::Write;

use serde_json::{Value, json};

use crate::error::CliError;

/// p50, p99, p99.9 and max of latencies in microseconds, as milliseconds (sorts `samples`).
pub fn percentiles(samples: &mut [u32]) -> Value {
    samples.sort_unstable();
    let at = |q: f64| -> f64 {
        if samples.is_empty() {
            return 0.0;
        }
        let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
        f64::from(samples[i.min(samples.len() - 1)]) / 1000.0
    };
    json!({
        "samples": samples.len(),
        "p50_ms": at(0.5),
        "p99_ms": at(0.99),
        "p999_ms": at(0.999),
        "max_ms": at(1.0),
    })
}

/// Adds `extra`'s fields to the object `report`.
pub fn merge(report: &mut Value, extra: Value) {
    if let (Some(report), Value::Object(extra)) = (report.as_object_mut(), extra) {
        report.extend(extra);
    }
}

/// Prints the report: JSON on stdout, then a readable line per field on stderr.
pub fn report(report: &Value) -> Result<(), CliError> {
    let mut stdout = std::io::stdout();
    writeln!(stdout, "{report}")?;
    stdout.flush()?;
    if let Some(map) = report.as_object() {
        for (key, value) in map {
            eprintln!("{key:>22}: {value}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_ramp() {
        let mut samples: Vec<u32> = (1..=1000).rev().map(|ms| ms * 1000).collect();
        let p = percentiles(&mut samples);
        assert_eq!(p["samples"], 1000);
        assert_eq!(p["p50_ms"], 501.0);
        assert_eq!(p["p99_ms"], 990.0);
        assert_eq!(p["max_ms"], 1000.0);
        assert_eq!(percentiles(&mut [])["p50_ms"], 0.0);
    }
}
