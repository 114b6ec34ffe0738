//! [`json_len`]: how long a value's compact JSON encoding is, counted without building it.

use core::fmt;
use serde_json::Value;

/// The byte length of `value` as compact JSON (what the encoders write), counted by writing into a counter: no
/// allocation, whatever the value's size.
pub fn json_len(value: &Value) -> usize {
    struct Counter(usize);
    impl fmt::Write for Counter {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            self.0 = self.0.saturating_add(s.len());
            Ok(())
        }
    }
    let mut counter = Counter(0);
    // Writing to a counter cannot fail (and serde_json asserts that a formatter's writes succeed).
    let _ = fmt::write(&mut counter, format_args!("{value}"));
    counter.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn counts_the_compact_encoding() {
        for v in [
            json!(null),
            json!({"a": "xyz", "b": [1, 2.5, "é\"\n"]}),
            json!("x".repeat(1000)),
        ] {
            assert_eq!(json_len(&v), serde_json::to_string(&v).unwrap().len());
        }
    }
}
