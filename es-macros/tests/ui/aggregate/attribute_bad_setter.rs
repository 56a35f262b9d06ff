use es_runtime::prelude::*;

#[aggregate]
pub struct User {
    #[attribute(setter = "not a name")]
    a: String,
    #[attribute(setter = "fn")]
    b: String,
    #[attribute(setter = set_c)]
    c: String,
    #[attribute(name = "set_d")]
    d: String,
    #[attribute(setter = "set_e", setter = "set_e2")]
    e: String,
    #[attribute()]
    f: String,
    #[attribute = "set_g"]
    g: String,
}

fn main() {}
