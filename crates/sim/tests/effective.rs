//! `decode::effective_options`: options it sets to one value change nothing in the decode.

use hw::HwProfile;
use policy::cache::{Partition, Policy};
use sim::decode::{self, DecodePolicy, DecodeReport, ExpertPrefetch, Machine, Options};
use sim::Planned;

/// The report without the options it echoes.
fn outcome(mut r: DecodeReport) -> DecodeReport {
    r.prefetch_depth = 0;
    r.expert_prefetch = String::new();
    r
}

fn planned(ram_gib: u64) -> (Planned, traces::Trace, HwProfile) {
    let inv = model::load_model("mixtral-8x7b:q5_k_m").unwrap();
    let mut hw = HwProfile::load(testkit::profile("m1max.toml")).unwrap();
    hw.ram.bytes = (ram_gib << 30) + hw.ram.os_reserve_bytes;
    let units = place::Units::build(&inv, None).unwrap();
    let trace = sim::default_trace::synthesize(&units, &inv.arch.arch, 120).unwrap();
    let p = Planned::solve(&inv, &hw, decode::expert_rates(&trace)).unwrap();
    (p, trace, hw)
}

#[test]
fn options_the_plan_cannot_use_change_nothing() {
    // 16 GiB streams experts (no whole tensor); 64 GiB holds the whole model.
    for ram in [16, 64] {
        let (p, trace, hw) = planned(ram);
        let placement = p.placement();
        let machine = Machine::from_profile(&hw);
        let policy = DecodePolicy::Cache {
            policy: Policy::Lru,
            capacity_bytes: 4 << 30,
            partition: Partition::Global,
        };
        let mut reports = Vec::new();
        for depth in [0, 1, 3] {
            for qd in [1, 4] {
                for prefetch in ExpertPrefetch::ALL {
                    let opts = Options {
                        prefetch_depth: depth,
                        expert_prefetch: prefetch,
                        queue_depth: Some(qd),
                        host_weights_on_gpu: false,
                        keep_records: false,
                    };
                    let effective = decode::effective_options(&placement, &opts);
                    let run = |o: &Options| {
                        decode::simulate(&placement, &machine, &trace, &policy, o)
                            .unwrap()
                            .report
                    };
                    let (a, b) = (run(&opts), run(&effective));
                    assert_eq!(outcome(a.clone()), outcome(b), "ram {ram} GiB, {opts:?}");
                    reports.push((effective, a));
                }
            }
        }
        let distinct: std::collections::HashSet<String> =
            reports.iter().map(|(o, _)| format!("{o:?}")).collect();
        match ram {
            // Experts stream: only the depth is fixed (3 x 2 x 3 / 3).
            16 => assert_eq!(distinct.len(), 6, "{distinct:?}"),
            // Nothing is read: one decode.
            _ => assert_eq!(distinct.len(), 1, "{distinct:?}"),
        }
    }
}
