//! Charts of sweep results (`hypura plot`): one column against another, one line per value of
//! a third, as SVG or PNG. With `hit_rate` on y, each line's Belady bound (the rows'
//! `belady_hit_rate`) is drawn dashed beside it; `pareto` adds the front of the rows no other
//! row beats on both axes (less of x, more of y: memory against speed).
//!
//! A chart needs one y per (line, x): rows that share both but differ in another input are
//! refused, naming the inputs that differ, so that a chart never averages configurations
//! silently; `filters` (`--where key=value`) pick one. Axes are labelled with units: bytes in
//! GiB or MB, rates in percent, seconds per token in milliseconds.
//!
//! Text is laid out with a TrueType font from the system (DejaVu Sans where Debian puts it,
//! or `HYPURA_FONT`): plotters measures labels with it for both formats.

use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::Field;
use plotters::prelude::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// What to draw.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    pub x: String,
    pub y: String,
    pub by: Option<String>,
    /// Only rows that pass every filter.
    pub filters: Vec<Filter>,
    pub pareto: bool,
    pub log_x: bool,
    pub title: Option<String>,
}

/// Rows whose `column` shows as `value` (`--where column=value`), or with `keep` false all
/// other rows (`--where column!=value`).
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    pub column: String,
    pub value: String,
    pub keep: bool,
}

impl Filter {
    /// `column=value` or `column!=value`.
    pub fn parse(s: &str) -> Option<Filter> {
        let (k, v) = s.split_once('=')?;
        let (column, keep) = match k.strip_suffix('!') {
            Some(c) => (c, false),
            None => (k, true),
        };
        let column = column.trim();
        (!column.is_empty()).then(|| Filter {
            column: column.to_string(),
            value: v.trim().to_string(),
            keep,
        })
    }
}

/// Why a chart could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    #[error("{dir}: no Parquet files (a `hypura sweep -o` directory holds part-*.parquet)")]
    Empty { dir: PathBuf },
    #[error("cannot list {dir}")]
    List {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: cannot read")]
    Read {
        path: PathBuf,
        #[source]
        source: parquet::errors::ParquetError,
    },
    #[error("no column {name:?} (columns: {columns})")]
    NoColumn { name: String, columns: String },
    #[error("{name} is not numeric (its values are names such as {example:?}): put it in --by or --where")]
    NotNumeric { name: String, example: String },
    #[error("--where {column}{value}: no row is left (the column has {seen})")]
    NoMatch {
        column: String,
        value: String,
        seen: String,
    },
    #[error("no row has both {x} and {y} (failed configurations have no outcome)")]
    NoPoints { x: String, y: String },
    #[error("{0}")]
    Ambiguous(Box<Ambiguous>),
    #[error("--log-x needs {x} > 0 on every row ({at} is not)")]
    LogOfZero { x: String, at: f64 },
    #[error("{0}")]
    Font(String),
    #[error("drawing the chart: {0}")]
    Draw(String),
    #[error("{path}: the chart is written as .svg or .png")]
    Format { path: PathBuf },
    #[error(transparent)]
    File(#[from] outfile::OutfileError),
}

/// Rows that would put two values on one line at one x.
#[derive(Debug, thiserror::Error)]
#[error("rows with {x} = {at} on the line {line:?} differ in {differ}: pick one with --where (e.g. --where {first}={value})")]
pub struct Ambiguous {
    pub x: String,
    pub at: String,
    pub line: String,
    pub differ: String,
    pub first: String,
    pub value: String,
}

/// A cell of the results table.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Num(f64),
    Text(String),
    Null,
}

impl Value {
    fn show(&self) -> String {
        match self {
            Value::Num(x) if x.fract() == 0.0 && x.abs() < 1e15 => format!("{}", *x as i64),
            Value::Num(x) => format!("{x}"),
            Value::Text(s) => s.clone(),
            Value::Null => "null".into(),
        }
    }
}

/// Rows of every Parquet file of a directory, by column name.
pub struct Table {
    pub columns: Vec<String>,
    pub rows: Vec<BTreeMap<String, Value>>,
}

