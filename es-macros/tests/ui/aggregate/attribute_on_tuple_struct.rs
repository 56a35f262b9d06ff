use es_runtime::prelude::*;

#[aggregate]
pub struct Point(#[attribute] i64, i64);

fn main() {}
