use solver::hw::HwProfile;
use solver::place::{self, SolveOptions};
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (hw_name, model) = (&args[1], &args[2]);
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../profiles")
        .join(format!("{hw_name}.toml"));
    let hw = HwProfile::load(p).unwrap();
    let inv = solver::catalog::lookup(model).unwrap();
    let mut opts = SolveOptions::default();
    if let Some(pl) = args.get(3) {
        opts.prompt_len = pl.parse().unwrap();
    }
    for _ in 0..3 {
        let t0 = Instant::now();
        let s = place::solve(&inv, &hw, &opts).unwrap();
        let sv = &s.plan.solver;
        println!(
            "total {:?} obj {:.6} lp {:?} mip {:?} gap {:?} {} depth {} pool {} mode {:?}",
            t0.elapsed(),
            sv.objective_s * 1e3,
            sv.lp_bound_s,
            sv.mip_bound_s,
            sv.gap,
            sv.method,
            s.plan.prefetch_depth,
            s.plan.pool_bytes,
            s.plan.mode
        );
    }
}
