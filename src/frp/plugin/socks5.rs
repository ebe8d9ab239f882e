//! socks5: a SOCKS5 server on each connection, as frpc's (armon/go-socks5): version 5 only;
//! "no auth", or username/password (RFC 1929) only when a user or password is configured;
//! CONNECT only (BIND and UDP ASSOCIATE answer "command not supported"); domain names resolved
//! here. Every field read is small and fixed in size.

use super::config::PluginConfig;
use super::conn::PluginConn;
use crate::frp::error::Error;
use crate::secret::Secret;
use frp_proto::auth::bytes_match;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const VERSION: u8 = 5;
const NO_AUTH: u8 = 0;
const USER_PASS: u8 = 2;
const NO_ACCEPTABLE: u8 = 0xff;
const USER_AUTH_VERSION: u8 = 1;

const SUCCEEDED: u8 = 0;
const NETWORK_UNREACHABLE: u8 = 3;
const HOST_UNREACHABLE: u8 = 4;
const CONNECTION_REFUSED: u8 = 5;
const COMMAND_NOT_SUPPORTED: u8 = 7;
const ADDR_TYPE_NOT_SUPPORTED: u8 = 8;

const CONNECT: u8 = 1;

/// The socks5 plugin of one proxy.
pub(super) struct Socks5 {
    /// Username and password, when required.
    credentials: Option<(String, Secret)>,
}

fn protocol(msg: &str) -> Error {
    Error::Protocol(format!("socks5: {msg}"))
}

impl Socks5 {
    pub(super) fn new(config: &PluginConfig) -> Self {
        Socks5 {
            credentials: config
                .has_auth()
                .then(|| (config.user.clone(), config.password.clone())),
        }
    }

    /// Serves one SOCKS5 client until its CONNECT tunnel ends.
    pub(super) async fn handle(&self, mut conn: PluginConn) -> Result<(), Error> {
        if conn.read_u8().await? != VERSION {
            return Err(protocol("unsupported SOCKS version"));
        }
        self.authenticate(&mut conn).await?;
        let mut head = [0u8; 3];
        conn.read_exact(&mut head).await?;
        if head[0] != VERSION {
            return Err(protocol("unsupported command version"));
        }
        let target = match read_addr(&mut conn).await? {
            Some(t) => t,
            None => {
                reply(&mut conn, ADDR_TYPE_NOT_SUPPORTED, None).await?;
                return Err(protocol("unrecognized address type"));
            }
        };
        let target = match target {
            Target::Ip(addr) => addr,
            Target::Name(name, port) => {
                match tokio::net::lookup_host((name.as_str(), port))
                    .await
                    .ok()
                    .and_then(|mut a| a.next())
                {
                    Some(addr) => addr,
                    None => {
                        reply(&mut conn, HOST_UNREACHABLE, None).await?;
                        return Err(protocol("failed to resolve destination"));
                    }
                }
            }
        };
        if head[1] != CONNECT {
            reply(&mut conn, COMMAND_NOT_SUPPORTED, None).await?;
            return Err(protocol("unsupported command"));
        }
        let remote = match TcpStream::connect(target).await {
            Ok(s) => s,
            Err(e) => {
                let code = match e.kind() {
                    io::ErrorKind::ConnectionRefused => CONNECTION_REFUSED,
                    io::ErrorKind::NetworkUnreachable => NETWORK_UNREACHABLE,
                    _ => HOST_UNREACHABLE,
                };
                reply(&mut conn, code, None).await?;
                return Err(protocol(&format!("connect to {target} failed: {e}")));
            }
        };
        reply(&mut conn, SUCCEEDED, remote.local_addr().ok()).await?;
        let _ = remote.set_nodelay(true);
        super::conn::join(conn, remote).await?;
        Ok(())
    }

    /// Method negotiation and, when configured, the username/password exchange.
    async fn authenticate(&self, conn: &mut PluginConn) -> Result<(), Error> {
        let n = usize::from(conn.read_u8().await?);
        let mut methods = [0u8; 255];
        conn.read_exact(&mut methods[..n]).await?;
        let wanted = if self.credentials.is_some() {
            USER_PASS
        } else {
            NO_AUTH
        };
        if !methods[..n].contains(&wanted) {
            conn.write_all(&[VERSION, NO_ACCEPTABLE]).await?;
            conn.flush().await?;
            return Err(protocol("no supported authentication mechanism"));
        }
        conn.write_all(&[VERSION, wanted]).await?;
        conn.flush().await?;
        let Some((user, password)) = &self.credentials else {
            return Ok(());
        };
        if conn.read_u8().await? != USER_AUTH_VERSION {
            return Err(protocol("unsupported auth version"));
        }
        let mut got_user = [0u8; 255];
        let n = usize::from(conn.read_u8().await?);
        conn.read_exact(&mut got_user[..n]).await?;
        let got_user = &got_user[..n];
        let mut got_pass = [0u8; 255];
        let m = usize::from(conn.read_u8().await?);
        conn.read_exact(&mut got_pass[..m]).await?;
        let ok = bytes_match(got_user, user.as_bytes())
            & bytes_match(&got_pass[..m], password.expose().as_bytes());
        conn.write_all(&[USER_AUTH_VERSION, if ok { 0 } else { 1 }])
            .await?;
        conn.flush().await?;
        if ok {
            Ok(())
        } else {
            Err(protocol("user authentication failed"))
        }
    }
}

enum Target {
    Ip(SocketAddr),
    Name(String, u16),
}

/// The request's address; `None` for an unknown address type.
async fn read_addr(conn: &mut PluginConn) -> Result<Option<Target>, Error> {
    let ip = match conn.read_u8().await? {
        1 => {
            let mut b = [0u8; 4];
            conn.read_exact(&mut b).await?;
            IpAddr::from(b)
        }
        4 => {
            let mut b = [0u8; 16];
            conn.read_exact(&mut b).await?;
            IpAddr::from(b)
        }
        3 => {
            let n = usize::from(conn.read_u8().await?);
            let mut b = [0u8; 255];
            conn.read_exact(&mut b[..n]).await?;
            let port = conn.read_u16().await?;
            let name = String::from_utf8_lossy(&b[..n]).into_owned();
            return Ok(Some(Target::Name(name, port)));
        }
        _ => return Ok(None),
    };
    let port = conn.read_u16().await?;
    Ok(Some(Target::Ip(SocketAddr::new(ip, port))))
}

/// A reply with the bound address (0.0.0.0:0 when there is none).
async fn reply(conn: &mut PluginConn, code: u8, bound: Option<SocketAddr>) -> io::Result<()> {
    let bound = bound.unwrap_or(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0));
    let mut out = [0u8; 22];
    out[..3].copy_from_slice(&[VERSION, code, 0]);
    let mut n = 3;
    match bound.ip() {
        IpAddr::V4(ip) => {
            out[n] = 1;
            out[n + 1..n + 5].copy_from_slice(&ip.octets());
            n += 5;
        }
        IpAddr::V6(ip) => {
            out[n] = 4;
            out[n + 1..n + 17].copy_from_slice(&ip.octets());
            n += 17;
        }
    }
    out[n..n + 2].copy_from_slice(&bound.port().to_be_bytes());
    conn.write_all(&out[..n + 2]).await?;
    conn.flush().await
}
