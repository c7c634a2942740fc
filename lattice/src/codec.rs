//! The MessagePack codec of the wire protocol.
//!
//! Values are encoded with [rmp-serde](https://docs.rs/rmp-serde) with named
//! fields: a struct is a map from field name to value, an enum variant is its
//! name (`"Idle"`) or a one-entry map (`{"Busy": 3}`), `Option` is `nil` or the
//! value, `Result` is `{"Ok": v}` or `{"Err": e}`. This is serde's JSON data
//! model, so a JSON value of the same shape converts to the same bytes (see
//! [`json`](crate::json)). Byte fields (`Vec<u8>` in the arguments, `Bytes`)
//! are MessagePack `bin`, not arrays of integers.
//!
//! ```
//! #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
//! struct Point { x: i32, y: i32 }
//! let bytes = lattice::codec::encode(&Point { x: 1, y: -2 })?;
//! assert_eq!(bytes, [0x82, 0xa1, b'x', 0x01, 0xa1, b'y', 0xfe]);
//! assert_eq!(lattice::codec::decode::<Point>(&bytes)?, Point { x: 1, y: -2 });
//! # Ok::<(), lattice::Error>(())
//! ```

use serde::de::DeserializeOwned;
use serde::{Deserialize as _, Serialize};

use crate::error::{Error, ErrorKind};

/// The MessagePack encoding of an empty map: the arguments of a method
/// without arguments, and what an empty payload stands for.
pub const EMPTY_MAP: &[u8] = &[0x80];

/// Encodes `value` into a new buffer.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, Error> {
    // Room for a typical message up front: growing from empty reallocates
    // four or five times on the way to a hundred bytes.
    let mut out = Vec::with_capacity(128);
    encode_into(value, &mut out)?;
    Ok(out)
}

/// Appends the encoding of `value` to `out`. On error `out` is left as it was.
pub fn encode_into<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> Result<(), Error> {
    let start = out.len();
    serialize(value, &mut *out).inspect_err(|_| out.truncate(start))
}

/// [`encode_into`] for a `BytesMut`, such as a body from
/// [`buffer::try_build`](crate::buffer::try_build).
pub fn encode_into_bytes<T: Serialize + ?Sized>(
    value: &T,
    out: &mut bytes::BytesMut,
) -> Result<(), Error> {
    let start = out.len();
    serialize(value, bytes::BufMut::writer(&mut *out)).inspect_err(|_| out.truncate(start))
}

/// Writes the encoding of `value` (structs as maps) to `out`.
fn serialize<T: Serialize + ?Sized>(value: &T, out: impl std::io::Write) -> Result<(), Error> {
    value
        .serialize(&mut rmp_serde::Serializer::new(out).with_struct_map())
        .map_err(|e| Error::encode(std::any::type_name::<T>(), e))
}

/// Decodes one value that must fill `bytes` exactly.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    decode_as(bytes, &std::any::type_name::<T>())
}

/// Like [`decode`], naming `what` was decoded in the error.
pub fn decode_as<T: DeserializeOwned>(
    bytes: &[u8],
    what: &dyn std::fmt::Display,
) -> Result<T, Error> {
    decode_filled(bytes, what, |e| Error::decode(what, e))
}

/// Like [`decode_as`], refusing arrays and maps nested deeper than
/// `max_depth`: for values of types that nest as deep as the bytes say
/// (`serde_json::Value`), whose decoding recurses once a level.
pub fn decode_bounded<T: DeserializeOwned>(
    bytes: &[u8],
    what: &dyn std::fmt::Display,
    max_depth: usize,
) -> Result<T, Error> {
    decode_filled_with(bytes, what, max_depth, |e| Error::decode(what, e))
}

/// rmp-serde's own limit on nesting.
const DEFAULT_MAX_DEPTH: usize = 1024;

/// Decodes one value that must fill `bytes` exactly; `failed` makes the
/// error of a value that does not decode, `what` names it when bytes are
/// left over.
fn decode_filled<T: DeserializeOwned>(
    bytes: &[u8],
    what: &dyn std::fmt::Display,
    failed: impl FnOnce(rmp_serde::decode::Error) -> Error,
) -> Result<T, Error> {
    decode_filled_with(bytes, what, DEFAULT_MAX_DEPTH, failed)
}

