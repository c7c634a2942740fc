//! The server side of a contract.

use crate::contract::Contract;
use crate::error::Error;

/// One incoming call, as the dispatcher sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Invocation<'a> {
    /// The method's wire name.
    pub method: &'a str,
    /// The MessagePack arguments map. An empty payload means an empty map.
    pub payload: &'a [u8],
    /// The fingerprint the caller was built against, if it sent one.
    pub fingerprint: Option<u64>,
}

impl<'a> Invocation<'a> {
    /// A call of `method` with `payload`, without a fingerprint check.
    pub fn new(method: &'a str, payload: &'a [u8]) -> Self {
        Invocation {
            method,
            payload,
            fingerprint: None,
        }
    }

    /// Asks the dispatcher to check the caller's contract fingerprint.
    pub fn with_fingerprint(mut self, fingerprint: u64) -> Self {
        self.fingerprint = Some(fingerprint);
        self
    }
}

/// Decodes a call, invokes an implementation and encodes its reply.
///
/// `#[lattice::contract]` implements `Dispatch<A>` for `dyn Trait` for every
/// `A: Trait`. The actor SDK routes guest calls through it; natively it runs a
/// contract in process (tests, in-process hosts).
pub trait Dispatch<A: ?Sized>: Contract {
    /// Dispatches `call` into `actor`, appending the MessagePack reply to `out`.
    ///
    /// A `Result<T, E>` returned by the method is a successful reply carrying
    /// `{"Ok": T}` or `{"Err": E}`; the `Err` of this function is for calls
    /// that could not be made: [`ContractMismatch`](crate::ErrorKind::ContractMismatch),
    /// [`UnknownMethod`](crate::ErrorKind::UnknownMethod),
    /// [`Decode`](crate::ErrorKind::Decode), [`Encode`](crate::ErrorKind::Encode).
    fn dispatch(actor: &mut A, call: Invocation<'_>, out: &mut Vec<u8>) -> Result<(), Error>;
}
