//! Shared test support: generated receipt images.
#![allow(dead_code)]

pub mod receipt_image;
