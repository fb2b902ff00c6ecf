//! Placement solve times (issue 4 targets: Mixtral <= 100 ms, DeepSeek-V3 (61 layers x 256
//! experts) <= 2 s to <= 1% gap). The ILP line is LP bound + ILP, as `hypura solve` runs them;
//! `ilp-warm` starts HiGHS from the greedy plan.

use criterion::{criterion_group, criterion_main, Criterion};
use hw::HwProfile;
use place::{self, IlpOptions, Method, SolveOptions};

fn profile(name: &str) -> HwProfile {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../profiles")
        .join(format!("{name}.toml"));
    HwProfile::load(p).unwrap()
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("solve");
    let cases = [
        ("m1max", "mixtral-8x7b:q5_k_m"),
        ("m1max", "deepseek-v3"),
        ("m4-16g", "llama-3.3-70b"),
    ];
    for (hw_name, model) in cases {
        let hw = profile(hw_name);
        let inv = model::catalog::lookup(model).unwrap();
        let warm = IlpOptions {
            warm_start: true,
            ..IlpOptions::default()
        };
        for (label, method, ilp) in [
            ("ilp", Method::Ilp, IlpOptions::default()),
            ("ilp-warm", Method::Ilp, warm),
            ("greedy", Method::Greedy, IlpOptions::default()),
        ] {
            let opts = SolveOptions {
                method,
                ilp,
                ..SolveOptions::default()
            };
            g.bench_function(format!("{label}/{model}@{hw_name}"), |b| {
                b.iter(|| place::solve(&inv, &hw, &opts).unwrap())
            });
        }
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = bench
}
criterion_main!(benches);
