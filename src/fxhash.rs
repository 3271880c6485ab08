//! The detector's and the calculator's internal maps: the rustc "Fx" hash (the
//! `rustc-hash` crate), fast and deterministic. Keys here are ids and indices from the
//! data set, not attacker-chosen collision sets worth SipHash's cost.
//!
//! This was a hand-written copy of the classic Fx hash; its last step (a multiply) left
//! the low bits, which pick the bucket, depending on the first bytes of a key's last
//! word only, so ids sharing a prefix and differing at the end (invoice numbers such as
//! `INV-00018-357575`) piled into the same buckets: the ERP check spent most of its time
//! comparing strings in collision chains. `rustc-hash` 2 finishes with a rotation.

use std::collections::{HashMap, HashSet};

pub use rustc_hash::FxHasher;

pub type FxBuild = rustc_hash::FxBuildHasher;
pub type FxMap<K, V> = HashMap<K, V, FxBuild>;
pub type FxSet<K> = HashSet<K, FxBuild>;
