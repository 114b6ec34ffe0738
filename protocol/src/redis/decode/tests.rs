use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use std::format;

use proptest::prelude::*;

use super::*;

/// The reference encoder: RESP2 as the spec writes it.
fn encode(reply: &Reply, out: &mut Vec<u8>) {
    match reply {
        Reply::Status(text) => out.extend_from_slice(format!("+{text}\r\n").as_bytes()),
        Reply::Error(text) => out.extend_from_slice(format!("-{text}\r\n").as_bytes()),
        Reply::Integer(value) => out.extend_from_slice(format!(":{value}\r\n").as_bytes()),
        Reply::Bulk(bytes) => {
            out.extend_from_slice(format!("${}\r\n", bytes.len()).as_bytes());
            out.extend_from_slice(bytes);
            out.extend_from_slice(b"\r\n");
        }
        Reply::Array(items) => {
            out.extend_from_slice(format!("*{}\r\n", items.len()).as_bytes());
            for item in items {
                encode(item, out);
            }
        }
        Reply::Nil => out.extend_from_slice(b"$-1\r\n"),
    }
}

fn decode_all(decoder: &mut Decoder) -> Result<Vec<Reply>, RespError> {
    let mut replies = Vec::new();
    while let Some(reply) = decoder.next_reply()? {
        replies.push(reply);
    }
    Ok(replies)
}

fn one(input: &[u8]) -> Result<Option<Reply>, RespError> {
    let mut decoder = Decoder::new(RespLimits::default());
    decoder.feed(input);
    decoder.next_reply()
}

#[test]
fn every_type_decodes() {
    let input = b"+OK\r\n-ERR wrong\r\n:-42\r\n$5\r\nhe\r\no\r\n$0\r\n\r\n$-1\r\n*-1\r\n*0\r\n\
        *2\r\n*1\r\n:1\r\n$1\r\nx\r\n";
    let mut decoder = Decoder::new(RespLimits::default());
    decoder.feed(input);
    let replies = decode_all(&mut decoder).unwrap();
    assert_eq!(
        replies,
        vec![
            Reply::Status("OK".into()),
            Reply::Error("ERR wrong".into()),
            Reply::Integer(-42),
            Reply::Bulk(b"he\r\no".to_vec()),
            Reply::Bulk(Vec::new()),
            Reply::Nil,
            Reply::Nil,
            Reply::Array(Vec::new()),
            Reply::Array(vec![
                Reply::Array(vec![Reply::Integer(1)]),
                Reply::Bulk(b"x".to_vec())
            ]),
        ]
    );
    assert_eq!(decoder.buffered(), 0);
    assert!(!decoder.in_reply());
}

#[test]
fn waits_for_the_rest_of_a_value() {
    let mut decoder = Decoder::new(RespLimits::default());
    for chunk in [&b"*2\r\n$3"[..], b"\r\nab", b"c\r", b"\n:7", b"\r\n"] {
        assert_eq!(decoder.next_reply(), Ok(None));
        decoder.feed(chunk);
    }
    assert_eq!(
        decoder.next_reply(),
        Ok(Some(Reply::Array(vec![
            Reply::Bulk(b"abc".to_vec()),
            Reply::Integer(7)
        ])))
    );
    assert_eq!(decoder.next_reply(), Ok(None));
}

#[test]
fn malformed_input_is_an_error_that_sticks() {
    let cases: [(&[u8], RespError); 9] = [
        (b"!oops\r\n", RespError::UnexpectedType(b'!')),
        (b"%1\r\n", RespError::UnexpectedType(b'%')),
        (b"\r\n", RespError::UnexpectedType(b'\r')),
        (b":12x\r\n", RespError::BadNumber),
        (b":+1\r\n", RespError::BadNumber),
        (b"$-2\r\n", RespError::BadNumber),
        (b"*-5\r\n", RespError::BadNumber),
        (b"$1\r\nab\r\n", RespError::MissingCrlf),
        (b"$99999999999999999999\r\n", RespError::BadNumber),
    ];
    for (input, expected) in cases {
        let mut decoder = Decoder::new(RespLimits::default());
        decoder.feed(input);
        assert_eq!(decoder.next_reply(), Err(expected.clone()), "{input:?}");
        decoder.feed(b"+OK\r\n");
        assert_eq!(
            decoder.next_reply(),
            Err(expected),
            "sticks after {input:?}"
        );
    }
}

