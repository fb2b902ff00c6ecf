//! Hardware profiles: shipped files load and are documented, schema errors name file and key,
//! validation catches bad values, the read curve interpolates, and a quick measurement of this
//! machine produces a profile that loads back and leaves no scratch file behind.

use hw::measure::{self, MeasureError, Schedule, Silent};
use hw::{HwError, HwProfile};
use std::path::{Path, PathBuf};

fn profiles_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../profiles")
}

fn shipped() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(profiles_dir())
        .expect("profiles/ exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

/// A small valid discrete-GPU profile to mutate in tests.
const BASE: &str = r#"
version = 1
name = "test box"

[gpu]
name = "Test GPU"
memory_bytes = 1000
working_set_bytes = 900
bandwidth_gbps = 100.0
fp16_tflops = 20.0
fp32_tflops = 10.0
unified_memory = false

[host_link]
h2d_gbps = 25.0
d2h_gbps = 24.0

[ram]
bytes = 8000
bandwidth_gbps = 50.0
os_reserve_bytes = 1000

[storage]
seq_read_gbps = 3.0
read_4k_qd1_latency_s = 0.0001

[[storage.read_curve]]
block_bytes = 4096
queue_depth = 1
gbps = 0.04

[[storage.read_curve]]
block_bytes = 4096
queue_depth = 16
gbps = 0.4

[[storage.read_curve]]
block_bytes = 1048576
queue_depth = 1
gbps = 1.0

[[storage.read_curve]]
block_bytes = 1048576
queue_depth = 16
gbps = 3.0

[cpu]
cores = 8
fp32_gflops = 500.0
"#;

fn parse(text: &str) -> Result<HwProfile, HwError> {
    HwProfile::from_toml_str(text, "test.toml")
}

fn err(text: &str) -> HwError {
    parse(text).expect_err("should be rejected")
}

#[test]
fn every_shipped_profile_loads() {
    let files = shipped();
    let names: Vec<String> = files
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for expected in [
        "m1max.toml",
        "m2max.toml",
        "m3max.toml",
        "m4max.toml",
        "m4-16g.toml",
        "h100-pcie-80g.toml",
        "h200-141g.toml",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "profiles/{expected} missing (have {names:?})"
        );
    }
    for file in &files {
        let p = HwProfile::load(file).unwrap_or_else(|e| panic!("{e}"));
        let again = HwProfile::from_toml_str(&p.to_toml(), "round trip").unwrap();
        assert_eq!(p, again, "{} does not survive to_toml/load", file.display());
    }
}

#[test]
fn every_shipped_value_says_where_it_comes_from() {
    for file in shipped() {
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let t = line.trim();
            if t.is_empty() || t.starts_with('#') || t.starts_with('[') {
                continue;
            }
            let comment = t.split_once(" # ").map(|(_, c)| c.trim()).unwrap_or("");
            assert!(
                comment.len() >= 8,
                "{}:{}: value without a source comment: {t}",
                file.display(),
                n + 1
            );
        }
    }
}

#[test]
fn m1max_matches_published_specs() {
    let p = HwProfile::load(profiles_dir().join("m1max.toml")).unwrap();
    let gpu = p.gpu.as_ref().unwrap();
    assert!(gpu.unified_memory);
    assert!(p.host_link.is_none());
    assert_eq!(gpu.memory_bytes, 32 << 30);
    assert_eq!(gpu.working_set_bytes, (32u64 << 30) * 2 / 3);
    assert_eq!(gpu.bandwidth_gbps, 400.0);
    assert_eq!(gpu.fp32_tflops, 10.4);
    assert_eq!(p.storage.seq_read_gbps, 5.1);
}

#[test]
fn gpu_servers_have_a_host_link() {
    for name in ["h100-pcie-80g.toml", "h200-141g.toml"] {
        let p = HwProfile::load(profiles_dir().join(name)).unwrap();
        let gpu = p.gpu.as_ref().unwrap();
        assert!(!gpu.unified_memory, "{name}");
        let link = p.host_link.as_ref().unwrap();
        assert!(
            link.h2d_gbps > 20.0 && link.h2d_gbps < 64.0,
            "{name}: PCIe gen5 x16 is 64 GB/s raw"
        );
    }
}

#[test]
fn base_profile_is_valid_and_round_trips() {
    let p = parse(BASE).unwrap();
    assert_eq!(p.storage.read_curve.len(), 4);
    assert_eq!(parse(&p.to_toml()).unwrap(), p);
}

