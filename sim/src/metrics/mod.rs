//! The metrics schema shared by the simulator and the runtime: per-(token, layer) records.

mod record;

pub use record::TokenLayerRecord;
