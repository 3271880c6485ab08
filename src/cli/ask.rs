//! `tierdesk ask`: a question answered from the records, each sentence with citations.

use std::process::ExitCode;

use super::Context;
use crate::answer;
use crate::service::records::{check_partner, facts};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AskFormat {
    Text,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Ask as this partner: answers cite only that partner's records.
    #[arg(long, value_name = "PARTNER")]
    pub partner: Option<String>,
    /// The question, in plain words.
    #[arg(value_name = "QUESTION", required_unless_present = "set_key")]
    pub question: Option<String>,
    #[arg(long, value_enum, default_value = "text")]
    pub format: AskFormat,
    /// Never call the configured language model (deterministic answer only).
    #[arg(long)]
    pub offline: bool,
    /// Store the `[assistant]` model's API key in the OS keyring (read from stdin) and
    /// exit. TIERDESK_AI_KEY overrides it.
    #[arg(long, conflicts_with = "question")]
    pub set_key: bool,
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    if args.set_key {
        let key = super::login::read_secret("API key of the [assistant] model")?;
        let backend = crate::sync::creds::store(
            crate::answer::model::KEY_ACCOUNT,
            &key,
            crate::sync::creds::TIMEOUT,
        )?;
        println!("stored the model's API key in the {}", backend.describe());
        return Ok(ExitCode::SUCCESS);
    }
    let question = args.question.clone().unwrap_or_default();
    let store = ctx.open_existing_store()?;
    let loaded = crate::service::records::load(&store)?;
    let facts = facts(&store)?;
    let partner = args.partner.as_deref().map(str::trim);
    check_partner(&loaded.ds, partner)?;
    let book = loaded.book(crate::service::records::now());
    let det = answer::answer(&book, &facts, partner, &question);
    let ans = if args.offline {
        det
    } else {
        crate::answer::model::maybe_rephrase(
            ctx.config.assistant.as_ref(),
            &book,
            &facts,
            partner,
            &question,
            det,
        )
    };
    match args.format {
        AskFormat::Json => println!("{}", serde_json::to_string_pretty(&ans)?),
        AskFormat::Text => {
            for s in &ans.answer {
                let cites = if s.citations.is_empty() {
                    String::new()
                } else {
                    format!(" [{}]", s.citations.join(", "))
                };
                println!("{}{cites}", crate::text::sanitize(&s.text));
            }
            match &ans.fallback {
                Some(why) => {
                    println!("(answer: deterministic; the model's answer was not used: {why})")
                }
                None => println!("(answer: {})", ans.source),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
