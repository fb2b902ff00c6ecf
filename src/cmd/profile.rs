//! `hypura profile` (being written this session).

#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("hypura profile is being written")
}
