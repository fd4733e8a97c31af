//! Durable file writes for the agent's state dir; see the `durable` crate.

pub use durable::{create_private_dir, sync_dir, write_atomic, write_atomic_with};
