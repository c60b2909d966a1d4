//! Real `lite` clusters (kube-apiserver, etcd, controller-manager, scheduler and kwok in
//! containers on the local Docker engine), driven through kube-rs. `kind` has tests/it/kind.rs.

use crate::common;

use common::{eventually, spec};

use std::time::Duration;

use ckad_platform::{
    clusters::{ClusterName, ClusterProvider, Kubeconfig, LiteProvider},
    docker::DockerEngine,
    store::bound_on_host,
};
use k8s_openapi::api::{
    apps::v1::Deployment,
    batch::v1::Job,
    core::v1::{Pod, Service},
    discovery::v1::EndpointSlice,
};
use kube::api::{Api, ListParams, PostParams};

fn lite(state: &std::path::Path) -> LiteProvider {
    let docker = DockerEngine::new("unix:///var/run/docker.sock");
    LiteProvider::new(
        docker,
        Some(common::lite_bin_dir()),
        state,
        &common::instance(state),
    )
    .unwrap()
}

/// Nothing of the cluster is left: containers, network, state.
async fn assert_gone(state: &std::path::Path, name: &ClusterName) {
    let project = format!("com.docker.compose.project=kwok-{name}");
    assert_eq!(common::containers_labelled(&project).await, Vec::<String>::new());
    assert!(
        !common::network_exists(&format!("kwok-{name}")).await,
        "network of {name} left behind"
    );
    assert!(
        !state.join("lite/clusters").join(name.as_str()).exists(),
        "state of {name} left behind"
    );
}

#[tokio::test]
async fn a_lite_cluster_runs_deployments_services_and_jobs_then_vanishes() {
    let state = tempfile::tempdir().unwrap();
    let provider = lite(state.path());
    let spec = spec();
    let cluster = provider.create(&spec).await.unwrap();
    assert_eq!(
        cluster.api_endpoint,
        format!("https://127.0.0.1:{}", spec.ports.api)
    );
    assert_eq!(cluster.network, format!("kwok-{}", spec.name));
    assert_eq!(
        Kubeconfig::server(&cluster.terminal_kubeconfig).unwrap(),
        format!("https://kwok-{}-kube-apiserver:6443", spec.name)
    );
    assert!(provider.list().await.unwrap().contains(&spec.name));
    assert!(provider.health(&spec.name).await.unwrap().is_healthy());
    // The API is published on loopback only, never on the host's other addresses.
    let apiserver = common::docker()
        .await
        .inspect_container(&format!("kwok-{}-kube-apiserver", spec.name), None)
        .await
        .unwrap();
    let bindings = apiserver.network_settings.unwrap().ports.unwrap();
    let published: Vec<_> = bindings.values().flatten().flatten().collect();
    assert_eq!(published.len(), 1, "{published:?}");
    assert_eq!(published[0].host_ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(
        published[0].host_port.as_deref(),
        Some(spec.ports.api.to_string().as_str())
    );

    let client = cluster.admin_kubeconfig.client().await.unwrap();
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let deployment = serde_json::from_value(serde_json::json!({
        "metadata": { "name": "web" },
        "spec": {
            "replicas": 3,
            "selector": { "matchLabels": { "app": "web" } },
            "template": {
                "metadata": { "labels": { "app": "web" } },
                "spec": { "containers": [{ "name": "nginx", "image": "nginx", "ports": [{ "containerPort": 80 }] }] }
            }
        }
    }))
    .unwrap();
    deployments
        .create(&PostParams::default(), &deployment)
        .await
        .unwrap();
    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    let service = serde_json::from_value(serde_json::json!({
        "metadata": { "name": "web" },
        "spec": { "selector": { "app": "web" }, "ports": [{ "port": 80 }] }
    }))
    .unwrap();
    services.create(&PostParams::default(), &service).await.unwrap();
    let jobs: Api<Job> = Api::namespaced(client.clone(), "default");
    let job = serde_json::from_value(serde_json::json!({
        "metadata": { "name": "once" },
        "spec": { "template": { "spec": {
            "restartPolicy": "Never",
            "containers": [{ "name": "hello", "image": "busybox", "command": ["echo", "hi"] }]
        } } }
    }))
    .unwrap();
    jobs.create(&PostParams::default(), &job).await.unwrap();

    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    eventually(
        "three web pods Running on node01",
        Duration::from_secs(30),
        || async {
            let list = pods.list(&ListParams::default().labels("app=web")).await.unwrap();
            list.items.len() == 3
                && list.items.iter().all(|p| {
                    p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
                        && p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some("node01")
                })
        },
    )
    .await;
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), "default");
    eventually(
        "the service has three endpoints",
        Duration::from_secs(30),
        || async {
            let list = slices
                .list(&ListParams::default().labels("kubernetes.io/service-name=web"))
                .await
                .unwrap();
            list.items.iter().map(|s| s.endpoints.len()).sum::<usize>() == 3
        },
    )
    .await;
    eventually("the job completes", Duration::from_secs(30), || async {
        let job = jobs.get("once").await.unwrap();
        job.status.and_then(|s| s.succeeded) == Some(1)
    })
    .await;

    provider.delete(&spec.name).await.unwrap();
    assert_gone(state.path(), &spec.name).await;
    assert!(!provider.list().await.unwrap().contains(&spec.name));
    assert!(!bound_on_host(spec.ports.api), "the API port was given back");
    // Deleting what is gone is fine.
    provider.delete(&spec.name).await.unwrap();
}

