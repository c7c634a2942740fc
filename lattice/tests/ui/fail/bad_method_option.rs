#[lattice::contract]
pub trait Counter {
    #[lattice(retry)]
    fn get(&self) -> u64;
}

fn main() {}
