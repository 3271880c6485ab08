//! `tierdesk login` / `tierdesk logout`.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use secrecy::{ExposeSecret, SecretString};

use super::Context;
use crate::config::PrmConfig;
use crate::sim::Flavor;
use crate::sync::creds;

/// Store the PRM credential in the OS keyring (Secret Service or kernel keyutils on
/// Linux, Keychain on macOS, Credential Manager on Windows). The secret is read from
/// stdin (or a hidden prompt); it is never written to config.toml, logs or the cache.
/// TIERDESK_PRM_TOKEN, when set, overrides the stored secret.
#[derive(Debug, clap::Args)]
pub struct LoginArgs {
    /// PRM base URL, e.g. http://127.0.0.1:8787 (saved as prm.url in config.toml).
    #[arg(long, value_name = "URL")]
    pub prm: String,
    /// PRM flavour (saved as prm.flavor in config.toml).
    #[arg(long, value_enum)]
    pub flavor: Flavor,
    /// Impartner tenant id (saved as prm.tenant in config.toml).
    #[arg(long)]
    pub tenant: Option<String>,
}

/// A secret from stdin: typed without echo at a terminal, else the first line.
pub(crate) fn read_secret(prompt: &str) -> anyhow::Result<SecretString> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("{prompt}: ");
        let _ = std::io::stderr().flush();
        crossterm::terminal::enable_raw_mode()?;
        let mut s = String::new();
        let res = loop {
            match crossterm::event::read() {
                Ok(crossterm::event::Event::Key(k)) => match k.code {
                    crossterm::event::KeyCode::Enter => break Ok(()),
                    crossterm::event::KeyCode::Esc => break Err(anyhow::anyhow!("cancelled")),
                    crossterm::event::KeyCode::Backspace => {
                        s.pop();
                    }
                    crossterm::event::KeyCode::Char('c')
                        if k.modifiers
                            .contains(crossterm::event::KeyModifiers::CONTROL) =>
                    {
                        break Err(anyhow::anyhow!("cancelled"))
                    }
                    crossterm::event::KeyCode::Char(c) => s.push(c),
                    _ => {}
                },
                Ok(_) => {}
                Err(e) => break Err(e.into()),
            }
        };
        let _ = crossterm::terminal::disable_raw_mode();
        eprintln!();
        res?;
        Ok(SecretString::from(s))
    } else {
        let mut line = String::new();
        stdin.lock().read_line(&mut line)?;
        Ok(SecretString::from(
            line.trim_end_matches(['\r', '\n']).to_string(),
        ))
    }
}

pub fn run_login(ctx: &Context, args: LoginArgs) -> anyhow::Result<ExitCode> {
    let secret =
        read_secret("PRM secret (PartnerStack: public_key:secret_key; Impartner: API key)")?;
    if secret.expose_secret().trim().is_empty() {
        anyhow::bail!("no secret given: nothing stored");
    }
    let account = creds::account(&args.prm, args.flavor.as_str());
    let backend = creds::store(&account, &secret, creds::TIMEOUT)?;
    let mut config = ctx.config.clone();
    // The mapping and roles of the PRM already configured stay.
    let kept = config.prm.take();
    let mut prm = PrmConfig::new(
        args.prm.trim_end_matches('/'),
        args.flavor.as_str(),
        args.tenant.clone(),
    );
    if let Some(k) = kept {
        prm.mapping = k.mapping;
        prm.roles = k.roles;
        prm.full_pass_hours = k.full_pass_hours;
        prm.timeout_secs = k.timeout_secs;
    }
    config.prm = Some(prm);
    config.save(&ctx.paths.config_file)?;
    println!(
        "stored the credential for {account} in the {}; PRM saved in {}",
        backend.describe(),
        ctx.paths.config_file.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Remove the stored PRM credential from the OS keyring.
#[derive(Debug, clap::Args)]
pub struct LogoutArgs {
    /// PRM base URL (default: prm.url in config.toml).
    #[arg(long, value_name = "URL")]
    pub prm: Option<String>,
    /// PRM flavour (default: prm.flavor in config.toml).
    #[arg(long, value_enum)]
    pub flavor: Option<Flavor>,
}

pub fn run_logout(ctx: &Context, args: LogoutArgs) -> anyhow::Result<ExitCode> {
    let cfg = ctx.config.prm.as_ref();
    let url = args
        .prm
        .or_else(|| cfg.map(|c| c.url.clone()))
        .ok_or_else(|| anyhow::anyhow!("no PRM configured: pass --prm URL"))?;
    let flavor = args
        .flavor
        .map(|f| f.as_str().to_string())
        .or_else(|| cfg.map(|c| c.flavor.clone()))
        .unwrap_or_else(|| "partnerstack".into());
    let account = creds::account(&url, &flavor);
    if creds::delete(&account, creds::TIMEOUT)? {
        println!("removed the credential for {account} from the OS keyring");
    } else {
        println!("no credential was stored for {account}");
    }
    Ok(ExitCode::SUCCESS)
}
