//! Operator's tool over the configured cluster provider (same settings as the server). `create`
//! prints the cluster and its API endpoint; it records nothing in the database, so the next
//! reconciliation removes what it made unless a session owns it.

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
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "The platform's clusters, under the server's settings (environment and .env)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The clusters of this platform instance.
    List,
    /// Creates a cluster with its API and ingress on these host ports.
    Create {
        name: ClusterName,
        api_port: u16,
        ingress_port: u16,
        ingress_https_port: u16,
    },
    /// Whether a cluster answers.
    Health { name: ClusterName },
    /// Removes a cluster and everything it owns.
    Delete { name: ClusterName },
    /// One pass against the database, as at start-up.
    Reconcile,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let mut settings = Settings::load()?;
    telemetry::init(settings.log_format);
    let store = Store::open(&settings.database_url).await?;
    if settings.clusters.instance.is_empty() {
        settings.clusters.instance = store.platform_instance().await?;
    }
    let docker = DockerEngine::new(&settings.docker_host);
    let provider = clusters::provider(&settings.clusters, docker.clone())?;
    match cli.command {
        Command::List => {
            for name in provider.list().await? {
                println!("{name}");
            }
        }
        Command::Create {
            name,
            api_port,
            ingress_port,
            ingress_https_port,
        } => {
            let spec = ClusterSpec {
                name,
                ports: PortSet {
                    api: api_port,
                    ingress: ingress_port,
                    ingress_https: ingress_https_port,
                },
            };
            let cluster = provider.create(&spec).await?;
            println!("{} {}", cluster.name, cluster.api_endpoint);
        }
        Command::Health { name } => println!("{:?}", provider.health(&name).await?),
        Command::Delete { name } => provider.delete(&name).await?,
        Command::Reconcile => {
            let terminals =
                DockerTerminals::new(docker, &settings.terminals.image, &settings.clusters.instance);
            let report = reconciler::reconcile(
                &store,
                provider.as_ref(),
                &terminals,
                Moment::StartUp {
                    since: chrono::Utc::now(),
                },
            )
            .await?;
            println!("{report:?}");
        }
    }
    Ok(())
}
