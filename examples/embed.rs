//! Expose an HTTP server running in this same process through a Prime tunnel.
//!
//! ```sh
//! export PRIME_API_KEY=...        # or run `prime login` once
//! cargo run --example embed
//! ```
//!
//! The server is a few lines of tokio so the example needs no web framework; an axum or hyper
//! app works the same way: bind it to 127.0.0.1:0, hand its port to `Tunnel::builder()`.

use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                // One request per connection keeps the example short.
                if conn.read(&mut buf).await.unwrap_or(0) == 0 {
                    return;
                }
                let body = "hello from inside the process\n";
                let reply = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = conn.write_all(reply.as_bytes()).await;
            });
        }
    });

    let tunnel = expose::Tunnel::builder()
        .local_port(port)
        .name("embed-example")
        .start()
        .await?;
    println!(
        "serving {} -> 127.0.0.1:{port} (Ctrl-C to stop)",
        tunnel.url()
    );

    let mut events = tunnel.events();
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            ev = events.recv() => if let Ok(ev) = ev { println!("event: {ev:?}") },
            _ = tokio::time::sleep(Duration::from_secs(30)) => println!("stats: {:?}", tunnel.stats()),
        }
    }
    tunnel.close().await?;
    println!("closed and deleted");
    Ok(())
}
