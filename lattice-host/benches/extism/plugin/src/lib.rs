//! The Extism echo plugin: returns its input. The Extism side of the echo
//! benchmark; the Lattice side is `examples/echo/actor`'s `echo_bytes`.

use extism_pdk::{FnResult, plugin_fn};

/// Returns `input` unchanged.
#[plugin_fn]
pub fn echo(input: Vec<u8>) -> FnResult<Vec<u8>> {
    Ok(input)
}
