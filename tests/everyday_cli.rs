//! The everyday CLI from a directory outside the repository: shipped profiles by name, this
//! machine's profile kept by `hypura profile` and used when --hw is not given, `hypura list`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `hypura` run in `cwd` with `cache` as the user's cache directory.
fn hypura(cwd: &Path, cache: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hypura"))
        // Catalog names mean the catalog here, never a model this machine pulled.
        .env("HF_HUB_CACHE", "/nonexistent/hypura-tests/hub")
        .current_dir(cwd)
        .env("XDG_CACHE_HOME", cache)
        .args(args)
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn a_shipped_profile_by_name_plans_as_its_file_does_from_any_directory() {
    let elsewhere = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    for (name, file) in [("m1max", "m1max"), ("h200", "h200-141g"), ("m4", "m4-16g")] {
        let by_name = hypura(
            elsewhere.path(),
            cache.path(),
            &["solve", "--hw", name, "--model", "mixtral-8x7b:q5_k_m"],
        );
        assert!(by_name.status.success(), "{}", text(&by_name.stderr));
        let path = repo().join("profiles").join(format!("{file}.toml"));
        let by_file = hypura(
            elsewhere.path(),
            cache.path(),
            &[
                "solve",
                "--hw",
                path.to_str().unwrap(),
                "--model",
                "mixtral-8x7b:q5_k_m",
            ],
        );
        assert!(by_file.status.success(), "{}", text(&by_file.stderr));
        assert_eq!(text(&by_name.stdout), text(&by_file.stdout), "{name}");
    }
    // Neither a file nor a shipped name: both are said, with the names there are.
    let bad = hypura(
        elsewhere.path(),
        cache.path(),
        &["solve", "--hw", "m9max", "--model", "mixtral-8x7b"],
    );
    assert!(!bad.status.success());
    let err = text(&bad.stderr);
    assert!(
        err.contains("m9max") && err.contains("no such file") && err.contains("h200-141g (h200)"),
        "{err}"
    );
}

#[test]
fn without_hw_commands_use_the_profile_hypura_profile_kept() {
    let elsewhere = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    // Nothing measured yet: the error says what to do.
    let none = hypura(
        elsewhere.path(),
        cache.path(),
        &["solve", "--model", "mixtral-8x7b"],
    );
    assert!(!none.status.success());
    let err = text(&none.stderr);
    assert!(
        err.contains("hypura profile") && err.contains("--hw") && err.contains("m1max"),
        "{err}"
    );
    let listed = hypura(elsewhere.path(), cache.path(), &["list", "profiles"]);
    assert!(text(&listed.stdout).contains("not measured yet"));

    // Measure (quick, on the build disk: O_DIRECT needs a real file system).
    let disk = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let measured = hypura(
        elsewhere.path(),
        cache.path(),
        &[
            "profile",
            "--quick",
            "--no-decode",
            "--disk",
            disk.path().to_str().unwrap(),
        ],
    );
    assert!(measured.status.success(), "{}", text(&measured.stderr));
    let kept: Vec<PathBuf> = std::fs::read_dir(cache.path().join("hypura"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    let kept = &kept[0];
    assert!(
        text(&measured.stdout).contains(&kept.display().to_string()),
        "{}",
        text(&measured.stdout)
    );

    // solve without --hw now plans exactly as with --hw naming that file.
    let implicit = hypura(
        elsewhere.path(),
        cache.path(),
        &["solve", "--model", "mixtral-8x7b"],
    );
    assert!(implicit.status.success(), "{}", text(&implicit.stderr));
    let explicit = hypura(
        elsewhere.path(),
        cache.path(),
        &[
            "solve",
            "--hw",
            kept.to_str().unwrap(),
            "--model",
            "mixtral-8x7b",
        ],
    );
    assert_eq!(text(&implicit.stdout), text(&explicit.stdout));
    let listed = hypura(elsewhere.path(), cache.path(), &["list", "profiles"]);
    assert!(
        text(&listed.stdout).contains(&kept.display().to_string()),
        "{}",
        text(&listed.stdout)
    );

    // A second measurement replaces the kept one (the cache is hypura's own file).
    let again = hypura(
        elsewhere.path(),
        cache.path(),
        &[
            "profile",
            "--quick",
            "--no-decode",
            "--disk",
            disk.path().to_str().unwrap(),
        ],
    );
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert!(hw::HwProfile::load(kept).is_ok());
}

#[test]
fn list_shows_every_shipped_profile_catalog_model_and_preset() {
    let elsewhere = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let profiles = text(&hypura(elsewhere.path(), cache.path(), &["list", "profiles"]).stdout);
    for entry in std::fs::read_dir(repo().join("profiles")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let stem = path.file_stem().unwrap().to_str().unwrap().to_string();
            let name = hw::HwProfile::load(&path).unwrap().name;
            assert!(
                profiles.contains(&stem) && profiles.contains(&name),
                "{stem}: {profiles}"
            );
        }
    }
    let models = text(&hypura(elsewhere.path(), cache.path(), &["list", "models"]).stdout);
    for m in model::catalog::entries().unwrap() {
        for q in &m.quants {
            assert!(
                models.contains(&format!("{}:{}", m.name, q.preset.name())),
                "{models}"
            );
        }
    }
    let presets = text(&hypura(elsewhere.path(), cache.path(), &["list", "presets"]).stdout);
    for p in synth::Preset::ALL {
        assert!(presets.contains(p.name()), "{presets}");
    }
}

#[test]
fn a_plan_carries_its_model_path_and_profile_so_it_applies_from_anywhere() {
    let cache = tempfile::tempdir().unwrap();
    let solved_in = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let ok = |o: &Output| assert!(o.status.success(), "{}", text(&o.stderr));
    ok(&hypura(
        solved_in.path(),
        cache.path(),
        &["synth", "--preset", "tiny-llama", "-o", "tiny.gguf"],
    ));
    // Solved with a relative model path and a shipped profile by name.
    ok(&hypura(
        solved_in.path(),
        cache.path(),
        &[
            "solve",
            "--hw",
            "m4",
            "--model",
            "tiny.gguf",
            "-o",
            "plan.json",
        ],
    ));
    let plan_path = solved_in.path().join("plan.json");
    let plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&plan_path).unwrap()).unwrap();
    let model = &plan["inputs"]["model"];
    assert_eq!(model["given"], "tiny.gguf");
    assert_eq!(
        Path::new(model["path"].as_str().unwrap()),
        std::fs::canonicalize(solved_in.path().join("tiny.gguf")).unwrap()
    );

    // From another directory, with neither --hw nor --model: the plan's own.
    let sim = hypura(
        elsewhere.path(),
        cache.path(),
        &[
            "sim",
            "--plan",
            plan_path.to_str().unwrap(),
            "--tokens",
            "4",
        ],
    );
    ok(&sim);
    let out = text(&sim.stdout);
    assert!(
        out.contains("the plan's profile") && out.contains("Apple M4, 10-core GPU"),
        "{out}"
    );
    let run = hypura(
        elsewhere.path(),
        cache.path(),
        &[
            "run",
            "--plan",
            plan_path.to_str().unwrap(),
            "-p",
            "hi",
            "-n",
            "2",
        ],
    );
    ok(&run);

    // An embedded profile that is not the one the plan's hash names is refused, by field.
    let mut edited = plan.clone();
    edited["inputs"]["profile"]["ram"]["bytes"] = serde_json::json!(1u64 << 40);
    let edited_path = elsewhere.path().join("edited.json");
    std::fs::write(&edited_path, edited.to_string()).unwrap();
    let refused = hypura(
        elsewhere.path(),
        cache.path(),
        &[
            "sim",
            "--plan",
            edited_path.to_str().unwrap(),
            "--tokens",
            "4",
        ],
    );
    assert!(!refused.status.success());
    let err = text(&refused.stderr);
    assert!(
        err.contains("edited.json") && err.contains("inputs.profile"),
        "{err}"
    );

    // A version 2 plan (no path, no profile) is still read; it needs --hw to be simulated.
    let mut old = plan.clone();
    old["version"] = serde_json::json!(2);
    let inputs = old["inputs"].as_object_mut().unwrap();
    inputs.remove("profile");
    let m = inputs["model"].as_object_mut().unwrap();
    m.remove("path");
    m.remove("given");
    let old_path = solved_in.path().join("v2.json");
    std::fs::write(&old_path, old.to_string()).unwrap();
    ok(&hypura(
        solved_in.path(),
        cache.path(),
        &["sim", "--plan", "v2.json", "--hw", "m4", "--tokens", "4"],
    ));
}

