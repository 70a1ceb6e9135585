// A tokio program's attributes, with the crate renamed.

#[epitome::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listener = epitome::net::TcpListener::bind("127.0.0.1:0").await?;
    let _ = listener.local_addr()?;
    Ok(())
}

#[epitome::test]
async fn plain() {}

#[epitome::test(flavor = "current_thread")]
async fn current_thread() {}

#[epitome::test(flavor = "multi_thread")]
async fn multi_thread_default_count() {}

mod renamed {
    pub use epitome as rt;
}

#[epitome::test(crate = "renamed::rt", flavor = "multi_reactor", reactors = 1)]
async fn through_a_reexport() {}
