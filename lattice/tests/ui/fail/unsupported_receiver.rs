#[lattice::contract]
pub trait Counter {
    fn add(self: Box<Self>, by: u64) -> u64;
}

fn main() {}
