//! Support for the fault-injection tests in `tests/` (being written).
