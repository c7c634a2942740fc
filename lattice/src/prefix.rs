//! The call prefix: a call's fingerprint and time budget at the start of its
//! body, where headers would cost every hop a parse.
//!
//! A request body may start with one MessagePack value of 18 bytes, an
//! extension of type 76 (`'L'`) holding 16 bytes, followed by the arguments
//! map as usual:
//!
//! ```text
//! d8 4c  01  ff  00 00  tt tt tt tt  ff ff ff ff ff ff ff ff  <arguments map>
//! fixext 16, type 76
//!        version 1
//!            flags: bit 0 fingerprint present, bit 1 budget present
//!                reserved, zero
//!                       budget in milliseconds, u32 big-endian
//!                                   fingerprint, u64 big-endian
//! ```
//!
//! The generated clients send it instead of the `Lattice-Fingerprint` and
//! `Lattice-Timeout-Ms` headers: a NATS message with any header costs both
//! ends a header-map parse (about 7,000 instructions for one header with
//! async-nats) and about 8 µs of latency per hop on the benchmark machine,
//! where 96 more body bytes measured about 2 µs, within the noise. Hosts
//! read both: a call with a prefix is checked by the prefix (its headers,
//! if any, are then not consulted for these two values), a call without
//! one by its headers, and a call with neither is not checked. An
//! arguments map never starts with `d8`, so a body without a prefix is read
//! as before.

use crate::error::{Error, ErrorKind};

/// The length of the prefix: a MessagePack `fixext 16` value.
pub const LEN: usize = 18;
/// The MessagePack marker of a `fixext 16` value.
const FIXEXT16: u8 = 0xd8;
/// The extension type of the prefix.
pub const EXT_TYPE: u8 = b'L';
/// The version of the prefix this crate writes and reads.
pub const VERSION: u8 = 1;
const HAS_FINGERPRINT: u8 = 1;
const HAS_BUDGET: u8 = 2;

/// What the prefix of a call says.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CallPrefix {
    /// The contract fingerprint the caller was built against.
    pub fingerprint: Option<u64>,
    /// The caller's remaining time budget, in milliseconds.
    pub budget_ms: Option<u32>,
}

impl CallPrefix {
    /// The prefix's 18 bytes.
    pub fn encode(&self) -> [u8; LEN] {
        let mut bytes = [0u8; LEN];
        bytes[0] = FIXEXT16;
        bytes[1] = EXT_TYPE;
        bytes[2] = VERSION;
        let mut flags = 0;
        if let Some(budget) = self.budget_ms {
            flags |= HAS_BUDGET;
            bytes[6..10].copy_from_slice(&budget.to_be_bytes());
        }
        if let Some(fingerprint) = self.fingerprint {
            flags |= HAS_FINGERPRINT;
            bytes[10..18].copy_from_slice(&fingerprint.to_be_bytes());
        }
        bytes[3] = flags;
        bytes
    }

    /// Splits a request body into its prefix, if it has one, and the
    /// arguments that follow. A body that starts like a prefix but is not a
    /// valid one (cut short, another version, unknown flags) is a `Decode`
    /// error that says which.
    pub fn split(body: &[u8]) -> Result<(Option<CallPrefix>, &[u8]), Error> {
        let [FIXEXT16, EXT_TYPE, ..] = body else {
            return Ok((None, body));
        };
        let bad = |what: String| Error::new(ErrorKind::Decode, format!("the call prefix {what}"));
        let Some((head, args)) = body.split_first_chunk::<LEN>() else {
            return Err(bad(format!(
                "is cut short: {} of its {LEN} bytes",
                body.len()
            )));
        };
        if head[2] != VERSION {
            return Err(bad(format!(
                "has version {}; this side reads version {VERSION}",
                head[2]
            )));
        }
        let flags = head[3];
        if flags & !(HAS_FINGERPRINT | HAS_BUDGET) != 0 || head[4..6] != [0, 0] {
            return Err(bad(format!(
                "sets flags {flags:#04x} or reserved bytes {:02x?} that version {VERSION} does not define",
                &head[4..6]
            )));
        }
        let budget = u32::from_be_bytes([head[6], head[7], head[8], head[9]]);
        let fingerprint = u64::from_be_bytes([
            head[10], head[11], head[12], head[13], head[14], head[15], head[16], head[17],
        ]);
        let prefix = CallPrefix {
            fingerprint: (flags & HAS_FINGERPRINT != 0).then_some(fingerprint),
            budget_ms: (flags & HAS_BUDGET != 0).then_some(budget),
        };
        Ok((Some(prefix), args))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever a body holds, splitting it returns, never panics, and
        /// gives back a suffix of the body.
        #[test]
        fn split_never_panics(head in prop::sample::select(vec![vec![], vec![0xd8], vec![0xd8, 0x4c], vec![0xd8, 0x4c, 1]]),
                              rest in prop::collection::vec(any::<u8>(), 0..40)) {
            let mut body = head;
            body.extend_from_slice(&rest);
            if let Ok((_, args)) = CallPrefix::split(&body) {
                prop_assert!(body.ends_with(args));
            }
        }

        #[test]
        fn any_prefix_round_trips(fingerprint in any::<Option<u64>>(), budget_ms in any::<Option<u32>>(),
                                  args in prop::collection::vec(any::<u8>(), 0..40)) {
            let prefix = CallPrefix { fingerprint, budget_ms };
            let mut body = prefix.encode().to_vec();
            body.extend_from_slice(&args);
            prop_assert_eq!(CallPrefix::split(&body).unwrap(), (Some(prefix), &args[..]));
        }
    }

