//! The greedy baseline (Hypura-style): rank every unit and expert by access frequency / size and
//! fill the fastest tier first, then the next.

use super::capacity::Capacities;
use super::units::{Assignment, ExpertSplit, Tier, Units};

/// One thing to place: a unit (by index) or a layer's next most popular expert.
#[derive(Debug, Clone, Copy)]
enum Item {
    Unit(usize),
    Expert { layer: usize },
}

/// Greedy placement; `None` when a unit that must stay in memory (norms, routers, and the
/// globals unless `stream_globals`) finds no room.
pub fn place(units: &Units, caps: &Capacities, stream_globals: bool) -> Option<Assignment> {
    let mut items: Vec<(bool, f64, usize, Item)> = Vec::new();
    for (i, u) in units.units.iter().enumerate() {
        // Dense units are used once per token.
        items.push((
            u.streamable && (stream_globals || u.layer.is_some()),
            1.0 / u.bytes.max(1) as f64,
            items.len(),
            Item::Unit(i),
        ));
    }
    for (j, e) in units.experts.iter().enumerate() {
        for &id in &e.order {
            let score = e.rates[id as usize] / e.expert_bytes.max(1) as f64;
            let item = Item::Expert { layer: j };
            items.push((true, score, items.len(), item));
        }
    }
    // Units that must stay resident first, then by score; the index keeps ties deterministic.
    items.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.total_cmp(&a.1)).then(a.2.cmp(&b.2)));
    let tiers: Vec<Tier> = if caps.gpu.is_some() {
        vec![Tier::Gpu, Tier::Ram, Tier::Nvme]
    } else {
        vec![Tier::Ram, Tier::Nvme]
    };
    let mut a = Assignment {
        units: vec![Tier::Nvme; units.units.len()],
        experts: vec![ExpertSplit::default(); units.experts.len()],
    };
    let (mut gpu_used, mut ram_used) = (0u64, 0u64);
    for (streamable, _, _, item) in items {
        let bytes = match item {
            Item::Unit(i) => units.units[i].bytes,
            Item::Expert { layer, .. } => units.experts[layer].expert_bytes,
        };
        let tier = tiers
            .iter()
            .copied()
            .filter(|&t| streamable || t != Tier::Nvme)
            .find(|&t| caps.left_for(t, gpu_used, ram_used) >= bytes)?;
        match tier {
            Tier::Gpu => gpu_used += bytes,
            Tier::Ram => ram_used += bytes,
            Tier::Nvme => {}
        }
        match item {
            Item::Unit(i) => a.units[i] = tier,
            Item::Expert { layer, .. } => {
                // A layer's experts have equal size and arrive in popularity order, and free
                // space only shrinks, so each layer's placement is a prefix split.
                let s = &mut a.experts[layer];
                match tier {
                    Tier::Gpu => s.gpu += 1,
                    Tier::Ram => s.ram += 1,
                    Tier::Nvme => {}
                }
            }
        }
    }
    // A merged expert tensor lives on one device: a layer with experts off the GPU keeps its
    // GPU experts in RAM (as many as fit there; the rest, least popular first, on NVMe).
    for (e, s) in units.experts.iter().zip(&mut a.experts) {
        if s.gpu == 0 || s.gpu == e.n_expert() {
            continue;
        }
        gpu_used -= u64::from(s.gpu) * e.expert_bytes;
        let room = caps.left_for(Tier::Ram, gpu_used, ram_used) / e.expert_bytes.max(1);
        let moved = u64::from(s.gpu).min(room);
        ram_used += moved * e.expert_bytes;
        // Experts moved to RAM displace nothing already there: they rank above the RAM ones
        // in popularity, so the split stays a prefix.
        s.ram += moved as u32;
        s.gpu = 0;
    }
    Some(a)
}
