//! What the Kafka tests need: the tansu broker, the Python clients and their driver script.
//! Installed by `scripts/setup-kafka.sh`; missing ones fail under `CI=true` and skip with a
//! printed reason elsewhere.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The client driver (confluent-kafka or kafka-python), printing one JSON line.
pub fn peer_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/e2e/kafka_peer.py")
}

/// Fails in CI, skips (with a printed reason) elsewhere.
pub fn missing(what: &str) -> bool {
    let msg = format!("{what} is not available (run scripts/setup-kafka.sh)");
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{msg}");
    }
    eprintln!("SKIPPED: {msg}");
    true
}

/// The tansu binary: `$TANSU`, `tansu` on PATH, or ~/.cargo/bin/tansu.
pub fn tansu() -> Option<PathBuf> {
    let candidates = std::env::var_os("TANSU")
        .map(PathBuf::from)
        .into_iter()
        .chain(Some(PathBuf::from("tansu")))
        .chain(std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo/bin/tansu")));
    candidates.into_iter().find(|p| {
        Command::new(p)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

pub fn have_python_clients() -> bool {
    Command::new("python3")
        .args(["-c", "import confluent_kafka, kafka"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Everything the tests need, or `None` (skipped) outside CI.
pub fn prerequisites() -> Option<PathBuf> {
    let Some(tansu) = tansu() else {
        missing("tansu (Kafka-compatible broker)");
        return None;
    };
    if !have_python_clients() {
        missing("python3 modules confluent_kafka and kafka (kafka-python)");
        return None;
    }
    Some(tansu)
}