/// `hypura` in `cwd` with `cache` as the user's cache directory and `stdin` piped in.
fn hypura_stdin(cwd: &Path, cache: &Path, args: &[&str], stdin: &str) -> Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_hypura"))
        // Catalog names mean the catalog here, never a model this machine pulled.
        .env("HF_HUB_CACHE", "/nonexistent/hypura-tests/hub")
        .current_dir(cwd)
        .env("XDG_CACHE_HOME", cache)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// Greedy token ids of a `run --json`.
fn ids(o: &Output) -> Vec<i64> {
    assert!(o.status.success(), "{}", text(&o.stderr));
    common::json_tokens(&text(&o.stdout))
}

#[test]
fn run_with_only_a_model_profiles_once_solves_and_matches_plain_llama_cpp() {
    let gemma = testkit::gemma_3_270m_or_panic();
    let gemma = gemma.to_str().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let prompt = "The capital of France is";
    let first = hypura(
        elsewhere.path(),
        cache.path(),
        &["run", "-m", gemma, "-p", prompt, "-n", "12", "--json"],
    );
    let err = text(&first.stderr);
    assert!(
        err.contains("measuring it quickly")
            && err.contains("full-resident")
            && err.contains("tok/s predicted"),
        "{err}"
    );
    let tokens = ids(&first);
    // The reference: plain llama.cpp on the same file.
    let plain = hypura(
        elsewhere.path(),
        cache.path(),
        &[
            "run", "--plain", "-m", gemma, "-p", prompt, "-n", "12", "--json",
        ],
    );
    assert_eq!(tokens, ids(&plain));

    // Measured once: the second run uses the kept profile. The prompt from -f and from
    // standard input is the same prompt; llama.cpp's flags parse (-ngl, -ot with a note).
    let file = elsewhere.path().join("prompt.txt");
    std::fs::write(&file, prompt).unwrap();
    let from_file = hypura(
        elsewhere.path(),
        cache.path(),
        &[
            "run",
            "-m",
            gemma,
            "-f",
            "prompt.txt",
            "-n",
            "12",
            "--json",
            "-t",
            "1",
            "-c",
            "512",
            "-ngl",
            "99",
            "-ot",
            "exps=CPU",
        ],
    );
    let err = text(&from_file.stderr);
    assert!(!err.contains("measuring"), "{err}");
    assert!(
        err.contains("-ngl 99 is not used") && err.contains("-ot exps=CPU is not used"),
        "{err}"
    );
    assert_eq!(ids(&from_file), tokens);
    let piped = hypura_stdin(
        elsewhere.path(),
        cache.path(),
        &["run", "-m", gemma, "-n", "12", "--json"],
        prompt,
    );
    assert_eq!(ids(&piped), tokens);

    // Text mode prints the prompt and the same text the JSON reports.
    let shown = hypura(
        elsewhere.path(),
        cache.path(),
        &["run", "-m", gemma, "-p", prompt, "-n", "12"],
    );
    assert!(shown.status.success(), "{}", text(&shown.stderr));
    let v: serde_json::Value = serde_json::from_slice(&first.stdout).unwrap();
    assert_eq!(
        text(&shown.stdout),
        format!("{prompt}{}\n", v["text"].as_str().unwrap())
    );

    // A hot draw filtered to the top token is greedy's.
    let filtered = hypura(
        elsewhere.path(),
        cache.path(),
        &[
            "run", "-m", gemma, "-p", prompt, "-n", "12", "--json", "--temp", "5", "-s", "3",
            "--top-k", "1",
        ],
    );
    assert_eq!(ids(&filtered), tokens);
}

