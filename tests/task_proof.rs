//! The proof that every task in `tasks/` is solvable and honestly graded: on a fresh `lite`
//! cluster its setup is applied and its checks must not all pass; then its reference solution is
//! applied and every check must pass. A few clusters run at once; each is deleted whatever happens.
//! `TASK_PROOF_ONLY=id[,id...]` proves only those tasks, for authors at work on one.

mod common;

use std::{path::Path, time::Duration};

use ckad_platform::{
    clusters::{Cluster, ClusterName, ClusterProvider, ClusterSpec, LiteProvider},
    docker::DockerEngine,
    tasks::{CheckOutcome, SolutionRunner, Task, TaskCatalog},
};
use futures_util::StreamExt;

/// Clusters at once: 2 shared cores hold three comfortably.
const PARALLEL: usize = 3;
/// Controllers finish what the setup started (revisions, pods) within this.
const SETTLE: Duration = Duration::from_secs(2);
/// After the solution, pods and endpoints take a moment to become ready.
const CONVERGE: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_task_fails_before_its_solution_and_passes_after() {
    let catalog =
        TaskCatalog::load(concat!(env!("CARGO_MANIFEST_DIR"), "/tasks")).unwrap_or_else(|e| panic!("{e}"));
    let only: Option<Vec<String>> = std::env::var("TASK_PROOF_ONLY")
        .ok()
        .map(|ids| ids.split(',').map(str::to_owned).collect());
    let tasks: Vec<&Task> = catalog
        .list()
        .iter()
        .filter(|task| {
            only.as_ref()
                .is_none_or(|ids| ids.iter().any(|id| id == task.id()))
        })
        .collect();
    assert!(!tasks.is_empty(), "no task to prove");
    let state = tempfile::tempdir().unwrap();
    let provider = LiteProvider::new(
        DockerEngine::new("unix:///var/run/docker.sock"),
        Some(common::lite_bin_dir()),
        state.path(),
        &common::instance(state.path()),
    )
    .unwrap();

    let started = std::time::Instant::now();
    let failures: Vec<String> = futures_util::stream::iter(tasks.iter().copied())
        .map(|task| prove(&provider, &catalog, task, state.path()))
        .buffer_unordered(PARALLEL)
        .filter_map(|result| async move { result.err() })
        .collect()
        .await;
    eprintln!("proved {} tasks in {:?}", tasks.len(), started.elapsed());
    assert!(failures.is_empty(), "\n{}", failures.join("\n\n"));
}

/// One task on its own cluster, which is deleted whatever the outcome.
async fn prove(
    provider: &LiteProvider,
    catalog: &TaskCatalog,
    task: &Task,
    state: &Path,
) -> Result<(), String> {
    let spec = ClusterSpec {
        name: ClusterName::generate(),
        ports: common::ports(),
    };
    let started = std::time::Instant::now();
    let outcome = match provider.create(&spec).await {
        Ok(cluster) => fail_then_pass(&cluster, catalog, task, state).await,
        Err(e) => Err(format!("no cluster: {e}")),
    };
    if let Err(e) = provider.delete(&spec.name).await {
        eprintln!("cluster {} of {} was not deleted: {e}", spec.name, task.id());
    }
    eprintln!(
        "{} ({:?}): {}",
        task.id(),
        started.elapsed(),
        if outcome.is_ok() { "proved" } else { "FAILED" }
    );
    outcome.map_err(|why| format!("task {} ({}): {why}", task.id(), task.file().display()))
}

async fn fail_then_pass(
    cluster: &Cluster,
    catalog: &TaskCatalog,
    task: &Task,
    state: &Path,
) -> Result<(), String> {
    let client = cluster
        .admin_kubeconfig
        .client()
        .await
        .map_err(|e| e.to_string())?;
    task.prepare(&client).await.map_err(|e| format!("setup: {e}"))?;
    tokio::time::sleep(SETTLE).await;
    if task.grade(&client).await.iter().all(|o| o.passed) {
        return Err("every check passes before the solution is applied".into());
    }

    let kubeconfig = state.join(format!("{}.kubeconfig", cluster.name));
    write_kubeconfig(cluster, state, &kubeconfig);
    let runner = SolutionRunner::new(common::lite_bin_dir(), &kubeconfig, catalog.charts_dir());
    runner
        .run(&client, task)
        .await
        .map_err(|e| format!("solution: {e}"))?;

    let deadline = tokio::time::Instant::now() + CONVERGE;
    loop {
        let outcomes = task.grade(&client).await;
        let failing: Vec<&CheckOutcome> = outcomes.iter().filter(|o| !o.passed).collect();
        if failing.is_empty() {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            let reasons: Vec<String> = failing
                .iter()
                .map(|o| format!("  - {}: {}", o.description, o.reason.as_deref().unwrap_or("")))
                .collect();
            return Err(format!(
                "after the solution, {} checks still fail:\n{}",
                failing.len(),
                reasons.join("\n")
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The admin kubeconfig as a file for kubectl and helm: kwokctl's own, pointed at the address
/// the platform reaches the API on.
fn write_kubeconfig(cluster: &Cluster, state: &Path, to: &Path) {
    let written = state
        .join("lite/clusters")
        .join(cluster.name.as_str())
        .join("kubeconfig.yaml");
    let mut config = kube::config::Kubeconfig::read_from(written).unwrap();
    for named in &mut config.clusters {
        if let Some(c) = named.cluster.as_mut() {
            c.server = Some(cluster.api_endpoint.clone());
        }
    }
    std::fs::write(to, serde_yaml::to_string(&config).unwrap()).unwrap();
}
