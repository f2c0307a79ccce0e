//! Live policy: the policy files are polled, and a change that parses and compiles is applied
//! to the running datapath and sockmap; one that does not is logged (file:line) and the policy
//! in force keeps serving.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

use super::{compile, load, Identities};
use crate::config::Config;
use crate::datapath::{sockmap::Sockmap, Datapath};

/// What the policy drives in the kernel.
pub struct Enforcement {
    pub datapath: Option<Datapath>,
    pub sockmap: Option<Sockmap>,
}

type Fingerprint = Vec<(PathBuf, Option<(SystemTime, u64)>)>;

fn fingerprint(paths: &[PathBuf]) -> Fingerprint {
    paths
        .iter()
        .map(|p| {
            let m = std::fs::metadata(p).ok();
            (
                p.clone(),
                m.and_then(|m| Some((m.modified().ok()?, m.len()))),
            )
        })
        .collect()
}

/// Polls `config.policies` every `interval` until `shutdown`, then hands `enf` back.
pub async fn run(
    config: Config,
    identities: Arc<Identities>,
    mut enf: Enforcement,
    interval: Duration,
    shutdown: CancellationToken,
) -> Enforcement {
    let mut seen = fingerprint(&config.policies);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return enf,
            _ = tokio::time::sleep(interval) => {}
        }
        let now = fingerprint(&config.policies);
        if now == seen {
            continue;
        }
        seen = now;
        let state = load(&config.policies)
            .and_then(|p| compile(&config, &identities, &p, &crate::datapath::host_addresses()));
        let state = match state {
            Ok(s) => s,
            Err(e) => {
                tracing::error!("policy change rejected, the previous policy stays in force:\n{e}");
                continue;
            }
        };
        if let Some(dp) = &mut enf.datapath {
            if let Err(e) = dp.update(&state) {
                tracing::error!(error = %e, "applying the new policy to the datapath failed");
                continue;
            }
        }
        identities.set_ipcache(&state.ipcache);
        if let Some(sm) = &mut enf.sockmap {
            if let Err(e) = sm.policy_changed() {
                tracing::error!(error = %e, "telling sockmap about the new policy failed");
            }
        }
        tracing::info!(
            policy_entries = state.policy.len(),
            rules = state.rules.len(),
            "policy reloaded"
        );
    }
}
