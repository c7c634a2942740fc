//! Generated code names only absolute paths: it compiles with no prelude, with
//! the `lattice` crate known under another name (found in `Cargo.toml`), and
//! next to user items that shadow common names.
#![no_implicit_prelude]

// Items that would break generated code that relied on names in scope.
#[allow(dead_code)]
struct Result;
#[allow(dead_code)]
struct Option;
#[allow(dead_code)]
struct Vec;
#[allow(dead_code)]
mod core {}

#[::renamed_lattice::contract(version = 3)]
pub trait Clean {
    /// Uses paths that the generated code must not depend on.
    fn echo(&self, text: ::std::string::String) -> ::std::string::String;
    fn bytes(&mut self, data: ::std::vec::Vec<u8>) -> ::std::vec::Vec<u8>;
    fn maybe(&self) -> ::std::result::Result<(), ::std::string::String>;
    #[lattice(oneway)]
    fn nothing(&mut self);
}

struct Impl;

impl Clean for Impl {
    fn echo(&self, text: ::std::string::String) -> ::std::string::String {
        text
    }
    fn bytes(&mut self, data: ::std::vec::Vec<u8>) -> ::std::vec::Vec<u8> {
        data
    }
    fn maybe(&self) -> ::std::result::Result<(), ::std::string::String> {
        ::std::result::Result::Ok(())
    }
    fn nothing(&mut self) {}
}

#[test]
fn expands_without_prelude_under_a_renamed_crate() {
    use ::renamed_lattice::{Contract, Dispatch, Invocation};
    ::std::assert_eq!(<dyn Clean as Contract>::NAME, "clean");
    ::std::assert_eq!(<dyn Clean as Contract>::VERSION, 3);
    let args = CleanEchoArgs {
        text: ::std::string::ToString::to_string("hi"),
    };
    let payload = ::renamed_lattice::codec::encode(&args).unwrap();
    let mut out = ::std::vec::Vec::new();
    <dyn Clean>::dispatch(&mut Impl, Invocation::new("echo", &payload), &mut out).unwrap();
    ::std::assert_eq!(
        ::renamed_lattice::codec::decode::<::std::string::String>(&out).unwrap(),
        "hi"
    );
    let _client = CleanGuestClient::new("clean").unwrap();
}