#[test]
fn run_uses_the_plans_kv_cache_type_and_matches_llama_cpp_with_the_same_cache() {
    let gemma = testkit::gemma_3_270m_or_panic();
    let gemma = gemma.to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let solved = hypura(
        dir.path(),
        cache.path(),
        &[
            "solve",
            "--hw",
            "m1max",
            "--model",
            gemma,
            "--kv-type",
            "q8_0",
            "-o",
            "plan.json",
        ],
    );
    assert!(solved.status.success(), "{}", text(&solved.stderr));
    let prompt = "The capital of France is";
    let planned = hypura(
        dir.path(),
        cache.path(),
        &[
            "run",
            "--plan",
            "plan.json",
            "-p",
            prompt,
            "-n",
            "16",
            "--json",
        ],
    );
    // Plain llama.cpp with the same cache: -ctk/-ctv as llama.cpp spells them.
    let plain = hypura(
        dir.path(),
        cache.path(),
        &[
            "run", "--plain", "-m", gemma, "-p", prompt, "-n", "16", "--json", "-ctk", "q8_0",
            "-ctv", "q8_0",
        ],
    );
    assert_eq!(ids(&planned), ids(&plain));
    // The plan's quantized V cache is what the run asks llama.cpp for: without flash
    // attention llama.cpp refuses it, and an F16 override runs.
    let no_fa = hypura(
        dir.path(),
        cache.path(),
        &[
            "run",
            "--plan",
            "plan.json",
            "-p",
            prompt,
            "-n",
            "4",
            "-fa",
            "off",
        ],
    );
    assert!(!no_fa.status.success(), "{}", text(&no_fa.stdout));
    let f16 = hypura(
        dir.path(),
        cache.path(),
        &[
            "run",
            "--plan",
            "plan.json",
            "-p",
            prompt,
            "-n",
            "4",
            "-fa",
            "off",
            "-ctv",
            "f16",
        ],
    );
    assert!(f16.status.success(), "{}", text(&f16.stderr));
}

