//! ClientHello and ServerHello: the capability negotiation that opens a v2 control connection.
//!
//! The client offers the `json` message codec and its AEAD algorithms in order of preference
//! with a 32-byte random; the server selects `json` and the first client algorithm it supports
//! and adds its own random. The JSON is Go's (`omitempty` fields left out when empty, `[]byte`
//! as standard base64), and the transcript hash covers the payloads exactly as sent, so the
//! client keeps the bytes it wrote ([`ClientHandshake`]).

use super::aead::{Algorithm, CryptoContext, RANDOM_LEN};
use super::frame::{encode_frame, FrameError, FrameType, MAGIC};
use base64::Engine as _;
use bytes::BytesMut;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The only message codec frp defines.
pub const CODEC_JSON: &str = "json";

/// Go leaves a field untouched when the JSON holds `null`; we give it its default.
fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Go's `[]byte`: standard base64 with padding, `null` for none.
fn b64_out<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
}

fn b64_in<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    let Some(text) = Option::<String>::deserialize(d)? else {
        return Ok(Vec::new());
    };
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(serde::de::Error::custom)
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// How the client reached the server (informational; frps does not act on it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bootstrap {
    /// `transport.protocol`: `tcp`, `websocket`, `wss`, `quic`, `kcp`.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub transport: String,
    /// Whether the connection is TLS (true for `wss` and `quic` too).
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_false"
    )]
    pub tls: bool,
    /// Whether control and work connections share one yamux session.
    #[serde(
        rename = "tcpMux",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_false"
    )]
    pub tcp_mux: bool,
}

/// The message codecs a client offers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageCapabilities {
    /// Always `["json"]` in frp.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub codecs: Vec<String>,
}

/// The AEAD algorithms a client offers and its random.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CryptoCapabilities {
    /// Algorithm names in order of preference.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub algorithms: Vec<String>,
    /// 32 random bytes.
    #[serde(
        rename = "clientRandom",
        default,
        serialize_with = "b64_out",
        deserialize_with = "b64_in",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub client_random: Vec<u8>,
}

/// Everything the client offers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientCapabilities {
    /// Message codecs.
    #[serde(default, deserialize_with = "nullable")]
    pub message: MessageCapabilities,
    /// AEAD algorithms and the client random.
    #[serde(default, deserialize_with = "nullable")]
    pub crypto: CryptoCapabilities,
}

/// Frame type 1: the client's opening offer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientHello {
    /// How the client connected.
    #[serde(default, deserialize_with = "nullable")]
    pub bootstrap: Bootstrap,
    /// What it supports.
    #[serde(default, deserialize_with = "nullable")]
    pub capabilities: ClientCapabilities,
}

/// The codec the server selected.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageSelection {
    /// `json`.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub codec: String,
}

/// The algorithm the server selected and its random.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CryptoSelection {
    /// An algorithm name from the client's list.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub algorithm: String,
    /// 32 random bytes.
    #[serde(
        rename = "serverRandom",
        default,
        serialize_with = "b64_out",
        deserialize_with = "b64_in",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub server_random: Vec<u8>,
}

/// What the server selected.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerSelection {
    /// The codec.
    #[serde(default, deserialize_with = "nullable")]
    pub message: MessageSelection,
    /// The cipher.
    #[serde(default, deserialize_with = "nullable")]
    pub crypto: CryptoSelection,
}

/// Frame type 2: the server's answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerHello {
    /// The selection (present even in an error answer, with an empty crypto part).
    #[serde(default, deserialize_with = "nullable")]
    pub selected: ServerSelection,
    /// Why the server refuses the ClientHello; it closes the connection after sending it.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub error: String,
}

/// Why a hello exchange failed. The texts are frp's.
#[derive(Debug, thiserror::Error)]
pub enum HelloError {
    /// The hello payload is not JSON of the hello's shape.
    #[error("decode {what}: {source}")]
    Json {
        /// `ClientHello` or `ServerHello`.
        what: &'static str,
        /// What serde_json found wrong.
        source: serde_json::Error,
    },
    /// The server refused the ClientHello with this reason.
    #[error("{0}")]
    Refused(String),
    /// The server selected a codec other than `json`.
    #[error("unsupported selected message codec: {0}")]
    SelectedCodec(String),
    /// The server selected an algorithm frp does not know.
    #[error("unknown selected crypto algorithm: {0}")]
    UnknownAlgorithm(String),
    /// The server selected an algorithm the client did not offer.
    #[error("selected crypto algorithm was not advertised by client: {0}")]
    NotAdvertised(String),
    /// The server random is not 32 bytes.
    #[error("invalid crypto server random length {0}, want {RANDOM_LEN}")]
    ServerRandom(usize),
    /// Server side: the client does not offer `json`.
    #[error("unsupported message codec")]
    Codec,
    /// Server side: the client random is not 32 bytes.
    #[error("invalid crypto client random length {0}, want {RANDOM_LEN}")]
    ClientRandom(usize),
    /// Server side: no offered algorithm is supported.
    #[error("no supported crypto algorithm")]
    NoAlgorithm,
    /// A hello too large for a frame.
    #[error(transparent)]
    Frame(#[from] FrameError),
}

/// Go's JSON of a hello.
fn to_go_json<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    // Writing plain structs of strings, booleans and lists into a Vec cannot fail.
    let _ = crate::gojson::to_writer(&mut out, value);
    out
}

