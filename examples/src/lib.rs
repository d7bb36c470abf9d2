//! The retail main job of aether and the code it is checked with.

pub mod retail;
