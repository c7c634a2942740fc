//! Procedural macros of Lattice. Use them through the `lattice` crate
//! (`#[lattice::contract]`), which documents them.
//!
//! The contract macro is a pipeline: `parse` reads the attribute options,
//! `validate` checks the trait and lowers it to the plain data of `ast`
//! (collecting every error), and `expand` turns that data into code.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod ast;
mod contract;
mod expand;
mod parse;
mod validate;

#[cfg(test)]
mod golden;

use proc_macro::TokenStream;

/// Turns a trait into a lattice contract. See `lattice::contract`.
#[proc_macro_attribute]
pub fn contract(attr: TokenStream, item: TokenStream) -> TokenStream {
    contract::expand(attr.into(), item.into()).into()
}
