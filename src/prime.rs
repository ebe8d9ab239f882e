//! The Prime tunnel API client (being written).