/// The client's side of the hello exchange: it keeps the exact ClientHello bytes it sends,
/// because the transcript hash covers them.
#[derive(Debug, Clone)]
pub struct ClientHandshake {
    hello: ClientHello,
    payload: Vec<u8>,
}

impl ClientHandshake {
    /// A ClientHello offering `json` and `algorithms` (in this order) with `client_random`
    /// (32 fresh random bytes).
    pub fn new(
        bootstrap: Bootstrap,
        algorithms: &[Algorithm],
        client_random: [u8; RANDOM_LEN],
    ) -> Self {
        let hello = ClientHello {
            bootstrap,
            capabilities: ClientCapabilities {
                message: MessageCapabilities {
                    codecs: vec![CODEC_JSON.into()],
                },
                crypto: CryptoCapabilities {
                    algorithms: algorithms.iter().map(|a| a.name().to_owned()).collect(),
                    client_random: client_random.to_vec(),
                },
            },
        };
        let payload = to_go_json(&hello);
        ClientHandshake { hello, payload }
    }

    /// The hello as sent.
    pub fn hello(&self) -> &ClientHello {
        &self.hello
    }

    /// The ClientHello payload bytes as sent.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// Appends what opens the control connection before the Login: magic and ClientHello.
    pub fn write_opening(&self, dst: &mut BytesMut) -> Result<(), HelloError> {
        dst.extend_from_slice(&MAGIC);
        encode_frame(FrameType::ClientHello, &self.payload, dst)?;
        Ok(())
    }

    /// Checks the server's answer (a ServerHello frame's payload) against the offer, as frpc
    /// does, and returns the negotiated algorithm and transcript hash.
    pub fn finish(&self, server_hello: &[u8]) -> Result<CryptoContext, HelloError> {
        let answer: ServerHello =
            serde_json::from_slice(server_hello).map_err(|source| HelloError::Json {
                what: "ServerHello",
                source,
            })?;
        if !answer.error.is_empty() {
            return Err(HelloError::Refused(answer.error));
        }
        let selected = &answer.selected;
        if selected.message.codec != CODEC_JSON {
            return Err(HelloError::SelectedCodec(selected.message.codec.clone()));
        }
        let name = &selected.crypto.algorithm;
        let algorithm =
            Algorithm::from_name(name).ok_or_else(|| HelloError::UnknownAlgorithm(name.clone()))?;
        if !self.hello.capabilities.crypto.algorithms.contains(name) {
            return Err(HelloError::NotAdvertised(name.clone()));
        }
        if selected.crypto.server_random.len() != RANDOM_LEN {
            return Err(HelloError::ServerRandom(
                selected.crypto.server_random.len(),
            ));
        }
        Ok(CryptoContext::new(algorithm, &self.payload, server_hello))
    }
}

/// The server's answer to a ClientHello: the ServerHello payload to send and, unless it is a
/// refusal, the negotiated context.
#[derive(Debug)]
pub struct ServerAnswer {
    /// The ServerHello payload.
    pub payload: Vec<u8>,
    /// The negotiated context, or why the ClientHello was refused (then `payload` carries the
    /// reason and the server closes the connection after sending it).
    pub outcome: Result<CryptoContext, HelloError>,
}

