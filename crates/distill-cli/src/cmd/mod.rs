//! One module per command (or group of commands).

pub mod archive;
pub mod build;
pub mod debug;
pub mod plan;
pub mod run;
pub mod store;
