//! The workbench (terminal UI).
