//! `tierdesk login`.

use std::process::ExitCode;

use super::Context;

#[derive(Debug, clap::Args)]
pub struct LoginArgs {}

pub fn run_login(_ctx: &Context, _args: LoginArgs) -> anyhow::Result<ExitCode> {
    super::not_built("login")
}

#[derive(Debug, clap::Args)]
pub struct LogoutArgs {}

pub fn run_logout(_ctx: &Context, _args: LogoutArgs) -> anyhow::Result<ExitCode> {
    super::not_built("login")
}
