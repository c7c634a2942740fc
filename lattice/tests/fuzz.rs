//! Property-based fuzzing of every decoder of the core that reads bytes
//! from outside: the call prefix, error replies, the generated dispatcher's
//! argument decoding, and the JSON conversion. Each input must get an
//! answer (a value or a typed error), never a panic, and no input may make
//! a decoder allocate more than a bounded multiple of its own size.
//!
//! The budget is `LATTICE_FUZZ_CASES` cases per property (default 20,000,
//! about 20 s for all six in a debug build on two cores); for a longer run:
//! `LATTICE_FUZZ_CASES=1000000 cargo test --release -p lattice --test fuzz`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::BTreeMap;

use lattice::{Contract, Dispatch, Invocation};
use proptest::prelude::*;
use serde::{Deserialize, Serialize};

/// Counts the bytes each thread has allocated and not freed, and the most
/// it held at once, so that a property can bound what one input costs.
struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

// SAFETY: every call is passed on to the system allocator unchanged; the
// counting touches only `const`-initialized thread-locals, which never
// allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as isize);
        // SAFETY: as the caller promised for `layout`.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(-(layout.size() as isize));
        // SAFETY: as the caller promised for `ptr` and `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size as isize - layout.size() as isize);
        // SAFETY: as the caller promised.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

