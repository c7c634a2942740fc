#[lattice::contract]
pub trait Store<T> {
    fn get(&self) -> u64;
}

fn main() {}
