//! Hostile input to the `hypura` binary: absurd numbers, special files, interrupted writes and
//! closed pipes. Each case once panicked, hung, ate memory, wrote garbage or printed a cause
//! twice; now it is refused with a message naming the flag or file, or done right.

mod common;

use common::{hypura, hypura_within};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const M1MAX: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/profiles/m1max.toml");

/// Refused with a usage or run error (exit 1 or 2, never a panic's 101), saying every phrase.
fn refused(args: &[&str], phrases: &[&str]) {
    let (code, _, err) = hypura_within(args, Duration::from_secs(60));
    assert!(
        matches!(code, Some(1 | 2)),
        "hypura {args:?} exited {code:?}: {err}"
    );
    for p in phrases {
        assert!(
            err.contains(p),
            "hypura {args:?}: {err:?} does not say {p:?}"
        );
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `hypura trace synth` of the default shape over block `layers`, which must succeed.
fn synth_trace(out: &Path, layers: &str, sequences: &str, tokens: &str) {
    let (ok, _, err) = hypura(&[
        "trace",
        "synth",
        "--layers",
        layers,
        "--sequences",
        sequences,
        "--tokens",
        tokens,
        "-o",
        s(out),
    ]);
    assert!(ok, "{err}");
}

#[test]
fn numbers_beyond_a_flags_range_are_refused_while_parsing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.htrace");
    let max = u64::MAX.to_string();
    refused(
        &[
            "trace",
            "synth",
            "--tokens",
            &max,
            "--sequences",
            "1",
            "-o",
            s(&out),
        ],
        &["--tokens", "1..=16777216"],
    );
    refused(&["sim", "--tokens", &max], &["--tokens"]);
    refused(&["sim", "--queue-depth", "0"], &["--queue-depth"]);
    refused(&["sim", "--cache-bytes", &max], &["--cache-bytes"]);
    for ctx in ["0", "281474976710656"] {
        refused(
            &[
                "solve",
                "--hw",
                M1MAX,
                "--model",
                "mixtral-8x7b:q5_k_m",
                "--ctx",
                ctx,
            ],
            &["--ctx", "1..=16777216"],
        );
    }
    refused(
        &["solve", "--hw", M1MAX, "--model", "x", "--mip-gap", "nan"],
        &["--mip-gap"],
    );
    refused(
        &[
            "synth",
            "-o",
            s(&out),
            "--arch",
            "llama",
            "--layers",
            "4294967295",
        ],
        &["--layers", "1..=512"],
    );
    refused(
        &[
            "synth",
            "-o",
            s(&out),
            "--arch",
            "mixtral",
            "--experts",
            "100000",
        ],
        &["--experts", "0..=1024"],
    );
    refused(&["trace", "stats", "x.json", "--lru", "nan"], &["--lru"]);
    refused(
        &["trace", "stats", "x.json", "--windows", "0"],
        &["--windows"],
    );
    #[cfg(feature = "runtime")]
    {
        refused(
            &["run", "--plan", "p.json", "-p", "hi", "-n", &max],
            &["--n-predict"],
        );
        refused(
            &["run", "--plan", "p.json", "-p", "hi", "--threads", "100000"],
            &["--threads", "0..=512"],
        );
        // The suggestion is a policy `run` accepts (once `belady`, which only `sim` has).
        let (_, _, err) = hypura(&[
            "run",
            "--plan",
            "p.json",
            "-p",
            "hi",
            "--cache-policy",
            "static",
        ]);
        assert!(
            err.contains("static-frequency") && !err.contains("belady"),
            "{err}"
        );
    }
    assert!(!out.exists());
}

#[test]
fn trace_synth_at_the_format_limits() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.json");
    // 65536 experts: once a `0..n as u16` range that wrapped to empty (a division by zero).
    let (code, _, err) = hypura_within(
        &[
            "trace",
            "synth",
            "--experts",
            "65536",
            "--top-k",
            "2",
            "--layers",
            "0",
            "--sequences",
            "1",
            "--tokens",
            "2",
            "--skew",
            "100",
            "--affinity",
            "0",
            "-o",
            s(&out),
        ],
        Duration::from_secs(60),
    );
    assert_eq!(code, Some(0), "{err}");
    let params = dir.path().join("p.json");
    let (code, _, err) = hypura_within(
        &["trace", "fit", s(&out), "-o", s(&params)],
        Duration::from_secs(120),
    );
    assert_eq!(code, Some(0), "{err}");
    // Sizes that would wrap or exhaust memory are refused before anything is drawn.
    let big = dir.path().join("big.htrace");
    refused(
        &[
            "trace",
            "synth",
            "--sequences",
            "1048576",
            "--tokens",
            "16777216",
            "-o",
            s(&big),
        ],
        &["at most 1073741824 ids"],
    );
    refused(
        &[
            "trace",
            "synth",
            "--experts",
            "65536",
            "--top-k",
            "65536",
            "--layers",
            "0",
            "--sequences",
            "1",
            "--tokens",
            "1",
            "-o",
            s(&big),
        ],
        &["profile entries"],
    );
    refused(
        &["trace", "synth", "--layers", "1-100000000", "-o", s(&big)],
        &["--layers", "at most 512 blocks"],
    );
    assert!(!big.exists());
}