#[tokio::test]
async fn three_clusters_at_once_reject_each_others_credentials() {
    let state = tempfile::tempdir().unwrap();
    let provider = lite(state.path());
    let specs = [spec(), spec(), spec()];
    let created = futures_util::future::join_all(specs.iter().map(|s| provider.create(s))).await;
    let clusters: Vec<_> = created.into_iter().map(Result::unwrap).collect();

    for own in &clusters {
        let client = own.admin_kubeconfig.client().await.unwrap();
        client
            .apiserver_version()
            .await
            .expect("a cluster accepts its own credentials");
        for other in clusters.iter().filter(|c| c.name != own.name) {
            let borrowed = own.admin_kubeconfig.with_server(&other.api_endpoint).unwrap();
            let refused = borrowed.client().await.unwrap().apiserver_version().await;
            assert!(
                refused.is_err(),
                "{}'s credentials worked on {}",
                own.name,
                other.name
            );
        }
    }
    for spec in &specs {
        provider.delete(&spec.name).await.unwrap();
        assert_gone(state.path(), &spec.name).await;
    }
}

#[tokio::test]
async fn a_failed_lite_create_leaves_nothing_behind() {
    let state = tempfile::tempdir().unwrap();
    let provider = lite(state.path());
    // Someone else holds the API port: publishing it fails half way through the create.
    let squatter = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut spec = spec();
    spec.ports.api = squatter.local_addr().unwrap().port();
    let error = provider.create(&spec).await.unwrap_err().to_string();
    assert!(error.starts_with("kwokctl failed"), "{error}");
    assert!(
        error.contains(&spec.ports.api.to_string()),
        "the error names the port: {error}"
    );
    assert_gone(state.path(), &spec.name).await;
    drop(squatter);
}

/// A session's end and the reconciler may remove one cluster at the same moment: Docker then
/// answers one of them "removal already in progress" (409). Both succeed and nothing is left,
/// the network included.
#[tokio::test]
async fn two_removals_of_one_cluster_at_once_both_succeed_and_leave_nothing() {
    let state = tempfile::tempdir().unwrap();
    let provider = lite(state.path());
    let spec = spec();
    provider.create(&spec).await.unwrap();
    let (first, second) = tokio::join!(provider.delete(&spec.name), provider.delete(&spec.name));
    first.unwrap();
    second.unwrap();
    assert_gone(state.path(), &spec.name).await;
}

#[tokio::test]
async fn the_lite_state_directory_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let state = tempfile::tempdir().unwrap();
    let provider = lite(state.path());
    provider.ready().await.unwrap();
    let mode = std::fs::metadata(state.path().join("lite"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700);
}

/// A learner's control plane is bounded: every container has memory, CPU and process limits, and
/// etcd a backend quota that a loop of 1 MiB secrets meets, while another cluster beside it
/// goes on answering writes.
#[tokio::test]
async fn a_lite_control_plane_is_bounded_and_its_quota_stops_a_flood() {
    use k8s_openapi::{api::core::v1::Secret, ByteString};
    let state = tempfile::tempdir().unwrap();
    let provider = lite(state.path());
    let (flooded, neighbour) = (spec(), spec());
    let (flooded_cluster, neighbour_cluster) =
        tokio::join!(provider.create(&flooded), provider.create(&neighbour));
    let (flooded_cluster, neighbour_cluster) = (flooded_cluster.unwrap(), neighbour_cluster.unwrap());

    let docker = common::docker().await;
    for component in [
        "etcd",
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "kwok-controller",
    ] {
        let inspected = docker
            .inspect_container(&format!("kwok-{}-{component}", flooded.name), None)
            .await
            .unwrap();
        let host = inspected.host_config.unwrap();
        assert!(host.memory.unwrap_or(0) > 0, "{component}: no memory limit");
        assert_eq!(host.memory, host.memory_swap, "{component}: swap beyond memory");
        assert!(host.nano_cpus.unwrap_or(0) > 0, "{component}: no CPU limit");
        assert!(host.pids_limit.unwrap_or(0) > 0, "{component}: no process limit");
    }

    let secrets: Api<Secret> = Api::namespaced(
        flooded_cluster.admin_kubeconfig.client().await.unwrap(),
        "default",
    );
    let payload = ByteString(vec![b'x'; 1000 * 1000]);
    let mut refused = None;
    for i in 0..400 {
        let secret = Secret {
            metadata: kube::api::ObjectMeta {
                name: Some(format!("flood-{i}")),
                ..Default::default()
            },
            data: Some([("blob".to_owned(), payload.clone())].into()),
            ..Default::default()
        };
        if let Err(error) = secrets.create(&PostParams::default(), &secret).await {
            refused = Some((i, error.to_string()));
            break;
        }
    }
    let (written, error) = refused.expect("400 MB of secrets were all accepted");
    assert!(
        error.contains("database space exceeded"),
        "after {written}: {error}"
    );

    let neighbour_secrets: Api<Secret> = Api::namespaced(
        neighbour_cluster.admin_kubeconfig.client().await.unwrap(),
        "default",
    );
    let small = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some("still-writable".into()),
            ..Default::default()
        },
        string_data: Some([("k".to_owned(), "v".to_owned())].into()),
        ..Default::default()
    };
    neighbour_secrets
        .create(&PostParams::default(), &small)
        .await
        .unwrap();

    for spec in [&flooded, &neighbour] {
        provider.delete(&spec.name).await.unwrap();
        assert_gone(state.path(), &spec.name).await;
    }
}
