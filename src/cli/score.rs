//! `tierdesk score`.

use std::process::ExitCode;

use super::Context;

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_ctx: &Context, _args: Args) -> anyhow::Result<ExitCode> {
    super::not_built("score")
}

pub fn bench(_ctx: &Context, _opts: &super::bench::BenchOpts) -> anyhow::Result<ExitCode> {
    super::not_built("bench")
}
