//! Synthetic weight generation throughput per type (to a sink, so the disk is not measured):
//! `hypura synth` should be limited by the disk, which needs well over 1 GB/s here.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use gguf::GgmlType;
use gguf::TensorSpec;
use synth::weights::Filler;

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("synth_fill");
    for ty in [GgmlType::F32, GgmlType::F16, GgmlType::Q8_0, GgmlType::Q4_0] {
        // One 64 MiB-ish expert tensor.
        let spec = TensorSpec::new("blk.0.ffn_up_exps.weight", vec![4096, 1024, 16], ty);
        g.throughput(Throughput::Bytes(spec.bytes().unwrap()));
        let mut filler = Filler::new(1);
        g.bench_function(ty.name(), |b| {
            b.iter(|| filler.fill(&spec, &mut std::io::sink()).unwrap())
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = bench
}
criterion_main!(benches);