fn decode_filled_with<T: DeserializeOwned>(
    bytes: &[u8],
    what: &dyn std::fmt::Display,
    max_depth: usize,
    failed: impl FnOnce(rmp_serde::decode::Error) -> Error,
) -> Result<T, Error> {
    // Straight from the slice: strings and `bin` are read in place, not
    // copied through an intermediate buffer first.
    let mut de = rmp_serde::Deserializer::from_read_ref(bytes);
    if max_depth != DEFAULT_MAX_DEPTH {
        de.set_max_depth(max_depth);
    }
    let value = T::deserialize(&mut de).map_err(failed)?;
    // The slice reader does not tell how far it got; that the next marker
    // cannot be read (no byte left) says the value filled `bytes`.
    match serde::de::IgnoredAny::deserialize(&mut de) {
        Err(rmp_serde::decode::Error::InvalidMarkerRead(e))
            if e.kind() == std::io::ErrorKind::UnexpectedEof =>
        {
            Ok(value)
        }
        _ => Err(trailing_bytes(bytes, what)),
    }
}

/// The error for a value followed by more bytes, with how many.
#[cold]
fn trailing_bytes(bytes: &[u8], what: &dyn std::fmt::Display) -> Error {
    // Cold path: measure the first value again, with a reader that counts.
    let mut de = rmp_serde::Deserializer::new(std::io::Cursor::new(bytes));
    let extra = match serde::de::IgnoredAny::deserialize(&mut de) {
        Ok(_) => bytes.len() - de.position() as usize,
        Err(_) => bytes.len(),
    };
    Error::new(
        ErrorKind::Decode,
        format!("could not decode {what}: {extra} unexpected bytes after the value"),
    )
}

/// Decodes a method's arguments map; an empty payload is an empty map.
pub fn decode_args<T: DeserializeOwned>(
    payload: &[u8],
    contract: &str,
    method: &str,
) -> Result<T, Error> {
    let payload = if payload.is_empty() {
        EMPTY_MAP
    } else {
        payload
    };
    decode_as(
        payload,
        &format_args!("the arguments of {contract}.{method}"),
    )
}

/// Decodes the arguments map of `method` of `contract`, as the generated
/// dispatchers do; an empty payload is an empty map. Errors speak the
/// contract's terms: the method, the arguments it takes and their types,
/// and what arrived instead.
pub fn decode_method_args<T: DeserializeOwned>(
    payload: &[u8],
    contract: &crate::ContractDescriptor,
    method: &crate::MethodDescriptor,
) -> Result<T, Error> {
    let payload = if payload.is_empty() {
        EMPTY_MAP
    } else {
        payload
    };
    decode_filled(
        payload,
        &format_args!("the arguments of `{}.{}`", contract.name, method.name),
        |e| args_error(contract, method, std::any::type_name::<T>(), &e),
    )
}

/// The error for arguments that do not decode, in the contract's terms:
/// `cannot decode the arguments of `echo.echo` (a map {text: String}):
/// got a string`.
#[cold]
fn args_error(
    contract: &crate::ContractDescriptor,
    method: &crate::MethodDescriptor,
    args_type: &str,
    e: &rmp_serde::decode::Error,
) -> Error {
    use rmp_serde::decode::Error as E;
    let shape = if method.args.is_empty() {
        "an empty map, or nothing".to_owned()
    } else {
        let fields: Vec<String> = method
            .args
            .iter()
            .map(|a| format!("{}: {}", a.name, a.ty))
            .collect();
        format!("a map {{{}}}", fields.join(", "))
    };
    // serde names the arguments struct the macro generated; the caller
    // knows the method, not that struct.
    let struct_name = args_type.rsplit("::").next().unwrap_or(args_type);
    let why = match e {
        E::TypeMismatch(marker) => format!("got {}", marker_kind(&format!("{marker:?}"))),
        E::InvalidMarkerRead(_) | E::InvalidDataRead(_) => {
            "the MessagePack ends before the value does".to_owned()
        }
        E::OutOfRange => "a number is out of its type's range".to_owned(),
        E::LengthMismatch(n) => format!("an array of {n} items has the wrong length"),
        E::Utf8Error(_) => "a string is not valid UTF-8".to_owned(),
        E::DepthLimitExceeded => "values are nested too deeply".to_owned(),
        E::Syntax(text) | E::Uncategorized(text) => text
            .replace(&format!("struct {struct_name}"), "the arguments map")
            .replace("newtype struct", "a MessagePack extension value"),
    };
    Error::new(
        ErrorKind::Decode,
        format!(
            "cannot decode the arguments of `{}.{}` ({shape}): {why}",
            contract.name, method.name
        ),
    )
}