#[test]
fn unknown_key_names_its_full_path_and_line() {
    let text = BASE.replace(
        "queue_depth = 16\ngbps = 3.0",
        "queue_depth = 16\nqueue_dept = 3\ngbps = 3.0",
    );
    let e = err(&text);
    let msg = e.to_string();
    eprintln!("{msg}");
    assert!(msg.starts_with("test.toml:"), "{msg}");
    assert!(msg.contains("storage.read_curve[3].queue_dept"), "{msg}");
    let line = text
        .lines()
        .position(|l| l.starts_with("queue_dept ="))
        .unwrap()
        + 1;
    assert!(
        msg.contains(&format!(":{line}:")),
        "expected line {line}: {msg}"
    );
}

#[test]
fn copy_rate_round_trips_and_must_be_positive() {
    let line = BASE
        .lines()
        .find(|l| l.starts_with("read_4k_qd1_latency_s = "))
        .unwrap();
    let with = |v: &str| BASE.replace(line, &format!("{line}\ncopy_gbps = {v}"));
    let p = parse(&with("2.5")).unwrap();
    assert_eq!(p.storage.copy_gbps, Some(2.5));
    assert_eq!(parse(&p.to_toml()).unwrap(), p);
    // Steady state at depth 4 of 1 MiB reads: the curve's rate with the copies added.
    let read = p.storage.read_gbps(1 << 20, 4);
    let want = 1.0 / (1.0 / read + 1.0 / (4.0 * 2.5));
    assert!((p.storage.streamed_gbps(1 << 20, 4) - want).abs() < 1e-12);
    for bad in ["0.0", "-1.0", "nan"] {
        let msg = err(&with(bad)).to_string();
        assert!(msg.contains("storage.copy_gbps"), "{bad}: {msg}");
    }
}

#[test]
fn unknown_top_level_table_is_rejected() {
    let msg = err(&format!("{BASE}\n[tpu]\ncores = 4\n")).to_string();
    assert!(msg.contains("tpu"), "{msg}");
}

#[test]
fn missing_key_names_its_full_path() {
    let text = BASE.replace(
        "block_bytes = 1048576\nqueue_depth = 16\n",
        "block_bytes = 1048576\n",
    );
    let e = err(&text);
    eprintln!("{e}");
    assert_eq!(e.key(), Some("storage.read_curve[3].queue_depth"), "{e}");
    assert!(e.to_string().contains("missing field"), "{e}");
    let e = err(&BASE.replace("seq_read_gbps = 3.0\n", ""));
    assert_eq!(e.key(), Some("storage.seq_read_gbps"), "{e}");
}

#[test]
fn wrong_type_names_the_key() {
    let e = err(&BASE.replace("cores = 8", "cores = \"eight\""));
    assert_eq!(e.key(), Some("cpu.cores"), "{e}");
}

#[test]
fn syntax_error_has_line_and_column() {
    let msg = err("version = 1\nname = \"x\n").to_string();
    assert!(msg.starts_with("test.toml:2:"), "{msg}");
}

/// Found by the `hw_profile` fuzz target: toml reports a control character in a comment with
/// an empty message, which left the error as just `test.toml:2:4: `.
#[test]
fn fuzz_regression_control_character_in_a_comment_is_named() {
    let msg = err(&format!("{BASE}# a\u{0}b\n")).to_string();
    let line = BASE.lines().count() + 1;
    assert!(msg.starts_with(&format!("test.toml:{line}:4: ")), "{msg}");
    assert!(
        msg.contains("'\\0'") && msg.contains("control character"),
        "{msg}"
    );
}

#[test]
fn version_is_checked_first() {
    let e = err(&BASE.replace("version = 1", "version = 2"));
    assert_eq!(e.key(), Some("version"));
    assert!(
        e.to_string().contains("unsupported profile version 2"),
        "{e}"
    );
    let e = err(&BASE.replace("version = 1\n", ""));
    assert_eq!(e.key(), Some("version"));
}