/// frps's side: validates a ClientHello payload and selects the client's first supported
/// algorithm. A payload that is not a ClientHello at all is an error (frps closes without an
/// answer).
pub fn answer_client_hello(
    client_hello: &[u8],
    server_random: [u8; RANDOM_LEN],
) -> Result<ServerAnswer, HelloError> {
    let hello: ClientHello =
        serde_json::from_slice(client_hello).map_err(|source| HelloError::Json {
            what: "ClientHello",
            source,
        })?;
    let crypto = &hello.capabilities.crypto;
    let selection = if !hello
        .capabilities
        .message
        .codecs
        .iter()
        .any(|c| c == CODEC_JSON)
    {
        Err(HelloError::Codec)
    } else if crypto.client_random.len() != RANDOM_LEN {
        Err(HelloError::ClientRandom(crypto.client_random.len()))
    } else {
        crypto
            .algorithms
            .iter()
            .find_map(|name| Algorithm::from_name(name))
            .ok_or(HelloError::NoAlgorithm)
    };
    let mut answer = ServerHello {
        selected: ServerSelection {
            message: MessageSelection {
                codec: CODEC_JSON.into(),
            },
            crypto: CryptoSelection::default(),
        },
        error: String::new(),
    };
    match selection {
        Ok(algorithm) => {
            answer.selected.crypto = CryptoSelection {
                algorithm: algorithm.name().into(),
                server_random: server_random.to_vec(),
            };
            let payload = to_go_json(&answer);
            let context = CryptoContext::new(algorithm, client_hello, &payload);
            Ok(ServerAnswer {
                payload,
                outcome: Ok(context),
            })
        }
        Err(e) => {
            answer.error = e.to_string();
            Ok(ServerAnswer {
                payload: to_go_json(&answer),
                outcome: Err(e),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_hello_is_go_json_with_omitempty() {
        let hs = ClientHandshake::new(
            Bootstrap {
                transport: "tcp".into(),
                tls: false,
                tcp_mux: false,
            },
            &[Algorithm::Aes256Gcm, Algorithm::XChaCha20Poly1305],
            [0; 32],
        );
        assert_eq!(
            std::str::from_utf8(hs.payload()).unwrap(),
            r#"{"bootstrap":{"transport":"tcp"},"capabilities":{"message":{"codecs":["json"]},"crypto":{"algorithms":["aes-256-gcm","xchacha20-poly1305"],"clientRandom":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}}}"#
        );
        let mut opening = BytesMut::new();
        hs.write_opening(&mut opening).unwrap();
        assert_eq!(&opening[..7], b"FRP\0\x02\r\n");
        assert_eq!(&opening[7..11], b"\x00\x01\x00\x00");
        assert_eq!(opening.len(), 7 + 8 + hs.payload().len());
    }

    #[test]
    fn server_selects_the_clients_first_supported_algorithm() {
        let hs = ClientHandshake::new(
            Bootstrap::default(),
            &[Algorithm::XChaCha20Poly1305, Algorithm::Aes256Gcm],
            [7; 32],
        );
        let answer = answer_client_hello(hs.payload(), [9; 32]).unwrap();
        let server = answer.outcome.unwrap();
        assert_eq!(server.algorithm, Algorithm::XChaCha20Poly1305);
        let client = hs.finish(&answer.payload).unwrap();
        assert_eq!(client, server);
    }

    #[test]
    fn refusals_carry_frps_texts_and_the_client_checks_the_answer() {
        let bad = br#"{"capabilities":{"message":{"codecs":["cbor"]},"crypto":{"algorithms":["aes-256-gcm"],"clientRandom":"AA=="}}}"#;
        let answer = answer_client_hello(bad, [1; 32]).unwrap();
        assert_eq!(
            std::str::from_utf8(&answer.payload).unwrap(),
            r#"{"selected":{"message":{"codec":"json"},"crypto":{}},"error":"unsupported message codec"}"#
        );
        let short = br#"{"capabilities":{"message":{"codecs":["json"]},"crypto":{"algorithms":["aes-256-gcm"],"clientRandom":"AA=="}}}"#;
        let answer = answer_client_hello(short, [1; 32]).unwrap();
        assert!(matches!(answer.outcome, Err(HelloError::ClientRandom(1))));
        let none = br#"{"capabilities":{"message":{"codecs":["json"]},"crypto":{"algorithms":["rot13"],"clientRandom":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}}}"#;
        let answer = answer_client_hello(none, [1; 32]).unwrap();
        assert!(matches!(answer.outcome, Err(HelloError::NoAlgorithm)));
        assert!(answer_client_hello(b"[", [1; 32]).is_err());

        let hs = ClientHandshake::new(Bootstrap::default(), &[Algorithm::Aes256Gcm], [7; 32]);
        let refused = hs.finish(&answer.payload).unwrap_err();
        assert_eq!(refused.to_string(), "no supported crypto algorithm");
        let chacha = br#"{"selected":{"message":{"codec":"json"},"crypto":{"algorithm":"xchacha20-poly1305","serverRandom":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}}}"#;
        assert!(matches!(
            hs.finish(chacha),
            Err(HelloError::NotAdvertised(_))
        ));
        let short = br#"{"selected":{"message":{"codec":"json"},"crypto":{"algorithm":"aes-256-gcm","serverRandom":"AA=="}}}"#;
        assert!(matches!(hs.finish(short), Err(HelloError::ServerRandom(1))));
        let codec = br#"{"selected":{"message":{},"crypto":{}}}"#;
        assert!(matches!(
            hs.finish(codec),
            Err(HelloError::SelectedCodec(_))
        ));
        assert!(matches!(
            hs.finish(br#"{"selected":null}"#),
            Err(HelloError::SelectedCodec(_))
        ));
        assert!(matches!(
            hs.finish(b"not json"),
            Err(HelloError::Json { .. })
        ));
    }
}
