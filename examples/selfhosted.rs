//! Forward a local TCP port through your own frps with the engine alone (no Prime API).
//!
//! ```sh
//! cargo run --example selfhosted -- frps.example.com 7000 "$FRP_TOKEN" 22
//! ```

use expose::frp::{Client, ClientConfig, ProxyConfig};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [host, port, token, local] = args.as_slice() else {
        eprintln!("usage: selfhosted HOST PORT TOKEN LOCAL_PORT");
        std::process::exit(2);
    };
    let config = ClientConfig::new(host.clone(), port.parse()?, token.as_str())
        .proxy(ProxyConfig::tcp("example", local.parse()?, 0));
    let client = Client::start(config)?;
    for proxy in client.ready().await? {
        println!(
            "{} is reachable at {}:{}",
            proxy.name,
            host,
            proxy.remote_port.unwrap_or_default()
        );
    }
    tokio::signal::ctrl_c().await?;
    client.shutdown().await?;
    Ok(())
}
