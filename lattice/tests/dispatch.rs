//! Behaviour of generated code: encoded calls pushed through the generated
//! dispatcher into a plain Rust implementation, replies decoded, and the
//! generated guest client driven over an in-process transport.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};

use lattice::guest::{GuestTransport, OutgoingCall};
use lattice::{Bytes, Contract, Dispatch, ErrorKind, Invocation, codec};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Point {
    pub x: i32,
    pub y: i32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Shape {
    Dot,
    Circle { center: Point, radius: f64 },
    Polygon(Vec<Point>),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Drawing {
    pub title: Option<String>,
    pub shapes: Vec<Shape>,
    pub tags: BTreeMap<String, u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum StoreError {
    NotFound(String),
    Full { capacity: usize },
}

/// A store of drawings.
#[lattice::contract(version = 2)]
pub trait Store {
    /// Saves a drawing under `key`.
    fn put(&mut self, key: String, drawing: Drawing) -> Result<(), StoreError>;
    /// Reads a drawing.
    #[lattice(idempotent)]
    fn get(&self, key: String) -> Option<Drawing>;
    /// Removes a drawing, returning it.
    fn take(&mut self, key: String) -> Result<Drawing, StoreError>;
    /// All keys, sorted.
    #[lattice(idempotent, timeout = "250ms")]
    fn keys(&self) -> Vec<String>;
    /// Counts shapes per drawing.
    fn census(&self) -> HashMap<String, usize>;
    /// Zero arguments, no return.
    #[lattice(oneway)]
    fn clear(&mut self);
    /// Many arguments of many types.
    #[allow(clippy::too_many_arguments)]
    fn many(
        &self,
        a: u8,
        b: i64,
        c: f32,
        d: bool,
        e: char,
        f: (u16, String),
        g: Option<Vec<Option<i8>>>,
        h: [u8; 3],
    ) -> String;
    /// Raw bytes in and out.
    fn blob(&mut self, data: Vec<u8>, extra: Bytes, maybe: Option<Vec<u8>>) -> Vec<u8>;
    /// A raw identifier as a name.
    fn r#type(&self, r#match: u32) -> u32;
}

#[derive(Default)]
struct MemStore {
    drawings: BTreeMap<String, Drawing>,
    capacity: usize,
}

impl Store for MemStore {
    fn put(&mut self, key: String, drawing: Drawing) -> Result<(), StoreError> {
        if self.drawings.len() >= self.capacity && !self.drawings.contains_key(&key) {
            return Err(StoreError::Full {
                capacity: self.capacity,
            });
        }
        self.drawings.insert(key, drawing);
        Ok(())
    }
    fn get(&self, key: String) -> Option<Drawing> {
        self.drawings.get(&key).cloned()
    }
    fn take(&mut self, key: String) -> Result<Drawing, StoreError> {
        self.drawings.remove(&key).ok_or(StoreError::NotFound(key))
    }
    fn keys(&self) -> Vec<String> {
        self.drawings.keys().cloned().collect()
    }
    fn census(&self) -> HashMap<String, usize> {
        self.drawings
            .iter()
            .map(|(k, d)| (k.clone(), d.shapes.len()))
            .collect()
    }
    fn clear(&mut self) {
        self.drawings.clear();
    }
    fn many(
        &self,
        a: u8,
        b: i64,
        c: f32,
        d: bool,
        e: char,
        f: (u16, String),
        g: Option<Vec<Option<i8>>>,
        h: [u8; 3],
    ) -> String {
        format!("{a} {b} {c} {d} {e} {f:?} {g:?} {h:?}")
    }
    fn blob(&mut self, data: Vec<u8>, extra: Bytes, maybe: Option<Vec<u8>>) -> Vec<u8> {
        let mut out = data;
        out.extend_from_slice(&extra);
        out.extend(maybe.unwrap_or_default());
        out
    }
    fn r#type(&self, r#match: u32) -> u32 {
        r#match + 1
    }
}

fn store() -> MemStore {
    MemStore {
        capacity: 2,
        ..MemStore::default()
    }
}

fn drawing() -> Drawing {
    Drawing {
        title: Some("house".into()),
        shapes: vec![
            Shape::Dot,
            Shape::Circle {
                center: Point { x: 1, y: -1 },
                radius: 2.5,
            },
            Shape::Polygon(vec![Point { x: 0, y: 0 }, Point { x: 3, y: 4 }]),
        ],
        tags: BTreeMap::from([("doors".into(), 1), ("windows".into(), 4)]),
    }
}

/// Dispatches `method` with encoded `args` and returns the reply bytes.
fn call<A: Serialize>(actor: &mut MemStore, method: &str, args: &A) -> lattice::Result<Vec<u8>> {
    let payload = codec::encode(args)?;
    let mut out = Vec::new();
    <dyn Store>::dispatch(actor, Invocation::new(method, &payload), &mut out)?;
    Ok(out)
}

#[test]
fn nested_structs_enums_and_user_errors_round_trip() {
    let mut actor = store();
    let reply = call(
        &mut actor,
        "put",
        &StorePutArgs {
            key: "a".into(),
            drawing: drawing(),
        },
    )
    .unwrap();
    assert_eq!(
        codec::decode::<Result<(), StoreError>>(&reply).unwrap(),
        Ok(())
    );

    let reply = call(&mut actor, "get", &StoreGetArgs { key: "a".into() }).unwrap();
    assert_eq!(
        codec::decode::<Option<Drawing>>(&reply).unwrap(),
        Some(drawing())
    );
    let reply = call(&mut actor, "get", &StoreGetArgs { key: "nope".into() }).unwrap();
    assert_eq!(reply, [0xc0], "None is nil");

    // The user's error is data in a successful reply, not a lattice error.
    let reply = call(&mut actor, "take", &StoreTakeArgs { key: "zzz".into() }).unwrap();
    assert_eq!(
        codec::decode::<Result<Drawing, StoreError>>(&reply).unwrap(),
        Err(StoreError::NotFound("zzz".into()))
    );
    call(
        &mut actor,
        "put",
        &StorePutArgs {
            key: "b".into(),
            drawing: drawing(),
        },
    )
    .unwrap();
    let reply = call(
        &mut actor,
        "put",
        &StorePutArgs {
            key: "c".into(),
            drawing: drawing(),
        },
    )
    .unwrap();
    assert_eq!(
        codec::decode::<Result<(), StoreError>>(&reply).unwrap(),
        Err(StoreError::Full { capacity: 2 })
    );
}

#[test]
fn collections_and_zero_argument_methods() {
    let mut actor = store();
    call(
        &mut actor,
        "put",
        &StorePutArgs {
            key: "b".into(),
            drawing: drawing(),
        },
    )
    .unwrap();
    call(
        &mut actor,
        "put",
        &StorePutArgs {
            key: "a".into(),
            drawing: Drawing {
                shapes: vec![],
                ..drawing()
            },
        },
    )
    .unwrap();

    // Zero arguments: an empty map, or an empty payload.
    let reply = call(&mut actor, "keys", &StoreKeysArgs {}).unwrap();
    assert_eq!(codec::decode::<Vec<String>>(&reply).unwrap(), ["a", "b"]);
    let mut out = Vec::new();
    <dyn Store>::dispatch(&mut actor, Invocation::new("keys", &[]), &mut out).unwrap();
    assert_eq!(out, reply);

    let reply = call(&mut actor, "census", &StoreCensusArgs {}).unwrap();
    let census: HashMap<String, usize> = codec::decode(&reply).unwrap();
    assert_eq!(census, HashMap::from([("a".into(), 0), ("b".into(), 3)]));

    let reply = call(&mut actor, "clear", &StoreClearArgs {}).unwrap();
    assert_eq!(reply, [0xc0]);
    assert!(actor.drawings.is_empty());
}

#[test]
fn many_arguments() {
    let mut actor = store();
    let args = StoreManyArgs {
        a: 255,
        b: -9_000_000_000,
        c: 1.5,
        d: true,
        e: 'λ',
        f: (7, "seven".into()),
        g: Some(vec![Some(-1), None]),
        h: [1, 2, 3],
    };
    let reply = call(&mut actor, "many", &args).unwrap();
    assert_eq!(
        codec::decode::<String>(&reply).unwrap(),
        "255 -9000000000 1.5 true λ (7, \"seven\") Some([Some(-1), None]) [1, 2, 3]"
    );
}

#[test]
fn bytes_travel_as_bin() {
    let mut actor = store();
    let args = StoreBlobArgs {
        data: vec![1, 2],
        extra: Bytes::from_static(&[3]),
        maybe: Some(vec![4]),
    };
    let payload = codec::encode(&args).unwrap();
    // {"data": bin[1,2], "extra": bin[3], "maybe": bin[4]}
    assert_eq!(
        payload,
        [
            0x83, 0xa4, b'd', b'a', b't', b'a', 0xc4, 2, 1, 2, 0xa5, b'e', b'x', b't', b'r', b'a',
            0xc4, 1, 3, 0xa5, b'm', b'a', b'y', b'b', b'e', 0xc4, 1, 4
        ]
    );
    let mut out = Vec::new();
    <dyn Store>::dispatch(&mut actor, Invocation::new("blob", &payload), &mut out).unwrap();
    assert_eq!(out, [0xc4, 4, 1, 2, 3, 4], "the reply is bin too");
    let descriptor = <dyn Store as Contract>::DESCRIPTOR.method("blob").unwrap();
    assert!(descriptor.returns_bytes);
    assert!(descriptor.args.iter().all(|a| a.bytes));
}

#[test]
fn raw_identifiers_use_their_plain_names() {
    let mut actor = store();
    let reply = call(&mut actor, "type", &StoreTypeArgs { r#match: 41 }).unwrap();
    assert_eq!(codec::decode::<u32>(&reply).unwrap(), 42);
    assert_eq!(
        codec::encode(&StoreTypeArgs { r#match: 1 }).unwrap(),
        b"\x81\xa5match\x01"
    );
}

#[test]
fn bad_calls_get_typed_errors_and_the_actor_keeps_working() {
    let mut actor = store();
    let mut out = Vec::new();
    let cases: Vec<(Invocation<'_>, ErrorKind, &str)> = vec![
        (
            Invocation::new("nope", &[]),
            ErrorKind::UnknownMethod,
            "no method \"nope\"",
        ),
        (
            Invocation::new("get", &[0x81, 0xa3, b'k', b'e', b'y', 0x05]),
            ErrorKind::Decode,
            "arguments of `store.get` (a map {key: String}): invalid type: integer `5`, expected a string",
        ),
        (
            Invocation::new("get", &[0xc1]),
            ErrorKind::Decode,
            "arguments of `store.get` (a map {key: String}): got the byte 0xc1, which MessagePack never uses",
        ),
        (
            Invocation::new("get", b"\x81\xa3key\xa1a\xff"),
            ErrorKind::Decode,
            "unexpected bytes",
        ),
        (
            Invocation::new("get", &[0x81, 0xa3, b'k', b'e', b'y']),
            ErrorKind::Decode,
            "arguments of `store.get` (a map {key: String}): the MessagePack ends before the value does",
        ),
        (
            Invocation::new("keys", &[]).with_fingerprint(1),
            ErrorKind::ContractMismatch,
            "fingerprint 0000000000000001",
        ),
    ];
    for (call, kind, needle) in cases {
        out.clear();
        let err = <dyn Store>::dispatch(&mut actor, call, &mut out).unwrap_err();
        assert_eq!(err.kind(), kind, "{err}");
        assert!(err.message().contains(needle), "{err}");
        assert!(out.is_empty(), "nothing is written on error");
    }
    let fp = <dyn Store as Contract>::FINGERPRINT;
    <dyn Store>::dispatch(
        &mut actor,
        Invocation::new("keys", &[]).with_fingerprint(fp),
        &mut out,
    )
    .unwrap();
    assert_eq!(out, [0x90]);
}

#[test]
fn descriptors_describe_the_trait() {
    let d = <dyn Store as Contract>::DESCRIPTOR;
    assert_eq!((d.name, d.version), ("store", 2));
    assert_eq!(d.docs, "A store of drawings.");
    assert_eq!(d.fingerprint, lattice::fingerprint(d.methods));
    let names: Vec<&str> = d.methods.iter().map(|m| m.name).collect();
    assert_eq!(
        names,
        [
            "put", "get", "take", "keys", "census", "clear", "many", "blob", "type"
        ]
    );
    let put = d.method("put").unwrap();
    assert_eq!(put.docs, "Saves a drawing under `key`.");
    assert_eq!(put.returns, "Result<(), StoreError>");
    assert!(put.returns_result && put.mutating && !put.idempotent);
    assert_eq!(put.args[1].name, "drawing");
    assert_eq!(put.args[1].ty, "Drawing");
    let keys = d.method("keys").unwrap();
    assert!(keys.idempotent && !keys.mutating);
    assert_eq!(keys.timeout_ms, Some(250));
    assert!(d.method("clear").unwrap().oneway);
    assert_eq!(d.method("many").unwrap().args[5].ty, "(u16, String)");
    assert_eq!(d.method("many").unwrap().args[7].ty, "[u8;3]");
}

/// A transport that dispatches into one in-memory store, as a host does
/// between two actors on the same host.
struct Loopback {
    actor: RefCell<MemStore>,
    calls: RefCell<Vec<String>>,
}

impl GuestTransport for Loopback {
    fn call(&self, call: OutgoingCall<'_>) -> lattice::Result<Vec<u8>> {
        self.calls.borrow_mut().push(format!(
            "{}.{}.{}:{:?}",
            call.actor, call.contract.name, call.method.name, call.timeout
        ));
        let invocation = Invocation::new(call.method.name, call.payload)
            .with_fingerprint(call.contract.fingerprint);
        let mut out = Vec::new();
        <dyn Store>::dispatch(&mut *self.actor.borrow_mut(), invocation, &mut out)?;
        Ok(out)
    }
}

#[test]
fn guest_client_round_trips_every_shape() {
    let transport = Loopback {
        actor: RefCell::new(store()),
        calls: RefCell::default(),
    };
    let client = StoreGuestClient::with_transport(&transport, "drawings").unwrap();
    assert_eq!(client.actor(), "drawings");
    assert_eq!(client.put("a".into(), drawing()).unwrap(), Ok(()));
    assert_eq!(client.get("a".into()).unwrap(), Some(drawing()));
    assert_eq!(
        client.take("x".into()).unwrap(),
        Err(StoreError::NotFound("x".into()))
    );
    assert_eq!(client.keys().unwrap(), ["a"]);
    assert_eq!(client.blob(vec![9], Bytes::new(), None).unwrap(), [9]);
    assert_eq!(client.r#type(1).unwrap(), 2);
    client.clear().unwrap();
    assert_eq!(client.keys().unwrap(), Vec::<String>::new());

    {
        let calls = transport.calls.borrow();
        assert_eq!(calls[0], "drawings.store.put:None");
        assert_eq!(
            calls[3], "drawings.store.keys:Some(250ms)",
            "the method's timeout travels with the call"
        );
    }

    let slow = StoreGuestClient::with_transport(&transport, "drawings")
        .unwrap()
        .with_timeout(std::time::Duration::from_secs(3));
    slow.keys().unwrap();
    assert_eq!(
        transport.calls.borrow().last().unwrap(),
        "drawings.store.keys:Some(3s)"
    );
}

#[test]
fn guest_client_errors_are_typed() {
    let err = StoreGuestClient::new("Bad.Name").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidName);
    assert!(err.message().contains("\"Bad.Name\""), "{err}");

    // Outside an actor, no transport is installed.
    let err = StoreGuestClient::new("drawings")
        .unwrap()
        .keys()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transport);
    assert!(
        err.message().contains("no guest transport is installed"),
        "{err}"
    );
}

#[cfg(feature = "json")]
#[test]
fn json_of_the_same_shape_gives_the_same_bytes() {
    use serde_json::json;
    let d = <dyn Store as Contract>::DESCRIPTOR;
    let put = d.method("put").unwrap();
    let typed = codec::encode(&StorePutArgs {
        key: "a".into(),
        drawing: drawing(),
    })
    .unwrap();
    let args = json!({
        "key": "a",
        "drawing": {
            "title": "house",
            "shapes": ["Dot", {"Circle": {"center": {"x": 1, "y": -1}, "radius": 2.5}}, {"Polygon": [{"x": 0, "y": 0}, {"x": 3, "y": 4}]}],
            "tags": {"doors": 1, "windows": 4}
        }
    });
    let from_json = lattice::json::args_from_json(put, &args).unwrap();
    assert_eq!(from_json, typed);
    // The same through a descriptor read off the wire, as the CLI does.
    let info = lattice::ContractInfo::from(d);
    let wire: lattice::ContractInfo =
        serde_json::from_value(serde_json::to_value(&info).unwrap()).unwrap();
    let from_wire = lattice::json::args_from_json(wire.method("put").unwrap(), &args).unwrap();
    assert_eq!(from_wire, typed);

    // Arguments in another order are put in the descriptor's order; arrays are positional.
    let get = d.method("get").unwrap();
    let typed = codec::encode(&StoreGetArgs { key: "k".into() }).unwrap();
    assert_eq!(
        lattice::json::args_from_json(get, &json!(["k"])).unwrap(),
        typed
    );

    // Bytes from a string or an array of integers become bin.
    let blob = d.method("blob").unwrap();
    let typed = codec::encode(&StoreBlobArgs {
        data: b"hi".to_vec(),
        extra: Bytes::from_static(&[1]),
        maybe: None,
    })
    .unwrap();
    let from_json =
        lattice::json::args_from_json(blob, &json!({"maybe": null, "extra": [1], "data": "hi"}))
            .unwrap();
    assert_eq!(from_json, typed);

    // Replies decode to JSON.
    let mut actor = store();
    let mut out = Vec::new();
    <dyn Store>::dispatch(
        &mut actor,
        Invocation::new(
            "take",
            &lattice::json::args_from_json(d.method("take").unwrap(), &json!({"key": "q"}))
                .unwrap(),
        ),
        &mut out,
    )
    .unwrap();
    assert_eq!(
        lattice::json::reply_to_json(d.method("take").unwrap(), &out).unwrap(),
        json!({"Err": {"NotFound": "q"}})
    );

    // Bad JSON arguments are typed errors that name the method's signature.
    let err = lattice::json::args_from_json(get, &json!({"kee": "k"})).unwrap_err();
    assert!(err.message().contains("unknown argument `kee`"), "{err}");
    assert!(
        err.message()
            .contains("get(key: String) -> Option<Drawing>"),
        "{err}"
    );
    let err = lattice::json::args_from_json(blob, &json!({"data": [256]})).unwrap_err();
    assert!(err.message().contains("integers 0-255"), "{err}");
    let err = lattice::json::args_from_json(get, &json!(5)).unwrap_err();
    assert!(err.message().contains("got a number"), "{err}");
}