#[test]
fn byte_options_take_units_and_refuse_what_is_not_a_size() {
    let dir = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let sim = |bytes: &str| {
        hypura(
            dir.path(),
            cache.path(),
            &[
                "sim",
                "--model",
                "mixtral-8x7b",
                "--tokens",
                "16",
                "--policy",
                "lru",
                "--cache-bytes",
                bytes,
                "--json",
            ],
        )
    };
    let with_unit = sim("6GiB");
    assert!(with_unit.status.success(), "{}", text(&with_unit.stderr));
    assert_eq!(text(&with_unit.stdout), text(&sim("6442450944").stdout));
    assert_eq!(text(&with_unit.stdout), text(&sim("6 gib").stdout));
    let bad = sim("6 parsecs");
    assert!(!bad.status.success());
    let err = text(&bad.stderr);
    assert!(
        err.contains("--cache-bytes") && err.contains("unknown unit"),
        "{err}"
    );
}

#[test]
fn completions_man_page_and_version_come_from_the_same_flags() {
    let dir = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let bash = hypura(dir.path(), cache.path(), &["completions", "bash"]);
    assert!(bash.status.success(), "{}", text(&bash.stderr));
    let script = dir.path().join("hypura.bash");
    std::fs::write(&script, &bash.stdout).unwrap();
    // The script parses, and offers every subcommand and the new run flags.
    let check = Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .unwrap();
    assert!(check.status.success(), "{}", text(&check.stderr));
    let script = text(&bash.stdout);
    for word in [
        "inspect",
        "profile",
        "solve",
        "sim",
        "sweep",
        "tune",
        "plot",
        "list",
        "synth",
        "trace",
        "run",
        "validate",
        "--top-k",
        "--cache-type-k",
        "--hw",
    ] {
        assert!(script.contains(word), "{word}");
    }
    for shell in ["zsh", "fish"] {
        let o = hypura(dir.path(), cache.path(), &["completions", shell]);
        assert!(o.status.success() && !o.stdout.is_empty(), "{shell}");
    }
    let man = hypura(dir.path(), cache.path(), &["man"]);
    let page = text(&man.stdout);
    assert!(
        page.starts_with(".ie") || page.contains(".TH hypura"),
        "{page}"
    );
    assert!(page.contains("solve"), "{page}");
    let version = text(&hypura(dir.path(), cache.path(), &["--version"]).stdout);
    assert!(
        version.contains(env!("CARGO_PKG_VERSION"))
            && version.contains("features: runtime")
            && version.contains("llama-cpp-sys-2")
            && version.contains("CPU"),
        "{version}"
    );
}

