//! The frp v1 message types.
//!
//! Every struct mirrors one Go struct of frp's `pkg/msg/msg.go`: same JSON keys, fields in Go's
//! declaration order (so our output is byte-identical to Go frpc's), empty fields omitted as Go's
//! `omitempty` does, and struct-typed fields (`client_spec`, `detect_behavior`) always present,
//! because `omitempty` never omits a struct in Go.
//!
//! Decoding is tolerant like Go's: missing fields take their default, `null` counts as missing,
//! unknown keys are ignored. A value of the wrong JSON type is an error, as it is in Go.
//!
//! Fields that carry credentials (`privilege_key`, `metas`, `http_pwd`, `sk`, `sign_key`) are
//! printed as `<redacted>` by `Debug`, so logging a message can never leak a secret.

use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// Ordered string map: Go's encoder sorts map keys, and a `BTreeMap` serialises in that order.
pub type StringMap = BTreeMap<String, String>;

/// Go's `omitempty` test: the zero value of a field is left out of the JSON.
pub trait GoEmpty {
    /// True when Go would omit this value under `omitempty`.
    fn go_empty(&self) -> bool;
}

impl GoEmpty for String {
    fn go_empty(&self) -> bool {
        self.is_empty()
    }
}
impl GoEmpty for bool {
    fn go_empty(&self) -> bool {
        !*self
    }
}
macro_rules! go_empty_int {
    ($($t:ty),*) => {$(
        impl GoEmpty for $t {
            fn go_empty(&self) -> bool { *self == 0 }
        }
    )*};
}
go_empty_int!(i64, u16, i32, u32);
impl<T> GoEmpty for Vec<T> {
    fn go_empty(&self) -> bool {
        self.is_empty()
    }
}
impl<K, V> GoEmpty for BTreeMap<K, V> {
    fn go_empty(&self) -> bool {
        self.is_empty()
    }
}
impl<T> GoEmpty for Option<T> {
    fn go_empty(&self) -> bool {
        self.is_none()
    }
}

/// Go leaves a field untouched when the JSON holds `null`; we give it its default.
fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Option::<T>::deserialize(d).map(Option::unwrap_or_default)
}

/// Chooses what `Debug` shows for one field: the value, or a fixed marker for secrets.
macro_rules! debug_value {
    ($v:expr, secret) => {
        &"<redacted>"
    };
    ($v:expr,) => {
        $v
    };
}

/// Declares a message struct: serde attributes for Go's JSON rules and a `Debug` that redacts
/// the fields marked `secret`.
macro_rules! go_struct {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $(
                $(#[$fmeta:meta])*
                $field:ident : $ty:ty = $key:literal $(, $secret:ident)? ;
            )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(default)]
        pub struct $name {
            $(
                $(#[$fmeta])*
                #[serde(
                    rename = $key,
                    skip_serializing_if = "GoEmpty::go_empty",
                    deserialize_with = "nullable"
                )]
                pub $field: $ty,
            )*
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                #[allow(unused_mut)]
                let mut d = f.debug_struct(stringify!($name));
                $(
                    if !GoEmpty::go_empty(&self.$field) {
                        d.field($key, debug_value!(&self.$field, $($secret)?));
                    }
                )*
                d.finish()
            }
        }
    };
}

go_struct! {
    /// Client kind hints; only frps-internal ssh-tunnel clients fill it. Always sent as `{}`.
    pub struct ClientSpec {
        /// `"ssh-tunnel"` for frps's own virtual clients, otherwise empty.
        kind: String = "type";
        /// Skip authentication (honoured only on frps-internal listeners).
        always_auth_pass: bool = "always_auth_pass";
    }
}

impl GoEmpty for ClientSpec {
    /// Go's `omitempty` never omits a struct, so `client_spec` is always on the wire.
    fn go_empty(&self) -> bool {
        false
    }
}

go_struct! {
    /// `o`: the first message of the control connection (client → server, plaintext).
    pub struct Login {
        /// frp version of the client; frps v0.50–v0.51 reject anything below "0.18.0".
        version: String = "version";
        /// Host name of the client machine (Go frpc 0.66 leaves it empty).
        hostname: String = "hostname";
        /// Go's `runtime.GOOS`, e.g. `linux`.
        os: String = "os";
        /// Go's `runtime.GOARCH`, e.g. `amd64`.
        arch: String = "arch";
        /// frp user; also the prefix of every proxy name.
        user: String = "user";
        /// `md5hex(token + timestamp)`, see [`crate::auth::privilege_key`].
        privilege_key: String = "privilege_key", secret;
        /// Unix seconds used in `privilege_key`.
        timestamp: i64 = "timestamp";
        /// Empty on a first login; the previous run id on a re-login.
        run_id: String = "run_id";
        /// frp v0.67+: a stable client identity (leave empty unless needed).
        client_id: String = "client_id";
        /// Client metadata; Prime's `binding_secret` travels here.
        metas: StringMap = "metas", secret;
        /// Always present (Go struct field).
        client_spec: ClientSpec = "client_spec";
        /// Work connections frps should request up front (frps caps it at 5).
        pool_count: i64 = "pool_count";
    }
}

