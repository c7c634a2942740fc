//! An actor implementing `Echo`.
//!
//! Build it with `cargo build --target wasm32-wasip1 --release` in this
//! directory; the module is `target/wasm32-wasip1/release/example_echo_actor.wasm`.

// ANCHOR: actor
use example_echo_contract::Echo;

/// The echo actor; it keeps no state.
#[derive(Debug, Default)]
pub struct EchoActor;

impl Echo for EchoActor {
    fn echo(&self, text: String) -> String {
        text
    }

    fn echo_bytes(&self, data: Vec<u8>) -> Vec<u8> {
        data
    }

    fn reverse(&self, text: String) -> String {
        text.chars().rev().collect()
    }
}

lattice_actor::export!(EchoActor: Echo);
// ANCHOR_END: actor
