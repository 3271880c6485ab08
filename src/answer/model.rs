//! Optional language model (see docs/statements.md): rephrases the deterministic answer.

use crate::answer::{Answer, Facts};
use crate::cli::Context;
use crate::statement::Book;

/// Rephrases through the configured model when there is one; otherwise (or on any
/// failure) the deterministic answer, saying why.
pub fn maybe_rephrase(
    _ctx: &Context,
    _book: &Book,
    _facts: &Facts,
    _partner: Option<&str>,
    _question: &str,
    det: Answer,
) -> Answer {
    det
}
