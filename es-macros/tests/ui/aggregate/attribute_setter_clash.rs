use es_runtime::prelude::*;

#[aggregate]
pub struct User {
    #[attribute(setter = "set_name")]
    nickname: String,
    #[attribute]
    name: String,
    #[attribute(setter = "set_contact")]
    email: String,
    #[attribute(setter = "set_contact")]
    phone: String,
}

fn main() {}
