//! `Secret` zeroes its bytes when dropped. A spy global allocator (this test binary only) looks
//! at every heap block as it is freed and counts the ones that still hold a marker string.
//!
//! Everything runs in one `#[test]`, in order, so no other test's allocations are freed while
//! the spy is armed.

use expose::secret::Secret;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

struct Spy;

static ARMED: AtomicBool = AtomicBool::new(false);
static FREED_WITH_MARKER: AtomicUsize = AtomicUsize::new(0);
const MARKER: &[u8] = b"zz-SECRET-MARKER-4b1d-zz";

// SAFETY: every call is forwarded to the system allocator unchanged; `dealloc` only reads the
// block it is given (valid for `layout.size()` bytes until it is freed) before freeing it.
unsafe impl GlobalAlloc for Spy {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        System.alloc(layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        System.alloc_zeroed(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if ARMED.load(Ordering::SeqCst) && layout.size() >= MARKER.len() {
            let block = std::slice::from_raw_parts(ptr, layout.size());
            if block.windows(MARKER.len()).any(|w| w == MARKER) {
                FREED_WITH_MARKER.fetch_add(1, Ordering::SeqCst);
            }
        }
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static ALLOCATOR: Spy = Spy;

fn marker() -> String {
    String::from_utf8(MARKER.to_vec()).unwrap()
}

/// Runs `f` with the spy armed; returns how many freed blocks still held the marker.
fn freed_with_marker(f: impl FnOnce()) -> usize {
    FREED_WITH_MARKER.store(0, Ordering::SeqCst);
    ARMED.store(true, Ordering::SeqCst);
    f();
    ARMED.store(false, Ordering::SeqCst);
    FREED_WITH_MARKER.load(Ordering::SeqCst)
}

#[test]
fn secrets_are_zeroed_when_dropped() {
    // Control: a plain String leaves its bytes in freed memory, and the spy sees it.
    let plain = marker();
    assert_eq!(
        freed_with_marker(|| drop(plain)),
        1,
        "the spy must see a plain String"
    );

    // A Secret built from a String, and its clone.
    let secret = Secret::new(marker());
    let copy = secret.clone();
    assert_eq!(copy.expose().as_bytes(), MARKER);
    assert_eq!(
        freed_with_marker(|| {
            drop(secret);
            drop(copy);
        }),
        0,
        "a dropped Secret left its bytes in the heap"
    );

    // A Secret with spare capacity (grown, then shrunk text): the whole buffer is wiped.
    let mut grown = String::with_capacity(4 * MARKER.len());
    grown.push_str(&marker());
    grown.push_str(&marker());
    grown.truncate(MARKER.len());
    let secret = Secret::from(grown);
    assert_eq!(freed_with_marker(|| drop(secret)), 0);

    // Secrets deserialized from an API answer (the input buffer itself is the caller's and
    // is freed outside the armed window).
    let json = format!(
        r#"{{"tunnel_id":"t-1","hostname":"t-1.example.com","url":"https://t-1.example.com",
            "frp_token":"{m}","binding_secret":"{m}","http_password":"{m}",
            "server_host":"example.com","server_port":7000,"expires_at":"2099-01-01T00:00:00Z"}}"#,
        m = marker()
    )
    .into_bytes();
    let created: expose::prime::CreatedTunnel = serde_json::from_slice(&json).unwrap();
    assert_eq!(created.frp_token.expose().as_bytes(), MARKER);
    assert_eq!(freed_with_marker(|| drop(created)), 0);
    drop(json);

    // Through the engine's configuration, which holds the token and metas as Secrets.
    let mut cfg = expose::frp::ClientConfig::new("127.0.0.1", 7000, Secret::new(marker()));
    cfg.metas
        .insert("binding_secret".into(), Secret::new(marker()));
    let cfg2 = cfg.clone();
    assert_eq!(
        freed_with_marker(|| {
            drop(cfg);
            drop(cfg2);
        }),
        0
    );
}

#[test]
fn secret_is_zeroize_on_drop() {
    fn zeroize_on_drop<T: zeroize::ZeroizeOnDrop>() {}
    zeroize_on_drop::<Secret>();
}