/// Reads every `*.parquet` file of `dir` (names starting with a dot are partial writes).
pub fn load(dir: &Path) -> Result<Table, PlotError> {
    let list = |source| PlotError::List {
        dir: dir.to_path_buf(),
        source,
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(list)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
            name.is_some_and(|n| !n.starts_with('.') && n.ends_with(".parquet")) && p.is_file()
        })
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(PlotError::Empty {
            dir: dir.to_path_buf(),
        });
    }
    let mut columns: Vec<String> = Vec::new();
    let mut rows = Vec::new();
    for path in files {
        let read = |source| PlotError::Read {
            path: path.clone(),
            source,
        };
        let file = std::fs::File::open(&path).map_err(|e| read(e.into()))?;
        let reader = SerializedFileReader::new(file).map_err(read)?;
        for row in reader.get_row_iter(None).map_err(read)? {
            let row = row.map_err(read)?;
            let mut cells = BTreeMap::new();
            for (name, field) in row.get_column_iter() {
                if !columns.contains(name) {
                    columns.push(name.clone());
                }
                cells.insert(name.clone(), value(field));
            }
            rows.push(cells);
        }
    }
    Ok(Table { columns, rows })
}

fn value(f: &Field) -> Value {
    match *f {
        Field::Null => Value::Null,
        Field::Bool(b) => Value::Num(f64::from(u8::from(b))),
        Field::Byte(v) => Value::Num(f64::from(v)),
        Field::Short(v) => Value::Num(f64::from(v)),
        Field::Int(v) => Value::Num(f64::from(v)),
        Field::Long(v) => Value::Num(v as f64),
        Field::UByte(v) => Value::Num(f64::from(v)),
        Field::UShort(v) => Value::Num(f64::from(v)),
        Field::UInt(v) => Value::Num(f64::from(v)),
        Field::ULong(v) => Value::Num(v as f64),
        Field::Float(v) => Value::Num(f64::from(v)),
        Field::Double(v) => Value::Num(v),
        Field::Str(ref s) => Value::Text(s.clone()),
        ref other => Value::Text(other.to_string()),
    }
}

/// The sweep's short names for its columns (`--x cache` is `cache_bytes`).
pub fn column_name(name: &str) -> &str {
    match name {
        "cache" => "cache_bytes",
        "depth" => "prefetch_depth",
        "qd" => "queue_depth",
        "prefetch" => "expert_prefetch",
        "ram" => "ram_bytes",
        "gpu" => "gpu_bytes",
        "tok/s" => "tok_per_s",
        n => n,
    }
}

/// How a column is shown on an axis: its label with the unit, and the factor its values are
/// multiplied by.
fn axis(column: &str) -> (String, f64) {
    const GIB: f64 = (1u64 << 30) as f64;
    let (label, scale) = match column {
        "cache_bytes" => ("expert cache (GiB)", 1.0 / GIB),
        "ram_bytes" => ("RAM for the plan (GiB)", 1.0 / GIB),
        "gpu_bytes" => ("GPU memory for the plan (GiB)", 1.0 / GIB),
        "tok_per_s" => ("decode speed (tok/s)", 1.0),
        "plan_tok_per_s" => ("solver's predicted speed (tok/s)", 1.0),
        "hit_rate" => ("expert hit rate (%)", 100.0),
        "belady_hit_rate" => ("Belady hit rate (%)", 100.0),
        "prefetch_hit_rate" => ("accesses prefetched in time (%)", 100.0),
        "storage_utilisation" => ("storage busy (%)", 100.0),
        "bytes_read_per_token" => ("read per token (MB)", 1e-6),
        "prefetch_wasted_bytes_per_token" => ("prefetch wasted per token (MB)", 1e-6),
        "token_s_p50" => ("token latency p50 (ms)", 1e3),
        "token_s_p99" => ("token latency p99 (ms)", 1e3),
        "compute_s_per_token" => ("compute per token (ms)", 1e3),
        "io_wait_s_per_token" => ("I/O wait per token (ms)", 1e3),
        "link_s_per_token" => ("host link per token (ms)", 1e3),
        "prefetch_depth" => ("dense prefetch depth (layers)", 1.0),
        "queue_depth" => ("storage requests in flight", 1.0),
        "tokens" => ("tokens decoded", 1.0),
        other => return (other.to_string(), 1.0),
    };
    (label.to_string(), scale)
}

