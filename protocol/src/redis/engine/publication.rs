//! [`Publication`]: one message of the live feed, `{epoch} {offset} {flag} {event JSON}` (flag `r`: the event is
//! the channel's retained state; `-`: it is not).

use alloc::string::String;

use super::EngineReplyError;

/// A publication as every node receives it from Redis pub/sub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publication<'a> {
    /// The channel's epoch.
    pub epoch: &'a str,
    /// The event's offset.
    pub offset: u64,
    /// The event became the channel's retained state.
    pub retained: bool,
    /// The event, as JSON text.
    pub event: &'a [u8],
}

impl<'a> Publication<'a> {
    /// Reads a pub/sub payload the publish script wrote.
    pub fn parse(payload: &'a [u8]) -> Result<Publication<'a>, EngineReplyError> {
        let bad = EngineReplyError::Shape {
            what: "a publication",
        };
        let mut parts = payload.splitn(4, |&b| b == b' ');
        let epoch = parts.next().ok_or(bad.clone())?;
        let offset = parts.next().ok_or(bad.clone())?;
        let retained = match parts.next().ok_or(bad.clone())? {
            b"r" => true,
            b"-" => false,
            _ => return Err(bad),
        };
        let event = parts.next().ok_or(bad.clone())?;
        let epoch = core::str::from_utf8(epoch).map_err(|_| bad.clone())?;
        let offset = core::str::from_utf8(offset)
            .ok()
            .and_then(|digits| digits.parse().ok())
            .filter(|&offset| offset > 0)
            .ok_or(bad.clone())?;
        if epoch.is_empty() || event.is_empty() {
            return Err(bad);
        }
        Ok(Publication {
            epoch,
            offset,
            retained,
            event,
        })
    }

    /// The epoch, owned.
    pub fn epoch_owned(&self) -> String {
        self.epoch.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_the_script_writes_and_refuses_the_rest() {
        assert_eq!(
            Publication::parse(b"0a1b 42 - {\"x\": \"a b\"}"),
            Ok(Publication {
                epoch: "0a1b",
                offset: 42,
                retained: false,
                event: b"{\"x\": \"a b\"}"
            })
        );
        assert_eq!(
            Publication::parse(b"0a1b 7 r {}").map(|p| p.retained),
            Ok(true)
        );
        for bad in [
            &b""[..],
            b"e",
            b"e 1",
            b"e 1 -",
            b"e x - {}",
            b"e 0 - {}",
            b" 1 - {}",
            b"e 1 - ",
            b"e -1 - {}",
            b"e 1 x {}",
            b"e 1 {}",
        ] {
            assert!(Publication::parse(bad).is_err(), "{bad:?}");
        }
    }
}
