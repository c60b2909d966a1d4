//! Operator's tool over the configured cluster provider (same settings as the server):
//!
//!   ckad-clusters list
//!   ckad-clusters create NAME API_PORT INGRESS_PORT INGRESS_HTTPS_PORT
//!   ckad-clusters health NAME
//!   ckad-clusters delete NAME
//!   ckad-clusters reconcile        one pass against the database, as at start-up
//!
//! `create` prints the cluster and its API endpoint; it records nothing in the database,
//! so the next reconciliation removes what it made unless a session owns it.

use anyhow::{bail, Context};
use ckad_platform::{
    clusters::{self, ClusterName, ClusterSpec},
    configuration::Settings,
    docker::DockerEngine,
    domain::PortSet,
    reconciler::{self, Moment},
    store::Store,
    telemetry,
    terminals::DockerTerminals,
};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut settings = Settings::load()?;
    telemetry::init(settings.log_format);
    let store = Store::open(&settings.database_url).await?;
    if settings.clusters.instance.is_empty() {
        settings.clusters.instance = store.platform_instance().await?;
    }
    let docker = DockerEngine::new(&settings.docker_host);
    let provider = clusters::provider(&settings.clusters, docker.clone())?;
    let args: Vec<String> = std::env::args().skip(1).collect();
    let name = |i: usize| -> anyhow::Result<ClusterName> {
        Ok(ClusterName::parse(args.get(i).map_or("", String::as_str))?)
    };
    let port = |i: usize| -> anyhow::Result<u16> {
        args.get(i)
            .context("missing port")?
            .parse()
            .with_context(|| format!("port {:?}", args[i]))
    };
    match args.first().map(String::as_str) {
        Some("list") => {
            for name in provider.list().await? {
                println!("{name}");
            }
        }
        Some("create") => {
            let spec = ClusterSpec {
                name: name(1)?,
                ports: PortSet { api: port(2)?, ingress: port(3)?, ingress_https: port(4)? },
            };
            let cluster = provider.create(&spec).await?;
            println!("{} {}", cluster.name, cluster.api_endpoint);
        }
        Some("health") => println!("{:?}", provider.health(&name(1)?).await?),
        Some("delete") => provider.delete(&name(1)?).await?,
        Some("reconcile") => {
            let terminals = DockerTerminals::new(docker, &settings.terminals.image, &settings.clusters.instance);
            let report = reconciler::reconcile(&store, provider.as_ref(), &terminals, Moment::StartUp { since: chrono::Utc::now() }).await?;
            println!("{report:?}");
        }
        _ => bail!("usage: ckad-clusters list | create NAME API INGRESS INGRESS_HTTPS | health NAME | delete NAME | reconcile"),
    }
    Ok(())
}
