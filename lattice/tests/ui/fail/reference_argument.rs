#[lattice::contract]
pub trait Echo {
    fn echo(&self, text: &str) -> String;
    fn first(&self, items: Vec<u8>) -> &u8;
}

fn main() {}
