//! `hypura synth` (being written this session).

#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("hypura synth is being written")
}
