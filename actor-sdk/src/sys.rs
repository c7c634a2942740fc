//! The raw guest ABI: host imports and guest memory. All unsafe code of the
//! SDK lives here, each block with its reason.
//!
//! Outside wasm the imports are replaced by stand-ins, so that actor crates
//! build and unit-test natively.
//!
//! `call` and `take_reply` are declared in `lattice::guest` (its `sys.rs`),
//! next to the guest clients: only actors that make calls import `call`.

use lattice::Error;
use lattice::abi::{self, LogLevel};

/// A contract or method name from the host as a `str`. Names are ASCII
/// (`[a-z0-9_-]+`), and checking that is a few word compares, where full
/// UTF-8 validation of the two names cost ~250 instructions of a call's
/// ~2,100 in the guest (callgrind with `LATTICE_PERFMAP`).
pub(crate) fn name(bytes: &[u8]) -> Result<&str, std::str::Utf8Error> {
    if bytes.is_ascii() {
        // SAFETY: ASCII bytes are valid UTF-8.
        Ok(unsafe { std::str::from_utf8_unchecked(bytes) })
    } else {
        std::str::from_utf8(bytes)
    }
}

/// Packs a reply held in `out` for the host.
pub(crate) fn pack_reply(out: &[u8], is_error: bool) -> u64 {
    abi::pack(out.as_ptr() as usize as u32, out.len() as u32, is_error)
}

fn layout(size: u32) -> Option<std::alloc::Layout> {
    std::alloc::Layout::from_size_align(size.max(1) as usize, 8).ok()
}

/// Allocates `size` bytes for the host; 0 if it cannot.
pub(crate) fn alloc(size: u32) -> u32 {
    match layout(size) {
        // SAFETY: the layout has a non-zero size (`max(1)`).
        Some(layout) => unsafe { std::alloc::alloc(layout) as usize as u32 },
        None => 0,
    }
}

/// Frees what [`alloc`] returned for the same `size`.
pub(crate) fn free(ptr: u32, size: u32) {
    if let (true, Some(layout)) = (ptr != 0, layout(size)) {
        // SAFETY: the host hands back a pointer that `alloc` returned for the
        // same size, hence the same layout, and never uses it again.
        unsafe { std::alloc::dealloc(ptr as usize as *mut u8, layout) }
    }
}

/// The size of [`input_buffer`]: most calls' names and arguments fit, and
/// larger ones get a buffer from `alloc`. Small, so that the page it starts
/// on is likely one the instance's other static data touches anyway: with
/// 16 KiB an idle instance held 4 KiB more (the `lattice` bench's density).
const INPUT_LEN: usize = 1 << 10;

/// The input buffer of [`abi::INPUT`]: zero-initialized, so in the
/// module's `.bss` (no image bytes; pages are touched only when written).
static mut INPUT: [u8; INPUT_LEN] = [0; INPUT_LEN];

/// [`abi::INPUT`]: where [`INPUT`] is, packed.
pub(crate) fn input_buffer() -> u64 {
    // A raw pointer, never a reference: only the host writes the buffer,
    // between calls, and the guest reads it through [`input`] during one.
    let at = &raw const INPUT;
    abi::pack(at as usize as u32, INPUT_LEN as u32, false)
}

/// The bytes the host wrote at `ptr` for this call.
#[cfg(target_family = "wasm")]
pub(crate) fn input(ptr: u32, len: usize) -> &'static [u8] {
    if len == 0 {
        return &[];
    }
    // SAFETY: the host wrote `len` bytes at `ptr`, inside a buffer it got from
    // `alloc` or [`input_buffer`] and keeps alive and untouched until this
    // call returns; the slice does not outlive the call (it only reaches the
    // dispatcher), and nothing else in the guest refers to `INPUT`.
    unsafe { std::slice::from_raw_parts(ptr as usize as *const u8, len) }
}

#[cfg(not(target_family = "wasm"))]
pub(crate) fn input(_ptr: u32, _len: usize) -> &'static [u8] {
    &[]
}

