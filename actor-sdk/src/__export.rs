//! The runtime behind [`export!`](crate::export): safe glue between the raw
//! ABI in `sys` and the generated dispatchers. Not a public API.

use std::cell::RefCell;
use std::sync::Once;

use lattice::abi;
use lattice::{ContractDescriptor, Error, ErrorKind, Invocation};

use crate::sys;

thread_local! {
    /// The reply of the last call into this instance; valid until the next one.
    static REPLY: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

static INIT: Once = Once::new();

/// Once per instance, before any other guest code: the module's static
/// constructors and the panic hook. Every export calls it first.
fn init() {
    INIT.call_once(|| {
        sys::run_constructors();
        std::panic::set_hook(Box::new(|info| {
            let message = info.payload_as_str().unwrap_or("a panic without a message");
            let text = match info.location() {
                Some(at) => format!("{message} (at {}:{}:{})", at.file(), at.line(), at.column()),
                None => message.to_owned(),
            };
            sys::panic(&text);
        }));
    });
}

/// [`abi::ALLOC`].
pub fn alloc(size: u32) -> u32 {
    init();
    sys::alloc(size)
}

/// [`abi::INPUT`].
pub fn input() -> u64 {
    init();
    sys::input_buffer()
}

/// [`abi::FREE`].
pub fn free(ptr: u32, size: u32) {
    init();
    sys::free(ptr, size)
}

/// The reserved contract of a keyed actor (see [`abi::STATE_CONTRACT`]):
/// loads the state the host gives, or writes the actor's state to `out`.
pub fn state<A>(actor: &mut A, call: Invocation<'_>, out: &mut Vec<u8>) -> Result<(), Error>
where
    A: Default
        + lattice::__private::serde::Serialize
        + lattice::__private::serde::de::DeserializeOwned,
{
    match call.method {
        abi::STATE_LOAD => {
            *actor = if call.payload.is_empty() {
                A::default()
            } else {
                lattice::codec::decode_as(call.payload, &"the actor's saved state")?
            };
            Ok(())
        }
        abi::STATE_SAVE => lattice::codec::encode_into(actor, out),
        other => Err(Error::new(
            ErrorKind::UnknownMethod,
            format!("the state of a keyed actor has no method {other:?}"),
        )),
    }
}

/// [`abi::DESCRIBE`].
pub fn describe(contracts: &[&ContractDescriptor]) -> u64 {
    init();
    REPLY.with_borrow_mut(|out| {
        out.clear();
        let is_error = match lattice::codec::encode_into(contracts, out) {
            Ok(()) => false,
            Err(e) => error_reply(out, &e),
        };
        sys::pack_reply(out, is_error)
    })
}

/// [`abi::DISPATCH`]: splits the input, runs `route` and packs its reply.
pub fn dispatch(
    input: u32,
    contract_len: u32,
    method_len: u32,
    payload_len: u32,
    fingerprint: u64,
    route: impl FnOnce(&str, Invocation<'_>, &mut Vec<u8>) -> Result<(), Error>,
) -> u64 {
    init();
    let (contract_len, method_len, payload_len) = (
        contract_len as usize,
        method_len as usize,
        payload_len as usize,
    );
    let input = sys::input(input, contract_len + method_len + payload_len);
    let (contract, rest) = input.split_at(contract_len);
    let (method, payload) = rest.split_at(method_len);
    REPLY.with_borrow_mut(|out| {
        out.clear();
        let result = match (sys::name(contract), sys::name(method)) {
            (Ok(contract), Ok(method)) => route(
                contract,
                Invocation {
                    method,
                    payload,
                    fingerprint: (fingerprint != 0).then_some(fingerprint),
                },
                out,
            ),
            _ => Err(Error::new(
                ErrorKind::Decode,
                "contract and method names must be UTF-8",
            )),
        };
        let is_error = match result {
            Ok(()) if out.len() > abi::MAX_PACKED_LEN as usize => {
                let e = Error::new(
                    ErrorKind::PayloadTooLarge,
                    format!(
                        "the reply is {} bytes, more than the ABI carries",
                        out.len()
                    ),
                );
                error_reply(out, &e)
            }
            Ok(()) => false,
            Err(e) => error_reply(out, &e),
        };
        sys::pack_reply(out, is_error)
    })
}

/// Replaces the reply with `error` on the wire; `true`: the reply is an
/// error.
#[cold]
fn error_reply(out: &mut Vec<u8>, error: &Error) -> bool {
    out.clear();
    out.extend_from_slice(&error.to_wire());
    true
}

/// The error for a contract the actor does not implement.
#[cold]
pub fn unknown_contract(contract: &str, implemented: &[&ContractDescriptor]) -> Error {
    let names: Vec<&str> = implemented.iter().map(|c| c.name).collect();
    Error::new(
        ErrorKind::UnknownContract,
        format!(
            "this actor does not implement contract {contract:?}; it implements: {}",
            names.join(", ")
        ),
    )
}
