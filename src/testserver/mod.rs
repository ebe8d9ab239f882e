//! An frps-compatible test server (being written).
