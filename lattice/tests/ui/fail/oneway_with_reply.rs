#[lattice::contract]
pub trait Counter {
    #[lattice(oneway)]
    fn add(&mut self, by: u64) -> u64;
}

fn main() {}
