//! tierdesk: the validation layer between a PRM's commission objects and the ERP.
//!
//! Data flows one way (see `docs/architecture.md`):
//! PRM --sync--> [`store`] --> [`detect`] / [`plan`] --> flags, proposals --> [`workflow`]
//! --> outbox --sync--> PRM. The [`tui`] and [`cli`] are thin shells over the core.
//!
//! The domain core ([`detect`], [`plan`], [`forecast`], [`workflow`]) knows nothing of
//! the terminal or HTTP.

pub mod alerts;
pub mod answer;
pub mod cli;
pub mod config;
pub mod demo;
pub mod detect;
pub mod dispute;
pub mod forecast;
pub mod fxhash;
pub mod import;
pub mod listen;
pub mod logging;
pub mod model;
pub mod money;
pub mod payout;
pub mod plan;
pub mod plural;
pub mod policy;
pub mod prm;
pub mod service;
pub mod sim;
pub mod statement;
pub mod store;
pub mod sync;
pub mod text;
pub mod tui;
pub mod workflow;
