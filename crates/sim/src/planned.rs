//! What the simulator prices, from a plan file or solved on the fly: the model's placement
//! units with the trace's expert use, each unit's tier, and the machine's cost model.

use crate::decode::Placement;
use crate::SimError;
use hw::HwProfile;
use model::GgmlType;
use model::Inventory;
use place::{CostModel, ExpertRates, PlaceError, SolveOptions, Tier, Units};
use plan::Plan;

/// A plan ready to simulate.
#[derive(Debug, Clone)]
pub struct Planned {
    pub plan: Plan,
    pub units: Units,
    /// Tier of each of `units.units`.
    pub unit_tiers: Vec<Tier>,
    pub cost: CostModel,
}

impl Planned {
    /// A plan file's placement, after the one plan check against the model ([`Plan::check`])
    /// and the machine ([`Plan::check_profile`]). Expert use comes from `rates` (the trace
    /// being simulated), not from what the plan was solved with.
    pub fn from_plan(
        plan: Plan,
        inv: &Inventory,
        hw: &HwProfile,
        rates: &ExpertRates,
    ) -> Result<Planned, SimError> {
        plan.check(inv)?;
        plan.check_profile(hw).map_err(plan::CheckError::from)?;
        let kv_type =
            GgmlType::from_name(&plan.inputs.kv_type).ok_or_else(|| SimError::KvType {
                kv_type: plan.inputs.kv_type.clone(),
            })?;
        let mut units = Units::build(inv, Some(rates))?;
        units.add_context_reads(&inv.arch, plan.inputs.ctx, kv_type);
        let unit_tiers = units
            .units
            .iter()
            .map(|u| unit_tier(&plan, &u.name, &u.tensors))
            .collect::<Result<Vec<_>, _>>()?;
        let mut cost = CostModel::new(hw, &units, plan.mode != plan::Mode::FullResident);
        // Requests in flight are the plan's (the runtime reads with the plan's depths; `hypura
        // tune` writes its choice there), not what the profile's curve would pick.
        cost.io.queue_depth = plan.io.queue_depth;
        cost.io.expert_queue_depth = plan.io.expert_queue_depth;
        Ok(Planned {
            plan,
            units,
            unit_tiers,
            cost,
        })
    }

    /// The placement `hypura solve` would choose for `rates`.
    pub fn solve(
        inv: &Inventory,
        hw: &HwProfile,
        rates: ExpertRates,
    ) -> Result<Planned, PlaceError> {
        let opts = SolveOptions {
            rates: Some(rates),
            ..SolveOptions::default()
        };
        let solved = place::solve(inv, hw, &opts)?;
        Ok(Planned {
            plan: solved.plan,
            units: solved.units,
            unit_tiers: solved.assignment.units,
            cost: solved.cost,
        })
    }

    /// What the decode and prefill engines take.
    pub fn placement(&self) -> Placement<'_> {
        Placement {
            units: &self.units,
            unit_tiers: &self.unit_tiers,
            experts: &self.plan.experts,
            cost: &self.cost,
            dense_pool_bytes: Some(self.plan.pool_bytes),
        }
    }
}

/// The one tier of a unit's tensors: the simulator prices whole units, so a plan that puts a
/// unit's tensors on different tiers is refused rather than priced as something else.
/// (Context reads added to a unit have no tensors of their own.)
fn unit_tier(plan: &Plan, unit: &str, tensors: &[String]) -> Result<Tier, SimError> {
    let mut first: Option<(&str, Tier)> = None;
    for name in tensors {
        // The plan check has seen every tensor placed, and only expert tensors split.
        let Some(tier) = plan.tensors.get(name).and_then(|p| p.tier()) else {
            continue;
        };
        match first {
            None => first = Some((name, tier)),
            Some((f, t)) if t != tier => {
                return Err(SimError::UnitSplit {
                    unit: unit.to_string(),
                    first: f.to_string(),
                    first_tier: t,
                    tensor: name.clone(),
                    tier,
                })
            }
            Some(_) => {}
        }
    }
    first.map(|(_, t)| t).ok_or_else(|| SimError::UnitUnplaced {
        unit: unit.to_string(),
    })
}
