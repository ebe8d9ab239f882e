//! The freeze switch: makes every server socket stop reading and writing, as if the frps process
//! had been sent SIGSTOP, while keeping the sockets open.
//!
//! Every socket the server accepts is wrapped in [`Gated`]. While the gate is closed (frozen),
//! each read, write, flush and shutdown returns `Pending` and parks its waker here; thawing
//! wakes them all. The open-gate fast path is one atomic load, so the splice paths pay nothing
//! noticeable.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::watch;

/// Shared freeze state of one server.
#[derive(Debug)]
pub(crate) struct Gate {
    frozen: AtomicBool,
    /// Set by `kill`: every gated socket fails from then on, whatever it was waiting for.
    killed: AtomicBool,
    /// Tasks parked on a closed gate. Only touched while frozen.
    wakers: Mutex<Vec<Waker>>,
    /// The same state for async waiters (the mux drivers, the accept path).
    watch: watch::Sender<bool>,
}

impl Gate {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Gate {
            frozen: AtomicBool::new(false),
            killed: AtomicBool::new(false),
            wakers: Mutex::new(Vec::new()),
            watch: watch::channel(false).0,
        })
    }

    pub(crate) fn is_frozen(&self) -> bool {
        self.frozen.load(Ordering::Acquire)
    }

    pub(crate) fn set_frozen(&self, frozen: bool) {
        let woken = {
            let mut wakers = self.wakers.lock().unwrap_or_else(PoisonError::into_inner);
            self.frozen.store(frozen, Ordering::Release);
            if frozen {
                Vec::new()
            } else {
                std::mem::take(&mut *wakers)
            }
        };
        for w in woken {
            w.wake();
        }
        self.watch.send_replace(frozen);
    }

    /// Makes every gated socket fail from now on and wakes the parked ones.
    pub(crate) fn kill(&self) {
        let woken = {
            let mut wakers = self.wakers.lock().unwrap_or_else(PoisonError::into_inner);
            self.killed.store(true, Ordering::Release);
            std::mem::take(&mut *wakers)
        };
        for w in woken {
            w.wake();
        }
    }

    /// Ready(Ok) when the gate is open, Ready(Err) once killed; otherwise parks the task until
    /// [`Gate::set_frozen`]`(false)`.
    pub(crate) fn poll_open(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.killed.load(Ordering::Acquire) {
            return Poll::Ready(Err(io::ErrorKind::ConnectionAborted.into()));
        }
        if !self.is_frozen() {
            return Poll::Ready(Ok(()));
        }
        let mut wakers = self.wakers.lock().unwrap_or_else(PoisonError::into_inner);
        // Re-check under the lock: a thaw or kill in between has already drained the list.
        if self.killed.load(Ordering::Acquire) {
            return Poll::Ready(Err(io::ErrorKind::ConnectionAborted.into()));
        }
        if !self.frozen.load(Ordering::Acquire) {
            return Poll::Ready(Ok(()));
        }
        if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
            wakers.push(cx.waker().clone());
        }
        Poll::Pending
    }

    /// Waits until the gate is open.
    pub(crate) async fn wait_open(&self) {
        let mut rx = self.watch.subscribe();
        let _ = rx.wait_for(|frozen| !*frozen).await;
    }

    /// Waits until the gate is closed.
    pub(crate) async fn wait_frozen(&self) {
        let mut rx = self.watch.subscribe();
        let _ = rx.wait_for(|frozen| *frozen).await;
    }
}

/// A socket whose I/O stops while the server is frozen.
#[derive(Debug)]
pub(crate) struct Gated<T> {
    inner: T,
    gate: Arc<Gate>,
}

impl<T> Gated<T> {
    pub(crate) fn new(inner: T, gate: Arc<Gate>) -> Self {
        Gated { inner, gate }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Gated<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        futures::ready!(this.gate.poll_open(cx))?;
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Gated<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        futures::ready!(this.gate.poll_open(cx))?;
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        futures::ready!(this.gate.poll_open(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        futures::ready!(this.gate.poll_open(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        futures::ready!(this.gate.poll_open(cx))?;
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
