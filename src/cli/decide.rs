//! `tierdesk decide`.

use std::process::ExitCode;

use super::Context;

#[derive(Debug, clap::Args)]
pub struct DecideArgs {}

pub fn run_decide(_ctx: &Context, _args: DecideArgs) -> anyhow::Result<ExitCode> {
    super::not_built("decide")
}

#[derive(Debug, clap::Args)]
pub struct SignoffArgs {}

pub fn run_signoff(_ctx: &Context, _args: SignoffArgs) -> anyhow::Result<ExitCode> {
    super::not_built("decide")
}

#[derive(Debug, clap::Args)]
pub struct UndoArgs {}

pub fn run_undo(_ctx: &Context, _args: UndoArgs) -> anyhow::Result<ExitCode> {
    super::not_built("decide")
}
