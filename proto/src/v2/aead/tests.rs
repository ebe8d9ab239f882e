//! Known answers produced by frp v0.70.1's own Go code (Go `crypto/cipher` GCM, x/crypto
//! `chacha20poly1305.NewX`, `crypto/hkdf`, golib's AEAD stream writer), and the stream's
//! framing and failure rules.

use super::*;
use crate::msg::{NewProxy, Ping};
use crate::v2::frame::{decode_message, encode_message_to_vec};

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

const KAT_KEY: &str = "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f";

#[test]
fn single_records_match_go() {
    for (alg, nonce, ct) in [
        (
            Algorithm::Aes256Gcm,
            "101112131415161718191a1b",
            "d64d2c5e9a10777361911be251cea021e35108727ed7a54307f71558ba335f2ed721bc73b062613b",
        ),
        (
            Algorithm::XChaCha20Poly1305,
            "202122232425262728292a2b2c2d2e2f3031323334353637",
            "8a0d52de758fef6791d2cdd52ad697b43489938eac446e16692590e1f8ea2693fc55fef0a058d0b9",
        ),
    ] {
        let key: [u8; 32] = unhex(KAT_KEY).try_into().unwrap();
        let cipher = Cipher::new(alg, &AeadKey::from_bytes(key));
        let mut data = b"frp wire v2 known answer".to_vec();
        let tag = cipher.seal(&unhex(nonce), b"aad bytes", &mut data);
        data.extend_from_slice(&tag);
        assert_eq!(data, unhex(ct), "{alg}");
    }
}

#[test]
fn hkdf_matches_frps_unit_test_vector() {
    let key = derive_key(
        b"token",
        Algorithm::XChaCha20Poly1305,
        &[0x44; 32],
        "client-to-server",
    );
    assert_eq!(
        key.as_bytes().to_vec(),
        unhex("a058cd025d96985febebff79a19f62b715e053913dfc747705914c624bf3d495")
    );
    assert_eq!(format!("{key:?}"), "AeadKey(<redacted>)");
}

/// Two control streams written by frp's Go code: NewProxy then Ping, each frame as a header
/// record and a payload record.
#[test]
fn control_streams_written_by_go_reproduce_and_open() {
    let random = |b: u8| -> String {
        let bytes: Vec<u8> = (b..b + 32).collect();
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, bytes)
    };
    for (alg, th, c2s) in [
        (
            Algorithm::Aes256Gcm,
            "92103ca3b6260186722bf99b3c4ff63ed0d8d9bf186d2842b42c188c9a6c6d81",
            "4ec9c259b112c944e3ad5d05000000181cf3509ea3689bef4b4511f6c292f3e804266edfe86aa8c70000004e11d3cfc789d49a2fae0a06d2f94961cfc1e99097d93002d13e930e52b9cd0f1bde21454b8f0995c5f0f4bd9a0896269ec15d58c240bcd8edba68082adc0b478f3c2697f470c282ecde18a012c91e0000001859227d8eb15f06cc1c5670c818808786690fc17bf0217cc100000014967eda329d977a5af7dbac57ce3aae0258dbe085",
        ),
        (
            Algorithm::XChaCha20Poly1305,
            "b1bb432b7edea5d1282c08b3e3ff60eaf12e0e9cdf13f02c3233eb44932a695c",
            "36df60c141efccf093b839e55a285c6c18853b2d27bbe0e200000018525600d880fa09895aeae481f97c5367cfec428797ef820a0000004ec6659bfd610f7fb31e302d99d1f6992f533812588b43ed80facf65ef0642f412ee6e29ba2e7b4c604aa5e3633ea200bc58cff08c4fb8814a3d69f163efff7256879e4e355e674da509a55eeb6348000000188cfa83fd813a14f5dc39670a9888393fd9fe219b5e64f32900000014014ae85ccdb27dfe44718d85d91c4ded1b8fec53",
        ),
    ] {
        let ch = format!(
            r#"{{"bootstrap":{{"transport":"tcp"}},"capabilities":{{"message":{{"codecs":["json"]}},"crypto":{{"algorithms":["{alg}"],"clientRandom":"{}"}}}}}}"#,
            random(1)
        );
        let sh = format!(
            r#"{{"selected":{{"message":{{"codec":"json"}},"crypto":{{"algorithm":"{alg}","serverRandom":"{}"}}}}}}"#,
            random(0x41)
        );
        let ctx = CryptoContext::new(alg, ch.as_bytes(), sh.as_bytes());
        assert_eq!(ctx.transcript_hash.to_vec(), unhex(th), "{alg}");
        let wire = unhex(c2s);

        // Open, under every read size.
        let keys = ctx.keys(b"vector-token");
        let np = NewProxy {
            proxy_name: "u.tcp".into(),
            proxy_type: "tcp".into(),
            remote_port: 6000,
            ..Default::default()
        };
        for read in [1, 3, 28, wire.len()] {
            let mut opener = StreamOpener::new(alg, &keys.client_to_server);
            let (mut src, mut plain) = (BytesMut::new(), BytesMut::new());
            for piece in wire.chunks(read) {
                src.extend_from_slice(piece);
                opener.open(&mut src, &mut plain).unwrap();
            }
            assert!(src.is_empty() && opener.has_nonce());
            assert_eq!(decode_message(&mut plain).unwrap(), Some(np.clone().into()));
            assert_eq!(decode_message(&mut plain).unwrap(), Some(Ping::default().into()));
            assert!(plain.is_empty());
        }

        // Seal with the captured nonce: byte for byte.
        let n = alg.nonce_len();
        let mut sealer = StreamSealer::new(alg, &keys.client_to_server, &wire[..n]).unwrap();
        assert!(sealer.nonce_pending());
        let mut out = BytesMut::new();
        for msg in [np.clone().into(), Ping::default().into()] {
            sealer
                .seal_frame(&encode_message_to_vec(&msg).unwrap(), &mut out)
                .unwrap();
        }
        assert_eq!(&out[..], &wire[..], "{alg}");
    }
}

