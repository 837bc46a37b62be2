//! A sans-IO Discord Gateway v10 session machine.
