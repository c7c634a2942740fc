//! The host's `call` and `take_reply` imports, on wasm: the only unsafe
//! code of this crate, each block with its reason.
//!
//! They live here, next to the guest clients that use them, rather than in
//! the actor SDK's `sys.rs` with the other imports: the SDK used to install
//! its transport when an instance started, which linked `call` into every
//! actor; declared here, `call` is imported only by modules that make
//! calls, and a host runs the others without a fiber.
#![allow(unsafe_code)]

use super::OutgoingCall;
use crate::abi;
use crate::error::Error;

#[link(wasm_import_module = "lattice")]
unsafe extern "C" {
    #[allow(clippy::too_many_arguments)]
    #[link_name = "call"]
    fn call_import(
        actor: *const u8,
        actor_len: usize,
        contract: *const u8,
        contract_len: usize,
        method: *const u8,
        method_len: usize,
        payload: *const u8,
        payload_len: usize,
        version: u32,
        fingerprint: u64,
        timeout_ms: u64,
        flags: i32,
    ) -> u64;
    #[link_name = "take_reply"]
    fn take_reply_import(ptr: *mut u8);
}

/// Calls another actor through the host.
pub(super) fn call(c: &OutgoingCall<'_>) -> Result<Vec<u8>, Error> {
    let timeout_ms = c.timeout.map_or(0, |t| {
        u64::try_from(t.as_millis()).unwrap_or(u64::MAX).max(1)
    });
    let flags = if c.method.oneway { abi::CALL_ONEWAY } else { 0 };
    let (contract, method) = (c.contract.name, c.method.name);
    // SAFETY: every pointer and length comes from a live slice or str;
    // the host only reads them during the call.
    let packed = unsafe {
        call_import(
            c.actor.as_ptr(),
            c.actor.len(),
            contract.as_ptr(),
            contract.len(),
            method.as_ptr(),
            method.len(),
            c.payload.as_ptr(),
            c.payload.len(),
            c.contract.version,
            c.contract.fingerprint,
            timeout_ms,
            flags,
        )
    };
    take_reply(packed)
}

/// Collects the pending reply announced by a packed length.
pub(super) fn take_reply(packed: u64) -> Result<Vec<u8>, Error> {
    let (_, len, is_error) = abi::unpack(packed);
    let mut reply = super::reply_buffer(len as usize);
    if len > 0 {
        // SAFETY: the host copies exactly `len` bytes (the pending reply
        // it announced) into the buffer, which is empty and has room for
        // them; then they are initialized and the length can be set.
        unsafe {
            take_reply_import(reply.as_mut_ptr());
            reply.set_len(len as usize);
        }
    }
    if is_error {
        let error = Error::from_wire(None, &reply);
        super::keep_reply_buffer(reply);
        Err(error)
    } else {
        Ok(reply)
    }
}
