//! The Docker network of each cluster, made by the platform before the cluster itself and marked
//! with who owns it: the provider, this platform instance, and the cluster. Listing those marks
//! finds every cluster this instance started, however far its create got; other instances on the
//! same engine (a staging beside production, parallel tests) are never touched.
//!
//! Each network takes an explicit subnet from one private pool, so that a single host firewall
//! rule (see `terminals::firewall`) keeps every session's containers away from the host.

use std::{
    collections::{BTreeSet, HashMap},
    fmt,
    str::FromStr,
};

use bollard::{
    models::{ContainerSummaryStateEnum, Ipam, IpamConfig, NetworkCreateRequest},
    query_parameters::{ListContainersOptions, ListNetworksOptions},
};
use ipnet::Ipv4Net;

use super::{ClusterError, ClusterName};
use crate::docker::DockerEngine;

/// Labels on every network (and, where we make them, container) of the platform.
pub const PLATFORM_LABEL: &str = "ckad.platform";
pub const INSTANCE_LABEL: &str = "ckad.instance";
pub const CLUSTER_LABEL: &str = "ckad.cluster";

/// Each session network is this small: the cluster's few containers, the terminal, a gateway.
const SUBNET_PREFIX: u8 = 28;

/// The private range session networks take their subnets from (`SESSION_SUBNET_POOL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubnetPool(Ipv4Net);

impl SubnetPool {
    pub fn net(&self) -> Ipv4Net {
        self.0
    }

    fn subnets(&self) -> impl Iterator<Item = Ipv4Net> {
        self.0.subnets(SUBNET_PREFIX).into_iter().flatten()
    }
}

impl Default for SubnetPool {
    fn default() -> Self {
        Self("10.213.0.0/16".parse().expect("a valid network"))
    }
}

impl FromStr for SubnetPool {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let net: Ipv4Net = s
            .parse()
            .map_err(|_| format!("not an IPv4 network like 10.213.0.0/16: {s}"))?;
        if net != net.trunc() {
            return Err(format!("{s} has host bits set; did you mean {}?", net.trunc()));
        }
        if !net.addr().is_private() || net.prefix_len() < 8 {
            return Err(format!(
                "{s} is not inside a private range (10/8, 172.16/12, 192.168/16)"
            ));
        }
        if net.prefix_len() > SUBNET_PREFIX - 2 {
            return Err(format!("{s} is too small: use /{} or larger", SUBNET_PREFIX - 2));
        }
        Ok(Self(net))
    }
}

impl fmt::Display for SubnetPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

pub struct Networks {
    docker: DockerEngine,
    provider: &'static str,
    instance: String,
    pool: SubnetPool,
}

impl Networks {
    pub fn new(docker: DockerEngine, provider: &'static str, instance: &str) -> Self {
        Self {
            docker,
            provider,
            instance: instance.to_owned(),
            pool: SubnetPool::default(),
        }
    }

    pub fn with_pool(self, pool: SubnetPool) -> Self {
        Self { pool, ..self }
    }

