//! A faithful fake Discord (Gateway v10 + REST) for tests, benchmarks and the demo.
