//! Items used by generated code. Not a public API: no stability guarantees.

pub use crate::codec::{Bin, decode, decode_args, decode_method_args, encode_into};
pub use crate::contract::fingerprint;
pub use crate::guest::{GuestStub, GuestTransport, HostTransport};
pub use serde;
pub use serde_bytes;

use crate::contract::ContractDescriptor;
use crate::error::{Error, ErrorKind};

#[cfg(all(feature = "client", not(target_family = "wasm")))]
pub use async_nats;

/// Expands its input only when the native client is compiled in.
#[cfg(all(feature = "client", not(target_family = "wasm")))]
#[macro_export]
#[doc(hidden)]
macro_rules! __cfg_client {
    ($($item:item)*) => { $($item)* };
}

/// Expands its input only when the native client is compiled in.
#[cfg(not(all(feature = "client", not(target_family = "wasm"))))]
#[macro_export]
#[doc(hidden)]
macro_rules! __cfg_client {
    ($($item:item)*) => {};
}

pub use crate::__cfg_client as cfg_client;

/// Rejects a call whose fingerprint differs from the contract's.
#[inline]
pub fn check_fingerprint(
    contract: &ContractDescriptor,
    fingerprint: Option<u64>,
) -> Result<(), Error> {
    match fingerprint {
        Some(fp) if fp != contract.fingerprint => Err(Error::new(
            ErrorKind::ContractMismatch,
            format!(
                "the caller was built against a different `{}` contract (fingerprint {fp:016x}) \
                 than the actor implements (version {}, fingerprint {:016x}); \
                 rebuild the caller or the actor against the same contract",
                contract.name, contract.version, contract.fingerprint
            ),
        )),
        _ => Ok(()),
    }
}

/// The error for a method the contract does not have.
#[cold]
pub fn unknown_method(contract: &ContractDescriptor, method: &str) -> Error {
    Error::new(
        ErrorKind::UnknownMethod,
        format!(
            "contract `{}` has no method {method:?}; its methods are: {}",
            contract.name,
            contract.method_list()
        ),
    )
}
