#[lattice::contract]
pub trait Store {
    fn put<T: serde::Serialize>(&mut self, value: T);
}

fn main() {}
