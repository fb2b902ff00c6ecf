//! `hypura completions SHELL` and `hypura man`: shell completion scripts (clap_complete) and a
//! roff man page (clap_mangen) generated from the same argument definitions the parser uses,
//! so they cannot drift from the flags.

use anyhow::Result;
use clap::CommandFactory;
use std::io::Write;

#[derive(clap::Args)]
pub struct CompletionsArgs {
    /// The shell: bash, zsh, fish, elvish or powershell.
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

/// Prints the completion script; e.g. `hypura completions bash > ~/.local/share/bash-completion/completions/hypura`.
pub fn completions(args: CompletionsArgs) -> Result<()> {
    let mut cmd = crate::Cli::command();
    let mut out = std::io::stdout().lock();
    clap_complete::generate(args.shell, &mut cmd, "hypura", &mut out);
    out.flush()?;
    Ok(())
}

/// Prints the man page (roff); e.g. `hypura man > ~/.local/share/man/man1/hypura.1`.
pub fn man() -> Result<()> {
    let cmd = crate::Cli::command();
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd).render(&mut buf)?;
    let mut out = std::io::stdout().lock();
    out.write_all(&buf)?;
    out.flush()?;
    Ok(())
}
