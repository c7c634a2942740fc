#[lattice::contract]
pub trait Iter {
    fn items(&self) -> impl Iterator<Item = u8>;
    fn me(&self) -> Self;
}

fn main() {}