/// The inputs of a configuration: rows equal in all of them are the same configuration.
const INPUTS: [&str; 12] = [
    "policy",
    "partition",
    "cache_bytes",
    "expert_prefetch",
    "prefetch_depth",
    "queue_depth",
    "ram_bytes",
    "gpu_bytes",
    "model",
    "profile_hash",
    "trace_hash",
    "tokens",
];

/// A line of the chart: its name and points (x, y) in display units, sorted by x.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    /// A bound drawn dashed (Belady's hit rate).
    pub bound: bool,
    /// The line a bound belongs to (drawn in its colour); None: shared by every line (black).
    pub bound_of: Option<usize>,
}

/// What a chart shows: axis labels and lines (the Pareto front last, when asked for).
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub lines: Vec<Line>,
    pub front: Option<Vec<(f64, f64)>>,
    pub log_x: bool,
}

/// The chart `spec` asks for of `table`.
pub fn chart(table: &Table, spec: &Spec) -> Result<Chart, PlotError> {
    let has = |name: &str| -> Result<String, PlotError> {
        let n = column_name(name).to_string();
        if table.columns.contains(&n) {
            Ok(n)
        } else {
            Err(PlotError::NoColumn {
                name: name.to_string(),
                columns: table.columns.join(", "),
            })
        }
    };
    let (x, y) = (has(&spec.x)?, has(&spec.y)?);
    // `--by policy,prefetch`: a line per combination.
    let by: Option<Vec<String>> = spec
        .by
        .as_deref()
        .map(|b| {
            b.split(',')
                .map(|c| has(c.trim()))
                .collect::<Result<_, _>>()
        })
        .transpose()?;
    let mut rows: Vec<&BTreeMap<String, Value>> = table.rows.iter().collect();
    for f in &spec.filters {
        let k = has(&f.column)?;
        let seen: Vec<String> = distinct(rows.iter().map(|r| r[&k].show()));
        rows.retain(|r| (r[&k].show() == f.value) == f.keep);
        if rows.is_empty() {
            return Err(PlotError::NoMatch {
                column: k,
                value: format!("{}{}", if f.keep { "=" } else { "!=" }, f.value),
                seen: seen.join(", "),
            });
        }
    }
    let num = |r: &BTreeMap<String, Value>, c: &str| -> Result<Option<f64>, PlotError> {
        match &r[c] {
            Value::Num(v) => Ok(Some(*v)),
            Value::Null => Ok(None),
            Value::Text(t) => Err(PlotError::NotNumeric {
                name: c.to_string(),
                example: t.clone(),
            }),
        }
    };
    let (x_label, xs) = axis(&x);
    let (y_label, ys) = axis(&y);
    let bound_column = (y == "hit_rate" && table.columns.iter().any(|c| c == "belady_hit_rate"))
        .then_some("belady_hit_rate");
    // line name -> x (bits) -> (y, bound, row)
    type Cell<'a> = (f64, Option<f64>, &'a BTreeMap<String, Value>);
    let mut lines: BTreeMap<String, BTreeMap<u64, Cell<'_>>> = BTreeMap::new();
    let mut all = Vec::new();
    for r in &rows {
        let (Some(xv), Some(yv)) = (num(r, &x)?, num(r, &y)?) else {
            continue;
        };
        if spec.log_x && xv <= 0.0 {
            return Err(PlotError::LogOfZero {
                x: x.clone(),
                at: xv,
            });
        }
        let bound = match bound_column {
            Some(c) => num(r, c)?,
            None => None,
        };
        let name = by.as_ref().map_or_else(
            || y_label.clone(),
            |b| b.iter().map(|c| r[c].show()).collect::<Vec<_>>().join(" "),
        );
        let line = lines.entry(name.clone()).or_default();
        let key = xv.to_bits();
        if let Some((_, _, other)) = line.get(&key) {
            let differ: Vec<&str> = INPUTS
                .iter()
                .copied()
                .filter(|c| other.get(*c) != r.get(*c))
                .collect();
            // The same configuration written twice (e.g. `depth` left at the plan's and the
            // same depth given): one point.
            let Some(&first) = differ.first() else {
                continue;
            };
            return Err(PlotError::Ambiguous(Box::new(Ambiguous {
                x: x.clone(),
                at: Value::Num(xv).show(),
                line: name,
                differ: differ.join(", "),
                first: first.to_string(),
                value: r.get(first).map_or_else(String::new, Value::show),
            })));
        }
        line.insert(key, (yv, bound, r));
        all.push((xv * xs, yv * ys));
    }
    if all.is_empty() {
        return Err(PlotError::NoPoints { x, y });
    }
    let mut out = Vec::new();
    let mut bounds: Vec<(usize, Vec<(f64, f64)>)> = Vec::new();
    for (name, pts) in &lines {
        let mut points: Vec<(f64, f64)> = pts
            .iter()
            .map(|(&k, &(yv, _, _))| (f64::from_bits(k) * xs, yv * ys))
            .collect();
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        out.push(Line {
            name: name.clone(),
            points,
            bound: false,
            bound_of: None,
        });
        let mut bound: Vec<(f64, f64)> = pts
            .iter()
            .filter_map(|(&k, &(_, b, _))| Some((f64::from_bits(k) * xs, b? * ys)))
            .collect();
        bound.sort_by(|a, b| a.0.total_cmp(&b.0));
        if !bound.is_empty() && !bounds.iter().any(|(_, b)| *b == bound) {
            bounds.push((out.len() - 1, bound));
        }
    }
    let shared = bounds.len() == 1;
    for (of, points) in bounds {
        let (name, bound_of) = if shared {
            ("Belady (bound)".to_string(), None)
        } else {
            (format!("Belady (bound of {})", out[of].name), Some(of))
        };
        out.push(Line {
            name,
            points,
            bound: true,
            bound_of,
        });
    }
    let front = spec.pareto.then(|| pareto(&all));
    let title = spec.title.clone().unwrap_or_else(|| match &by {
        Some(b) => format!("{y_label} against {x_label}, by {}", b.join(" and ")),
        None => format!("{y_label} against {x_label}"),
    });
    Ok(Chart {
        title,
        x_label,
        y_label,
        lines: out,
        front,
        log_x: spec.log_x,
    })
}