/// What a MessagePack marker (as `rmp`'s `Debug` writes it) starts.
fn marker_kind(marker: &str) -> &'static str {
    let name = marker.split('(').next().unwrap_or(marker);
    match name {
        "FixPos" | "FixNeg" | "U8" | "U16" | "U32" | "U64" | "I8" | "I16" | "I32" | "I64" => {
            "an integer"
        }
        "FixMap" | "Map16" | "Map32" => "a map",
        "FixArray" | "Array16" | "Array32" => "an array",
        "FixStr" | "Str8" | "Str16" | "Str32" => "a string",
        "Bin8" | "Bin16" | "Bin32" => "bytes (bin)",
        "F32" | "F64" => "a float",
        "True" | "False" => "a boolean",
        "Null" => "nil",
        "Reserved" => "the byte 0xc1, which MessagePack never uses",
        _ => "a MessagePack extension value",
    }
}

/// Serializes a byte container (`Vec<u8>`, `Option<Vec<u8>>`, …) as
/// MessagePack bin rather than as an array of integers. The generated code
/// wraps byte return values in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bin<T>(pub T);

impl<T: serde_bytes::Serialize> Serialize for Bin<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serde_bytes::Serialize::serialize(&self.0, serializer)
    }
}

impl<'de, T: serde_bytes::Deserialize<'de>> serde::Deserialize<'de> for Bin<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        T::deserialize(deserializer).map(Bin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    enum Mode {
        Idle,
        Busy(u32),
        Moving { x: i32 },
    }

    #[test]
    fn enums_use_names_like_json() {
        assert_eq!(encode(&Mode::Idle).unwrap(), b"\xa4Idle");
        assert_eq!(encode(&Mode::Busy(3)).unwrap(), b"\x81\xa4Busy\x03");
        assert_eq!(
            encode(&Mode::Moving { x: 1 }).unwrap(),
            b"\x81\xa6Moving\x81\xa1x\x01"
        );
        let ok: Result<u8, String> = Ok(1);
        assert_eq!(encode(&ok).unwrap(), b"\x81\xa2Ok\x01");
        for m in [Mode::Idle, Mode::Busy(7), Mode::Moving { x: -4 }] {
            assert_eq!(decode::<Mode>(&encode(&m).unwrap()).unwrap(), m);
        }
    }

    #[test]
    fn bytes_are_bin() {
        let data = vec![1u8, 2, 3];
        assert_eq!(encode(&Bin(&data)).unwrap(), [0xc4, 3, 1, 2, 3]);
        assert_eq!(decode::<Bin<Vec<u8>>>(&[0xc4, 3, 1, 2, 3]).unwrap().0, data);
        // An array of integers is still accepted.
        assert_eq!(decode::<Bin<Vec<u8>>>(&[0x93, 1, 2, 3]).unwrap().0, data);
        assert_eq!(encode(&Bin(Some(&data[..]))).unwrap(), [0xc4, 3, 1, 2, 3]);
    }

    #[test]
    fn decode_errors_are_typed_and_precise() {
        let err = decode::<u32>(b"").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Decode);
        let err = decode::<u32>(&[0x01, 0x02]).unwrap_err();
        assert!(err.message().contains("1 unexpected bytes"), "{err}");
        // A whole value after the first, and a value cut short, are both
        // trailing bytes.
        let err = decode::<u32>(&[0x01, 0x92, 0x01, 0x02]).unwrap_err();
        assert!(err.message().contains("3 unexpected bytes"), "{err}");
        let err = decode::<u32>(&[0x01, 0xc4]).unwrap_err();
        assert!(err.message().contains("1 unexpected bytes"), "{err}");
        let err = decode::<String>(&[0xc1]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Decode);
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Args {
            by: u64,
        }
        let err = decode_args::<Args>(&[], "counter", "add").unwrap_err();
        assert!(err.message().contains("counter.add"), "{err}");
        assert!(err.message().contains("missing field `by`"), "{err}");
    }

    #[test]
    fn empty_payload_is_an_empty_map() {
        #[derive(Debug, Deserialize, PartialEq)]
        struct NoArgs {}
        assert_eq!(decode_args::<NoArgs>(&[], "c", "m").unwrap(), NoArgs {});
        assert_eq!(
            decode_args::<NoArgs>(EMPTY_MAP, "c", "m").unwrap(),
            NoArgs {}
        );
    }

    #[test]
    fn failed_encode_leaves_buffer_alone() {
        struct Fails;
        impl Serialize for Fails {
            fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
                Err(serde::ser::Error::custom("nope"))
            }
        }
        let mut out = vec![1, 2];
        let err = encode_into(&(1u8, Fails), &mut out).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Encode);
        assert_eq!(out, [1, 2]);
        let mut out = bytes::BytesMut::from(&[1u8, 2][..]);
        let err = encode_into_bytes(&(1u8, Fails), &mut out).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Encode);
        assert_eq!(&out[..], [1, 2]);
    }
}
