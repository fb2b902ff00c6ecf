//! The one semantic plan check (`plan::Plan::check_placement`) on solved plans and on plans
//! broken one way at a time: each break is refused with the field it concerns.

use hw::HwProfile;
use model::catalog;
use place::{self, Mode, Plan, SolveOptions, TensorPlace};
use plan::PlacementError;

fn profile(name: &str) -> HwProfile {
    HwProfile::load(testkit::profile(&format!("{name}.toml"))).unwrap()
}

fn solved(model: &str, hw: &str) -> (model::Inventory, Plan) {
    let inv = catalog::lookup(model).unwrap();
    let plan = place::solve(&inv, &profile(hw), &SolveOptions::default())
        .unwrap()
        .plan;
    (inv, plan)
}

/// Mixtral on the M4 16 GB, its experts streaming; the first `experts` entry is a layer whose
/// experts are split between memory (RAM, GPU) and NVMe.
fn streaming() -> (model::Inventory, Plan) {
    let (inv, mut plan) = solved("mixtral-8x7b:q5_k_m", "m4-16g");
    assert_eq!(plan.mode, Mode::ExpertStreaming);
    let split = plan
        .experts
        .iter()
        .position(|e| (!e.gpu.is_empty() || !e.ram.is_empty()) && !e.nvme.is_empty())
        .expect("a layer with experts in memory and on NVMe");
    plan.experts.swap(0, split);
    (inv, plan)
}

fn refused(inv: &model::Inventory, plan: &Plan) -> PlacementError {
    let err = plan
        .check_placement(inv)
        .expect_err("a broken plan must be refused");
    assert!(err.to_string().contains("field `"), "{err}");
    err
}

#[test]
fn solved_plans_pass_and_their_tier_bytes_are_the_solver_s() {
    for model in [
        "mixtral-8x7b:q5_k_m",
        "qwen3-30b-a3b",
        "llama-3.3-70b",
        "gpt-oss-20b",
    ] {
        for hw in ["m1max", "m4-16g", "h100-pcie-80g"] {
            let (inv, plan) = solved(model, hw);
            let used = plan
                .check_placement(&inv)
                .unwrap_or_else(|e| panic!("{model} on {hw}: {e}"));
            let c = &plan.capacities;
            assert_eq!(
                (used.gpu, used.ram, used.nvme),
                (c.gpu_used_bytes, c.ram_used_bytes, c.nvme_bytes),
                "{model} on {hw}"
            );
            assert_eq!(used.gpu + used.ram + used.nvme, inv.total_bytes());
        }
    }
}

#[test]
fn expert_ids_out_of_range_twice_or_missing_are_refused() {
    let (inv, mut plan) = streaming();
    let n = inv.arch.n_expert;
    let layer = plan.experts[0].layer;
    plan.experts[0].nvme.push(n);
    assert_eq!(
        refused(&inv, &plan),
        PlacementError::ExpertOutOfRange {
            layer,
            id: n,
            n_expert: n
        }
    );
    let (_, mut plan) = streaming();
    let id = [&plan.experts[0].gpu[..], &plan.experts[0].ram[..]].concat()[0];
    plan.experts[0].nvme.push(id);
    assert_eq!(
        refused(&inv, &plan),
        PlacementError::ExpertTwice { layer, id }
    );
    let (_, mut plan) = streaming();
    let id = plan.experts[0].nvme.pop().unwrap();
    assert_eq!(
        refused(&inv, &plan),
        PlacementError::ExpertMissing { layer, id }
    );
}

#[test]
fn expert_entries_must_match_the_model_s_moe_layers() {
    let (inv, mut plan) = streaming();
    let mut extra = plan.experts[0].clone();
    extra.layer = 99;
    plan.experts.push(extra);
    assert_eq!(
        refused(&inv, &plan),
        PlacementError::NotMoeLayer { layer: 99 }
    );
    let (_, mut plan) = streaming();
    let twice = plan.experts[1].clone();
    plan.experts.push(twice);
    assert_eq!(
        refused(&inv, &plan),
        PlacementError::DuplicateLayer {
            layer: plan.experts[1].layer
        }
    );
    let (_, mut plan) = streaming();
    let gone = plan.experts.remove(3).layer;
    assert_eq!(
        refused(&inv, &plan),
        PlacementError::MissingLayer { layer: gone }
    );
    let (_, mut plan) = streaming();
    plan.experts[0].expert_bytes += 1;
    assert!(matches!(
        refused(&inv, &plan),
        PlacementError::ExpertBytes { .. }
    ));
    let (_, mut plan) = streaming();
    plan.experts[0].tensors.pop();
    assert!(matches!(
        refused(&inv, &plan),
        PlacementError::ExpertTensors { .. }
    ));
}

