//! `hypura plot`: a chart of sweep results (one column against another, a line per value of a
//! third) as SVG or PNG.

use anyhow::{Context, Result};
use experiments::plot::{self, Filter, Spec};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// A `hypura sweep -o` directory (every *.parquet in it).
    pub results: PathBuf,
    /// Column on the x axis, numeric (e.g. cache, depth, qd, or any column name).
    #[arg(long)]
    pub x: String,
    /// Column on the y axis, numeric (e.g. tok_per_s, hit_rate, bytes_read_per_token).
    #[arg(long)]
    pub y: String,
    /// One line per value of this column (e.g. policy, prefetch, partition), or per
    /// combination of several (`policy,prefetch`).
    #[arg(long)]
    pub by: Option<String>,
    /// Only rows whose COLUMN shows as VALUE (`prefetch=none`), or as anything else
    /// (`policy!=belady`); repeatable. Rows with the same x on one line must not differ in
    /// another input.
    #[arg(long = "where", value_name = "COLUMN=VALUE", value_parser = parse_filter)]
    pub filters: Vec<Filter>,
    /// Add the Pareto front of all rows: least x for the most y (memory against speed).
    #[arg(long)]
    pub pareto: bool,
    /// Log scale on x (cache sizes from a log-spaced grid).
    #[arg(long)]
    pub log_x: bool,
    /// Title (default: what is plotted against what).
    #[arg(long)]
    pub title: Option<String>,
    /// The chart file: .svg or .png.
    #[arg(short = 'o', long)]
    pub output: PathBuf,
    /// Overwrite the -o file if it exists.
    #[arg(long)]
    pub force: bool,
}

fn parse_filter(s: &str) -> Result<Filter, String> {
    Filter::parse(s).ok_or_else(|| format!("{s:?} is not COLUMN=VALUE or COLUMN!=VALUE"))
}

pub fn run(args: Args) -> Result<()> {
    super::refuse_existing(&args.output, args.force, "-o path")?;
    let table = plot::load(&args.results)?;
    let spec = Spec {
        x: args.x,
        y: args.y,
        by: args.by,
        filters: args.filters,
        pareto: args.pareto,
        log_x: args.log_x,
        title: args.title,
    };
    let chart = plot::chart(&table, &spec)?;
    plot::write(&chart, &args.output, args.force)
        .with_context(|| format!("writing {}", args.output.display()))?;
    let points: usize = chart
        .lines
        .iter()
        .filter(|l| !l.bound)
        .map(|l| l.points.len())
        .sum();
    println!(
        "wrote {}: {} line(s), {points} point(s) from {} row(s)",
        args.output.display(),
        chart.lines.len(),
        table.rows.len()
    );
    Ok(())
}