fn distinct(values: impl Iterator<Item = String>) -> Vec<String> {
    let mut v: Vec<String> = values.collect();
    v.sort();
    v.dedup();
    v
}

/// The points no other point beats on both axes (x no larger, y no smaller, one strictly),
/// by increasing x.
pub fn pareto(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut p = points.to_vec();
    // By x, and for equal x the best y first.
    p.sort_by(|a, b| a.0.total_cmp(&b.0).then(b.1.total_cmp(&a.1)));
    let mut front: Vec<(f64, f64)> = Vec::new();
    for q in p {
        if front.last().is_none_or(|last| q.1 > last.1) {
            front.push(q);
        }
    }
    front
}

/// The font plotters lays text out with, loaded once.
fn font() -> Result<(), PlotError> {
    static LOADED: OnceLock<Result<(), String>> = OnceLock::new();
    LOADED
        .get_or_init(|| {
            let mut tried = Vec::new();
            let candidates: Vec<PathBuf> = std::env::var_os("HYPURA_FONT")
                .map(PathBuf::from)
                .into_iter()
                .chain(
                    [
                        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
                        "/usr/share/fonts/TTF/DejaVuSans.ttf",
                        "/usr/share/fonts/dejavu/DejaVuSans.ttf",
                        "/System/Library/Fonts/Supplemental/Arial.ttf",
                        "/Library/Fonts/Arial.ttf",
                    ]
                    .map(PathBuf::from),
                )
                .collect();
            for path in candidates {
                if let Ok(bytes) = std::fs::read(&path) {
                    // Registered for the life of the process, as plotters keeps fonts.
                    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                    if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                        return Ok(());
                    }
                }
                tried.push(path.display().to_string());
            }
            Err(format!(
                "no TrueType font to lay out the chart's text (tried {}): install fonts-dejavu-core or set HYPURA_FONT to a .ttf file",
                tried.join(", ")
            ))
        })
        .clone()
        .map_err(PlotError::Font)
}

/// Chart size in pixels.
const SIZE: (u32, u32) = (900, 600);

