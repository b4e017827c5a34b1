//! The fuzz targets' checks: the same source files the test library (`td-tests`) compiles, so
//! each target and its regression replay under `cargo test` check exactly the same thing.

#[path = "../../tests/src/fuzz_checks.rs"]
pub mod checks;
#[path = "../../tests/src/inproc.rs"]
pub mod inproc;
#[path = "../../tests/src/mesh.rs"]
pub mod mesh;
