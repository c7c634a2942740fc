// Every mistake is reported in one go, and the trait is still emitted, so
// the implementation below compiles and adds no errors of its own.
#[lattice::contract(version = "one")]
pub trait Counter {
    async fn add(&mut self, by: u64) -> u64;
    fn get(self) -> u64;
    #[lattice(oneway)]
    fn name(&self) -> String;
    fn ok(&self) -> u64;
}

struct Impl;
impl Counter for Impl {
    async fn add(&mut self, by: u64) -> u64 { by }
    fn get(self) -> u64 { 0 }
    fn name(&self) -> String { String::new() }
    fn ok(&self) -> u64 { 1 }
}

fn main() {}