#[test]
fn fitted_parameters_are_written_to_json_names_only() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("t.json");
    synth_trace(&trace, "0-1", "2", "16");
    let wrong = dir.path().join("p.htrace");
    refused(&["trace", "fit", s(&trace), "-o", s(&wrong)], &["*.json"]);
    assert!(!wrong.exists());
}

/// A FIFO nobody writes to: opening it for reading would block forever.
fn fifo(dir: &Path, name: &str) -> PathBuf {
    let p = dir.join(name);
    let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    p
}

#[test]
fn special_files_given_as_input_are_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let f = fifo(dir.path(), "in.json");
    let gguf = fifo(dir.path(), "in.gguf");
    let toml = fifo(dir.path(), "in.toml");
    for (args, file) in [
        (vec!["trace", "stats", s(&f)], s(&f)),
        (vec!["trace", "stats", "/dev/zero"], "/dev/zero"),
        (vec!["sim", "--trace", s(&f)], s(&f)),
        (vec!["sim", "--plan", s(&f)], s(&f)),
        (vec!["sim", "--hw", s(&toml)], s(&toml)),
        (vec!["sim", "--hw", "/dev/zero"], "/dev/zero"),
        (vec!["inspect", s(&gguf)], s(&gguf)),
        (vec!["solve", "--hw", M1MAX, "--model", s(&gguf)], s(&gguf)),
        (
            vec!["solve", "--hw", s(&toml), "--model", "mixtral-8x7b:q5_k_m"],
            s(&toml),
        ),
        (
            vec![
                "trace",
                "import",
                "--from",
                "vllm-routed",
                s(&f),
                "--n-expert",
                "8",
                "-o",
                "o.json",
            ],
            s(&f),
        ),
    ] {
        refused(&args, &[file, "not a regular file"]);
    }
}

#[test]
fn solver_arithmetic_does_not_wrap() {
    // A compute buffer of 2^50 bytes does not fit: once it wrapped to a plan predicted faster.
    refused(
        &[
            "solve",
            "--hw",
            M1MAX,
            "--model",
            "mixtral-8x7b:q5_k_m",
            "--compute-buffer",
            "1125899906842624",
        ],
        &["infeasible", "compute buffer 1125899906842624 bytes"],
    );
}

#[test]
fn a_trace_must_cover_every_moe_layer_of_the_model_it_is_solved_for() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("t.json");
    synth_trace(&trace, "0-3", "1", "8");
    refused(
        &[
            "solve",
            "--hw",
            M1MAX,
            "--model",
            "mixtral-8x7b:q5_k_m",
            "--trace",
            s(&trace),
        ],
        &["does not route MoE layer 4"],
    );
}

