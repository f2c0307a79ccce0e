//! Process management (spawn, readiness, guaranteed cleanup) and `/proc` accounting.

use std::collections::HashMap;
use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

/// A directory removed (recursively) on drop unless `keep` is set.
pub struct TempDir {
    path: PathBuf,
    keep: bool,
}

impl TempDir {
    pub fn new(prefix: &str, keep: bool) -> Result<Self> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = std::env::temp_dir().join(format!("{prefix}-{}-{nanos:09}", std::process::id()));
        fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(Self { path, keep })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if self.keep {
            eprintln!("keeping temp dir {}", self.path.display());
        } else {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

/// A long-running server process (upstream or proxy). Dropping it stops the process and every
/// descendant it forked (nginx/haproxy workers), even on error paths.
pub struct Service {
    name: String,
    child: Option<Child>,
    log: PathBuf,
}

impl Service {
    /// Spawns `cmd` with stdout+stderr appended to `log`.
    pub fn spawn(name: &str, mut cmd: Command, log: &Path) -> Result<Self> {
        let out = fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let err = out.try_clone()?;
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        die_with_parent(&mut cmd);
        let child = cmd
            .spawn()
            .with_context(|| format!("spawning {name}: {cmd:?}"))?;
        Ok(Self {
            name: name.to_string(),
            child: Some(child),
            log: log.to_path_buf(),
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Fails (with the tail of the process log) if the process has exited.
    pub fn check_alive(&mut self) -> Result<()> {
        let Some(child) = self.child.as_mut() else {
            bail!("{} was already stopped", self.name)
        };
        if let Some(status) = child.try_wait()? {
            self.child = None;
            bail!(
                "{} exited early ({status}); log:\n{}",
                self.name,
                log_tail(&self.log, 25)
            );
        }
        Ok(())
    }

    /// Waits until `127.0.0.1:port` accepts TCP connections.
    pub fn wait_listening(&mut self, port: u16, timeout: Duration) -> Result<()> {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + timeout;
        loop {
            self.check_alive()?;
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "{} did not listen on {addr} within {timeout:?}; log:\n{}",
                    self.name,
                    log_tail(&self.log, 25)
                );
            }
            sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM, wait up to 5 s, then SIGKILL the process and any descendant still alive.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = child.id();
        let descendants: Vec<(u32, String)> = process_tree(pid)
            .into_iter()
            .filter(|p| *p != pid)
            .filter_map(|p| comm(p).map(|c| (p, c)))
            .collect();
        signal(pid, "TERM");
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut exited = false;
        while Instant::now() < deadline {
            if matches!(child.try_wait(), Ok(Some(_))) {
                exited = true;
                break;
            }
            sleep(Duration::from_millis(20));
        }
        if !exited {
            eprintln!(
                "warning: {} (pid {pid}) ignored SIGTERM; killing",
                self.name
            );
            let _ = child.kill();
            let _ = child.wait();
        }
        // Workers normally exit with their master; make sure (pid reuse guarded by comm).
        let deadline = Instant::now() + Duration::from_secs(2);
        for (p, c) in descendants {
            while comm(p).as_deref() == Some(c.as_str()) {
                if Instant::now() > deadline {
                    signal(p, "KILL");
                    break;
                }
                sleep(Duration::from_millis(20));
            }
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Backstop for the Drop guards: if the harness itself dies (SIGKILL, OOM, …) the kernel sends
/// SIGTERM to the child (nginx/haproxy masters then take their workers down). Survives the
/// `taskset` exec.
pub(crate) fn die_with_parent(cmd: &mut Command) {
    // SAFETY: the closure runs between fork and exec and only calls prctl/getppid, which are
    // async-signal-safe and touch no memory shared with the parent.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may already have died before prctl took effect.
            if libc::getppid() == 1 {
                return Err(std::io::Error::other("parent exited"));
            }
            Ok(())
        });
    }
}

fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

pub fn log_tail(path: &Path, lines: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Runs a bounded command (a load generator) to completion with stdout/stderr captured in
/// files under `dir`; kills it if it exceeds `timeout`.
pub fn run_bounded(
    name: &str,
    mut cmd: Command,
    dir: &Path,
    timeout: Duration,
) -> Result<(ExitStatus, String, String)> {
    let out_path = dir.join(format!("{name}.stdout"));
    let err_path = dir.join(format!("{name}.stderr"));
    cmd.stdin(Stdio::null())
        .stdout(fs::File::create(&out_path)?)
        .stderr(fs::File::create(&err_path)?);
    die_with_parent(&mut cmd);
    let mut child = cmd
        .spawn()
        .with_context(|| format!("spawning {name}: {cmd:?}"))?;
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{name} did not finish within {timeout:?}");
        }
        sleep(Duration::from_millis(50));
    };
    let stdout = fs::read_to_string(&out_path).unwrap_or_default();
    let stderr = fs::read_to_string(&err_path).unwrap_or_default();
    Ok((status, stdout, stderr))
}

/// One HTTP/1.1 `GET /` with `Connection: close`; returns (status line, body).
pub fn http1_get(port: u16) -> Result<(String, String)> {
    http1_get_path(port, "/")
}

/// One HTTP/1.1 GET of `path` with `Connection: close`; returns (status line, body).
pub fn http1_get_path(port: u16, path: &str) -> Result<(String, String)> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").as_bytes(),
    )?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow!("malformed HTTP response: {text:?}"))?;
    let status = head.lines().next().unwrap_or_default().to_string();
    Ok((status, body.to_string()))
}

