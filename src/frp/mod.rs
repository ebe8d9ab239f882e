//! The frp client engine (being written).
