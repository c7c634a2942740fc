#[lattice::contract]
pub trait Counter {
    #[lattice(timeout = "soon")]
    fn get(&self) -> u64;
    #[lattice(timeout = "0s")]
    fn add(&mut self, by: u64) -> u64;
}

fn main() {}
