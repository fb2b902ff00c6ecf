//! A memory balloon for benchmarks: allocates SIZE of anonymous memory, writes every page (so it
//! is resident; with no swap it cannot be reclaimed), prints `ready <bytes>` and holds it until
//! stdin closes or it is killed. What is left of RAM is what the page cache can use.
//!   cargo run --release -p runtime --example balloon -- 4GiB
//! scripts/balloon-bench.sh drives it; see that script for the safety floor.

use std::io::{Read, Write};

fn main() {
    let arg = std::env::args().nth(1).unwrap_or_default();
    let bytes = match synth::parse_size(&arg) {
        Ok(b) if b > 0 => b as usize,
        Ok(_) => fail("SIZE must be positive"),
        Err(e) => fail(&e.to_string()),
    };
    let mut held: Vec<u8> = Vec::new();
    if held.try_reserve_exact(bytes).is_err() {
        fail(&format!("cannot allocate {bytes} bytes"));
    }
    // One non-zero byte a page makes every page private and resident.
    held.resize(bytes, 0);
    for i in (0..bytes).step_by(4096) {
        held[i] = 1;
    }
    let rss = runtime::mem::rss_bytes().unwrap_or(0);
    println!("ready {bytes} rss {rss}");
    std::io::stdout().flush().unwrap();
    // Hold until the driver closes our stdin (or kills us).
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    std::hint::black_box(&held);
}

fn fail(msg: &str) -> ! {
    eprintln!("balloon: {msg}\nusage: balloon SIZE (e.g. 4GiB)");
    std::process::exit(2);
}
