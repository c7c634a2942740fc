#[lattice::contract]
pub trait Counter {
    fn create(start: u64) -> u64;
}

fn main() {}
