#[lattice::contract]
pub trait Factory {
    fn new(&self) -> u64;
    fn with_timeout(&self, ms: u64);
}

fn main() {}
