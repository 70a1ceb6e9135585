//! The `soak` command end to end, briefly: the server child starts, the clients
//! churn and check bytes, the checks run, and the `SOAK` line reports a pass.

use std::process::Command;

#[test]
fn a_short_soak_passes_and_reports() {
    let out = Command::new(env!("CARGO_BIN_EXE_epitome-benches"))
        .args(["soak", "--duration", "4", "--warmup", "1.5"])
        .args(["--interval", "1", "--clients", "8"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "soak failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
    let summary = stdout
        .lines()
        .find(|l| l.starts_with("SOAK "))
        .unwrap_or_else(|| panic!("no SOAK line:\n{stdout}"));
    let figure = |key: &str| -> u64 {
        summary
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {key} in {summary}"))
    };
    assert!(summary.contains("result=pass"), "{summary}");
    assert!(figure("connections") > 0, "{summary}");
    assert!(figure("resets") > 0, "{summary}");
    assert!(figure("half_closes") > 0, "{summary}");
    assert!(figure("bytes_checked") > 0, "{summary}");
    assert_eq!(figure("errors"), 0, "{summary}");
}

#[test]
fn bad_options_are_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_epitome-benches"))
        .args(["soak", "--duration", "5", "--warmup", "5"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--warmup"));
}
