#[lattice::contract]
pub trait Math {
    fn add(&self, a: u64, a: u64) -> u64;
}

fn main() {}
