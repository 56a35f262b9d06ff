use es_runtime::prelude::*;

#[aggregate]
pub enum Light {
    On,
    Off,
}

fn main() {}
