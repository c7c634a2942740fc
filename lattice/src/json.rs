//! JSON <-> MessagePack through method descriptors (feature `json`).
//!
//! The CLI and bridges to other languages call actors with JSON: the
//! arguments object is encoded in the order of the method's descriptor, so it
//! gives the same bytes as the generated Rust client; arguments the descriptor
//! marks as bytes are sent as MessagePack `bin`, from a JSON string (its UTF-8
//! bytes) or an array of integers 0-255.
//!
//! ```
//! #[lattice::contract]
//! pub trait Counter { fn add(&mut self, by: u64) -> u64; }
//! use lattice::Contract;
//! let add = <dyn Counter as Contract>::DESCRIPTOR.method("add").unwrap();
//! let json = serde_json::json!({ "by": 5 });
//! let bytes = lattice::json::args_from_json(add, &json)?;
//! assert_eq!(bytes, lattice::codec::encode(&CounterAddArgs { by: 5 })?);
//! # Ok::<(), lattice::Error>(())
//! ```

use serde::Serialize;
use serde::ser::SerializeMap;
use serde_json::{Map, Number, Value};

use crate::codec;
use crate::contract::{MethodDescriptor, MethodInfo};
use crate::error::{Error, ErrorKind};

/// What the JSON mapping needs of a method: a [`MethodDescriptor`] compiled
/// into a client, or a [`MethodInfo`] read from a running actor.
pub trait MethodShape {
    /// The method's wire name.
    fn name(&self) -> &str;
    /// Its arguments in order: (name, type as written, is bytes).
    fn args(&self) -> Vec<(&str, &str, bool)>;
    /// The return type as written.
    fn returns(&self) -> &str;
    /// Whether the call has no reply.
    fn oneway(&self) -> bool;
}

impl MethodShape for MethodDescriptor {
    fn name(&self) -> &str {
        self.name
    }
    fn args(&self) -> Vec<(&str, &str, bool)> {
        self.args.iter().map(|a| (a.name, a.ty, a.bytes)).collect()
    }
    fn returns(&self) -> &str {
        self.returns
    }
    fn oneway(&self) -> bool {
        self.oneway
    }
}

impl MethodShape for MethodInfo {
    fn name(&self) -> &str {
        &self.name
    }
    fn args(&self) -> Vec<(&str, &str, bool)> {
        self.args
            .iter()
            .map(|a| (a.name.as_str(), a.ty.as_str(), a.bytes))
            .collect()
    }
    fn returns(&self) -> &str {
        &self.returns
    }
    fn oneway(&self) -> bool {
        self.oneway
    }
}

/// Encodes a JSON arguments value for `method`: an object keyed by argument
/// name, an array of arguments in order, or `null` for none.
pub fn args_from_json<M: MethodShape + ?Sized>(method: &M, args: &Value) -> Result<Vec<u8>, Error> {
    let bad = |message: String| {
        Error::new(
            ErrorKind::Encode,
            format!(
                "arguments of `{}`: {message}; {}",
                method.name(),
                signature(method)
            ),
        )
    };
    let params = method.args();
    let mut entries: Vec<(&(&str, &str, bool), &Value)> = Vec::with_capacity(params.len());
    match args {
        Value::Null => {}
        Value::Object(map) => {
            if let Some(unknown) = map.keys().find(|k| !params.iter().any(|a| a.0 == *k)) {
                return Err(bad(format!("unknown argument `{unknown}`")));
            }
            for arg in &params {
                if let Some(value) = map.get(arg.0) {
                    entries.push((arg, value));
                }
            }
        }
        Value::Array(items) => {
            if items.len() > params.len() {
                return Err(bad(format!(
                    "{} arguments given, the method takes {}",
                    items.len(),
                    params.len()
                )));
            }
            entries.extend(params.iter().zip(items));
        }
        other => {
            return Err(bad(format!(
                "expected an object of named arguments, an array or null, got {}",
                kind_of(other)
            )));
        }
    }
    let mut converted = Vec::with_capacity(entries.len());
    for (&(name, _, bytes), value) in entries {
        let value = if bytes {
            ArgValue::Bytes(
                bytes_from_json(value).map_err(|m| bad(format!("argument `{name}`: {m}")))?,
            )
        } else {
            ArgValue::Json(value)
        };
        converted.push((name, value));
    }
    codec::encode(&ArgsMap(converted))
}

