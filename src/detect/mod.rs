//! Anomaly detection: explainable scores for partner-submitted transactions.
