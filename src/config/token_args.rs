//! `hookvault token`'s command line.

#[derive(Debug, clap::Args)]
pub struct TokenArgs {
    #[command(subcommand)]
    pub action: TokenAction,
    /// The running instance (default: this machine at --listen's port).
    #[arg(long, global = true)]
    pub url: Option<String>,
    /// An admin token (default: HOOKVAULT_API_TOKEN; none needed on the server's machine
    /// when it has none).
    #[arg(long, global = true)]
    pub token: Option<String>,
}

#[derive(Debug, clap::Subcommand)]
pub enum TokenAction {
    /// Make a token and print it (the only time it is shown).
    Create {
        #[arg(long)]
        name: String,
        /// read, write or admin.
        #[arg(long)]
        scope: String,
        /// Limit the token to these organizations (repeatable).
        #[arg(long)]
        org: Vec<String>,
        /// Limit the token to these repositories, OWNER/NAME (repeatable).
        #[arg(long)]
        repo: Vec<String>,
    },
    /// List the tokens (never the tokens themselves).
    List,
    /// Revoke a token: refused from the next request on.
    Revoke { name: String },
}