/// Decodes a reply of `method` into JSON. `bin` becomes an array of integers.
pub fn reply_to_json<M: MethodShape + ?Sized>(method: &M, reply: &[u8]) -> Result<Value, Error> {
    if method.oneway() {
        return Ok(Value::Null);
    }
    to_json(reply)
}

/// The deepest nesting of arrays and maps [`to_json`] reads: serde_json's
/// own limit when it parses. Decoding and converting recurse once a
/// level, so a deeper value (a few bytes a level) could otherwise take any
/// thread's stack.
pub const MAX_DEPTH: usize = 128;

/// Decodes any MessagePack value into JSON; values nested deeper than
/// [`MAX_DEPTH`] are refused.
pub fn to_json(bytes: &[u8]) -> Result<Value, Error> {
    let mut rest = bytes;
    let value = rmpv::decode::read_value_with_max_depth(&mut rest, MAX_DEPTH).map_err(|e| {
        Error::new(
            ErrorKind::Decode,
            format!("could not decode MessagePack: {e}"),
        )
        .with_source(e)
    })?;
    if !rest.is_empty() {
        return Err(Error::new(
            ErrorKind::Decode,
            format!(
                "could not decode MessagePack: {} unexpected bytes after the value",
                rest.len()
            ),
        ));
    }
    Ok(rmpv_to_json(value))
}

fn rmpv_to_json(value: rmpv::Value) -> Value {
    use rmpv::Value as M;
    match value {
        M::Nil => Value::Null,
        M::Boolean(b) => Value::Bool(b),
        M::Integer(i) => match (i.as_u64(), i.as_i64()) {
            (Some(u), _) => Value::Number(u.into()),
            (None, Some(s)) => Value::Number(s.into()),
            _ => Value::Null,
        },
        M::F32(f) => Number::from_f64(f64::from(f)).map_or(Value::Null, Value::Number),
        M::F64(f) => Number::from_f64(f).map_or(Value::Null, Value::Number),
        M::String(s) => Value::String(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        M::Binary(b) => Value::Array(b.into_iter().map(|x| Value::Number(x.into())).collect()),
        M::Array(items) => Value::Array(items.into_iter().map(rmpv_to_json).collect()),
        M::Map(entries) => {
            let mut map = Map::with_capacity(entries.len());
            for (k, v) in entries {
                let key = match k {
                    M::String(s) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
                    other => rmpv_to_json(other).to_string(),
                };
                map.insert(key, rmpv_to_json(v));
            }
            Value::Object(map)
        }
        M::Ext(tag, data) => {
            let mut map = Map::new();
            map.insert("ext".into(), Value::Number(tag.into()));
            map.insert(
                "data".into(),
                Value::Array(data.into_iter().map(|x| Value::Number(x.into())).collect()),
            );
            Value::Object(map)
        }
    }
}

fn bytes_from_json(value: &Value) -> Result<Option<Vec<u8>>, String> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.as_bytes().to_vec())),
        Value::Array(items) => items
            .iter()
            .map(|v| {
                v.as_u64()
                    .and_then(|n| u8::try_from(n).ok())
                    .ok_or_else(|| {
                        format!("bytes are a string or an array of integers 0-255, found {v}")
                    })
            })
            .collect::<Result<Vec<u8>, String>>()
            .map(Some),
        other => Err(format!(
            "bytes are a string or an array of integers 0-255, got {}",
            kind_of(other)
        )),
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The method's signature, for error messages.
pub fn signature<M: MethodShape + ?Sized>(method: &M) -> String {
    let args: Vec<String> = method
        .args()
        .iter()
        .map(|(name, ty, _)| format!("{name}: {ty}"))
        .collect();
    format!(
        "{}({}) -> {}",
        method.name(),
        args.join(", "),
        method.returns()
    )
}

enum ArgValue<'a> {
    Json(&'a Value),
    Bytes(Option<Vec<u8>>),
}

struct ArgsMap<'a>(Vec<(&'a str, ArgValue<'a>)>);

impl Serialize for ArgsMap<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, value) in &self.0 {
            match value {
                ArgValue::Json(v) => map.serialize_entry(name, v)?,
                ArgValue::Bytes(b) => map.serialize_entry(name, &codec::Bin(b))?,
            }
        }
        map.end()
    }
}
