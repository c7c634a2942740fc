//! An actor implementing two contracts: `Relay`, whose methods call other
//! actors through generated guest clients, and `Echo`.
//!
//! Build it with `cargo build --target wasm32-wasip1 --release` in this directory.

// ANCHOR: actor
use example_counter_contract::CounterGuestClient;
use example_echo_contract::{Echo, EchoGuestClient};
use example_relay_contract::Relay;

/// The relay actor.
#[derive(Debug, Default)]
pub struct RelayActor;

impl Relay for RelayActor {
    fn add_to(&self, counter: String, by: u64) -> Result<u64, String> {
        // A synchronous call for this actor; the host makes it.
        let counter = CounterGuestClient::new(&counter).map_err(|e| e.to_string())?;
        counter.add(by).map_err(|e| e.to_string())
    }

    fn echo_via(&self, actor: String, text: String) -> Result<String, String> {
        let echo = EchoGuestClient::new(&actor).map_err(|e| e.to_string())?;
        echo.echo(text).map_err(|e| e.to_string())
    }
}

impl Echo for RelayActor {
    fn echo(&self, text: String) -> String {
        format!("relay: {text}")
    }

    fn echo_bytes(&self, data: Vec<u8>) -> Vec<u8> {
        data
    }

    fn reverse(&self, text: String) -> String {
        text.chars().rev().collect()
    }
}

lattice_actor::export!(RelayActor: Relay, Echo);
// ANCHOR_END: actor
