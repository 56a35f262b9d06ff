use es_runtime::prelude::*;

#[aggregate]
pub struct Log {
    lines: Vec<String>,
}

#[aggregate]
impl Log {
    #[event(Created)]
    pub fn create() -> Self {
        Log { lines: vec![] }
    }
    #[event(Written)]
    pub fn write(&mut self, line: &str) {
        self.lines.push(line.to_string());
    }
}

fn main() {}