#[test]
fn chat_formats_turns_with_the_template_and_its_reply_is_llama_cpps() {
    let gemma = testkit::gemma_3_270m_or_panic();
    let gemma = gemma.to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let question = "What is the capital of France?";
    let solved = hypura(
        dir.path(),
        cache.path(),
        &[
            "solve",
            "--hw",
            "m1max",
            "--model",
            gemma,
            "-o",
            "plan.json",
        ],
    );
    assert!(solved.status.success(), "{}", text(&solved.stderr));
    let chat = hypura_stdin(
        dir.path(),
        cache.path(),
        &["chat", "--plan", "plan.json", "--temp", "0", "-n", "16"],
        &format!("{question}\n/exit\n"),
    );
    assert!(chat.status.success(), "{}", text(&chat.stderr));
    let out = text(&chat.stdout);
    let reply = out
        .strip_prefix("> ")
        .and_then(|r| r.rsplit_once("\n> "))
        .map(|(r, _)| r.to_string())
        .unwrap_or_else(|| panic!("{out}"));
    // The reference: plain llama.cpp continuing the prompt Gemma's template makes of the turn
    // (the GGUF carries no template; its architecture's built-in one applies).
    let formatted = format!("<start_of_turn>user\n{question}<end_of_turn>\n<start_of_turn>model\n");
    let plain = hypura(
        dir.path(),
        cache.path(),
        &[
            "run", "--plain", "-m", gemma, "-p", &formatted, "-n", "16", "--json",
        ],
    );
    assert!(plain.status.success(), "{}", text(&plain.stderr));
    let v: serde_json::Value = serde_json::from_slice(&plain.stdout).unwrap();
    assert_eq!(reply, v["text"].as_str().unwrap());

    // `run -i` (llama-cli's flag; -cnv alike) is the same conversation; -p is the system message.
    for flag in ["-i", "-cnv"] {
        let with = |cmd: &[&str]| {
            hypura_stdin(
                dir.path(),
                cache.path(),
                cmd,
                &format!("{question}\n/exit\n"),
            )
        };
        let same = ["--plan", "plan.json", "--temp", "0", "-n", "16"];
        let run = with(&[&["run", flag][..], &same, &["-p", "Be brief."]].concat());
        let chat = with(&[&["chat"][..], &same, &["--system", "Be brief."]].concat());
        assert!(run.status.success(), "{}", text(&run.stderr));
        assert!(chat.status.success(), "{}", text(&chat.stderr));
        assert_eq!(text(&run.stdout), text(&chat.stdout), "{flag}");
    }
}

#[cfg(unix)]
#[test]
fn chat_through_a_terminal_ctrl_c_ends_the_reply_and_exit_quits() {
    let gemma = testkit::gemma_3_270m_or_panic();
    let cache = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let solved = hypura(
        dir.path(),
        cache.path(),
        &[
            "solve",
            "--hw",
            "m1max",
            "--model",
            gemma.to_str().unwrap(),
            "-o",
            "plan.json",
        ],
    );
    assert!(solved.status.success(), "{}", text(&solved.stderr));
    let out = Command::new("python3")
        .arg(repo().join("tests/chat_pty.py"))
        .arg(env!("CARGO_BIN_EXE_hypura"))
        .arg(dir.path().join("plan.json"))
        .env("XDG_CACHE_HOME", cache.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

#[test]
fn every_subcommands_help_has_an_example() {
    let dir = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let help = text(&hypura(dir.path(), cache.path(), &["--help"]).stdout);
    let commands: Vec<&str> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .collect();
    assert!(commands.len() >= 15, "{help}");
    for c in commands {
        let h = text(&hypura(dir.path(), cache.path(), &[c, "--help"]).stdout);
        assert!(
            h.contains("Example"),
            "hypura {c} --help has no example:\n{h}"
        );
    }
}

#[test]
fn plain_runs_take_llama_cpps_placement_flags_and_refuse_bad_ones_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let model = dir.path().join("tm.gguf");
    let model = model.to_str().unwrap();
    let synth = hypura(
        dir.path(),
        cache.path(),
        &["synth", "--preset", "tiny-mixtral", "-o", model],
    );
    assert!(synth.status.success(), "{}", text(&synth.stderr));
    let plain = [
        "run", "--plain", "-m", model, "-p", "hi", "-n", "6", "--json",
    ];
    let reference = ids(&hypura(dir.path(), cache.path(), &plain));
    // llama.cpp's -ngl, -ot and --n-cpu-moe, as llama-cli spells them (a CPU build computes
    // everything on the CPU whatever they say: the same tokens).
    let placed: Vec<&str> = plain
        .iter()
        .copied()
        .chain(["-ngl", "0", "-ot", "exps=CPU", "--n-cpu-moe", "2"])
        .collect();
    assert_eq!(ids(&hypura(dir.path(), cache.path(), &placed)), reference);
    for (bad, says) in [
        ("exps=NOPE", "no device \"NOPE\""),
        ("exps", "expected REGEX=DEVICE"),
        ("(=CPU", "regular expression"),
    ] {
        let args: Vec<&str> = plain.iter().copied().chain(["-ot", bad]).collect();
        let o = hypura(dir.path(), cache.path(), &args);
        assert!(!o.status.success(), "-ot {bad}");
        assert!(
            text(&o.stderr).contains(says),
            "-ot {bad}: {}",
            text(&o.stderr)
        );
    }
}

/// Splits a line of POSIX shell words as `solve --emit llama-args` quotes them (bare words and
/// single-quoted ones, `'\''` for a quote inside).
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let (mut word, mut quoted, mut any) = (String::new(), false, false);
    for c in line.trim().chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                any = true;
            }
            ' ' if !quoted => {
                if any {
                    words.push(std::mem::take(&mut word));
                    any = false;
                }
            }
            c => {
                word.push(c);
                any = true;
            }
        }
    }
    if any {
        words.push(word);
    }
    words
}