go_struct! {
    /// `1`: the server's plaintext answer to [`Login`].
    pub struct LoginResp {
        /// frps version.
        version: String = "version";
        /// Run id the client must reuse in NewWorkConn and on re-login.
        run_id: String = "run_id";
        /// Non-empty when the login was refused; verbatim text from frps or a plugin.
        error: String = "error";
    }
}

go_struct! {
    /// `p`: register a proxy (client → server, on the encrypted control stream).
    pub struct NewProxy {
        /// `<user>.<name>` when a user is set.
        proxy_name: String = "proxy_name";
        /// `tcp`, `udp`, `http`, `https`, `stcp`, `sudp`, `xtcp`, `tcpmux`.
        proxy_type: String = "proxy_type";
        /// Wrap work-connection payload in AES-128-CFB with the token key.
        use_encryption: bool = "use_encryption";
        /// Wrap work-connection payload in snappy framing.
        use_compression: bool = "use_compression";
        /// e.g. `"1MB"`.
        bandwidth_limit: String = "bandwidth_limit";
        /// `client` (default, sent empty) or `server`.
        bandwidth_limit_mode: String = "bandwidth_limit_mode";
        /// Load-balancing group.
        group: String = "group";
        /// Load-balancing group key.
        group_key: String = "group_key", secret;
        /// Proxy-level metadata.
        metas: StringMap = "metas", secret;
        /// frp v0.55+: proxy annotations.
        annotations: StringMap = "annotations";
        /// tcp/udp: public port; 0 lets frps choose.
        remote_port: i64 = "remote_port";
        /// http/https/tcpmux: full domain names.
        custom_domains: Vec<String> = "custom_domains";
        /// http/https/tcpmux: label under frps's `subDomainHost`.
        subdomain: String = "subdomain";
        /// http: URL path prefixes to route.
        locations: Vec<String> = "locations";
        /// http: basic-auth user enforced by frps.
        http_user: String = "http_user";
        /// http: basic-auth password enforced by frps.
        http_pwd: String = "http_pwd", secret;
        /// http: Host header sent to the local service.
        host_header_rewrite: String = "host_header_rewrite";
        /// http: request headers frps sets.
        headers: StringMap = "headers";
        /// http (v0.58+): response headers frps sets.
        response_headers: StringMap = "response_headers";
        /// http/tcpmux: route by basic-auth user.
        route_by_http_user: String = "route_by_http_user";
        /// stcp/sudp/xtcp: shared secret key.
        sk: String = "sk", secret;
        /// stcp/sudp/xtcp: users allowed to visit.
        allow_users: Vec<String> = "allow_users";
        /// tcpmux: `httpconnect`.
        multiplexer: String = "multiplexer";
    }
}

go_struct! {
    /// `2`: the server's answer to [`NewProxy`].
    pub struct NewProxyResp {
        /// Name as sent, with the user prefix.
        proxy_name: String = "proxy_name";
        /// tcp/udp: `":port"`; http/https: comma list of `host[:port]`; stcp/xtcp: empty.
        remote_addr: String = "remote_addr";
        /// Non-empty when the proxy was refused.
        error: String = "error";
    }
}

go_struct! {
    /// `c`: unregister a proxy. frps sends no reply.
    pub struct CloseProxy {
        /// Name as registered, with the user prefix.
        proxy_name: String = "proxy_name";
    }
}

go_struct! {
    /// `w`: first message of a work connection (client → server, plaintext).
    pub struct NewWorkConn {
        /// The run id from [`LoginResp`].
        run_id: String = "run_id";
        /// Only with the `NewWorkConns` auth scope.
        privilege_key: String = "privilege_key", secret;
        /// Only with the `NewWorkConns` auth scope.
        timestamp: i64 = "timestamp";
    }
}

go_struct! {
    /// `r`: the server asks for one more work connection. Empty body `{}`.
    pub struct ReqWorkConn {}
}

go_struct! {
    /// `s`: the server hands a pooled work connection to a user connection (plaintext).
    pub struct StartWorkConn {
        /// Proxy the user connection belongs to, with the user prefix.
        proxy_name: String = "proxy_name";
        /// Address of the visitor.
        src_addr: String = "src_addr";
        /// Address of the frps listener (empty for http).
        dst_addr: String = "dst_addr";
        /// Port of the visitor.
        src_port: u16 = "src_port";
        /// Port of the frps listener (0 for http).
        dst_port: u16 = "dst_port";
        /// Non-empty when frps refuses this work connection.
        error: String = "error";
    }
}

