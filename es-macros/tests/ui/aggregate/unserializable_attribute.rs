use es_runtime::prelude::*;

#[derive(Clone, Debug, PartialEq)]
pub struct Colour(u8, u8, u8);

#[aggregate]
pub struct Wall {
    #[attribute]
    colour: Colour,
}

#[aggregate]
impl Wall {
    #[event(Painted)]
    pub fn paint(colour: Colour) -> Self {
        Wall { colour }
    }
}

fn main() {}
