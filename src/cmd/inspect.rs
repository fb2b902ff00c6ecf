//! `hypura inspect` (being written this session).

#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("hypura inspect is being written")
}
