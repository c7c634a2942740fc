#[lattice::contract]
pub trait Geometry {
    fn area(&self, (w, h): (u32, u32)) -> u64;
    fn skip(&self, _: u32);
}

fn main() {}