    /// Creates `network` for `cluster` with our labels plus `labels`, and driver `options`, on
    /// the first free subnet of the pool.
    pub async fn create(
        &self,
        network: &str,
        cluster: &ClusterName,
        labels: &[(&str, &str)],
        options: &[(&str, &str)],
    ) -> Result<(), ClusterError> {
        let mut all_labels = HashMap::from([
            (PLATFORM_LABEL.to_owned(), self.provider.to_owned()),
            (INSTANCE_LABEL.to_owned(), self.instance.clone()),
            (CLUSTER_LABEL.to_owned(), cluster.to_string()),
        ]);
        all_labels.extend(labels.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let options: HashMap<String, String> = options
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let docker = self.docker.client().await?;
        let taken = self.subnets_in_use().await?;
        let free = self
            .pool
            .subnets()
            .filter(|s| !taken.iter().any(|t| overlaps(s, t)));
        // Another create may take the same subnet between our read and our create: the engine
        // refuses overlaps, and the next free subnet is tried.
        for subnet in free.take(8) {
            let request = NetworkCreateRequest {
                name: network.to_owned(),
                driver: Some("bridge".into()),
                labels: Some(all_labels.clone()),
                options: Some(options.clone()),
                ipam: Some(Ipam {
                    config: Some(vec![IpamConfig {
                        subnet: Some(subnet.to_string()),
                        ..Default::default()
                    }]),
                    ..Default::default()
                }),
                ..Default::default()
            };
            match docker.create_network(request).await {
                Ok(_) => return Ok(()),
                Err(bollard::errors::Error::DockerResponseServerError { message, .. })
                    if message.contains("overlaps") => {}
                Err(e) => return Err(e.into()),
            }
        }
        Err(ClusterError::Unavailable(format!(
            "no free /{SUBNET_PREFIX} subnet left in the session pool {}",
            self.pool
        )))
    }

    /// Every IPv4 subnet of every network on the engine, ours or not.
    async fn subnets_in_use(&self) -> Result<Vec<Ipv4Net>, ClusterError> {
        let networks = self.docker.client().await?.list_networks(None).await?;
        Ok(networks
            .into_iter()
            .filter_map(|n| n.ipam?.config)
            .flatten()
            .filter_map(|c| c.subnet?.parse().ok())
            .collect())
    }

    /// Removes `network`; one that is already gone is fine.
    pub async fn remove(&self, network: &str) -> Result<(), ClusterError> {
        match self.docker.client().await?.remove_network(network).await {
            Ok(()) | Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => {
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The clusters whose networks this instance made.
    pub async fn clusters(&self) -> Result<BTreeSet<ClusterName>, ClusterError> {
        let filters = HashMap::from([(
            "label".to_owned(),
            vec![
                format!("{PLATFORM_LABEL}={}", self.provider),
                format!("{INSTANCE_LABEL}={}", self.instance),
            ],
        )]);
        let networks = self
            .docker
            .client()
            .await?
            .list_networks(Some(ListNetworksOptions {
                filters: Some(filters),
            }))
            .await?;
        Ok(networks
            .into_iter()
            .filter_map(|n| {
                n.labels?
                    .get(CLUSTER_LABEL)
                    .and_then(|c| ClusterName::parse(c).ok())
            })
            .collect())
    }
}

/// What [`ClusterProvider::revive`](super::ClusterProvider::revive) found of a cluster's parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Members {
    Running,
    /// These had stopped and run again.
    Restarted(Vec<String>),
    /// None of the cluster's containers is left on its network (on `kubernetes`: its control
    /// plane's pod is gone).
    Gone,
}

/// Starts again whichever of the cluster's containers on `network` stopped (the session's
/// terminal, also there, is not the cluster's). Works for both Docker providers: each puts its
/// cluster's containers on the network it made. A container that cannot start is an error.
pub async fn revive_cluster(docker: &DockerEngine, network: &str) -> Result<Members, ClusterError> {
    let docker = docker.client().await?;
    // `all`: stopped containers stay listed under the network they were attached to.
    let filters = HashMap::from([("network".to_owned(), vec![network.to_owned()])]);
    let containers = docker
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some(filters),
            ..Default::default()
        }))
        .await?;
    let members: Vec<_> = containers
        .into_iter()
        .filter(|c| {
            c.labels
                .as_ref()
                .and_then(|l| l.get(PLATFORM_LABEL))
                .is_none_or(|owner| owner != "terminal")
        })
        .collect();
    if members.is_empty() {
        return Ok(Members::Gone);
    }
    let mut restarted = Vec::new();
    for member in members {
        if member.state == Some(ContainerSummaryStateEnum::RUNNING) {
            continue;
        }
        let name = member
            .names
            .and_then(|n| n.into_iter().next())
            .or(member.id)
            .unwrap_or_default();
        let name = name.trim_start_matches('/').to_owned();
        match docker.start_container(&name, None).await {
            Ok(()) | Err(bollard::errors::Error::DockerResponseServerError { status_code: 304, .. }) => {}
            Err(e) => return Err(e.into()),
        }
        restarted.push(name);
    }
    Ok(match restarted.is_empty() {
        true => Members::Running,
        false => Members::Restarted(restarted),
    })
}

fn overlaps(a: &Ipv4Net, b: &Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pool_is_a_private_aligned_range_with_room() {
        assert_eq!(SubnetPool::default().to_string(), "10.213.0.0/16");
        assert!("10.213.0.0/16".parse::<SubnetPool>().is_ok());
        assert!("192.168.64.0/20".parse::<SubnetPool>().is_ok());
        let refusals = [
            ("10.213.0.1/16", "host bits"),
            ("8.8.0.0/16", "private"),
            ("10.0.0.0/28", "too small"),
            ("10.213.0.0", "not an IPv4 network"),
        ];
        for (input, reason) in refusals {
            let error = input.parse::<SubnetPool>().unwrap_err();
            assert!(error.contains(reason), "{input}: {error}");
        }
    }

    #[test]
    fn subnets_are_small_and_inside_the_pool() {
        let pool: SubnetPool = "10.213.0.0/24".parse().unwrap();
        let subnets: Vec<_> = pool.subnets().collect();
        assert_eq!(subnets.len(), 16);
        assert_eq!(subnets[1].to_string(), "10.213.0.16/28");
        assert!(subnets.iter().all(|s| pool.net().contains(s)));
    }

    #[test]
    fn overlap_is_seen_both_ways() {
        let small: Ipv4Net = "10.213.0.16/28".parse().unwrap();
        let large: Ipv4Net = "10.213.0.0/16".parse().unwrap();
        let apart: Ipv4Net = "10.214.0.0/28".parse().unwrap();
        assert!(overlaps(&small, &large) && overlaps(&large, &small));
        assert!(!overlaps(&small, &apart));
    }
}