/// Writes `c` to `path` (.svg or .png), atomically; an existing file only with `overwrite`.
pub fn write(c: &Chart, path: &Path, overwrite: bool) -> Result<(), PlotError> {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    outfile::check(path, overwrite)?;
    font()?;
    let bytes = match ext.as_deref() {
        Some("svg") => {
            let mut s = String::new();
            {
                let root = SVGBackend::with_string(&mut s, SIZE).into_drawing_area();
                draw(c, &root)?;
                root.present().map_err(|e| PlotError::Draw(e.to_string()))?;
            }
            s.into_bytes()
        }
        Some("png") => {
            let mut rgb = vec![0u8; (SIZE.0 * SIZE.1 * 3) as usize];
            {
                let root = BitMapBackend::with_buffer(&mut rgb, SIZE).into_drawing_area();
                draw(c, &root)?;
                root.present().map_err(|e| PlotError::Draw(e.to_string()))?;
            }
            encode_png(&rgb)?
        }
        _ => {
            return Err(PlotError::Format {
                path: path.to_path_buf(),
            })
        }
    };
    outfile::write_bytes(path, overwrite, &bytes)?;
    Ok(())
}

fn encode_png(rgb: &[u8]) -> Result<Vec<u8>, PlotError> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, SIZE.0, SIZE.1);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    let err = |e: png::EncodingError| PlotError::Draw(e.to_string());
    let mut w = enc.write_header().map_err(err)?;
    w.write_image_data(rgb).map_err(err)?;
    w.finish().map_err(err)?;
    Ok(out)
}

/// An axis tick: as few digits as say it (`2`, `2.5`, `0.125`).
fn tick(v: f64) -> String {
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.to_string()
    }
}

fn range(values: impl Iterator<Item = f64> + Clone, log: bool) -> (f64, f64) {
    let lo = values.clone().fold(f64::INFINITY, f64::min);
    let hi = values.fold(f64::NEG_INFINITY, f64::max);
    if log {
        return (lo / 1.1, hi * 1.1);
    }
    let pad = ((hi - lo) * 0.05).max(hi.abs() * 0.05).max(1e-9);
    (
        if lo >= 0.0 {
            (lo - pad).max(0.0)
        } else {
            lo - pad
        },
        hi + pad,
    )
}

