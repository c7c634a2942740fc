#[lattice::contract]
#[allow(non_snake_case)]
pub trait Store {
    fn get_item(&self) -> u64;
    fn get__item(&self) -> u64;
}

fn main() {}
