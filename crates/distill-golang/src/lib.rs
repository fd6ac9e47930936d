//! The Go standard-library behaviours that show through BuildKit's output, reproduced in Rust so
//! distill's output matches BuildKit's byte for byte.
//!
//! BuildKit is a Go program: its parser dump quotes strings with `strconv.Quote`, its lexer
//! splits words with `unicode.IsSpace` and ends variable names with `unicode.IsLetter`, its
//! history strings print slices with `%q`/`%v` and durations with `time.Duration.String`. Rust's
//! nearest helpers answer slightly different questions (`char::is_alphabetic` is the
//! `Alphabetic` property, `str::to_lowercase` the full case mapping, `{:?}` escapes differently),
//! so each such Go function is written here once, in a module named after its Go package:
//! [`strconv`], [`unicode`], [`strings`], [`time`], [`fmt`] and [`path`]. Every function names the Go
//! function it reproduces.
//!
//! Go strings are bytes and may hold bytes that are not UTF-8; [`rawbytes`] carries those in a
//! Rust `String` as private-use stand-in characters, and every function here treats a stand-in
//! as Go treats the byte it stands for.
//!
//! This crate never approximates: a function either behaves as its Go counterpart does (with
//! Unicode 15.0 tables, as Go 1.21 onwards) or is not here. It never panics on any input.

pub mod fmt;
pub mod path;
pub mod rawbytes;
pub mod strconv;
pub mod strings;
pub mod time;
pub mod unicode;