fn draw<DB: DrawingBackend>(
    c: &Chart,
    root: &DrawingArea<DB, plotters::coord::Shift>,
) -> Result<(), PlotError>
where
    DB::ErrorType: 'static,
{
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| PlotError::Draw(e.to_string());
    root.fill(&WHITE).map_err(e)?;
    let pts = c
        .lines
        .iter()
        .flat_map(|l| l.points.iter())
        .chain(c.front.iter().flatten());
    let (x0, x1) = range(pts.clone().map(|p| p.0), c.log_x);
    let (y0, y1) = range(pts.map(|p| p.1), false);
    let mut builder = ChartBuilder::on(root);
    builder
        .caption(&c.title, ("sans-serif", 20))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(64);
    // One drawing routine for both x scales.
    macro_rules! body {
        ($chart:expr) => {{
            let mut chart = $chart;
            chart
                .configure_mesh()
                .x_desc(c.x_label.as_str())
                .y_desc(c.y_label.as_str())
                .label_style(("sans-serif", 14))
                .x_label_formatter(&|v| tick(*v))
                .y_label_formatter(&|v| tick(*v))
                .axis_desc_style(("sans-serif", 16))
                .draw()
                .map_err(e)?;
            for (i, line) in c.lines.iter().enumerate() {
                // Lines come first, so a line's index is its colour; a bound takes its line's.
                let style = match (line.bound, line.bound_of) {
                    (false, _) => Palette99::pick(i).stroke_width(2),
                    (true, Some(of)) => Palette99::pick(of).stroke_width(1),
                    (true, None) => BLACK.stroke_width(1),
                };
                let pts = line.points.clone();
                if line.bound {
                    chart
                        .draw_series(DashedLineSeries::new(pts, 6, 4, style))
                        .map_err(e)?
                        .label(line.name.as_str())
                        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
                } else {
                    chart
                        .draw_series(LineSeries::new(pts.clone(), style))
                        .map_err(e)?
                        .label(line.name.as_str())
                        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
                    chart
                        .draw_series(pts.into_iter().map(|p| Circle::new(p, 3, style.filled())))
                        .map_err(e)?;
                }
            }
            if let Some(front) = &c.front {
                let style = RED.stroke_width(2);
                let mut steps = Vec::new();
                for (i, &p) in front.iter().enumerate() {
                    if i > 0 {
                        steps.push((p.0, front[i - 1].1));
                    }
                    steps.push(p);
                }
                chart
                    .draw_series(LineSeries::new(steps, style))
                    .map_err(e)?
                    .label("Pareto front")
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::LowerRight)
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .label_font(("sans-serif", 13))
                .draw()
                .map_err(e)?;
        }};
    }
    if c.log_x {
        body!(builder
            .build_cartesian_2d((x0..x1).log_scale(), y0..y1)
            .map_err(e)?);
    } else {
        body!(builder.build_cartesian_2d(x0..x1, y0..y1).map_err(e)?);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_front_keeps_what_nothing_beats() {
        // (memory, speed): (2, 1) is beaten by (1, 2); (3, 2) by (1, 2).
        let p = [
            (1.0, 2.0),
            (2.0, 1.0),
            (3.0, 2.0),
            (4.0, 5.0),
            (4.0, 3.0),
            (0.5, 0.1),
        ];
        assert_eq!(pareto(&p), vec![(0.5, 0.1), (1.0, 2.0), (4.0, 5.0)]);
    }

    fn table(rows: &[(&str, &str, f64, f64, f64)]) -> Table {
        let columns = [
            "policy",
            "expert_prefetch",
            "cache_bytes",
            "hit_rate",
            "belady_hit_rate",
        ];
        Table {
            columns: columns.iter().map(|c| c.to_string()).collect(),
            rows: rows
                .iter()
                .map(|&(p, f, c, h, b)| {
                    let mut m = BTreeMap::new();
                    m.insert("policy".into(), Value::Text(p.into()));
                    m.insert("expert_prefetch".into(), Value::Text(f.into()));
                    m.insert("cache_bytes".into(), Value::Num(c));
                    m.insert("hit_rate".into(), Value::Num(h));
                    m.insert("belady_hit_rate".into(), Value::Num(b));
                    m
                })
                .collect(),
        }
    }

    fn spec(filters: &[(&str, &str)]) -> Spec {
        Spec {
            x: "cache".into(),
            y: "hit_rate".into(),
            by: Some("policy".into()),
            filters: filters
                .iter()
                .map(|(a, b)| Filter::parse(&format!("{a}={b}")).unwrap())
                .collect(),
            pareto: false,
            log_x: false,
            title: None,
        }
    }

    #[test]
    fn lines_per_value_with_one_belady_bound_in_display_units() {
        let gib = (1u64 << 30) as f64;
        let t = table(&[
            ("lru", "none", 2.0 * gib, 0.5, 0.7),
            ("lru", "none", gib, 0.3, 0.6),
            ("arc", "none", gib, 0.35, 0.6),
            ("arc", "none", 2.0 * gib, 0.55, 0.7),
        ]);
        let c = chart(&t, &spec(&[])).unwrap();
        assert_eq!(c.x_label, "expert cache (GiB)");
        assert_eq!(c.lines.len(), 3);
        assert_eq!(c.lines[0].name, "arc");
        assert_eq!(c.lines[1].points, vec![(1.0, 30.0), (2.0, 50.0)]);
        assert!(c.lines[2].bound && c.lines[2].name == "Belady (bound)");
        assert_eq!(c.lines[2].points, vec![(1.0, 60.0), (2.0, 70.0)]);
    }

    #[test]
    fn rows_that_differ_elsewhere_are_refused_until_filtered() {
        let t = table(&[
            ("lru", "none", 1.0, 0.3, 0.6),
            ("lru", "oracle", 1.0, 0.4, 0.6),
        ]);
        let e = chart(&t, &spec(&[])).unwrap_err().to_string();
        assert!(e.contains("differ in expert_prefetch"), "{e}");
        assert!(e.contains("--where expert_prefetch="), "{e}");
        assert!(chart(&t, &spec(&[("prefetch", "none")])).is_ok());
        let e = chart(&t, &spec(&[("prefetch", "all")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("none, oracle"), "{e}");
        let mut s = spec(&[]);
        s.x = "policy".into();
        assert!(chart(&t, &s)
            .unwrap_err()
            .to_string()
            .contains("not numeric"));
        s.x = "nope".into();
        assert!(chart(&t, &s)
            .unwrap_err()
            .to_string()
            .contains("no column \"nope\""));
    }
}