#[test]
fn validation_names_the_bad_value() {
    let cases = [
        (
            "working_set_bytes = 900",
            "working_set_bytes = 1001",
            "gpu.working_set_bytes",
        ),
        (
            "bandwidth_gbps = 100.0",
            "bandwidth_gbps = -1.0",
            "gpu.bandwidth_gbps",
        ),
        ("h2d_gbps = 25.0", "h2d_gbps = 0.0", "host_link.h2d_gbps"),
        (
            "fp32_gflops = 500.0",
            "fp32_gflops = nan",
            "cpu.fp32_gflops",
        ),
        (
            "os_reserve_bytes = 1000",
            "os_reserve_bytes = 8000",
            "ram.os_reserve_bytes",
        ),
        ("cores = 8", "cores = 0", "cpu.cores"),
        (
            "read_4k_qd1_latency_s = 0.0001",
            "read_4k_qd1_latency_s = 100.0",
            "storage.read_4k_qd1_latency_s",
        ),
        (
            "block_bytes = 4096\nqueue_depth = 16",
            "block_bytes = 4096\nqueue_depth = 0",
            "storage.read_curve[1].queue_depth",
        ),
        ("name = \"Test GPU\"", "name = \"\"", "gpu.name"),
    ];
    for (from, to, key) in cases {
        let text = BASE.replacen(from, to, 1);
        assert_ne!(text, BASE, "{from}");
        let e = err(&text);
        assert_eq!(e.key(), Some(key), "{to}: {e}");
        assert!(e.to_string().starts_with("test.toml: `"), "{e}");
    }
}

#[test]
fn compute_headroom_is_optional_and_validated() {
    assert_eq!(
        parse(BASE).unwrap().gpu.unwrap().compute_headroom_bytes,
        None
    );
    let with = BASE.replacen(
        "working_set_bytes = 900",
        "working_set_bytes = 900\ncompute_headroom_bytes = 100",
        1,
    );
    assert_ne!(with, BASE);
    let p = parse(&with).unwrap();
    assert_eq!(p.gpu.as_ref().unwrap().compute_headroom_bytes, Some(100));
    // Written back only when set, and it round-trips.
    assert!(p.to_toml().contains("compute_headroom_bytes = 100"));
    assert_eq!(parse(&p.to_toml()).unwrap(), p);
    assert!(!parse(BASE).unwrap().to_toml().contains("compute_headroom"));
    for bad in ["compute_headroom_bytes = 0", "compute_headroom_bytes = 900"] {
        let text = with.replace("compute_headroom_bytes = 100", bad);
        let e = err(&text);
        assert_eq!(e.key(), Some("gpu.compute_headroom_bytes"), "{bad}: {e}");
    }
    let e = err(&with.replace(
        "compute_headroom_bytes = 100",
        "compute_headroom_bytes = -1",
    ));
    assert!(e.to_string().contains("compute_headroom_bytes"), "{e}");
}

#[test]
fn host_layer_overhead_is_optional_seconds() {
    assert_eq!(
        parse(BASE).unwrap().gpu.unwrap().host_layer_overhead_s,
        None
    );
    let with = BASE.replacen(
        "working_set_bytes = 900",
        "working_set_bytes = 900\nhost_layer_overhead_s = 2.5e-5",
        1,
    );
    assert_ne!(with, BASE);
    let p = parse(&with).unwrap();
    assert_eq!(p.gpu.as_ref().unwrap().host_layer_overhead_s, Some(2.5e-5));
    assert_eq!(parse(&p.to_toml()).unwrap(), p);
    for bad in ["-1e-6", "1.5", "nan"] {
        let e = err(&with.replace("2.5e-5", bad));
        assert_eq!(e.key(), Some("gpu.host_layer_overhead_s"), "{bad}: {e}");
        assert!(e.to_string().contains("seconds"), "{bad}: {e}");
    }
}

#[test]
fn batch_tensor_overhead_is_optional_seconds_in_both_sections() {
    let p = parse(BASE).unwrap();
    assert_eq!(p.gpu.unwrap().batch_tensor_overhead_s, None);
    assert_eq!(p.cpu.batch_tensor_overhead_s, None);
    for (anchor, key) in [
        ("working_set_bytes = 900", "gpu.batch_tensor_overhead_s"),
        ("[cpu]", "cpu.batch_tensor_overhead_s"),
    ] {
        let with = BASE.replacen(
            anchor,
            &format!("{anchor}\nbatch_tensor_overhead_s = 3.5e-5"),
            1,
        );
        assert_ne!(with, BASE);
        let p = parse(&with).unwrap();
        let v = match key {
            "gpu.batch_tensor_overhead_s" => p.gpu.as_ref().unwrap().batch_tensor_overhead_s,
            _ => p.cpu.batch_tensor_overhead_s,
        };
        assert_eq!(v, Some(3.5e-5), "{key}");
        assert_eq!(parse(&p.to_toml()).unwrap(), p);
        for bad in ["-1e-6", "1.5", "nan"] {
            let e = err(&with.replace("3.5e-5", bad));
            assert_eq!(e.key(), Some(key), "{bad}: {e}");
            assert!(e.to_string().contains("seconds"), "{bad}: {e}");
        }
    }
}