    #[test]
    fn a_prefix_reads_back_as_written() {
        for prefix in [
            CallPrefix::default(),
            CallPrefix {
                fingerprint: Some(0x0123_4567_89ab_cdef),
                budget_ms: Some(5000),
            },
            CallPrefix {
                fingerprint: Some(u64::MAX),
                budget_ms: None,
            },
            CallPrefix {
                fingerprint: None,
                budget_ms: Some(0),
            },
        ] {
            let mut body = prefix.encode().to_vec();
            body.extend_from_slice(b"\x81\xa2by\x05");
            let (read, args) = CallPrefix::split(&body).unwrap();
            assert_eq!(read, Some(prefix));
            assert_eq!(args, b"\x81\xa2by\x05");
        }
    }

    #[test]
    fn the_bytes_are_the_documented_ones() {
        let prefix = CallPrefix {
            fingerprint: Some(0x0102_0304_0506_0708),
            budget_ms: Some(0x0a0b_0c0d),
        };
        assert_eq!(
            prefix.encode(),
            [
                0xd8, 0x4c, 1, 3, 0, 0, 0x0a, 0x0b, 0x0c, 0x0d, 1, 2, 3, 4, 5, 6, 7, 8
            ]
        );
        // The book's example: `Counter::add(5)`, a 5-second budget.
        let mut body = CallPrefix {
            fingerprint: Some(0x0102_0304_0506_0708),
            budget_ms: Some(5000),
        }
        .encode()
        .to_vec();
        crate::codec::encode_into(&std::collections::BTreeMap::from([("by", 5)]), &mut body)
            .unwrap();
        assert_eq!(
            body,
            [
                0xd8, 0x4c, 1, 3, 0, 0, 0, 0, 0x13, 0x88, 1, 2, 3, 4, 5, 6, 7, 8, 0x81, 0xa2, 0x62,
                0x79, 5
            ]
        );
        // And it is one MessagePack value: a decoder skips it whole.
        let ext = rmpv::decode::read_value(&mut &prefix.encode()[..]).unwrap();
        assert!(matches!(ext, rmpv::Value::Ext(76, ref data) if data.len() == 16));
    }

    #[test]
    fn bodies_without_a_prefix_pass_unchanged() {
        for body in [
            &b""[..],
            b"\x80",
            b"\x81\xa2by\x05",
            b"\xd8",
            b"\xd8\x00rest",
        ] {
            assert_eq!(CallPrefix::split(body).unwrap(), (None, body));
        }
    }

    #[test]
    fn a_broken_prefix_is_a_decode_error_that_says_why() {
        let good = CallPrefix {
            fingerprint: Some(1),
            budget_ms: Some(2),
        }
        .encode();
        let mut version = good;
        version[2] = 2;
        let mut flags = good;
        flags[3] = 0x80;
        let mut reserved = good;
        reserved[5] = 1;
        for (body, says) in [
            (&good[..10], "cut short: 10 of its 18"),
            (&version[..], "version 2"),
            (&flags[..], "flags 0x80"),
            (&reserved[..], "reserved bytes"),
        ] {
            let err = CallPrefix::split(body).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Decode);
            assert!(err.to_string().contains(says), "{err}");
        }
    }
}
