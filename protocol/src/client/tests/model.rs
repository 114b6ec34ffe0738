//! The state-machine property test.