// ---------------------------------------------------------------------------------------------
// /proc accounting

struct Stat {
    ppid: u32,
    /// utime + stime + cutime + cstime, in clock ticks. Including the reaped-children fields
    /// keeps the sum conserved if a worker exits and is reaped by its master mid-run.
    ticks: u64,
}

fn read_stat(pid: u32) -> Option<Stat> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // comm may contain spaces and parentheses: fields resume after the last ')'.
    let rest = &s[s.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // f[0] = state (field 3), f[1] = ppid (4), f[11..=14] = utime stime cutime cstime (14-17).
    let ppid = f.get(1)?.parse().ok()?;
    let mut ticks = 0u64;
    for i in 11..=14 {
        ticks += f.get(i)?.parse::<u64>().ok()?;
    }
    Some(Stat { ppid, ticks })
}

fn comm(pid: u32) -> Option<String> {
    fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|s| s.trim().to_string())
}

/// `root` and all its live descendants.
pub fn process_tree(root: u32) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    if let Ok(rd) = fs::read_dir("/proc") {
        for e in rd.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            if let Some(st) = read_stat(pid) {
                children.entry(st.ppid).or_default().push(pid);
            }
        }
    }
    let mut out = vec![root];
    let mut i = 0;
    while i < out.len() {
        if let Some(c) = children.get(&out[i]) {
            out.extend(c.iter().copied());
        }
        i += 1;
    }
    out
}

/// Summed CPU time (user+system, including reaped children) of the tree, in clock ticks.
pub fn tree_cpu_ticks(root: u32) -> u64 {
    process_tree(root)
        .into_iter()
        .filter_map(read_stat)
        .map(|s| s.ticks)
        .sum()
}

/// CPU time of this process (the harness) including reaped children, i.e. the load generators
/// it has waited for, in clock ticks.
pub fn self_ticks() -> u64 {
    read_stat(std::process::id()).map(|s| s.ticks).unwrap_or(0)
}

/// (busy, total) clock ticks summed over all CPUs, from the first line of /proc/stat.
pub fn system_ticks() -> Option<(u64, u64)> {
    let s = fs::read_to_string("/proc/stat").ok()?;
    let line = s.lines().next()?.strip_prefix("cpu ")?;
    let v: Vec<u64> = line
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal [guest guest_nice: already in user/nice]
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    Some((total.saturating_sub(idle), total))
}

/// Memory/thread snapshot of a process tree.
pub struct TreeMem {
    /// Sum of VmHWM (peak RSS) in KiB.
    pub peak_rss_kib: u64,
    pub processes: usize,
    pub threads: u64,
}

pub fn tree_mem(root: u32) -> TreeMem {
    let mut m = TreeMem {
        peak_rss_kib: 0,
        processes: 0,
        threads: 0,
    };
    for pid in process_tree(root) {
        let Ok(status) = fs::read_to_string(format!("/proc/{pid}/status")) else {
            continue;
        };
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        };
        if let Some(kib) = field("VmHWM:") {
            m.peak_rss_kib += kib;
            m.processes += 1;
            m.threads += field("Threads:").unwrap_or(0);
        }
    }
    m
}

/// Clock ticks per second (`getconf CLK_TCK`, 100 on practically every Linux).
pub fn clk_tck() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .filter(|v: &u64| *v > 0)
        .unwrap_or(100)
}

/// Finishes a cleanup check: adds any child process still running, prints the outcome
/// (`what` names what was checked) and returns every leftover.
pub fn report_cleanup(mut left: Vec<String>, what: &str) -> Vec<String> {
    let me = std::process::id();
    let children: Vec<u32> = process_tree(me).into_iter().filter(|p| *p != me).collect();
    if !children.is_empty() {
        left.push(format!("child processes still running: {children:?}"));
    }
    if left.is_empty() {
        eprintln!("  cleanup: {what} all gone");
    } else {
        for l in &left {
            eprintln!("warning: cleanup: {l}");
        }
    }
    left
}
