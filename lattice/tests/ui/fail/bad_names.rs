#[lattice::contract(name = "My Counter")]
pub trait Counter {
    #[allow(non_snake_case)]
    fn Add(&mut self, by: u64) -> u64;
}

fn main() {}
