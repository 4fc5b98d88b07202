//! `stagelib token create`: API tokens for `serve`.
use clap::Subcommand;

use super::context::Context;
use super::output;
use crate::lease::Scope;

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Create a token; its secret is printed once (only its hash is stored).
    ///
    /// Scopes: `user` manages its own leases; `try` reads the endpoints of any
    /// lease whose ID it is given (for Try pushes); `admin` does everything.
    Create {
        /// Whom the token authenticates.
        #[arg(long)]
        user: String,
        #[arg(long, default_value = "user")]
        scope: ScopeArg,
    },
}

#[derive(clap::ValueEnum, Debug, Clone, Copy)]
pub enum ScopeArg {
    User,
    Try,
    Admin,
}

impl From<ScopeArg> for Scope {
    fn from(s: ScopeArg) -> Self {
        match s {
            ScopeArg::User => Scope::User,
            ScopeArg::Try => Scope::Try,
            ScopeArg::Admin => Scope::Admin,
        }
    }
}

pub async fn run(ctx: &Context, cmd: TokenCommand) -> anyhow::Result<()> {
    match cmd {
        TokenCommand::Create { user, scope } => {
            let token = ctx.service.create_token(&ctx.actor, &user, scope.into()).await?;
            if ctx.json {
                return output::json(&token);
            }
            println!("{}", token.token);
            eprintln!(
                "token for {} (scope {}); store it now, it is not shown again",
                token.user, token.scope
            );
            Ok(())
        }
    }
}
