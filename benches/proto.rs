//! Throughput of the `frp-proto` codecs, the per-byte and per-message work the runtime does on
//! every connection.
//!
//! - Message encode/decode: the control stream handles a few messages per second, but work
//!   connections start with NewWorkConn/StartWorkConn, so this bounds connection setup rate.
//! - AES-128-CFB: every control byte, and every payload byte of a `use_encryption` proxy.
//! - Snappy framing: every payload byte of a `use_compression` proxy, on data that compresses
//!   (text) and data that does not (random, the worst case: compressed, then stored raw).
//!
//! Buffer sizes are 16 KiB (a typical socket read) and 64 KiB (snappy's maximum block and the
//! largest read the runtime makes). Run with
//! `cargo bench --bench proto -- --warm-up-time 1 --measurement-time 3`;
//! results are recorded in `docs/benchmarks.md`.

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use frp_proto::compress::{Compressor, Decompressor, STREAM_IDENTIFIER};
use frp_proto::crypto::{Decryptor, Encryptor, Key, BLOCK_LEN};
use frp_proto::frame::encode_to_vec;
use frp_proto::msg::{Login, NewProxy, ReqWorkConn, StartWorkConn, StringMap};
use frp_proto::{decode_frame, encode_frame, Message};
use rand::{RngCore, SeedableRng};
use std::fmt::Write as _;
use std::hint::black_box;

/// Payload sizes for the byte-stream benchmarks, with the labels used in the report.
const SIZES: [(usize, &str); 2] = [(16 * 1024, "16KiB"), (64 * 1024, "64KiB")];

/// Messages shaped like the ones Go frpc 0.66 sends and receives (see the protocol vectors), so
/// the JSON work per message is realistic.
fn sample_messages() -> Vec<(&'static str, Message)> {
    let mut metas = StringMap::new();
    metas.insert(
        "binding_secret".into(),
        "bs-0123456789abcdef0123456789".into(),
    );
    let login = Login {
        version: "0.66.0".into(),
        os: "linux".into(),
        arch: "amd64".into(),
        user: "t-0-0123456789abcdef".into(),
        privilege_key: "1d68d64f003f17a2dffec92ec2c362fc".into(),
        timestamp: 1_795_878_904,
        metas,
        pool_count: 1,
        ..Default::default()
    };
    let new_proxy = NewProxy {
        proxy_name: "t-0-0123456789abcdef.t-0-0123456789abcdef".into(),
        proxy_type: "http".into(),
        subdomain: "t-0-0123456789abcdef".into(),
        ..Default::default()
    };
    let start = StartWorkConn {
        proxy_name: "t-0-0123456789abcdef.tcp".into(),
        src_addr: "203.0.113.7".into(),
        dst_addr: "0.0.0.0".into(),
        src_port: 38_132,
        dst_port: 37_919,
        ..Default::default()
    };
    vec![
        ("Login", login.into()),
        ("NewProxy", new_proxy.into()),
        ("ReqWorkConn", ReqWorkConn {}.into()),
        ("StartWorkConn", start.into()),
    ]
}

fn messages(c: &mut Criterion) {
    let samples = sample_messages();

    let mut group = c.benchmark_group("message/encode");
    // One element per message, so criterion reports messages per second.
    group.throughput(Throughput::Elements(1));
    for (name, msg) in &samples {
        // The runtime appends frames to a reused write buffer; so does the benchmark.
        let mut buf = BytesMut::with_capacity(1024);
        group.bench_function(*name, |b| {
            b.iter(|| {
                buf.clear();
                encode_frame(black_box(msg), &mut buf).expect("fits the limit");
                black_box(buf.len())
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("message/decode");
    group.throughput(Throughput::Elements(1));
    for (name, msg) in &samples {
        let frame = encode_to_vec(msg).expect("fits the limit");
        let mut buf = BytesMut::with_capacity(1024);
        group.bench_function(*name, |b| {
            b.iter(|| {
                // A socket read lands in the buffer, then the frame is taken off its front.
                buf.extend_from_slice(black_box(&frame));
                decode_frame(&mut buf)
                    .expect("valid frame")
                    .expect("whole frame")
            })
        });
    }
    group.finish();
}

fn cfb(c: &mut Criterion) {
    let key = Key::derive("bench-token");
    let iv = [7u8; BLOCK_LEN];
    let mut group = c.benchmark_group("cfb");
    for (size, label) in SIZES {
        group.throughput(Throughput::Bytes(size as u64));
        let mut buf = vec![0x5au8; size];

        // One long-lived stream per direction, as on a real connection: the cipher state
        // carries from one buffer to the next.
        let mut enc = Encryptor::new(&key, iv);
        group.bench_function(BenchmarkId::new("encrypt", label), |b| {
            b.iter(|| enc.encrypt(black_box(&mut buf)))
        });

        let mut dec = Decryptor::new(&key);
        let mut iv_bytes = iv;
        // Consume the IV once up front, so the loop measures decryption only.
        let _ = dec.decrypt(&mut iv_bytes);
        group.bench_function(BenchmarkId::new("decrypt", label), |b| {
            b.iter(|| black_box(dec.decrypt(black_box(&mut buf)).len()))
        });
    }
    group.finish();
}

/// Text that compresses like real HTTP traffic: access-log lines with varying numbers.
fn text(len: usize) -> Vec<u8> {
    let mut s = String::with_capacity(len + 128);
    let mut i = 0u64;
    while s.len() < len {
        let _ = writeln!(
            s,
            "{i:08} 203.0.113.{} GET /api/v1/items/{} HTTP/1.1 200 {} \"curl/8.5.0\" host=t-0-0123456789abcdef.tunnel.test",
            i % 251,
            (i * 7919) % 10_007,
            (i * 31) % 4096
        );
        i += 1;
    }
    s.truncate(len);
    s.into_bytes()
}

/// Incompressible data, from a fixed seed so runs compare.
fn random(len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    rand::rngs::StdRng::seed_from_u64(0x5eed).fill_bytes(&mut v);
    v
}

fn snappy(c: &mut Criterion) {
    let mut group = c.benchmark_group("snappy");
    for (size, label) in SIZES {
        // Throughput counts uncompressed bytes both ways: that is the payload the user sees.
        group.throughput(Throughput::Bytes(size as u64));
        for (kind, data) in [("text", text(size)), ("random", random(size))] {
            let id = format!("{kind}/{label}");

            let mut comp = Compressor::new();
            let mut out = BytesMut::with_capacity(2 * size);
            group.bench_function(BenchmarkId::new("compress", &id), |b| {
                b.iter(|| {
                    out.clear();
                    comp.compress(black_box(&data), &mut out);
                    black_box(out.len())
                })
            });

            // A stream's identifier arrives once; after it, every write is whole chunks.
            let mut wire = BytesMut::new();
            Compressor::new().compress(&data, &mut wire);
            let chunks = wire.split_off(STREAM_IDENTIFIER.len());
            let mut dec = Decompressor::new();
            let mut out = BytesMut::with_capacity(size);
            dec.decompress(&wire, &mut out).expect("identifier");
            // Check once, outside the timed loop, that the benchmark measures a real round trip.
            dec.decompress(&chunks, &mut out).expect("valid chunks");
            assert_eq!(out[..], data[..], "decompression restores the input");
            group.bench_function(BenchmarkId::new("decompress", &id), |b| {
                b.iter(|| {
                    out.clear();
                    dec.decompress(black_box(&chunks), &mut out)
                        .expect("valid chunks");
                    black_box(out.len())
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, messages, cfb, snappy);
criterion_main!(benches);
