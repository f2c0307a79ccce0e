//! Builds the eBPF objects (`datapath-bpf`'s and `sockops-bpf`'s bins) with aya-build and the pinned nightly, into
//! OUT_DIR, where `src/datapath/` embeds them; and the built-in policy filters (`filters/*`, for
//! wasm32-unknown-unknown with the current toolchain), which `src/wasm/builtin.rs` embeds.
//!
//! On GNU/Linux it also links the binary with packed relative relocations (see
//! [`pack_relative_relocs`]).
//!
//! `STRAIT_BPF_TOOLCHAIN` overrides the toolchain (default `nightly-2026-05-20`).
//! `STRAIT_SKIP_EBPF=1` writes empty objects instead, for machines without the eBPF toolchain:
//! the binary then refuses to start a datapath with a clear error. CI never sets it.

use std::path::PathBuf;

use anyhow::{anyhow, Context as _};

const DEFAULT_TOOLCHAIN: &str = "nightly-2026-05-20";
const PROGRAMS: &[(&str, &str)] = &[("datapath-bpf", "datapath"), ("sockops-bpf", "sockops")];

/// Built-in filters: (package, lib name). Built with the toolchain running this build.
const FILTERS: &[(&str, &str)] = &[
    ("strait-http-policy", "http_policy"),
    ("strait-kafka-policy", "kafka_policy"),
];

fn main() -> anyhow::Result<()> {
    pack_relative_relocs();
    build_filters()?;
    build_ebpf()
}

/// Links the `strait` binary with packed relative relocations (`DT_RELR`) on GNU/Linux.
///
/// strait is a position-independent executable, and its ~42 000 relative relocations (vtables,
/// string tables, wasmtime's and rustls' static data) take 1 MB as `.rela.dyn` entries, which
/// the dynamic loader reads in full at every start: a megabyte of resident file pages in every
/// process (1.0 MiB of idle RSS, benches/README.md). As `.relr.dyn` they take 13 KB. Needs
/// GNU ld ≥ 2.38 or lld ≥ 15 at link time and glibc ≥ 2.36 at run time (the binary then
/// requires the `GLIBC_ABI_DT_RELR` version, so an older glibc refuses it at load with a clear
/// message, never at random). `STRAIT_NO_RELR=1` links classic `.rela.dyn`.
fn pack_relative_relocs() {
    println!("cargo:rerun-if-env-changed=STRAIT_NO_RELR");
    let cfg = |k: &str| std::env::var(k).unwrap_or_default();
    if cfg("CARGO_CFG_TARGET_OS") == "linux"
        && cfg("CARGO_CFG_TARGET_ENV") == "gnu"
        && std::env::var_os("STRAIT_NO_RELR").is_none()
    {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}

/// Builds the built-in filters into `<workspace>/target/builtin-filters` (shared by every
/// profile, so debug, release and clippy builds compile them once) and copies the modules to
/// OUT_DIR.
fn build_filters() -> anyhow::Result<()> {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").ok_or_else(|| anyhow!("OUT_DIR not set"))?);
    let manifest = PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR")
            .ok_or_else(|| anyhow!("CARGO_MANIFEST_DIR not set"))?,
    );
    let root = manifest
        .parent()
        .ok_or_else(|| anyhow!("proxy/ has no parent directory"))?
        .to_owned();
    for dir in ["filters", "sdk/src", "sdk/Cargo.toml", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }
    let target_dir = root.join("target").join("builtin-filters");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = std::process::Command::new(cargo);
    cmd.current_dir(&root)
        .args([
            "build",
            "--release",
            "--locked",
            "--target",
            "wasm32-unknown-unknown",
        ])
        .arg("--target-dir")
        .arg(&target_dir)
        // Debug info would be most of each module; the `name` section stays for traps.
        .env("CARGO_PROFILE_RELEASE_DEBUG", "false")
        .env("CARGO_PROFILE_RELEASE_STRIP", "debuginfo");
    for (pkg, _) in FILTERS {
        cmd.args(["-p", pkg]);
    }
    // The outer build's settings are not the filters' (and a foreign target dir would deadlock
    // on the outer build's lock).
    for var in [
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_MAKEFLAGS",
        "MAKEFLAGS",
        "MFLAGS",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd
        .status()
        .context("running cargo to build the built-in policy filters")?;
    if !status.success() {
        return Err(anyhow!(
            "building the built-in policy filters failed ({status}); the wasm32 target may be \
             missing: `rustup target add wasm32-unknown-unknown`"
        ));
    }
    for (_, lib) in FILTERS {
        let module = target_dir
            .join("wasm32-unknown-unknown/release")
            .join(format!("{lib}.wasm"));
        std::fs::copy(&module, out.join(format!("{lib}.wasm")))
            .with_context(|| format!("copying {}", module.display()))?;
    }
    Ok(())
}

fn build_ebpf() -> anyhow::Result<()> {
    println!("cargo:rerun-if-env-changed=STRAIT_SKIP_EBPF");
    println!("cargo:rerun-if-env-changed=STRAIT_BPF_TOOLCHAIN");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").ok_or_else(|| anyhow!("OUT_DIR not set"))?);
    if std::env::var("STRAIT_SKIP_EBPF").is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true")) {
        println!("cargo:warning=STRAIT_SKIP_EBPF is set: building without eBPF programs");
        for (_, bin) in PROGRAMS {
            std::fs::write(out.join(bin), b"")?;
        }
        return Ok(());
    }
    let toolchain =
        std::env::var("STRAIT_BPF_TOOLCHAIN").unwrap_or_else(|_| DEFAULT_TOOLCHAIN.to_string());
    let meta = cargo_metadata::MetadataCommand::new()
        .no_deps()
        .exec()
        .context("cargo metadata")?;
    let mut packages = Vec::new();
    for (name, _) in PROGRAMS {
        let pkg = meta
            .packages
            .iter()
            .find(|p| p.name.as_str() == *name)
            .ok_or_else(|| anyhow!("package {name} not in the workspace"))?;
        let dir = pkg
            .manifest_path
            .parent()
            .ok_or_else(|| anyhow!("{name}: manifest without a directory"))?;
        packages.push((pkg.name.to_string(), dir.to_string()));
    }
    aya_build::build_ebpf(
        packages.iter().map(|(name, dir)| aya_build::Package {
            name,
            root_dir: dir,
            no_default_features: false,
            features: &[],
        }),
        aya_build::Toolchain::Custom(&toolchain),
    )
    .with_context(|| {
        format!(
            "building the eBPF programs with toolchain {toolchain} (install it with \
             scripts/toolchain-bpf.sh, or set STRAIT_SKIP_EBPF=1 to build without a datapath)"
        )
    })
}