#[test]
fn tensors_unknown_unplaced_or_split_wrongly_are_refused() {
    let (inv, mut plan) = streaming();
    plan.tensors
        .insert("blk.0.not_a_tensor".into(), TensorPlace::Ram);
    assert_eq!(
        refused(&inv, &plan),
        PlacementError::UnknownTensor {
            tensor: "blk.0.not_a_tensor".into()
        }
    );
    let (_, mut plan) = streaming();
    plan.tensors.remove("blk.5.attn_q.weight");
    assert_eq!(
        refused(&inv, &plan),
        PlacementError::Unplaced {
            tensor: "blk.5.attn_q.weight".into()
        }
    );
    let (_, mut plan) = streaming();
    plan.tensors.insert(
        "blk.5.attn_q.weight".into(),
        TensorPlace::Split { layer: 5 },
    );
    assert_eq!(
        refused(&inv, &plan),
        PlacementError::SplitDense {
            tensor: "blk.5.attn_q.weight".into()
        }
    );
    // A merged expert tensor whose experts span memory and NVMe, said to be wholly in RAM.
    let (_, mut plan) = streaming();
    let e = &plan.experts[0];
    let (layer, name) = (e.layer, e.tensors[0].clone());
    plan.tensors.insert(name.clone(), TensorPlace::Ram);
    assert!(matches!(
        refused(&inv, &plan),
        PlacementError::WholeTensorDisagrees { tensor, layer: l, .. } if tensor == name && l == layer
    ));
    let (_, mut plan) = streaming();
    plan.tensors
        .insert(name.clone(), TensorPlace::Split { layer: layer + 1 });
    assert!(matches!(
        refused(&inv, &plan),
        PlacementError::SplitLayer { planned, actual, .. } if planned == layer + 1 && actual == layer
    ));
}

#[test]
fn gpu_tensors_without_a_gpu_and_overfull_tiers_are_refused() {
    // Solved for the M4's unified memory: GPU and RAM share `ram_bytes`.
    let (inv, mut plan) = streaming();
    plan.capacities.gpu_bytes = None;
    assert!(matches!(refused(&inv, &plan), PlacementError::NoGpu { .. }));
    let (_, mut plan) = streaming();
    let used = plan.capacities.gpu_used_bytes + plan.capacities.ram_used_bytes;
    plan.capacities.ram_bytes = used - 1;
    assert!(matches!(
        refused(&inv, &plan),
        PlacementError::OverCapacity { used: u, capacity, .. } if u == used && capacity == used - 1
    ));
    // More experts in memory than the memory holds.
    let (_, mut plan) = streaming();
    for e in &mut plan.experts {
        e.ram.append(&mut e.nvme);
        e.ram.append(&mut e.gpu);
        e.ram.sort_unstable();
    }
    for e in &plan.experts.clone() {
        for t in &e.tensors {
            plan.tensors.insert(t.clone(), TensorPlace::Ram);
        }
    }
    plan.mode = Mode::FullResident;
    assert!(matches!(
        refused(&inv, &plan),
        PlacementError::OverCapacity { .. }
    ));
}

#[test]
fn a_mode_that_contradicts_the_placement_is_refused_with_the_right_one() {
    let (inv, mut plan) = streaming();
    plan.mode = Mode::FullResident;
    let err = refused(&inv, &plan);
    assert_eq!(
        err,
        PlacementError::Mode {
            stated: Mode::FullResident,
            actual: Mode::ExpertStreaming
        }
    );
    assert!(
        err.to_string().contains("set it to \"expert-streaming\""),
        "{err}"
    );
}
