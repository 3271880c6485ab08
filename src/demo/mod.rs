//! Demo program generator.