#[test]
fn limits_hold_before_the_data_arrives() {
    let limits = RespLimits {
        max_line: 8,
        max_bulk: 4,
        max_depth: 2,
    };
    let check = |input: &[u8], expected: RespError| {
        let mut decoder = Decoder::new(limits);
        decoder.feed(input);
        assert_eq!(decoder.next_reply(), Err(expected), "{input:?}");
    };
    // Announced, not sent: refused at once, nothing allocated for it.
    check(b"$5\r\n", RespError::BulkTooLong { len: 5, limit: 4 });
    check(b"*1\r\n*1\r\n*1\r\n", RespError::TooDeep { limit: 2 });
    check(b"+123456789", RespError::LineTooLong { limit: 8 });
    // At the limits: accepted.
    assert_eq!(
        {
            let mut decoder = Decoder::new(limits);
            decoder.feed(b"*1\r\n*1\r\n$4\r\nabcd\r\n+1234567\r\n");
            decode_all(&mut decoder)
        },
        Ok(vec![
            Reply::Array(vec![Reply::Array(vec![Reply::Bulk(b"abcd".to_vec())])]),
            Reply::Status("1234567".into())
        ])
    );
    // A huge announced array costs nothing until its items come.
    assert_eq!(one(b"*2147483647\r\n:1\r\n"), Ok(None));
}

#[test]
fn compaction_keeps_the_unread_tail() {
    let mut decoder = Decoder::new(RespLimits::default());
    let big = vec![b'x'; COMPACT_AFTER];
    let mut input = Vec::new();
    encode(&Reply::Bulk(big.clone()), &mut input);
    input.extend_from_slice(b"$3\r\nab");
    decoder.feed(&input);
    assert_eq!(decoder.next_reply(), Ok(Some(Reply::Bulk(big))));
    assert_eq!(decoder.next_reply(), Ok(None));
    decoder.feed(b"c\r\n");
    assert_eq!(decoder.next_reply(), Ok(Some(Reply::Bulk(b"abc".to_vec()))));
    assert_eq!(decoder.buffered(), 0);
}

fn text() -> impl Strategy<Value = String> {
    "[ -~]{0,12}"
}

fn reply() -> impl Strategy<Value = Reply> {
    let leaf = prop_oneof![
        text().prop_map(Reply::Status),
        text().prop_map(Reply::Error),
        any::<i64>().prop_map(Reply::Integer),
        proptest::collection::vec(any::<u8>(), 0..40).prop_map(Reply::Bulk),
        Just(Reply::Nil),
    ];
    leaf.prop_recursive(4, 64, 6, |inner| {
        proptest::collection::vec(inner, 0..6).prop_map(Reply::Array)
    })
}

proptest! {
    /// Any sequence of replies, cut anywhere, decodes to itself: the same replies in the same order.
    #[test]
    fn decodes_what_the_reference_encodes(
        replies in proptest::collection::vec(reply(), 1..8),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..12),
    ) {
        let mut input = Vec::new();
        for reply in &replies {
            encode(reply, &mut input);
        }
        let mut points: Vec<usize> = cuts.iter().map(|cut| cut.index(input.len() + 1)).collect();
        points.push(0);
        points.push(input.len());
        points.sort_unstable();
        let mut decoder = Decoder::new(RespLimits::default());
        let mut decoded = Vec::new();
        for pair in points.windows(2) {
            decoder.feed(&input[pair[0]..pair[1]]);
            decoded.extend(decode_all(&mut decoder).unwrap());
        }
        prop_assert_eq!(decoded, replies);
        prop_assert!(!decoder.in_reply());
    }

    /// Arbitrary bytes never panic; they decode or are refused.
    #[test]
    fn arbitrary_bytes_never_panic(input in proptest::collection::vec(any::<u8>(), 0..256)) {
        let mut decoder = Decoder::new(RespLimits { max_line: 16, max_bulk: 64, max_depth: 3 });
        decoder.feed(&input);
        let _ = decode_all(&mut decoder);
    }
}
