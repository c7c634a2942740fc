#[lattice::contract(versoin = 1)]
pub trait Counter {
    fn get(&self) -> u64;
}

fn main() {}
