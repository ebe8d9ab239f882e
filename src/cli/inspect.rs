//! The inspector's command-line flags and its start next to a tunnel.

use expose::capture::{CaptureStore, StoreLimits};
use expose::frp::ClientHandle;
use expose::inspect::{self, Inspector, Options};
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

/// `--inspect ADDR`, `--no-inspect`, `--inspect-secrets`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct InspectArgs {
    /// Serve the local inspector (requests, replay, /metrics) on ADDR [default: 127.0.0.1:4040;
    /// the next free port if taken].
    #[arg(long, value_name = "ADDR", conflicts_with = "no_inspect")]
    pub inspect: Option<SocketAddr>,
    /// Do not start the local inspector.
    #[arg(long)]
    pub no_inspect: bool,
    /// Show Authorization, Cookie, Set-Cookie and Proxy-Authorization values in the inspector
    /// instead of masking them.
    #[arg(long)]
    pub inspect_secrets: bool,
}

/// A started inspector (or none), and the store the engine records into.
#[derive(Default)]
pub struct Running {
    inspector: Option<Inspector>,
    store: Option<Arc<CaptureStore>>,
    client: Arc<OnceLock<ClientHandle>>,
}

impl Running {
    /// The store for [`expose::frp::ClientConfig::capture`].
    pub fn store(&self) -> Option<Arc<CaptureStore>> {
        self.store.clone()
    }

    /// The running client, whose figures `/metrics` shows.
    pub fn set_client(&self, client: ClientHandle) {
        let _ = self.client.set(client);
    }

    /// `http://ADDR`, for the banner.
    pub fn url(&self) -> Option<String> {
        self.inspector.as_ref().map(Inspector::url)
    }
}

/// Starts the inspector unless it is off (`--no-inspect`, or `on_by_default` false without
/// `--inspect`). A port that cannot be bound is a warning: the tunnel runs without it.
pub async fn start(args: &InspectArgs, on_by_default: bool) -> Result<Running, String> {
    let wanted = !args.no_inspect && (args.inspect.is_some() || on_by_default);
    if !wanted {
        return Ok(Running::default());
    }
    let addr = args.inspect.unwrap_or(inspect::DEFAULT_ADDR);
    let listener = inspect::bind(addr)
        .await
        .map_err(|e| format!("the inspector could not listen on {addr}: {e}"))?;
    let store = CaptureStore::new(StoreLimits::default());
    let client = Arc::new(OnceLock::new());
    let options = Options::default().secrets(args.inspect_secrets);
    let inspector = Inspector::start(listener, store.clone(), client.clone(), options)
        .map_err(|e| format!("the inspector could not start: {e}"))?;
    Ok(Running {
        inspector: Some(inspector),
        store: Some(store),
        client,
    })
}
