#[lattice::contract]
pub trait Counter {
    async fn add(&mut self, by: u64) -> u64;
}

fn main() {}
