// The function the attribute is on.

#[epitome::main]
fn main() {}

#[epitome::test]
fn not_async() {}

#[epitome::test]
async fn takes_arguments(n: u32) {
    let _ = n;
}

#[epitome::main]
async fn main_with_arguments(args: Vec<String>) {
    let _ = args;
}

#[epitome::test]
#[test]
async fn tested_twice() {}