/// Runs the module's static constructors (`.init_array`: those of wasi-libc,
/// and of crates such as `ctor` or `inventory`). Called once per instance,
/// before anything else the instance does.
///
/// Referring to `__wasm_call_ctors` also makes the module a WASI reactor:
/// when nothing refers to it, `wasm-ld` links a command module and wraps
/// every export in a call of the constructors before it and of the
/// destructors after it, so each call would run them again (and pay ~110
/// instructions for it).
#[cfg(target_family = "wasm")]
pub(crate) fn run_constructors() {
    unsafe extern "C" {
        fn __wasm_call_ctors();
    }
    // SAFETY: a function the linker synthesizes for every module; the
    // caller runs it once per instance, before any other guest code.
    unsafe { __wasm_call_ctors() }
}

/// Native builds have no wasm constructors to run.
#[cfg(not(target_family = "wasm"))]
pub(crate) fn run_constructors() {}

#[cfg(target_family = "wasm")]
mod imports {
    #[link(wasm_import_module = "lattice")]
    unsafe extern "C" {
        pub(super) fn publish(
            subject: *const u8,
            subject_len: usize,
            payload: *const u8,
            payload_len: usize,
        ) -> u64;
        pub(super) fn log(level: i32, msg: *const u8, msg_len: usize);
        pub(super) fn log_enabled(level: i32) -> i32;
        pub(super) fn panic(msg: *const u8, msg_len: usize);
        pub(super) fn kv(request: *const u8, request_len: usize) -> u64;
    }
}

/// Publishes an event through the host.
#[cfg(target_family = "wasm")]
pub(crate) fn publish(subject: &str, payload: &[u8]) -> Result<(), Error> {
    // SAFETY: pointers and lengths of live slices, read by the host during the call.
    let packed = unsafe {
        imports::publish(
            subject.as_ptr(),
            subject.len(),
            payload.as_ptr(),
            payload.len(),
        )
    };
    lattice::guest::take_reply(packed)
}

/// An operation on the actor's key-value bucket, an encoded
/// [`KvRequest`](lattice::abi::KvRequest): the encoded reply.
#[cfg(target_family = "wasm")]
pub(crate) fn kv(request: &[u8]) -> Result<Vec<u8>, Error> {
    // SAFETY: pointer and length of a live slice, read by the host during the call.
    let packed = unsafe { imports::kv(request.as_ptr(), request.len()) };
    lattice::guest::take_reply_bytes(packed)
}

/// Logs through the host.
#[cfg(target_family = "wasm")]
pub(crate) fn log(level: LogLevel, message: &str) {
    // SAFETY: pointer and length of a live str, read by the host during the call.
    unsafe { imports::log(level as i32, message.as_ptr(), message.len()) }
}

/// Whether the host records lines at `level`.
#[cfg(target_family = "wasm")]
pub(crate) fn log_enabled(level: LogLevel) -> bool {
    // SAFETY: a call with a plain integer; the host reads no guest memory.
    unsafe { imports::log_enabled(level as i32) != 0 }
}

/// Hands the panic message to the host before the guest traps.
#[cfg(target_family = "wasm")]
pub(crate) fn panic(message: &str) {
    // SAFETY: pointer and length of a live str, read by the host during the call.
    unsafe { imports::panic(message.as_ptr(), message.len()) }
}

#[cfg(not(target_family = "wasm"))]
fn not_in_a_host(what: &str) -> Error {
    Error::new(
        lattice::ErrorKind::Transport,
        format!("{what} needs a lattice host: this actor is not running inside one"),
    )
}

#[cfg(not(target_family = "wasm"))]
pub(crate) fn publish(subject: &str, _payload: &[u8]) -> Result<(), Error> {
    Err(not_in_a_host(&format!("publishing to {subject}")))
}

#[cfg(not(target_family = "wasm"))]
pub(crate) fn kv(_request: &[u8]) -> Result<Vec<u8>, Error> {
    Err(not_in_a_host("the key-value bucket"))
}

#[cfg(not(target_family = "wasm"))]
pub(crate) fn log(level: LogLevel, message: &str) {
    eprintln!("[{level:?}] {message}");
}

#[cfg(not(target_family = "wasm"))]
pub(crate) fn log_enabled(_level: LogLevel) -> bool {
    true
}

#[cfg(not(target_family = "wasm"))]
pub(crate) fn panic(_message: &str) {}
