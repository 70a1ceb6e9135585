//! GET a URL with hyper-util's legacy `Client` and epitome's connector (plain http).
//!
//! ```sh
//! cargo run --release --features hyper --example hyper_client -- http://127.0.0.1:8080/
//! ```

use bytes::Bytes;
use epitome::hyper::{Connector, Executor, Timer};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "http://127.0.0.1:8080/".to_string());
    let rt = epitome::runtime::Builder::new_current_thread().build()?;
    rt.block_on(async move {
        let client: Client<Connector, Empty<Bytes>> = Client::builder(Executor::new())
            .timer(Timer::new())
            .pool_timer(Timer::new())
            .build(Connector::new());
        let res = client.get(url.parse()?).await?;
        println!("{} {:?}", res.status(), res.version());
        for (name, value) in res.headers() {
            println!("{name}: {}", value.to_str().unwrap_or("<binary>"));
        }
        let body = res.into_body().collect().await?.to_bytes();
        println!();
        print!("{}", String::from_utf8_lossy(&body));
        Ok(())
    })
}