#[test]
fn host_link_must_match_the_gpu_kind() {
    let e = err(&BASE.replace("unified_memory = false", "unified_memory = true"));
    assert_eq!(e.key(), Some("host_link"), "{e}");
    let no_link = BASE.replace("[host_link]\nh2d_gbps = 25.0\nd2h_gbps = 24.0\n", "");
    assert_eq!(err(&no_link).key(), Some("host_link"));
    let unified = no_link.replace("unified_memory = false", "unified_memory = true");
    parse(&unified).unwrap();
    let gpu_start = BASE.find("[gpu]").unwrap();
    let gpu_end = BASE.find("[host_link]").unwrap();
    let cpu_only = format!("{}{}", &BASE[..gpu_start], &BASE[gpu_end..]);
    assert_eq!(err(&cpu_only).key(), Some("host_link"));
    let cpu_only = cpu_only.replace("[host_link]\nh2d_gbps = 25.0\nd2h_gbps = 24.0\n", "");
    assert!(parse(&cpu_only).unwrap().gpu.is_none());
}

#[test]
fn unified_gpu_memory_cannot_exceed_ram() {
    let text = BASE
        .replace("[host_link]\nh2d_gbps = 25.0\nd2h_gbps = 24.0\n", "")
        .replace("unified_memory = false", "unified_memory = true");
    let text = text.replace("memory_bytes = 1000", "memory_bytes = 9000");
    assert_eq!(err(&text).key(), Some("gpu.memory_bytes"));
}

#[test]
fn read_curve_must_be_a_full_grid_without_duplicates() {
    let partial = BASE.replace(
        "[[storage.read_curve]]\nblock_bytes = 1048576\nqueue_depth = 16\ngbps = 3.0\n",
        "",
    );
    let e = err(&partial);
    assert_eq!(e.key(), Some("storage.read_curve"));
    assert!(
        e.to_string()
            .contains("block_bytes = 1048576, queue_depth = 16"),
        "{e}"
    );
    let dup = BASE.replace(
        "block_bytes = 1048576\nqueue_depth = 16",
        "block_bytes = 1048576\nqueue_depth = 1",
    );
    assert_eq!(err(&dup).key(), Some("storage.read_curve[3]"));
}

#[test]
fn io_error_names_the_file() {
    let e = HwProfile::load("/nonexistent/hw.toml").unwrap_err();
    assert!(e.to_string().contains("/nonexistent/hw.toml"), "{e}");
}

#[test]
fn read_gbps_interpolates_the_grid() {
    let s = parse(BASE).unwrap().storage;
    // Grid points exactly.
    assert_eq!(s.read_gbps(4096, 1), 0.04);
    assert_eq!(s.read_gbps(1 << 20, 16), 3.0);
    // Halfway in log2 block size (64 KiB is 4 of 8 doublings from 4 KiB to 1 MiB) at QD1.
    assert!(
        (s.read_gbps(65536, 1) - 0.52).abs() < 1e-9,
        "{}",
        s.read_gbps(65536, 1)
    );
    // Halfway in log2 queue depth (4 is 2 of 4 doublings from 1 to 16) at 1 MiB.
    assert!((s.read_gbps(1 << 20, 4) - 2.0).abs() < 1e-9);
    // Both axes: mean of the four corners.
    assert!((s.read_gbps(65536, 4) - (0.04 + 0.4 + 1.0 + 3.0) / 4.0).abs() < 1e-9);
    // Clamps above the grid, counts QD 0 as 1.
    assert_eq!(s.read_gbps(1 << 30, 1000), 3.0);
    assert_eq!(s.read_gbps(4096, 0), 0.04);
    // IOPS-bound below the smallest block.
    assert!((s.read_gbps(512, 1) - 0.005).abs() < 1e-12);
}

#[test]
fn read_gbps_is_monotone_on_shipped_profiles() {
    for file in shipped() {
        let s = HwProfile::load(&file).unwrap().storage;
        let mut block = 4096u64;
        while block <= 16 << 20 {
            let mut last = 0.0;
            for qd in 1..=32 {
                let g = s.read_gbps(block, qd);
                assert!(
                    g + 1e-12 >= last * 0.5,
                    "{}: {block} B QD{qd}: {g} after {last}",
                    file.display()
                );
                assert!(g > 0.0 && g.is_finite());
                last = g;
            }
            block *= 2;
        }
    }
}

