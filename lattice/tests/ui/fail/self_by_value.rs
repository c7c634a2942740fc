#[lattice::contract]
pub trait Counter {
    fn consume(self) -> u64;
}

fn main() {}
