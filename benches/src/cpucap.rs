//! A CPU budget for the proxy under test: a CFS bandwidth limit (cgroup v1 `cpu` controller, or
//! cgroup v2 `cpu.max`) on a cgroup of its own, which every proxy process joins before it runs.
//!
//! On a small machine the load generator and the upstream share a core, and at full speed they,
//! not the proxy, can be what limits rps: then every proxy reads the same rps whatever it costs.
//! Capping each proxy at the same fraction of a core makes the proxy the bottleneck again, so the
//! rps ratio measures the proxies. The cap is the same for every target, and the harness records
//! it with the results.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread::sleep;
use std::time::Duration;

use anyhow::{bail, Context, Result};

/// CFS period: the budget is handed out in slices of this length.
pub const PERIOD_US: u64 = 10_000;

const V1_ROOT: &str = "/sys/fs/cgroup/cpu";
const V2_ROOT: &str = "/sys/fs/cgroup";

/// A cgroup with a CPU limit; removed on drop (its processes must have exited by then).
pub struct CpuCap {
    dir: PathBuf,
    cores: f64,
}

impl CpuCap {
    /// Creates the cgroup `strait-bench-<pid>` limited to `cores` (at least 0.1: the kernel
    /// takes no quota under 1 ms a period), under cgroup v1's `cpu` hierarchy or, without it,
    /// under cgroup v2 when its root delegates the `cpu` controller.
    pub fn create(cores: f64) -> Result<Self> {
        if !(0.1..=1024.0).contains(&cores) {
            bail!("--proxy-cpu must be between 0.1 and 1024 cores, got {cores}");
        }
        let quota = (cores * PERIOD_US as f64).round() as u64;
        let name = format!("strait-bench-{}", std::process::id());
        let v1 = Path::new(V1_ROOT).join("cpu.cfs_quota_us").exists();
        let v2 = !v1
            && fs::read_to_string(Path::new(V2_ROOT).join("cgroup.subtree_control"))
                .map(|s| s.split_whitespace().any(|c| c == "cpu"))
                .unwrap_or(false);
        let root = match (v1, v2) {
            (true, _) => V1_ROOT,
            (false, true) => V2_ROOT,
            (false, false) => bail!(
                "--proxy-cpu needs a CPU controller: neither cgroup v1's {V1_ROOT} nor cgroup \
                 v2 with `cpu` in {V2_ROOT}/cgroup.subtree_control is available"
            ),
        };
        let dir = Path::new(root).join(name);
        fs::create_dir(&dir).with_context(|| format!("creating cgroup {}", dir.display()))?;
        let cap = Self { dir, cores };
        let write = |file: &str, value: String| {
            let p = cap.dir.join(file);
            fs::write(&p, &value).with_context(|| format!("writing {value:?} to {}", p.display()))
        };
        if v1 {
            write("cpu.cfs_period_us", PERIOD_US.to_string())?;
            write("cpu.cfs_quota_us", quota.to_string())?;
        } else {
            write("cpu.max", format!("{quota} {PERIOD_US}"))?;
        }
        Ok(cap)
    }

    pub fn cores(&self) -> f64 {
        self.cores
    }

    /// `cmd`, run so that its process joins the cgroup before it execs the program (so every
    /// process and thread it starts is in the cgroup too). The pid stays the program's.
    pub fn wrap(&self, cmd: &Command) -> Command {
        let mut w = Command::new("sh");
        w.arg("-c")
            .arg(r#"echo $$ > "$0" && exec "$@""#)
            .arg(self.dir.join("cgroup.procs"))
            .arg(cmd.get_program())
            .args(cmd.get_args());
        w
    }
}

impl Drop for CpuCap {
    fn drop(&mut self) {
        // A killed process leaves its cgroup a moment after `wait` returns.
        for _ in 0..50 {
            if fs::remove_dir(&self.dir).is_ok() || !self.dir.exists() {
                return;
            }
            sleep(Duration::from_millis(100));
        }
        eprintln!(
            "warning: could not remove cgroup {} (processes left in it?)",
            self.dir.display()
        );
    }
}
