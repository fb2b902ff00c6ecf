//! Plain-text rendering of [`Stats`] for the terminal.

use super::{Pair, Stats, REUSE_BUCKETS};
use std::fmt::Write;

fn pct(x: f64) -> String {
    format!("{:.1}%", 100.0 * x)
}

fn pairs_cell(pairs: &[Pair], top: usize) -> String {
    pairs
        .iter()
        .take(top)
        .map(|p| format!("{}+{}:{} (lift {:.1})", p.first, p.second, p.count, p.lift))
        .collect::<Vec<_>>()
        .join("  ")
}

/// Renders the statistics as aligned text tables.
pub fn render(s: &Stats) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "{}: {} sequences, {} tokens, {} selections ({} expert ids), {} experts, top-{}",
        s.architecture, s.sequences, s.tokens, s.selections, s.expert_ids, s.n_expert, s.top_k
    );
    let _ = writeln!(
        o,
        "\nPer layer: popularity, reuse distance (share of selections), previous-token reuse"
    );
    let _ = write!(
        o,
        "{:>5} {:>8} {:>6} {:>7} {:>7}",
        "layer", "entropy", "norm", "top10%", "prev"
    );
    for b in REUSE_BUCKETS {
        let _ = write!(o, " {:>6}", format!("d={b}"));
    }
    let _ = writeln!(o);
    for l in &s.layers {
        let total: u64 = l.reuse.counts.iter().sum::<u64>().max(1);
        let _ = write!(
            o,
            "{:>5} {:>8.3} {:>6.3} {:>7} {:>7}",
            l.layer,
            l.popularity.entropy_bits,
            l.popularity.entropy_norm,
            pct(l.popularity.top10_share),
            pct(l.prev_token_reuse)
        );
        for c in l.reuse.counts {
            let _ = write!(o, " {:>6}", pct(c as f64 / total as f64));
        }
        let _ = writeln!(o);
    }
    let _ = writeln!(o, "\nTop co-activated pairs within a layer (a+b:count)");
    for l in &s.layers {
        let _ = writeln!(o, "{:>5}  {}", l.layer, pairs_cell(&l.top_pairs, 3));
    }
    let _ = writeln!(
        o,
        "\nTop pairs across adjacent layers (expert at first layer + expert at next)"
    );
    for c in &s.cross_layer {
        let _ = writeln!(
            o,
            "{:>3}->{:<3} {}",
            c.from_layer,
            c.to_layer,
            pairs_cell(&c.top_pairs, 3)
        );
    }
    let _ = writeln!(
        o,
        "\nWorking set: distinct (layer, expert) pairs in a sliding window of tokens"
    );
    let _ = writeln!(
        o,
        "{:>7} {:>10} {:>7} {:>9}",
        "window", "mean", "max", "of all"
    );
    for w in &s.working_set {
        let _ = writeln!(
            o,
            "{:>7} {:>10.1} {:>7} {:>9}",
            w.window,
            w.mean,
            w.max,
            pct(w.mean_fraction)
        );
    }
    let _ = writeln!(
        o,
        "\nLRU cache of (layer, expert) slots shared by all layers"
    );
    let _ = writeln!(o, "{:>9} {:>9} {:>9}", "capacity", "of all", "hit rate");
    for p in &s.lru {
        let _ = writeln!(
            o,
            "{:>9} {:>9} {:>9}",
            p.capacity,
            pct(p.capacity_fraction),
            pct(p.hit_rate)
        );
    }
    o
}
