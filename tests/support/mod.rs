//! Shared test support: generated receipt images.
#![allow(dead_code)]

pub mod documents;
pub mod receipt_image;
