//! Shared corpora and helpers for the benchmarks and load tools.
