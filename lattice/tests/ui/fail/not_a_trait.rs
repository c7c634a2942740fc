#[lattice::contract]
pub struct Counter {
    total: u64,
}

fn main() {}
