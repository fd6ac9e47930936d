//! One module per command (or group of commands).

pub mod archive;
pub mod debug;
pub mod plan;
pub mod store;
