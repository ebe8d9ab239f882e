//! A minimal TLS ClientHello reader for the tls-clienthello cases: enough to see the record
//! type, the extensions and the SNI host name that Go frpc put on the wire.

/// Record type of a handshake: what frps's TLS sniffer expects as byte 0 by default.
pub const TLS_HANDSHAKE_RECORD: u8 = 0x16;
/// frp's optional custom first byte, sent before TLS only when configured.
pub const FRP_TLS_PREFIX: u8 = 0x17;
/// Handshake type of the first message a client sends.
pub const CLIENT_HELLO: u8 = 1;
/// Extension numbers (IANA) of what the tests check: SNI, ALPN and the offered versions.
pub const EXT_SERVER_NAME: u16 = 0;
pub const EXT_ALPN: u16 = 16;
pub const EXT_SUPPORTED_VERSIONS: u16 = 43;

/// The parts of a ClientHello the tests look at.
pub struct ClientHello {
    pub extensions: Vec<(u16, Vec<u8>)>,
}

impl ClientHello {
    /// Parses the first TLS record of a connection, requiring it to be exactly one ClientHello.
    pub fn parse(data: &[u8]) -> Self {
        fn take<'a>(buf: &mut &'a [u8], n: usize) -> &'a [u8] {
            assert!(buf.len() >= n, "ClientHello truncated");
            let (head, rest) = buf.split_at(n);
            *buf = rest;
            head
        }
        fn u8_len(buf: &mut &[u8]) -> usize {
            take(buf, 1)[0] as usize
        }
        fn u16_len(buf: &mut &[u8]) -> usize {
            let b = take(buf, 2);
            u16::from_be_bytes([b[0], b[1]]) as usize
        }

        let mut rec = data;
        let header = take(&mut rec, 5);
        assert_eq!(header[0], TLS_HANDSHAKE_RECORD);
        let record_len = u16::from_be_bytes([header[3], header[4]]) as usize;
        assert_eq!(rec.len(), record_len, "the file is exactly one record");
        let hs_header = take(&mut rec, 4);
        assert_eq!(hs_header[0], CLIENT_HELLO);
        let hs_len = u32::from_be_bytes([0, hs_header[1], hs_header[2], hs_header[3]]) as usize;
        assert_eq!(rec.len(), hs_len, "one handshake message fills the record");
        take(&mut rec, 2 + 32); // legacy_version, random
        let n = u8_len(&mut rec);
        take(&mut rec, n); // session id
        let n = u16_len(&mut rec);
        take(&mut rec, n); // cipher suites
        let n = u8_len(&mut rec);
        take(&mut rec, n); // compression methods
        let n = u16_len(&mut rec);
        let mut exts = take(&mut rec, n);
        assert!(rec.is_empty(), "nothing after the extensions");
        let mut extensions = Vec::new();
        while !exts.is_empty() {
            let ty = u16_len(&mut exts) as u16;
            let n = u16_len(&mut exts);
            extensions.push((ty, take(&mut exts, n).to_vec()));
        }
        ClientHello { extensions }
    }

    pub fn extension(&self, ty: u16) -> Option<&[u8]> {
        self.extensions
            .iter()
            .find(|(t, _)| *t == ty)
            .map(|(_, d)| d.as_slice())
    }

    /// The host name in the server_name extension, if there is one.
    pub fn sni(&self) -> Option<String> {
        let d = self.extension(EXT_SERVER_NAME)?;
        // list length (2), name type (1) = host_name 0, name length (2), name.
        assert_eq!(d[2], 0, "host_name entry");
        let n = u16::from_be_bytes([d[3], d[4]]) as usize;
        assert_eq!(d.len(), 5 + n, "one name");
        Some(String::from_utf8(d[5..].to_vec()).expect("ASCII host name"))
    }

    pub fn supported_versions(&self) -> Vec<u16> {
        let d = self
            .extension(EXT_SUPPORTED_VERSIONS)
            .expect("TLS 1.3 hello");
        d[1..1 + d[0] as usize]
            .chunks(2)
            .map(|v| u16::from_be_bytes([v[0], v[1]]))
            .collect()
    }
}
