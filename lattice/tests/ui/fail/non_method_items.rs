#[lattice::contract]
pub trait Store {
    const LIMIT: usize;
    type Item;
    fn get(&self) -> u64;
}

fn main() {}
