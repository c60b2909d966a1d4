//! The behaviour checks (logs, exec, http, restarts, events) on a real `kind` cluster, where
//! pods run: the tasks that carry them pass after their reference solutions, side by side in one
//! cluster, and their behaviour checks fail with what was found where the behaviour is missing
//! (no service yet, a service on a port nothing serves, a crashing container, an event that never
//! happened). On `lite` these checks are not run at all.

use crate::common;

use std::time::Duration;

use ckad_platform::{
    clusters::ClusterProvider,
    tasks::{score, CheckResult, SolutionRunner, Target, Task, TaskCatalog},
};
use futures_util::FutureExt as _;
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{Api, DeleteParams, ListParams};

/// The tasks that carry behaviour checks (the first four had to change to behave on real pods).
const TASKS: &[&str] = &[
    "probes-health",
    "service-clusterip",
    "fix-broken-service",
    "network-policy-db",
    "configmap-env",
    "sidecar-log-shipper",
];

/// A task that uses every behaviour kind on a pod that crashes: each must fail, saying what it found.
const CRASHING: &str = r#"---
id: crashing
title: A pod that crashes
domain: Application Deployment
difficulty: easy
minutes: 3
setup:
  - { apiVersion: v1, kind: Namespace, metadata: { name: crash } }
  - apiVersion: v1
    kind: Pod
    metadata: { name: crasher, namespace: crash }
    spec:
      containers:
        - name: main
          image: busybox:1.36
          command: [sh, -c, "echo starting up; sleep 2; exit 1"]
checks:
  - exists: Pod crash/crasher
behaviour:
  - restarts: { of: Pod crash/crasher, is: 0 }
  - logs: { of: Pod crash/crasher, contains: ready }
  - event: { namespace: crash, reason: Killing, about: Pod }
  - exec: { of: Pod crash/crasher, command: [cat, /etc/hostname], output: { contains: elsewhere } }
solution:
  - run: [kubectl, -n, crash, get, pods]
---
Nothing to do.
"#;

