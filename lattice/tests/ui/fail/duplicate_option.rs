#[lattice::contract(version = 1, version = 2)]
pub trait Counter {
    #[lattice(idempotent, idempotent)]
    fn get(&self) -> u64;
}

fn main() {}
