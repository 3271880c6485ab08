//! `tierdesk` with no subcommand: the workbench on the user's cache.

use std::process::ExitCode;

use super::Context;

pub fn run(_ctx: &Context) -> anyhow::Result<ExitCode> {
    super::not_built("workbench")
}

pub fn bench(_ctx: &Context, _opts: &super::bench::BenchOpts) -> anyhow::Result<ExitCode> {
    super::not_built("bench tui")
}
