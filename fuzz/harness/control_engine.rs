//! The whole client engine (`expose::frp::Client`) against a fake frps on loopback that answers
//! Login and then sends the input. Slow (real sockets and timers) but end to end: the control
//! reader's decryption and framing, the session, the proxies and work connections it starts.
//!
//! The first byte picks the variant: `% 3 == 0` the rest is plaintext server messages, sent
//! AES-CFB encrypted after a valid LoginResp (so the client parses arbitrary *decrypted*
//! bytes); `% 3 == 1` a valid LoginResp, then the rest raw (the client decrypts garbage);
//! `% 3 == 2` the rest raw instead of a LoginResp. Bit 2 coalesces the LoginResp and what
//! follows into one write.
//!
//! Invariants: no panic in any task (the fuzz target aborts on one; here `shutdown` resumes
//! it); the client shuts down within a few seconds whatever the server sent.

use bytes::BytesMut;
use expose::frp::{Client, ClientConfig, ProxyConfig, ReconnectPolicy};
use frp_proto::crypto::{Encryptor, Key};
use frp_proto::msg::LoginResp;
use frp_proto::{decode_frame, frame::encode_to_vec, Message};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const TOKEN: &str = "fuzz-token";

/// The most a shutdown may take, whatever the server did.
const SHUTDOWN_LIMIT: Duration = Duration::from_secs(3);

fn config(port: u16) -> ClientConfig {
    let mut cfg = ClientConfig::new("127.0.0.1", port, TOKEN);
    cfg.tls.enable = false;
    cfg.tcp_mux = false;
    cfg.login_fail_exit = true;
    cfg.dial_timeout = Duration::from_millis(200);
    cfg.login_timeout = Duration::from_millis(200);
    cfg.heartbeat_interval = Some(Duration::from_millis(100));
    cfg.heartbeat_timeout = Duration::from_millis(300);
    cfg.tcp_keepalive = None;
    cfg.reconnect = ReconnectPolicy::new(
        Duration::from_millis(5),
        Duration::from_millis(10),
        Duration::from_millis(5),
    );
    // Names the seeds' NewProxyResp messages refer to.
    cfg.proxy(ProxyConfig::tcp("ssh", 9, 6000))
        .proxy(ProxyConfig::http("web", 9, "web"))
}

/// Plays frps for one control connection. Errors just end the exchange.
async fn fake_frps(listener: TcpListener, variant: u8, payload: &[u8]) -> std::io::Result<()> {
    let (mut sock, _) = listener.accept().await?;
    // Reset instead of lingering in TIME_WAIT: the fuzzer runs this hundreds of times a second.
    // (A zero linger never blocks on drop, which is what the deprecation is about.)
    #[allow(deprecated)]
    sock.set_linger(Some(Duration::ZERO))?;
    let mut buf = BytesMut::new();
    loop {
        match decode_frame(&mut buf) {
            Ok(Some(Message::Login(_))) => break,
            Ok(None) if sock.read_buf(&mut buf).await? > 0 => {}
            _ => return Ok(()),
        }
    }
    let mut out = Vec::new();
    if variant % 3 == 2 {
        out.extend_from_slice(payload);
    } else {
        let resp = LoginResp {
            version: "0.66.0".into(),
            run_id: "fuzz".into(),
            ..Default::default()
        };
        out = encode_to_vec(&resp.into()).expect("LoginResp encodes");
        if variant & 4 == 0 {
            sock.write_all(&out).await?;
            out.clear();
        }
        if variant % 3 == 0 {
            let mut enc = Encryptor::new(&Key::derive(TOKEN), [0x5a; 16]);
            out.extend_from_slice(&enc.take_iv().expect("IV"));
            let start = out.len();
            out.extend_from_slice(payload);
            enc.encrypt(&mut out[start..]);
        } else {
            out.extend_from_slice(payload);
        }
    }
    sock.write_all(&out).await?;
    sock.shutdown().await?;
    // Swallow whatever the client sends (NewProxy, Ping, CloseProxy) until it closes, and
    // refuse the work connections a ReqWorkConn makes it open.
    let mut sink = [0u8; 4096];
    let drain = async {
        while sock.read(&mut sink).await? > 0 {}
        std::io::Result::Ok(())
    };
    let refuse = async {
        loop {
            drop(listener.accept().await?);
        }
        #[allow(unreachable_code)]
        std::io::Result::Ok(())
    };
    tokio::select! {
        r = drain => r,
        r = refuse => r,
    }
}

/// Runs one exchange; call it inside a Tokio runtime with timers and I/O enabled.
pub async fn run(data: &[u8]) {
    let [variant, payload @ ..] = data else {
        return;
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let client = Client::start(config(port)).expect("valid config");
    let _ = tokio::time::timeout(
        Duration::from_millis(500),
        fake_frps(listener, *variant, payload),
    )
    .await;
    // Errors (the server's doing) are fine; a panic resumes here, a hang fails.
    let stopped = tokio::time::timeout(SHUTDOWN_LIMIT, client.shutdown()).await;
    assert!(
        stopped.is_ok(),
        "the client did not stop within {SHUTDOWN_LIMIT:?}"
    );
}
