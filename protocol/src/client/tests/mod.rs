//! Client machine tests.
