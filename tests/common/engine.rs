//! Helpers for tests that drive the engine in-process: waiting for proxies, UDP services.

use expose::frp::{Client, ProxyReady};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::UdpSocket;

/// How long the engine helpers wait for a client.
const READY_WAIT: Duration = Duration::from_secs(20);

/// Waits for every proxy of `client` to be registered and returns them.
pub async fn ready(client: &Client) -> Vec<ProxyReady> {
    tokio::time::timeout(READY_WAIT, client.ready())
        .await
        .expect("proxies ready in time")
        .expect("proxies ready")
}

/// A UDP echo service on loopback.
pub async fn udp_echo() -> SocketAddr {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = sock.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65536];
        while let Ok((n, from)) = sock.recv_from(&mut buf).await {
            let _ = sock.send_to(&buf[..n], from).await;
        }
    });
    addr
}

/// Sends `msg` from `sock` to `to` until the echo comes back (UDP may be lost, and the path
/// may still be starting), and checks it.
pub async fn udp_ask(sock: &UdpSocket, to: SocketAddr, msg: &[u8]) {
    let mut buf = vec![0u8; 65536];
    for _ in 0..100 {
        sock.send_to(msg, to).await.unwrap();
        if let Ok(Ok((n, _))) =
            tokio::time::timeout(Duration::from_millis(300), sock.recv_from(&mut buf)).await
        {
            if &buf[..n] == msg {
                return;
            }
        }
    }
    panic!("no echo for {} bytes through {to}", msg.len());
}