#[test]
fn annotated_toml_loads_back_and_carries_notes() {
    let p = parse(BASE).unwrap();
    let mut notes = hw::Notes::new();
    notes.insert("gpu.bandwidth_gbps".into(), "from a test".into());
    notes.insert("storage.read_curve[].gbps".into(), "curve note".into());
    let text = p.to_toml_annotated("line one\nline two", &notes);
    assert!(text.starts_with("# line one\n# line two\n"), "{text}");
    assert!(
        text.contains("bandwidth_gbps = 100.0  # from a test"),
        "{text}"
    );
    assert_eq!(text.matches("# curve note").count(), 4, "{text}");
    assert_eq!(parse(&text).unwrap(), p);
}

/// Found by `fuzz/smoke.sh` (hw_profile): a name with a newline is written as a multi-line
/// string, and its note went inside the string, changing the name.
#[test]
fn fuzz_regression_a_note_after_a_multi_line_string_stays_out_of_it() {
    let mut p = parse(BASE).unwrap();
    p.name = "line one\nc\\ore [gpu]\nx = 1".into();
    let mut notes = hw::Notes::new();
    notes.insert("name".into(), "the name's note".into());
    notes.insert("gpu.bandwidth_gbps".into(), "from a test".into());
    let text = p.to_toml_annotated("header", &notes);
    assert_eq!(parse(&text).unwrap(), p, "{text}");
    assert_eq!(text.matches("# the name's note").count(), 1, "{text}");
    assert!(
        text.contains("bandwidth_gbps = 100.0  # from a test"),
        "{text}"
    );
}

fn scratch_dir() -> tempfile::TempDir {
    // Under target/: on the build disk, never tmpfs, so O_DIRECT works.
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap()
}

fn dir_entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn quick_measurement_loads_back_and_cleans_up() {
    let dir = scratch_dir();
    let plan = Schedule::quick(dir.path().to_path_buf());
    let m = measure::measure_machine(&plan, &mut Silent).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        dir_entries(dir.path()).is_empty(),
        "scratch file left: {:?}",
        dir_entries(dir.path())
    );
    let p = &m.profile;
    assert_eq!(p.storage.read_curve.len(), 9);
    assert!(p.cpu.cores >= 1 && p.cpu.fp32_gflops > 0.0);
    assert!(p.ram.bytes > p.ram.os_reserve_bytes);
    if p.gpu.is_none() {
        assert!(
            m.remarks.iter().any(|r| r.contains("no GPU backend found")),
            "{:?}",
            m.remarks
        );
    }
    let text = p.to_toml_annotated("measured in a test", &m.notes);
    let out = dir.path().join("hw.toml");
    std::fs::write(&out, &text).unwrap();
    assert_eq!(&HwProfile::load(&out).unwrap(), p);
    for key in [
        "storage.seq_read_gbps",
        "ram.bandwidth_gbps",
        "cpu.fp32_gflops",
        "storage.read_curve[].gbps",
    ] {
        assert!(m.notes.contains_key(key), "no note for {key}");
    }
}

#[test]
fn too_little_free_space_is_refused_before_writing() {
    let dir = scratch_dir();
    let mut plan = Schedule::quick(dir.path().to_path_buf());
    plan.disk.file_bytes = 1 << 60;
    let e = measure::measure_machine(&plan, &mut Silent).unwrap_err();
    assert!(matches!(e, MeasureError::NoSpace { .. }), "{e}");
    assert!(e.to_string().contains("not enough free space"), "{e}");
    assert!(dir_entries(dir.path()).is_empty());
}

#[test]
fn missing_disk_dir_is_an_error() {
    let plan = Schedule::quick(PathBuf::from("/nonexistent/hypura-disk"));
    let e = measure::measure_machine(&plan, &mut Silent).unwrap_err();
    assert!(e.to_string().contains("/nonexistent/hypura-disk"), "{e}");
}

#[cfg(target_os = "linux")]
#[test]
fn tmpfs_is_refused_not_measured() {
    let shm = Path::new("/dev/shm");
    if !shm.is_dir() {
        testkit::cannot_run("no /dev/shm (the tmpfs this test writes to)");
        return;
    }
    let dir = tempfile::tempdir_in(shm).unwrap();
    let plan = Schedule::quick(dir.path().to_path_buf());
    match measure::measure_machine(&plan, &mut Silent) {
        Err(e @ (MeasureError::MemoryFs { .. } | MeasureError::NoDirectIo { tmpfs: true, .. })) => {
            assert!(e.to_string().contains("tmpfs"), "{e}");
            // The library leaves naming the option to its caller.
            assert!(!e.to_string().contains("--disk"), "{e}");
        }
        Err(e) => panic!("expected a refusal naming O_DIRECT/tmpfs, got: {e}"),
        Ok(_) => panic!("tmpfs was measured as if it were storage"),
    }
    assert!(dir_entries(dir.path()).is_empty());
}
