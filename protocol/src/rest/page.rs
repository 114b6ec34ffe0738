//! A static page's answer (the dashboard): the HTML with a strict Content Security Policy that allows exactly
//! the page's own inline `<script>` and `<style>` blocks (by their SHA-256, CSP level 2) and connections to its own
//! origin, and nothing else — no other script, style, font, image source, frame or form target.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

use super::reply::Reply;

/// The contents of every `<tag>…</tag>` block in `html` (the tag written without attributes).
fn blocks<'a>(html: &'a str, tag: &str) -> Vec<&'a str> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find(&open) {
        let body = &rest[start + open.len()..];
        let Some(end) = body.find(&close) else {
            break;
        };
        out.push(&body[..end]);
        rest = &body[end + close.len()..];
    }
    out
}

fn hashes(html: &str, tag: &str) -> String {
    blocks(html, tag)
        .iter()
        .map(|b| {
            format!(
                " 'sha256-{}'",
                STANDARD.encode(Sha256::digest(b.as_bytes()))
            )
        })
        .collect()
}

/// The policy for `html`.
pub fn content_security_policy(html: &str) -> String {
    format!(
        "default-src 'none'; script-src{}; style-src{}; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        hashes(html, "script"),
        hashes(html, "style"),
    )
}

/// `200 text/html` with its policy, not cached (a new binary may serve a new page).
pub fn page_reply(html: &str) -> Reply {
    Reply::text(200, "text/html; charset=utf-8", String::from(html))
        .with_header("Content-Security-Policy", content_security_policy(html))
        .with_header("Cache-Control", "no-store")
        .with_header("X-Content-Type-Options", "nosniff")
        .with_header("Referrer-Policy", "no-referrer")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_names_each_inline_block_by_hash() {
        let html = "<style>b{}</style><script>1</script><p>x</p><script>2</script>";
        let csp = content_security_policy(html);
        let h = |s: &str| STANDARD.encode(Sha256::digest(s.as_bytes()));
        assert!(csp.starts_with("default-src 'none'; "));
        assert!(csp.contains(&format!(
            "script-src 'sha256-{}' 'sha256-{}';",
            h("1"),
            h("2")
        )));
        assert!(csp.contains(&format!("style-src 'sha256-{}';", h("b{}"))));
        assert!(csp.contains("connect-src 'self'"));
        let reply = page_reply(html);
        assert_eq!(
            reply.header("content-type"),
            Some("text/html; charset=utf-8")
        );
        assert!(reply.header("content-security-policy").is_some());
    }
}
