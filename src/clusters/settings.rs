//! The clusters' own settings; `configuration` reads them from the environment.

use std::{path::PathBuf, str::FromStr, time::Duration};

use super::{KindConfig, SubnetPool};
use crate::domain::PortRanges;

/// Which [`ClusterProvider`](super::ClusterProvider) makes sessions' clusters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    Lite,
    Kind,
}

impl FromStr for ProviderKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "lite" => Ok(Self::Lite),
            "kind" => Ok(Self::Kind),
            _ => Err("expected `lite` or `kind`".into()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ClusterSettings {
    pub provider: ProviderKind,
    /// `PLATFORM_INSTANCE`: which of the engine's clusters are this platform's. Unset, it is
    /// empty here and the database's own name is taken when the state is built
    /// ([`crate::store::Store::platform_instance`]).
    pub instance: String,
    /// Clusters' keys and kubeconfigs (`STATE_DIR`), kept private (0700).
    pub state_dir: PathBuf,
    /// Where kwokctl and kubectl for `lite` live (`LITE_BIN_DIR`; scripts/setup.sh sets it).
    pub lite_bin_dir: Option<PathBuf>,
    pub kind: KindConfig,
    pub ports: PortRanges,
    /// How often the reconciler compares clusters with the database.
    pub reconcile_every: Duration,
    /// `SESSION_SUBNET_POOL`: the private range session networks are cut from.
    pub subnet_pool: SubnetPool,
}
