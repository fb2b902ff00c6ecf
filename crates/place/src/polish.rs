//! Local improvement after the ILP: streamed weights that still fit in free memory are moved
//! there when the objective does not get worse.
//!
//! HiGHS stops within its relative gap, so a solution may leave a few bytes (a rope-frequency
//! table, one expert of hundreds) on NVMe although memory has room: a plan that streams with no
//! reason to, and a "mixed" mode for a model that fits. Moves are only taken when the cost model
//! predicts no slower, so the polished plan is never worse than what the ILP returned.

use super::capacity::Capacities;
use super::units::{Assignment, Tier, Units};

/// Moves NVMe-tier units and experts of `a` to the GPU, else RAM, while they fit in `caps` and
/// `objective` does not increase.
pub fn into_free_memory(
    units: &Units,
    caps: &Capacities,
    a: &mut Assignment,
    objective: &dyn Fn(&Assignment) -> f64,
) {
    let mut best = objective(a);
    let mut used = (a.bytes_on(units, Tier::Gpu), a.bytes_on(units, Tier::Ram));
    let mut order: Vec<usize> = (0..units.units.len())
        .filter(|&i| a.units[i] == Tier::Nvme)
        .collect();
    // Smallest first: the stragglers a gap leaves behind are small, and they cost least.
    order.sort_by_key(|&i| (units.units[i].bytes, i));
    for i in order {
        let bytes = units.units[i].bytes;
        for tier in [Tier::Gpu, Tier::Ram] {
            if caps.left_for(tier, used.0, used.1) < bytes {
                continue;
            }
            a.units[i] = tier;
            let t = objective(a);
            if t <= best {
                best = t;
                add(&mut used, tier, bytes);
                break;
            }
            a.units[i] = Tier::Nvme;
        }
    }
    for j in 0..units.experts.len() {
        let e = &units.experts[j];
        'more: while a.experts[j].gpu + a.experts[j].ram < e.n_expert() {
            for tier in [Tier::Gpu, Tier::Ram] {
                if caps.left_for(tier, used.0, used.1) < e.expert_bytes {
                    continue;
                }
                let before = a.experts[j];
                bump(&mut a.experts[j], tier);
                let t = objective(a);
                if t <= best {
                    best = t;
                    add(&mut used, tier, e.expert_bytes);
                    continue 'more;
                }
                a.experts[j] = before;
            }
            break;
        }
    }
}

fn add(used: &mut (u64, u64), tier: Tier, bytes: u64) {
    match tier {
        Tier::Gpu => used.0 += bytes,
        Tier::Ram => used.1 += bytes,
        Tier::Nvme => {}
    }
}

/// One more expert of the layer in memory. The split is a prefix of the popularity order
/// (GPU first, then RAM), so a new GPU expert takes the most popular RAM one's place and that
/// one moves down.
fn bump(s: &mut super::units::ExpertSplit, tier: Tier) {
    match tier {
        Tier::Gpu => s.gpu += 1,
        Tier::Ram => s.ram += 1,
        Tier::Nvme => {}
    }
}
