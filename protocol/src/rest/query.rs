//! Percent-decoding of paths and query strings.

use alloc::string::String;
use alloc::vec::Vec;

use super::read_error::RequestReadError;

/// Decodes `%XX` escapes; with `plus_is_space`, `+` becomes a space (query strings). The result must be UTF-8.
pub fn percent_decode(input: &str, plus_is_space: bool) -> Result<String, RequestReadError> {
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| core::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| RequestReadError::BadRequest("bad percent-encoding".into()))?;
                out.push(hex);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out)
        .map_err(|_| RequestReadError::BadRequest("percent-encoded text is not UTF-8".into()))
}

/// Splits and decodes a query string (`a=1&b=x%20y`). A key without `=` has an empty value.
pub fn parse_query(raw: &str) -> Result<Vec<(String, String)>, RequestReadError> {
    raw.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            Ok((percent_decode(k, true)?, percent_decode(v, true)?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn percent_decoding_and_queries() {
        assert_eq!(percent_decode("a%2Fb%40c", false).unwrap(), "a/b@c");
        assert_eq!(percent_decode("a+b", false).unwrap(), "a+b");
        assert_eq!(percent_decode("a+b", true).unwrap(), "a b");
        assert!(percent_decode("%zz", false).is_err());
        assert!(percent_decode("%4", false).is_err());
        assert!(percent_decode("%ff", false).is_err());
        assert_eq!(
            parse_query("a=1&b&c=x%20y&&").unwrap(),
            vec![
                ("a".into(), "1".into()),
                ("b".into(), String::new()),
                ("c".into(), "x y".into())
            ]
        );
    }
}