fn count(delta: isize) {
    let _ = LIVE.try_with(|live| {
        let now = live.get() + delta;
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The most bytes `f` held at once beyond what was live before it.
fn peak_of<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = LIVE.with(Cell::get);
    PEAK.with(|peak| peak.set(base));
    let value = f();
    let peak = PEAK.with(Cell::get) - base;
    (value, peak.max(0) as usize)
}

/// What any decoder may allocate for `input`: a small multiple of it, and
/// room for its error message. A decoder that trusts a declared length
/// (a 4 GiB array in five bytes) breaks it.
fn bound(input: &[u8]) -> usize {
    64 * input.len() + 64 * 1024
}

fn cases() -> u32 {
    std::env::var("LATTICE_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Shape {
    Dot,
    Circle { radius: f64 },
    Polygon(Vec<(i32, i32)>),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Drawing {
    pub title: Option<String>,
    pub shapes: Vec<Shape>,
    pub tags: BTreeMap<String, u32>,
}

/// Arguments of many shapes, for the generated decoder.
#[lattice::contract]
pub trait Fuzzed {
    fn text(&self, a: String, b: Option<String>) -> String;
    fn numbers(&self, a: u8, b: i64, c: f32, d: bool) -> u64;
    fn bytes(&self, data: Vec<u8>) -> usize;
    fn nested(&mut self, drawing: Drawing, shapes: Vec<Shape>) -> usize;
    fn nothing(&self);
}

struct Impl;

impl Fuzzed for Impl {
    fn text(&self, a: String, b: Option<String>) -> String {
        a + &b.unwrap_or_default()
    }
    fn numbers(&self, a: u8, b: i64, _c: f32, _d: bool) -> u64 {
        u64::from(a).wrapping_add(b as u64)
    }
    fn bytes(&self, data: Vec<u8>) -> usize {
        data.len()
    }
    fn nested(&mut self, drawing: Drawing, shapes: Vec<Shape>) -> usize {
        drawing.shapes.len() + shapes.len()
    }
    fn nothing(&self) {}
}

/// Any MessagePack value, up to a few levels deep.
fn msgpack_value() -> impl Strategy<Value = rmpv::Value> {
    let leaf = prop_oneof![
        Just(rmpv::Value::Nil),
        any::<bool>().prop_map(rmpv::Value::from),
        any::<i64>().prop_map(rmpv::Value::from),
        any::<u64>().prop_map(rmpv::Value::from),
        any::<f64>().prop_map(rmpv::Value::from),
        ".{0,24}".prop_map(rmpv::Value::from),
        prop::collection::vec(any::<u8>(), 0..24).prop_map(rmpv::Value::from),
        (any::<i8>(), prop::collection::vec(any::<u8>(), 0..20))
            .prop_map(|(t, d)| rmpv::Value::Ext(t, d)),
    ];
    leaf.prop_recursive(4, 48, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(rmpv::Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![
                        "[a-z]{1,6}".prop_map(rmpv::Value::from),
                        Just(rmpv::Value::from("a")),
                        Just(rmpv::Value::from("drawing")),
                        Just(rmpv::Value::from("shapes")),
                        Just(rmpv::Value::from("data")),
                    ],
                    inner
                ),
                0..6
            )
            .prop_map(rmpv::Value::Map),
        ]
    })
}

/// Bytes from outside: random, a MessagePack value, or a value with some
/// of its bytes changed, cut short, or with a huge length declared.
fn wire_bytes() -> impl Strategy<Value = Vec<u8>> {
    let encoded = msgpack_value()
        .prop_map(|v| {
            let mut out = Vec::new();
            rmpv::encode::write_value(&mut out, &v).unwrap();
            out
        })
        .boxed();
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..256),
        encoded.clone(),
        (
            encoded.clone(),
            prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4)
        )
            .prop_map(|(mut bytes, edits)| {
                if !bytes.is_empty() {
                    for (at, byte) in edits {
                        let i = at.index(bytes.len());
                        bytes[i] = byte;
                    }
                }
                bytes
            }),
        (encoded, any::<prop::sample::Index>()).prop_map(|(bytes, at)| {
            let cut = at.index(bytes.len() + 1);
            bytes[..cut].to_vec()
        }),
        // Containers and strings that declare 4 GiB and hold nothing.
        prop_oneof![
            Just(vec![0xdd, 0xff, 0xff, 0xff, 0xff]),
            Just(vec![0xdf, 0xff, 0xff, 0xff, 0xff]),
            Just(vec![0xdb, 0xff, 0xff, 0xff, 0xff]),
            Just(vec![0xc6, 0xff, 0xff, 0xff, 0xff]),
            Just(vec![0x81, 0xa1, b'a', 0xdd, 0xff, 0xff, 0xff, 0xff]),
        ],
    ]
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn the_call_prefix_answers_every_input(bytes in wire_bytes()) {
        let (result, peak) = peak_of(|| lattice::prefix::CallPrefix::split(&bytes).map(|(p, rest)| (p, rest.len())));
        prop_assert!(peak <= bound(&bytes), "{peak} bytes for {} input bytes", bytes.len());
        if let Ok((Some(_), rest)) = result {
            prop_assert_eq!(rest, bytes.len() - lattice::prefix::LEN);
        }
    }

    #[test]
    fn error_replies_decode_to_a_bounded_error(status in proptest::option::of(any::<u16>()), bytes in wire_bytes()) {
        let (error, peak) = peak_of(|| lattice::Error::from_wire(status, &bytes));
        prop_assert!(peak <= bound(&bytes));
        prop_assert!(error.message().len() <= lattice::MAX_ERROR_MESSAGE);
    }

    #[test]
    fn the_generated_dispatcher_answers_every_payload(
        method in prop_oneof![
            Just("text"), Just("numbers"), Just("bytes"), Just("nested"), Just("nothing"), Just("nope")
        ],
        payload in wire_bytes(),
    ) {
        let mut out = Vec::new();
        let call = Invocation::new(method, &payload);
        let (result, peak) = peak_of(|| <dyn Fuzzed as Dispatch<Impl>>::dispatch(&mut Impl, call, &mut out));
        prop_assert!(peak <= bound(&payload), "{peak} bytes for {} payload bytes", payload.len());
        match result {
            Ok(()) => prop_assert!(lattice::json::to_json(&out).is_ok()),
            Err(e) => {
                prop_assert!(e.message().len() <= lattice::MAX_ERROR_MESSAGE);
                if method != "nope" {
                    prop_assert_eq!(e.kind(), lattice::ErrorKind::Decode);
                    let expected = format!("the arguments of `fuzzed.{method}`");
                    prop_assert!(e.message().contains(&expected), "{}", e);
                }
            }
        }
    }

    #[test]
    fn msgpack_converts_to_json_or_says_why(bytes in wire_bytes()) {
        let (result, peak) = peak_of(|| lattice::json::to_json(&bytes));
        prop_assert!(peak <= bound(&bytes), "{peak} bytes for {} input bytes", bytes.len());
        if let Err(e) = result {
            prop_assert!(e.message().len() <= lattice::MAX_ERROR_MESSAGE);
        }
    }

    #[test]
    fn json_arguments_convert_or_say_why(
        method in 0usize..5,
        value in msgpack_value(),
    ) {
        // Any JSON value, by way of MessagePack's data model.
        let mut bytes = Vec::new();
        rmpv::encode::write_value(&mut bytes, &value).unwrap();
        let Ok(json) = lattice::json::to_json(&bytes) else { return Ok(()) };
        let descriptor = &<dyn Fuzzed as Contract>::DESCRIPTOR.methods[method];
        let input = serde_json::to_vec(&json).unwrap();
        let (result, peak) = peak_of(|| lattice::json::args_from_json(descriptor, &json));
        prop_assert!(peak <= bound(&input) + 64 * bytes.len());
        match result {
            Ok(encoded) => {
                // What the conversion accepts, the dispatcher answers.
                let mut out = Vec::new();
                let call = Invocation::new(descriptor.name, &encoded);
                let _ = <dyn Fuzzed as Dispatch<Impl>>::dispatch(&mut Impl, call, &mut out);
            }
            Err(e) => prop_assert!(e.message().len() <= lattice::MAX_ERROR_MESSAGE),
        }
    }
}

#[test]
fn deep_nesting_is_refused_not_overflowed() {
    for depth in [1_000, 100_000] {
        let mut bytes = vec![0x91; depth];
        bytes.push(0xc0);
        assert!(lattice::json::to_json(&bytes).is_err() || depth < 1_000);
        let call = Invocation::new("nested", &bytes);
        let error =
            <dyn Fuzzed as Dispatch<Impl>>::dispatch(&mut Impl, call, &mut Vec::new()).unwrap_err();
        assert_eq!(error.kind(), lattice::ErrorKind::Decode);
    }
}