#[test]
fn tampering_reordering_and_bad_lengths_fail() {
    let key = AeadKey::from_bytes([3; 32]);
    for alg in Algorithm::ALL {
        let nonce = vec![5u8; alg.nonce_len()];
        let mut sealer = StreamSealer::new(alg, &key, &nonce).unwrap();
        let mut wire = BytesMut::new();
        sealer.seal(b"first", &mut wire).unwrap();
        sealer.seal(b"second", &mut wire).unwrap();
        sealer.seal(b"", &mut wire).unwrap();
        let n = alg.nonce_len();
        assert_eq!(wire.len(), n + 2 * (4 + 16) + 5 + 6);

        let open = |bytes: &[u8]| {
            let mut opener = StreamOpener::new(alg, &key);
            let mut src = BytesMut::from(bytes);
            let mut out = BytesMut::new();
            opener.open(&mut src, &mut out).map(|()| out.to_vec())
        };
        assert_eq!(open(&wire).unwrap(), b"firstsecond");

        let mut flipped = wire.to_vec();
        flipped[n + 4] ^= 1;
        assert_eq!(open(&flipped), Err(AeadError::Authentication(0)));

        // Swap the two records: each is bound to its index.
        let first = n..n + 4 + 5 + 16;
        let mut swapped = wire[..n].to_vec();
        swapped.extend_from_slice(&wire[first.end..]);
        swapped.extend_from_slice(&wire[first]);
        assert_eq!(open(&swapped), Err(AeadError::Authentication(0)));

        let mut short = wire[..n].to_vec();
        short.extend_from_slice(&15u32.to_be_bytes());
        assert_eq!(open(&short), Err(AeadError::RecordTooShort(15)));
        let mut long = wire[..n].to_vec();
        long.extend_from_slice(&(65_536u32 + 17).to_be_bytes());
        assert_eq!(open(&long), Err(AeadError::RecordTooLong(65_553)));

        // Errors are sticky.
        let mut opener = StreamOpener::new(alg, &key);
        let mut out = BytesMut::new();
        assert!(opener
            .open(&mut BytesMut::from(&short[..]), &mut out)
            .is_err());
        assert!(opener
            .open(&mut BytesMut::from(&wire[..]), &mut out)
            .is_err());

        assert!(matches!(
            StreamSealer::new(alg, &key, &[0; 8]),
            Err(AeadError::NonceLength { got: 8, .. })
        ));
    }
}

#[test]
fn large_writes_are_split_into_64k_records() {
    let key = AeadKey::from_bytes([1; 32]);
    let alg = Algorithm::Aes256Gcm;
    let mut sealer = StreamSealer::new(alg, &key, &[0; 12]).unwrap();
    let data = vec![0xabu8; MAX_RECORD_PLAINTEXT * 2 + 1];
    let mut wire = BytesMut::new();
    sealer.seal(&data, &mut wire).unwrap();
    assert_eq!(wire.len(), 12 + 3 * (4 + 16) + data.len());
    assert_eq!(&wire[12..16], &(65_536u32 + 16).to_be_bytes());
    let mut opener = StreamOpener::new(alg, &key);
    let mut out = BytesMut::new();
    opener.open(&mut wire, &mut out).unwrap();
    assert_eq!(&out[..], &data[..]);
}

#[test]
fn the_nonce_counter_carries_and_never_wraps() {
    let mut state = NonceState::new(
        Algorithm::Aes256Gcm,
        &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff],
    );
    state.advance().unwrap();
    assert_eq!(&state.current[..12], &[0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0]);
    let mut last = NonceState::new(Algorithm::XChaCha20Poly1305, &[0xff; 24]);
    assert_eq!(last.advance(), Err(AeadError::Exhausted));
    let mut budget = NonceState::new(Algorithm::Aes256Gcm, &[0; 12]);
    budget.records = MAX_GCM_RECORDS;
    assert_eq!(budget.check_budget(), Err(AeadError::Exhausted));
}

#[test]
fn preferred_order_lists_both() {
    let pref = Algorithm::preferred();
    assert_ne!(pref[0], pref[1]);
    assert_eq!(
        Algorithm::from_name("aes-256-gcm"),
        Some(Algorithm::Aes256Gcm)
    );
    assert_eq!(Algorithm::from_name("AES-256-GCM"), None);
}