go_struct! {
    /// `v`: first message of a visitor connection (stcp/xtcp/sudp).
    pub struct NewVisitorConn {
        /// Run id of the visiting client.
        run_id: String = "run_id";
        /// Target proxy as `user.name`.
        proxy_name: String = "proxy_name";
        /// `md5hex(sk + timestamp)`.
        sign_key: String = "sign_key", secret;
        /// Unix seconds used in `sign_key`.
        timestamp: i64 = "timestamp";
        /// Encrypt the payload with `sk`.
        use_encryption: bool = "use_encryption";
        /// Compress the payload.
        use_compression: bool = "use_compression";
    }
}

go_struct! {
    /// `3`: the server's answer to [`NewVisitorConn`].
    pub struct NewVisitorConnResp {
        /// Target proxy name.
        proxy_name: String = "proxy_name";
        /// Non-empty when refused.
        error: String = "error";
    }
}

go_struct! {
    /// `h`: application heartbeat (client → server).
    pub struct Ping {
        /// Only with the `HeartBeats` auth scope.
        privilege_key: String = "privilege_key", secret;
        /// Only with the `HeartBeats` auth scope.
        timestamp: i64 = "timestamp";
    }
}

go_struct! {
    /// `4`: answer to [`Ping`].
    pub struct Pong {
        /// Non-empty when scope authentication failed; the client must drop the session.
        error: String = "error";
    }
}

/// Go's `net.UDPAddr` as JSON. Its fields have no `omitempty` tags in Go, so all three are
/// always written, even when empty.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct UdpAddr {
    /// IP address text.
    #[serde(rename = "IP", deserialize_with = "nullable")]
    pub ip: String,
    /// Port.
    #[serde(rename = "Port", deserialize_with = "nullable")]
    pub port: i64,
    /// IPv6 zone.
    #[serde(rename = "Zone", deserialize_with = "nullable")]
    pub zone: String,
}

impl GoEmpty for UdpAddr {
    /// Go omits a nil `*net.UDPAddr`; a present one is always written, so the Rust side models
    /// absence with `Option` and a present value is never empty.
    fn go_empty(&self) -> bool {
        false
    }
}

go_struct! {
    /// `u`: one UDP datagram inside a udp/sudp work connection.
    pub struct UdpPacket {
        /// Payload, standard base64 with padding.
        content: String = "c";
        /// Local address.
        local_addr: Option<UdpAddr> = "l";
        /// Remote address.
        remote_addr: Option<UdpAddr> = "r";
    }
}

go_struct! {
    /// `i`: xtcp visitor asks for hole punching.
    pub struct NatHoleVisitor {
        /// Transaction id.
        transaction_id: String = "transaction_id";
        /// Target proxy.
        proxy_name: String = "proxy_name";
        /// Only check that the proxy exists.
        pre_check: bool = "pre_check";
        /// `quic` or `kcp`.
        protocol: String = "protocol";
        /// `md5hex(sk + timestamp)`.
        sign_key: String = "sign_key", secret;
        /// Unix seconds.
        timestamp: i64 = "timestamp";
        /// Observed addresses.
        mapped_addrs: Vec<String> = "mapped_addrs";
        /// Local addresses.
        assisted_addrs: Vec<String> = "assisted_addrs";
    }
}

go_struct! {
    /// `n`: xtcp proxy side answers a hole-punch request.
    pub struct NatHoleClient {
        /// Transaction id.
        transaction_id: String = "transaction_id";
        /// Proxy name.
        proxy_name: String = "proxy_name";
        /// Session id.
        sid: String = "sid";
        /// Observed addresses.
        mapped_addrs: Vec<String> = "mapped_addrs";
        /// Local addresses.
        assisted_addrs: Vec<String> = "assisted_addrs";
    }
}

go_struct! {
    /// A port range in [`NatHoleDetectBehavior`].
    pub struct PortsRange {
        /// First port.
        from: i64 = "from";
        /// Last port.
        to: i64 = "to";
    }
}

go_struct! {
    /// Hole-punching parameters; always present in [`NatHoleResp`].
    pub struct NatHoleDetectBehavior {
        /// `sender` or `receiver`.
        role: String = "role";
        /// Punching mode.
        mode: i64 = "mode";
        /// IP TTL.
        ttl: i64 = "ttl";
        /// Delay between packets.
        send_delay_ms: i64 = "send_delay_ms";
        /// Read timeout in milliseconds.
        read_timeout_ms: i64 = "read_timeout";
        /// Candidate port ranges.
        candidate_ports: Vec<PortsRange> = "candidate_ports";
        /// Random ports to send from.
        send_random_ports: i64 = "send_random_ports";
        /// Random ports to listen on.
        listen_random_ports: i64 = "listen_random_ports";
    }
}