fn report(outcomes: &[CheckResult]) -> String {
    outcomes
        .iter()
        .map(|o| {
            format!(
                "  {} {}: {:?}",
                if o.passed { "+" } else { "-" },
                o.description,
                o.reason
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Grades until `done` holds of the outcomes or `limit` is up; the last outcomes.
async fn graded_until(
    target: &Target<'_>,
    task: &Task,
    limit: Duration,
    done: impl Fn(&[CheckResult]) -> bool,
) -> Vec<CheckResult> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let outcomes = task.grade(target).await;
        if done(&outcomes) || tokio::time::Instant::now() > deadline {
            return outcomes;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

fn outcome<'o>(outcomes: &'o [CheckResult], starting: &str) -> &'o CheckResult {
    outcomes
        .iter()
        .find(|o| o.description.starts_with(starting))
        .unwrap_or_else(|| panic!("no outcome \"{starting}\" in\n{}", report(outcomes)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn behaviour_checks_judge_what_real_pods_do() {
    let state = tempfile::tempdir().unwrap();
    let provider = common::kind(state.path(), None);
    provider.ready().await.unwrap();
    // A port found free may be taken by another process before the cluster binds it: once more.
    let mut created = None;
    for _ in 0..2 {
        let spec = common::spec();
        match provider.create(&spec).await {
            Ok(cluster) => {
                created = Some((spec, cluster));
                break;
            }
            Err(e) => eprintln!("kind cluster {} did not start: {e}", spec.name),
        }
    }
    let (spec, cluster) = created.expect("a kind cluster");
    // The cluster goes whatever happens, a panic included.
    let outcome = std::panic::AssertUnwindSafe(judge(&cluster, state.path()))
        .catch_unwind()
        .await;
    provider.delete(&spec.name).await.unwrap();
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(failures)) => panic!("\n{failures}"),
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

async fn judge(cluster: &ckad_platform::clusters::Cluster, state: &std::path::Path) -> Result<(), String> {
    let client = cluster.admin_kubeconfig.client().await.unwrap();
    let target = Target {
        client: &client,
        files: &common::NoTerminal,
        runs_containers: true,
    };
    let catalog = TaskCatalog::load(concat!(env!("CARGO_MANIFEST_DIR"), "/tasks")).unwrap();
    let tasks: Vec<&Task> = TASKS.iter().map(|id| catalog.get(id).unwrap()).collect();
    let kubeconfig = state.join("admin.kubeconfig");
    std::fs::write(&kubeconfig, cluster.admin_kubeconfig.yaml()).unwrap();
    let runner = SolutionRunner::new(common::lite_bin_dir(), &kubeconfig, catalog.charts_dir());
    let mut failures = Vec::new();

    for task in &tasks {
        task.prepare(&client)
            .await
            .map_err(|e| format!("setup of {}: {e}", task.id()))?;
    }
    // Real pods take a while to start on a loaded machine: the checks judge them once they run.
    common::eventually("the tasks' pods Running", Duration::from_secs(240), || async {
        let pods = Api::<Pod>::all(client.clone())
            .list(&ListParams::default())
            .await
            .unwrap();
        let phase = |p: &Pod| p.status.as_ref().and_then(|s| s.phase.clone());
        pods.items
            .iter()
            .filter(|p| p.metadata.namespace.as_deref() != Some("kube-system"))
            .all(|p| phase(p).as_deref() == Some("Running"))
    })
    .await;
    // Before the service exists, nothing answers at its name.
    let clusterip = catalog.get("service-clusterip").unwrap();
    let at_setup = clusterip.grade(&target).await;
    let http = outcome(&at_setup, "http://orders-api/ answers");
    if http.passed || http.reason.as_deref() != Some("http://orders-api/ did not answer") {
        failures.push(format!("service-clusterip at setup:\n{}", report(&at_setup)));
    }
    // A service on the port nothing serves: every API check but the port passes, the pods do not answer.
    let forgotten = clusterip
        .rejected()
        .iter()
        .find(|a| a.name == "the target port forgotten")
        .unwrap();
    runner
        .run_answer(&target, forgotten)
        .await
        .map_err(|e| e.to_string())?;
    let wrong_port = graded_until(&target, clusterip, Duration::from_secs(60), |o| {
        outcome(o, "The service sends traffic to the 2 pods").passed
    })
    .await;
    let http = outcome(&wrong_port, "http://orders-api/ answers");
    if http.passed || score(&wrong_port) != 0 {
        failures.push(format!("service-clusterip on port 80:\n{}", report(&wrong_port)));
    }
    let services: Api<Service> = Api::namespaced(client.clone(), "orders");
    services
        .delete("orders-api", &DeleteParams::default())
        .await
        .unwrap();

    for task in &tasks {
        runner
            .run(&target, task)
            .await
            .map_err(|e| format!("solution of {}: {e}", task.id()))?;
    }
    for task in &tasks {
        let outcomes = graded_until(&target, task, Duration::from_secs(180), |o| {
            o.iter().all(|o| o.passed)
        })
        .await;
        if !outcomes.iter().all(|o| o.passed) || score(&outcomes) != task.view().weight {
            failures.push(format!(
                "{} after its solution:\n{}",
                task.id(),
                report(&outcomes)
            ));
        }
        if outcomes.len() <= task.checks().len() {
            failures.push(format!(
                "{} ran no behaviour check:\n{}",
                task.id(),
                report(&outcomes)
            ));
        }
    }

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("crashing.md"), CRASHING).unwrap();
    let crashing = TaskCatalog::load(dir.path()).unwrap();
    let crasher = crashing.get("crashing").unwrap();
    crasher.prepare(&client).await.unwrap();
    let restarted = graded_until(&target, crasher, Duration::from_secs(120), |o| {
        !outcome(o, "each Pod crash/crasher restarted").passed
    })
    .await;
    let reasons: Vec<Option<&str>> = restarted.iter().skip(1).map(|o| o.reason.as_deref()).collect();
    let expected_starts = [
        "crasher restarted ",
        "the log of crasher ends with \"starting up\"",
        "the events of namespace crash give the reasons ",
    ];
    let fits = reasons.len() == 4
        && reasons[..3]
            .iter()
            .zip(expected_starts)
            .all(|(reason, start)| reason.is_some_and(|r| r.starts_with(start)))
        && reasons[3].is_some()
        && score(&restarted) == 0
        && restarted[0].passed;
    if !fits {
        failures.push(format!("the crashing pod:\n{}", report(&restarted)));
    }
    let left: Vec<String> = Api::<Pod>::all(client.clone())
        .list(&ListParams::default().labels("ckad.check"))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter_map(|p| p.metadata.name)
        .collect();
    if !left.is_empty() {
        failures.push(format!("client pods left behind: {left:?}"));
    }

    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("\n\n"))
    }
}
