//! Placeholder until the application layer lands: builds and prints the registered topics.
fn main() {
    println!(
        "es topics registered: {}",
        es_runtime::domain::topic::topics().len()
    );
}
