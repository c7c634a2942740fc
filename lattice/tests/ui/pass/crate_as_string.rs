#[lattice::contract(crate = "lattice")]
pub trait Echo {
    fn echo(&self, text: String) -> String;
}

fn main() {}