#[test]
fn a_model_without_weights_is_not_placed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.gguf");
    let (bytes, _) = gguf::encode_header(
        &{
            let mut md = gguf::Metadata::default();
            md.insert("general.architecture", gguf::Value::String("llama".into()));
            md.insert("llama.block_count", gguf::Value::U32(1));
            md.insert("llama.embedding_length", gguf::Value::U32(64));
            md
        },
        &[],
    )
    .unwrap();
    std::fs::write(&path, bytes).unwrap();
    refused(
        &["solve", "--hw", M1MAX, "--model", s(&path)],
        &["no tensor data"],
    );
}

#[test]
fn a_dense_model_prefills_without_a_routing_trace() {
    let gemma = common::gemma_path();
    let (code, out, err) = hypura_within(
        &[
            "sim",
            "--model",
            s(&gemma),
            "--prompt-len",
            "20",
            "--tokens",
            "4",
        ],
        Duration::from_secs(120),
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("prefill: 20 prompt tokens"), "{out}");
}

#[test]
fn causes_are_printed_once() {
    let (code, _, err) = hypura_within(
        &["sim", "--hw", "/nonexistent/hw.toml"],
        Duration::from_secs(60),
    );
    assert_eq!(code, Some(1));
    let cause = "No such file or directory";
    assert_eq!(err.matches(cause).count(), 1, "{err}");
    let (_, _, err) = hypura_within(
        &[
            "solve",
            "--hw",
            M1MAX,
            "--model",
            "mixtral-8x7b:q5_k_m",
            "--ctx",
            "16777216",
        ],
        Duration::from_secs(60),
    );
    assert_eq!(err.matches("short by").count(), 1, "{err}");
}

#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    // `solve` without -o prints the plan (tens of KB) to stdout.
    let mut child = Command::new(env!("CARGO_BIN_EXE_hypura"))
        // Catalog names mean the catalog here, never a model this machine pulled.
        .env("HF_HUB_CACHE", "/nonexistent/hypura-tests/hub")
        .args([
            "solve",
            "--hw",
            M1MAX,
            "--model",
            "mixtral-8x7b:q5_k_m",
            "--greedy",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // the reader goes away before hypura prints
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_ne!(out.status.code(), Some(101), "{err}");
}

#[test]
fn an_interrupted_synth_leaves_no_partial_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("big.gguf");
    // About 1.5 GB: long enough to be interrupted mid-write.
    let mut child = Command::new(env!("CARGO_BIN_EXE_hypura"))
        .args([
            "synth",
            "-o",
            s(&out),
            "--arch",
            "llama",
            "--layers",
            "24",
            "--embd",
            "2048",
            "--ff",
            "8192",
            "--type",
            "f16",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the hidden partial file to appear, then interrupt.
    let t0 = Instant::now();
    let partial = || {
        std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(Result::ok)
            .any(|e| e.file_name().to_string_lossy().contains(".partial-"))
    };
    while !partial() {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "no partial file appeared"
        );
        assert!(child.try_wait().unwrap().is_none(), "synth ended too soon");
        std::thread::sleep(Duration::from_millis(10));
    }
    // SAFETY: signalling a child we spawned and have not reaped.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let status = child.wait().unwrap();
    assert!(!status.success());
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[cfg(feature = "runtime")]
#[test]
fn run_flags_that_need_plain_and_a_context_beyond_the_plan() {
    let gemma = common::gemma_path();
    let dir = tempfile::tempdir().unwrap();
    let plan = common::solve(&gemma, dir.path());
    refused(
        &[
            "run",
            "--plan",
            s(&plan),
            "-m",
            s(&gemma),
            "-p",
            "hi",
            "--plain-load",
            "direct",
        ],
        &["--plain-load applies to --plain runs only"],
    );
    refused(
        &[
            "run",
            "--plan",
            s(&plan),
            "-m",
            s(&gemma),
            "-p",
            "hi",
            "-n",
            "20000",
        ],
        &["-n 20000", "4096 tokens"],
    );
    refused(
        &[
            "run",
            "--plan",
            s(&plan),
            "-m",
            s(&gemma),
            "-p",
            "hi",
            "--ctx",
            "8192",
        ],
        &["--ctx 8192", "4096 tokens"],
    );
}
