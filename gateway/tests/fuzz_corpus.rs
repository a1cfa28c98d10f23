//! Every committed fuzz seed and every input that ever crashed a fuzz target
//! (`gateway/fuzz/{seeds,regressions}/<target>/`) replayed through the same entry points on the stable
//! toolchain: a fixed crash stays fixed. Then a short coverage-guided run of each target with
//! cargo-fuzz on the nightly toolchain (`deploy/scripts/fuzz.sh`), so CI fuzzes every change a little.

use std::path::{Path, PathBuf};

/// A fuzz target: its name and the function it drives.
type Target = (&'static str, fn(&[u8]));

const TARGETS: &[Target] = &[
    ("whatsapp_webhook", gateway::fuzzing::whatsapp_webhook),
    ("messenger_webhook", gateway::fuzzing::messenger_webhook),
    ("evolution_webhook", gateway::fuzzing::evolution_webhook),
    ("zapi_webhook", gateway::fuzzing::zapi_webhook),
    ("ws_client_frame", gateway::fuzzing::ws_client_frame),
    ("rest_bodies", gateway::fuzzing::rest_bodies),
];

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

fn inputs(kind: &str, target: &str) -> Vec<PathBuf> {
    let dir = fuzz_dir().join(kind).join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect()
}

#[test]
fn every_seed_and_past_crash_goes_through_its_target_without_a_panic() {
    for (target, run) in TARGETS {
        let seeds = inputs("seeds", target);
        assert!(!seeds.is_empty(), "{target} has no seeds");
        for path in seeds.iter().chain(inputs("regressions", target).iter()) {
            let data = std::fs::read(path).expect("read input");
            run(&data);
        }
    }
}

#[test]
fn each_target_survives_a_short_coverage_guided_run() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/scripts/fuzz.sh");
    let output = std::process::Command::new("bash")
        .arg(&script)
        .arg("20000")
        .output()
        .expect("run deploy/scripts/fuzz.sh");
    assert!(
        output.status.success(),
        "fuzzing found a crash or could not run (the nightly toolchain is required):\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let report = String::from_utf8_lossy(&output.stdout);
    for (target, _) in TARGETS {
        assert!(
            report.contains(&format!("{target}: ")),
            "{target} did not run:\n{report}"
        );
    }
}
