#!/usr/bin/env python3
"""Writes starting corpora for the fuzz targets to fuzz/corpus/<target>/seed-*.

Python 3 stdlib only. Uses the frp captures in a vectors directory when one is given
(`make_seeds.py /path/to/vectors`, the folder with frp-0.66.0/), and hand-made inputs
otherwise. The input formats are described at the top of each file in fuzz/harness/.
"""

import json
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus")


def write(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


# --- frp frames -------------------------------------------------------------------------

TYPES = {
    "Login": b"o", "LoginResp": b"1", "NewProxy": b"p", "NewProxyResp": b"2",
    "CloseProxy": b"c", "NewWorkConn": b"w", "ReqWorkConn": b"r", "StartWorkConn": b"s",
    "Ping": b"h", "Pong": b"4", "NatHoleResp": b"m",
}


def frame(ty, body):
    body = json.dumps(body, separators=(",", ":")).encode() if not isinstance(body, bytes) else body
    return TYPES[ty] + struct.pack(">q", len(body)) + body


BODIES = [
    ("Login", {"version": "0.66.0", "os": "linux", "arch": "amd64", "user": "t-0-0123456789abcdef",
               "privilege_key": "1d68d64f003f17a2dffec92ec2c362fc", "timestamp": 1795878904,
               "metas": {"binding_secret": "bs-vector-secret"}, "client_spec": {}, "pool_count": 1}),
    ("LoginResp", {"version": "0.66.0", "run_id": "a900a8a0bd44c2e9"}),
    ("LoginResp", {"version": "0.66.0", "error": "token in login doesn't match token from configuration"}),
    ("NewProxy", {"proxy_name": "u.web", "proxy_type": "http", "subdomain": "web",
                  "custom_domains": ["a.example"], "locations": ["/"], "headers": {"X": "<&>"},
                  "use_encryption": True, "use_compression": True}),
    ("NewProxyResp", {"proxy_name": "u.ssh", "remote_addr": ":6000"}),
    ("NewProxyResp", {"proxy_name": "u.web", "remote_addr": "", "error": "port unavailable"}),
    ("StartWorkConn", {"proxy_name": "u.web", "src_addr": "127.0.0.1", "dst_addr": "127.0.0.1",
                       "src_port": 38132, "dst_port": 37919}),
    ("NewWorkConn", {"run_id": "a900a8a0bd44c2e9"}),
    ("ReqWorkConn", {}),
    ("Ping", {"privilege_key": "00", "timestamp": 1}),
    ("Pong", {"error": "invalid token"}),
    ("NatHoleResp", {"sid": "x", "protocol": "quic", "candidate_addrs": ["1.2.3.4:5"],
                     "detect_behavior": {"role": "sender", "ttl": 3}}),
]


# --- snappy framing -----------------------------------------------------------------------

def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def masked(data):
    c = crc32c(data)
    return ((((c >> 15) | (c << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def varint(n):
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def snappy_block(data):
    """A raw snappy block: a literal of the first half, then one copy of it when possible."""
    half = len(data) // 2
    if 4 <= half <= 60 and data[half:] == data[:half]:
        lit = data[:half]
        # Literal (len <= 60), then a 1-byte-offset copy of length 4..11 or a 2-byte copy.
        out = varint(len(data)) + bytes([(len(lit) - 1) << 2]) + lit
        out += bytes([0b10 | ((half - 1) << 2)]) + struct.pack("<H", half)
        return out
    assert len(data) <= 60
    return varint(len(data)) + bytes([(len(data) - 1) << 2]) + data


def snappy_repeat(pattern, total):
    """A raw snappy block of `pattern` repeated to `total` bytes: one literal, then copies."""
    assert 1 <= len(pattern) <= 60 and total >= len(pattern)
    out = varint(total) + bytes([(len(pattern) - 1) << 2]) + pattern
    left = total - len(pattern)
    while left:
        n = min(64, left)
        out += bytes([0b10 | ((n - 1) << 2)]) + struct.pack("<H", len(pattern))
        left -= n
    return out


def repeated_chunk(pattern, total):
    data = (pattern * (total // len(pattern) + 1))[:total]
    return chunk(0x00, struct.pack("<I", masked(data)) + snappy_repeat(pattern, total))


def noise(n, seed=1):
    out = bytearray()
    x = seed
    for _ in range(n):
        x = (x * 6364136223846793005 + 1442695040888963407) & 0xFFFFFFFFFFFFFFFF
        out.append(x >> 56)
    return bytes(out)


def chunk(kind, body):
    return bytes([kind]) + struct.pack("<I", len(body))[:3] + body


STREAM_ID = b"\xff\x06\x00\x00sNaPpY"


def snappy_stream(parts):
    out = STREAM_ID
    for p in parts:
        if len(p) % 2 == 0 and len(p) >= 8 and p[: len(p) // 2] == p[len(p) // 2:]:
            out += chunk(0x00, struct.pack("<I", masked(p)) + snappy_block(p))
        else:
            out += chunk(0x01, struct.pack("<I", masked(p)) + p)
    return out


SNAPPY = [
    ("plain", snappy_stream([b"hello, world"])),
    ("compressed", snappy_stream([b"abcdefgh" * 2, b"GET / HTTP/1.1\r\n\r\n"])),
    ("skippable", STREAM_ID + chunk(0x80, b"skip me") + chunk(0xFE, b"\0" * 5)
     + snappy_stream([b"after padding"])[len(STREAM_ID):]),
    ("two-ids", STREAM_ID + snappy_stream([b"x"])),
    ("bad-crc", STREAM_ID + chunk(0x01, b"\0\0\0\0data")),
    ("reserved", STREAM_ID + chunk(0x02, b"")),
    ("big-literal", snappy_stream([bytes(range(40))])),
]

# Whole 64 KiB blocks: zeros (a 3 KiB chunk that decodes to a full window), then stored noise
# chunks that straddle the opener's input buffer.
BIG = STREAM_ID + repeated_chunk(b"\0", 65536) + repeated_chunk(b"GET / HTTP/1.1\r\n", 65536)
for i in range(3):
    block = noise(65536, i + 1)
    BIG += chunk(0x01, struct.pack("<I", masked(block)) + block)


# --- HTTP conversations (http_log format) --------------------------------------------------

def http_steps(steps):
    out = bytearray()
    for response, data in steps:
        for i in range(0, len(data), 128):
            piece = data[i:i + 128]
            out.append(((len(piece) - 1) << 1) | int(response))
            out += piece
    return bytes(out)


HTTP = [
    ("get", [(0, b"GET /hello.txt HTTP/1.1\r\nHost: a\r\n\r\n"),
             (1, b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")]),
    ("chunked", [(0, b"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"),
                 (1, b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"4;x=y\r\nwxyz\r\n0\r\nT: 1\r\n\r\n")]),
    ("head-304", [(0, b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n"),
                  (1, b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n")]),
    ("until-close", [(0, b"GET / HTTP/1.0\r\n\r\n"), (1, b"HTTP/1.0 200 OK\r\n\r\nuntil close")]),
    ("upgrade", [(0, b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"),
                 (1, b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x00")]),
    ("connect", [(0, b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n\x16\x03\x01"),
                 (1, b"HTTP/1.1 407 Proxy Auth\r\nContent-Length: 0\r\n\r\n")]),
    ("expect", [(0, b"PUT /p HTTP/1.1\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\nabc"),
                (1, b"HTTP/1.1 204 No Content\r\n\r\n")]),
    ("pipelined", [(0, b"GET /hello.txt HTTP/1.1\r\nHost: a\r\n\r\nHEAD / HTTP/1.1\r\nHost: a\r\n\r\n"),
                   (1, b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"),
                   (1, b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n")]),
    ("vector", [(0, b"GET /hello.txt HTTP/1.1\r\nHost: t-0-0123456789abcdef.tunnel.test\r\n"
                    b"User-Agent: curl/7.88.1\r\nAccept: */*\r\nX-Forwarded-For: 127.0.0.1\r\n\r\n"),
                (1, b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 39\r\n"
                    b"Connection: close\r\n\r\nhello from the expose protocol vectors\n")]),
]


# --- control session (control_session format) -------------------------------------------

def session_input(config, proxies, ops):
    """config: metas_len(u16), hb, hb_timeout, login_timeout, base, max, quick, flags, seed(u64),
    then unix(u64), the proxy bit mask and the ops."""
    metas_len, hb, hbt, lt, base, mx, quick, flags = config
    out = struct.pack(">H", metas_len) + bytes([hb, hbt, lt, base, mx, quick, flags])
    out += struct.pack(">Q", 0x1234) + struct.pack(">Q", 1_700_000_000) + bytes([proxies])
    return out + b"".join(ops)


def text_error(i):  # ERRORS[i]
    return bytes([i * 4])


def text_runid(s):
    table = b"0123456789abcdefXYZ-_."
    return bytes([2, len(s)]) + bytes(table.index(c) for c in s.encode())


def text_long(char_index, n):
    return bytes([3, char_index]) + struct.pack(">H", n)


CONNECT = bytes([1])            # jump to the deadline (Waiting -> Connect)
CONNECTED = bytes([2])
LOGIN_OK = bytes([4]) + text_runid("a900a8a0bd44c2e9") + text_error(0)
PROXY_OK = lambda i: bytes([5, i]) + text_error(0)
PROXY_BAD = lambda i, e: bytes([5, i]) + text_error(e)
PONG = bytes([6, 1])
ADVANCE = lambda b: bytes([0, b])
DEFAULT_CFG = (0, 0x80 | 30, 0xC0 | 1, 0x80 | 10, 0x80 | 2, 0x80 | 20, 0x40 | 4, 0)

SESSIONS = [
    ("happy", session_input(DEFAULT_CFG, 0b11, [CONNECT, CONNECTED, LOGIN_OK, PROXY_OK(0), PROXY_OK(1),
                                                 ADVANCE(0x80 | 30), PONG, bytes([1]), bytes([12])])),
    ("long-run-id", session_input(DEFAULT_CFG, 0b1, [CONNECT, CONNECTED, bytes([4]) + text_long(0, 10200)
                                                      + text_error(0), CONNECT, CONNECTED])),
    ("refused", session_input(DEFAULT_CFG, 0b11, [CONNECT, CONNECTED, LOGIN_OK, PROXY_BAD(0, 2),
                                                   ADVANCE(0x80 | 31), PROXY_BAD(1, 4)])),
    ("login-timeout", session_input(DEFAULT_CFG, 0b1, [CONNECT, CONNECTED, bytes([1]), bytes([1]), CONNECTED,
                                                        bytes([3, 0]), bytes([1])])),
    ("big-login", session_input((10_100,) + DEFAULT_CFG[1:], 0b1, [CONNECT, CONNECTED])),
    ("pong-timeout", session_input(DEFAULT_CFG, 0b100, [CONNECT, CONNECTED, LOGIN_OK, bytes([1]), bytes([1]),
                                                         bytes([1]), CONNECT, CONNECTED, LOGIN_OK])),
    ("raw-frames", session_input(DEFAULT_CFG, 0b1, [CONNECT, CONNECTED]
                                 + [bytes([8]) + struct.pack(">H", len(frame(t, b))) + frame(t, b)
                                    for t, b in BODIES if t in ("LoginResp", "NewProxyResp", "Pong", "ReqWorkConn",
                                                                "NatHoleResp")])),
]


# --- Prime API replies (prime_response format) --------------------------------------------

ID = "t-1-0123456789abcdef"
CREATED = {"tunnel_id": ID, "hostname": ID + ".tunnel.pinfra.io", "url": "https://" + ID + ".tunnel.pinfra.io",
           "frp_token": "frp-token-0123456789", "binding_secret": "binding-secret-0123456789",
           "server_host": "tunnel.pinfra.io", "server_port": 7001, "expires_at": "2026-10-14T12:00:00Z",
           "name": "demo", "local_port": 8080, "labels": ["a", "b"], "http_user": "alice",
           "http_password": "password-0123456789", "user_id": "user-1", "team_id": "team-1",
           "status": "pending", "created_at": "2026-10-13T12:00:00.123456+00:00", "connected_at": None,
           "terminated_at": None, "some_future_field": {"nested": True}}
INFO = {"tunnel_id": ID, "hostname": ID + ".tunnel.pinfra.io", "url": "https://" + ID + ".tunnel.pinfra.io",
        "status": "connected", "expires_at": "2026-10-14T12:00:00+02:00", "labels": ["x"], "user_id": "user-1"}


def prime(status_index, body):
    body = body if isinstance(body, bytes) else json.dumps(body).encode()
    return struct.pack(">H", status_index) + body


PRIME = [
    ("created", prime(1, CREATED)),
    ("info", prime(0, INFO)),
    ("page", prime(0, {"tunnels": [INFO, dict(INFO, tunnel_id="t-2", status="Expired")], "total": 2, "page": 1,
                       "per_page": 50, "has_next": False})),
    ("bulk", prime(0, {"succeeded": [ID], "failed": [{"tunnel_id": "t-2", "error": "Tunnel not found\r\n"}]})),
    ("422", prime(7, {"detail": [{"loc": ["body", "local_port"], "msg": "ensure this value is less than 65536",
                                  "type": "value_error"}]})),
    ("400-limit", prime(3, {"detail": "Maximum number of tunnels reached (5)"})),
    ("402", prime(5, {"message": "add a payment method"})),
    ("404", prime(6, {"detail": "Tunnel not found"})),
    ("html-502", prime(0x8000 | 402, b"<html><head><title>502 Bad Gateway</title></head></html>")),
    ("text-503", prime(10, b"upstream connect error\x1b[31m")),
    ("bad-type", prime(1, dict(CREATED, server_port="frp-token-0123456789"))),
    ("truncated", prime(1, json.dumps(CREATED).encode()[:100])),
    ("date", prime(9, b"Sun, 06 Nov 1994 08:49:37 GMT")),
    ("rfc3339", prime(9, b"2026-02-29T23:59:60.123456789-23:59")),
]


# --- Prime config files (prime_config format) --------------------------------------------

def prime_config(ctx, flags, cfg, overlay, name=b""):
    cfg = cfg if isinstance(cfg, bytes) else json.dumps(cfg).encode()
    overlay = overlay if isinstance(overlay, bytes) else json.dumps(overlay).encode()
    return bytes([ctx]) + name + bytes([flags]) + struct.pack(">H", len(cfg)) + cfg + overlay


KEY = "pit_0123456789abcdef"
PRIME_CONFIG = [
    ("plain", prime_config(0, 0, {"api_key": KEY, "team_id": "team-1", "user_id": "u1"}, b"")),
    ("context", prime_config(2, 0, {"api_key": KEY, "base_url": "https://api.primeintellect.ai/api/v1"},
                             {"base_url": "http://localhost:8000/", "team_id": None,
                              "api_key": "dev-key-0123456789"})),
    ("production", prime_config(1, 4, {"api_key": KEY, "team_id": "t"}, b"{}")),
    ("env", prime_config(0, 3, b"", b"")),
    ("gone", prime_config(4, 0, {"api_key": KEY}, b"")),
    ("bad-types", prime_config(3, 0, {"api_key": 12345678901234, "base_url": ["x"], "team_id": "a\u001b[2J"},
                               b"[1]")),
    ("broken", prime_config(2, 0, ('{"api_key": "' + KEY + '", ').encode(), b'{"base_url": "ftp://x?y"}')),
    ("odd-name", prime_config(5, 0, b"{}", b"", name=b"../../e\x00")),
]


# --- engine (control_engine format) -------------------------------------------------------

ENGINE = [
    ("messages", bytes([0]) + frame("Pong", {}) + frame("NewProxyResp", {"proxy_name": "ssh", "remote_addr": ":6000"})
     + frame("NewProxyResp", {"proxy_name": "web", "remote_addr": "web.example.com", "error": ""})
     + frame("ReqWorkConn", {}) + frame("NatHoleResp", {"sid": "x"})),
    ("raw", bytes([1]) + b"\x00" * 40),
    ("no-login-resp", bytes([2]) + frame("Pong", {})),
]


def main():
    vectors = sys.argv[1] if len(sys.argv) > 1 else None
    for i, (ty, body) in enumerate(BODIES):
        raw = json.dumps(body, separators=(",", ":")).encode()
        write("message_json", f"{i:02}-{ty}", raw)
    stream = b"".join(frame(t, b) for t, b in BODIES)
    write("frame_decoder", "all-messages", bytes([0, 0]) + stream)
    write("frame_decoder", "all-messages-chunked", bytes([6, 1]) + stream)
    write("cfb_decrypt", "frames", bytes([3, 16, 200]) + b"\x5a" * 16 + stream[:300])
    for name, s in SNAPPY:
        write("snappy_decompress", name, bytes([0, 1, 2]) + s)
        for mode in range(16):
            if mode & 2:
                write("pipeline_opener", f"{name}-{mode}", bytes([mode, 3, 1]) + s)
    write("snappy_decompress", "big", bytes([255, 100, 3]) + BIG)
    write("pipeline_opener", "big-2", bytes([2, 255, 0]) + BIG)
    write("pipeline_opener", "big-6", bytes([6, 80, 200]) + BIG)
    write("pipeline_opener", "plain", bytes([0, 7, 7]) + stream)
    write("pipeline_opener", "encrypted", bytes([1, 7, 7]) + b"\x5a" * 16 + stream)
    for name, steps in HTTP:
        write("http_log", name, http_steps(steps))
    for name, s in SESSIONS:
        write("control_session", name, s)
    for name, s in PRIME:
        write("prime_response", name, s)
    for name, s in PRIME_CONFIG:
        write("prime_config", name, s)
    for name, s in ENGINE:
        write("control_engine", name, s)
    if vectors:
        case = os.path.join(vectors, "frp-0.66.0", "plain-nomux")
        for f in sorted(os.listdir(case)):
            if f.endswith(".bin"):
                with open(os.path.join(case, f), "rb") as fh:
                    data = fh.read()[:8192]
                write("frame_decoder", "vector-" + f, bytes([63, 3]) + data)
                if f.startswith("conn-0"):
                    # The ciphertext after the plaintext Login / LoginResp frame.
                    n = 9 + struct.unpack(">q", data[1:9])[0]
                    write("cfb_decrypt", "vector-" + f, bytes([1, 2, 3]) + data[n:])


if __name__ == "__main__":
    main()
