//! Builds the eBPF objects (`datapath-bpf`'s and `sockops-bpf`'s bins) with aya-build and the pinned nightly, into
//! OUT_DIR, where `src/datapath/` embeds them.
//!
//! `STRAIT_BPF_TOOLCHAIN` overrides the toolchain (default `nightly-2026-05-20`).
//! `STRAIT_SKIP_EBPF=1` writes empty objects instead, for machines without the eBPF toolchain:
//! the binary then refuses to start a datapath with a clear error. CI never sets it.

use std::path::PathBuf;

use anyhow::{anyhow, Context as _};

const DEFAULT_TOOLCHAIN: &str = "nightly-2026-05-20";
const PROGRAMS: &[(&str, &str)] = &[("datapath-bpf", "datapath"), ("sockops-bpf", "sockops")];

fn main() -> anyhow::Result<()> {
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