#[test]
fn emitted_llama_args_place_as_the_plan_and_llama_cpp_accepts_them() {
    let gemma = testkit::gemma_3_270m_or_panic();
    let gemma = gemma.to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let solved = hypura(
        dir.path(),
        cache.path(),
        &[
            "solve",
            "--hw",
            "m1max",
            "--model",
            gemma,
            "-o",
            "plan.json",
            "--emit",
            "llama-args",
        ],
    );
    assert!(solved.status.success(), "{}", text(&solved.stderr));
    let args = shell_words(&text(&solved.stdout));
    assert_eq!(args, ["-ngl", "999"], "gemma fits the M1 Max's GPU whole");
    let prompt = ["-p", "The capital of France is", "-n", "12", "--json"];
    let planned: Vec<&str> = ["run", "--plan", "plan.json"]
        .into_iter()
        .chain(prompt)
        .collect();
    let plain: Vec<&str> = ["run", "--plain", "-m", gemma]
        .into_iter()
        .chain(args.iter().map(String::as_str))
        .chain(prompt)
        .collect();
    assert_eq!(
        ids(&hypura(dir.path(), cache.path(), &plain)),
        ids(&hypura(dir.path(), cache.path(), &planned))
    );

    // A plan with experts in host memory and on NVMe: -ot patterns llama.cpp compiles, and
    // what it cannot express said on stderr.
    let moe = hypura(
        dir.path(),
        cache.path(),
        &[
            "solve",
            "--hw",
            "m4",
            "--model",
            "mixtral-8x7b",
            "--emit",
            "llama-args",
        ],
    );
    assert!(moe.status.success(), "{}", text(&moe.stderr));
    let args = shell_words(&text(&moe.stdout));
    assert!(args.iter().any(|a| a == "-ot"), "{args:?}");
    let err = text(&moe.stderr);
    assert!(
        err.contains("cannot express") && err.contains("NVMe"),
        "{err}"
    );
    let tiny = dir.path().join("tm.gguf");
    let tiny = tiny.to_str().unwrap();
    let synth = hypura(
        dir.path(),
        cache.path(),
        &["synth", "--preset", "tiny-mixtral", "-o", tiny],
    );
    assert!(synth.status.success(), "{}", text(&synth.stderr));
    let run: Vec<&str> = ["run", "--plain", "-m", tiny, "-p", "hi", "-n", "2"]
        .into_iter()
        .chain(args.iter().map(String::as_str))
        .collect();
    let o = hypura(dir.path(), cache.path(), &run);
    assert!(o.status.success(), "{}", text(&o.stderr));
}

#[test]
fn run_of_a_catalog_name_says_where_its_file_is_before_measuring_anything() {
    let dir = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let o = hypura(
        dir.path(),
        cache.path(),
        &["run", "-m", "mixtral-8x7b:q5_k_m", "-p", "hi"],
    );
    assert!(!o.status.success());
    let err = text(&o.stderr);
    assert!(
        err.contains("not downloaded")
            && err.contains("hypura pull mixtral-8x7b:q5_k_m")
            && err.contains("huggingface.co")
            && !err.contains("measuring"),
        "{err}"
    );
    assert!(!cache.path().join("hypura").exists(), "profiled anyway");
}

#[test]
fn a_plan_whose_embedded_profile_toml_cannot_hold_is_refused_by_field() {
    let dir = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let solved = hypura(
        dir.path(),
        cache.path(),
        &[
            "solve",
            "--hw",
            "m4",
            "--model",
            "mixtral-8x7b",
            "-o",
            "plan.json",
        ],
    );
    assert!(solved.status.success(), "{}", text(&solved.stderr));
    let path = dir.path().join("plan.json");
    let mut plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    // JSON holds a u64 that no TOML profile can (its integers are i64).
    plan["inputs"]["profile"]["ram"]["bytes"] = serde_json::json!(u64::MAX);
    std::fs::write(&path, plan.to_string()).unwrap();
    let o = hypura(
        dir.path(),
        cache.path(),
        &["sim", "--plan", "plan.json", "--tokens", "4"],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(err.contains("inputs.profile.ram.bytes"), "{err}");
}