impl GoEmpty for NatHoleDetectBehavior {
    /// A Go struct field: never omitted.
    fn go_empty(&self) -> bool {
        false
    }
}

go_struct! {
    /// `m`: server's hole-punch instructions.
    pub struct NatHoleResp {
        /// Transaction id.
        transaction_id: String = "transaction_id";
        /// Session id.
        sid: String = "sid";
        /// `quic` or `kcp`.
        protocol: String = "protocol";
        /// Peer candidate addresses.
        candidate_addrs: Vec<String> = "candidate_addrs";
        /// Peer local addresses.
        assisted_addrs: Vec<String> = "assisted_addrs";
        /// Always present.
        detect_behavior: NatHoleDetectBehavior = "detect_behavior";
        /// Non-empty on failure.
        error: String = "error";
    }
}

go_struct! {
    /// `5`: hole-punch session id on an xtcp work connection.
    pub struct NatHoleSid {
        /// Transaction id.
        transaction_id: String = "transaction_id";
        /// Session id.
        sid: String = "sid";
        /// Whether this is a response.
        response: bool = "response";
        /// Nonce.
        nonce: String = "nonce";
    }
}

go_struct! {
    /// `6`: hole-punch outcome.
    pub struct NatHoleReport {
        /// Session id.
        sid: String = "sid";
        /// Whether punching succeeded.
        success: bool = "success";
    }
}

macro_rules! messages {
    ($( $(#[$doc:meta])* $variant:ident = $byte:literal, )*) => {
        /// The one-byte type tag of a v1 frame.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum MessageType {
            $( $(#[$doc])* $variant = $byte, )*
        }

        impl MessageType {
            /// All 18 types in frp's table order.
            pub const ALL: [MessageType; 18] = [$(MessageType::$variant,)*];

            /// The type for a tag byte, or `None` for a byte frp does not know.
            pub fn from_byte(b: u8) -> Option<Self> {
                match b {
                    $( $byte => Some(MessageType::$variant), )*
                    _ => None,
                }
            }

            /// The tag byte.
            pub fn byte(self) -> u8 {
                self as u8
            }

            /// The Go type name, for logs.
            pub fn name(self) -> &'static str {
                match self {
                    $( MessageType::$variant => stringify!($variant), )*
                }
            }
        }

        /// Any v1 message.
        ///
        /// Variants differ in size (NewProxy is large), but messages live only on the control
        /// path, a few per second at most; boxing them would cost an allocation per message for
        /// nothing measurable.
        #[derive(Debug, Clone, PartialEq, Eq)]
        #[allow(clippy::large_enum_variant)]
        pub enum Message {
            $( $(#[$doc])* $variant($variant), )*
        }

        impl Message {
            /// This message's type tag.
            pub fn message_type(&self) -> MessageType {
                match self {
                    $( Message::$variant(_) => MessageType::$variant, )*
                }
            }

            /// Writes the JSON body as Go would.
            pub(crate) fn write_body<W: std::io::Write>(&self, out: W) -> serde_json::Result<()> {
                match self {
                    $( Message::$variant(m) => crate::gojson::to_writer(out, m), )*
                }
            }

            /// Parses a JSON body for the given type.
            pub(crate) fn from_body(ty: MessageType, body: &[u8]) -> serde_json::Result<Self> {
                Ok(match ty {
                    $( MessageType::$variant => Message::$variant(serde_json::from_slice(body)?), )*
                })
            }
        }

        $(
            impl From<$variant> for Message {
                fn from(m: $variant) -> Self {
                    Message::$variant(m)
                }
            }
        )*
    };
}

messages! {
    /// `o`
    Login = b'o',
    /// `1`
    LoginResp = b'1',
    /// `p`
    NewProxy = b'p',
    /// `2`
    NewProxyResp = b'2',
    /// `c`
    CloseProxy = b'c',
    /// `w`
    NewWorkConn = b'w',
    /// `r`
    ReqWorkConn = b'r',
    /// `s`
    StartWorkConn = b's',
    /// `v`
    NewVisitorConn = b'v',
    /// `3`
    NewVisitorConnResp = b'3',
    /// `h`
    Ping = b'h',
    /// `4`
    Pong = b'4',
    /// `u`
    UdpPacket = b'u',
    /// `i`
    NatHoleVisitor = b'i',
    /// `n`
    NatHoleClient = b'n',
    /// `m`
    NatHoleResp = b'm',
    /// `5`
    NatHoleSid = b'5',
    /// `6`
    NatHoleReport = b'6',
}
