//! Real `kind` clusters on the local Docker engine, from the offline node image that
//! scripts/build-kind-node.sh builds (scripts/setup.sh runs it): pods run, and their logs and
//! exec work through kube-rs; the images tasks name work with no registry; deleting leaves
//! nothing; a failed create rolls back; two clusters cannot reach each other; NetworkPolicy is
//! enforced; `kind` is refused until the operator says what contains its privileged nodes.

mod common;

use common::{eventually, spec, Platform};

use std::time::Duration;

use ckad_platform::{
    clusters::{
        ClusterName, ClusterProvider, ClusterSpec, KindConfig, KindProvider, Kubeconfig, NodeContainment,
    },
    docker::DockerEngine,
    store::bound_on_host,
};
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{Api, AttachParams, LogParams, PostParams};
use tokio::io::AsyncReadExt;

fn kind(state: &std::path::Path, node_image: Option<&str>) -> KindProvider {
    let config = KindConfig {
        binary: Some(common::lite_bin_dir().join("kind")),
        node_image: node_image.map(str::to_owned),
        ..Default::default()
    };
    let docker = DockerEngine::new("unix:///var/run/docker.sock");
    KindProvider::new(docker, config, state, &common::instance(state)).unwrap()
}

/// Nothing of the cluster is left: containers, their volumes, network, files, ports.
async fn assert_gone(state: &std::path::Path, spec: &ClusterSpec) {
    let label = format!("io.x-k8s.kind.cluster={}", spec.name);
    assert_eq!(common::containers_labelled(&label).await, Vec::<String>::new());
    assert!(
        !common::network_exists(&format!("kind-{}", spec.name)).await,
        "network of {} left behind",
        spec.name
    );
    let files: Vec<_> = std::fs::read_dir(state.join("kind"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(files.is_empty(), "files left behind: {files:?}");
    for port in [spec.ports.api, spec.ports.ingress, spec.ports.ingress_https] {
        assert!(!bound_on_host(port), "port {port} left bound");
    }
}

/// A pod that prints a line and stays up.
fn talker(name: &str) -> Pod {
    serde_json::from_value(serde_json::json!({
        "metadata": { "name": name },
        "spec": { "containers": [{
            "name": "main",
            "image": "busybox:1.36",
            "command": ["sh", "-c", "echo hello from the pod; exec sleep 3600"]
        }] }
    }))
    .unwrap()
}

async fn wait_running(pods: &Api<Pod>, name: &str) {
    eventually(
        &format!("pod {name} Running"),
        Duration::from_secs(60),
        || async {
            let pod = pods.get(name).await.unwrap();
            pod.status.and_then(|s| s.phase).as_deref() == Some("Running")
        },
    )
    .await;
}

/// What `command` prints in the pod's container, through the API's exec.
async fn exec(pods: &Api<Pod>, pod: &str, command: &[&str]) -> String {
    let mut attached = pods
        .exec(
            pod,
            command.iter().copied(),
            &AttachParams::default().stderr(false),
        )
        .await
        .unwrap();
    let mut out = String::new();
    attached.stdout().unwrap().read_to_string(&mut out).await.unwrap();
    attached.join().await.unwrap();
    out
}

#[tokio::test]
async fn a_kind_cluster_runs_pods_with_logs_and_exec_then_vanishes() {
    let state = tempfile::tempdir().unwrap();
    let provider = kind(state.path(), None);
    provider.ready().await.unwrap();
    let spec = spec();
    let cluster = provider.create(&spec).await.unwrap();

    assert_eq!(
        cluster.api_endpoint,
        format!("https://127.0.0.1:{}", spec.ports.api)
    );
    assert_eq!(cluster.network, format!("kind-{}", spec.name));
    assert_eq!(
        Kubeconfig::server(&cluster.terminal_kubeconfig).unwrap(),
        format!("https://{}-control-plane:6443", spec.name)
    );
    assert!(provider.list().await.unwrap().contains(&spec.name));
    assert!(provider.health(&spec.name).await.unwrap().is_healthy());
    // Every published port is on loopback only.
    let node = common::docker()
        .await
        .inspect_container(&format!("{}-control-plane", spec.name), None)
        .await
        .unwrap();
    let bindings = node.network_settings.unwrap().ports.unwrap();
    let published: Vec<_> = bindings.values().flatten().flatten().collect();
    assert_eq!(published.len(), 3, "{published:?}");
    assert!(
        published
            .iter()
            .all(|b| b.host_ip.as_deref() == Some("127.0.0.1")),
        "{published:?}"
    );

    let client = cluster.admin_kubeconfig.client().await.unwrap();
    let pods: Api<Pod> = Api::namespaced(client, "default");
    pods.create(&PostParams::default(), &talker("talker"))
        .await
        .unwrap();
    wait_running(&pods, "talker").await;
    let logs = pods.logs("talker", &LogParams::default()).await.unwrap();
    assert_eq!(logs, "hello from the pod\n");
    let hostname = exec(&pods, "talker", &["hostname"]).await;
    assert_eq!(hostname, "talker\n");

    provider.delete(&spec.name).await.unwrap();
    assert_gone(state.path(), &spec).await;
    assert!(!provider.list().await.unwrap().contains(&spec.name));
    // Deleting what is gone is fine.
    provider.delete(&spec.name).await.unwrap();
}

/// The images tasks name are there without a registry, even untagged (which makes the kubelet
/// ask a registry every time): nginx serves its page to another pod through a Service by name.
#[tokio::test]
async fn nginx_answers_another_pod_through_a_service() {
    let state = tempfile::tempdir().unwrap();
    let provider = kind(state.path(), None);
    let spec = spec();
    let cluster = provider.create(&spec).await.unwrap();
    let client = cluster.admin_kubeconfig.client().await.unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let services: Api<Service> = Api::namespaced(client, "default");

    let web = serde_json::from_value(serde_json::json!({
        "metadata": { "name": "web", "labels": { "app": "web" } },
        "spec": { "containers": [{ "name": "nginx", "image": "nginx", "ports": [{ "containerPort": 80 }] }] }
    }))
    .unwrap();
    pods.create(&PostParams::default(), &web).await.unwrap();
    let service = serde_json::from_value(serde_json::json!({
        "metadata": { "name": "web" },
        "spec": { "selector": { "app": "web" }, "ports": [{ "port": 8080, "targetPort": 80 }] }
    }))
    .unwrap();
    services.create(&PostParams::default(), &service).await.unwrap();
    wait_running(&pods, "web").await;

    let fetch = serde_json::from_value(serde_json::json!({
        "metadata": { "name": "fetch" },
        "spec": {
            "restartPolicy": "Never",
            "containers": [{
                "name": "wget",
                "image": "busybox",
                "command": ["wget", "-q", "-O", "-", "http://web:8080/"]
            }]
        }
    }))
    .unwrap();
    pods.create(&PostParams::default(), &fetch).await.unwrap();
    eventually("the fetch pod ends", Duration::from_secs(60), || async {
        let pod = pods.get("fetch").await.unwrap();
        matches!(
            pod.status.and_then(|s| s.phase).as_deref(),
            Some("Succeeded" | "Failed")
        )
    })
    .await;
    let page = pods.logs("fetch", &LogParams::default()).await.unwrap();
    assert!(page.contains("<h1>Welcome to nginx!</h1>"), "{page}");
    let phase = pods.get("fetch").await.unwrap().status.and_then(|s| s.phase);
    assert_eq!(phase.as_deref(), Some("Succeeded"));

    provider.delete(&spec.name).await.unwrap();
    assert_gone(state.path(), &spec).await;
}

/// The node's address on its cluster's network.
async fn node_address(cluster: &ClusterName) -> String {
    let node = common::docker()
        .await
        .inspect_container(&format!("{cluster}-control-plane"), None)
        .await
        .unwrap();
    let networks = node.network_settings.unwrap().networks.unwrap();
    networks[&format!("kind-{cluster}")].ip_address.clone().unwrap()
}

#[tokio::test]
async fn two_kind_clusters_cannot_reach_each_other() {
    let state = tempfile::tempdir().unwrap();
    let provider = kind(state.path(), None);
    let (first, second) = (spec(), spec());
    let cluster = provider.create(&first).await.unwrap();
    provider.create(&second).await.unwrap();
    let (own, other) = (node_address(&first.name).await, node_address(&second.name).await);

    // From a pod of the first cluster: its own API answers, the second's does not.
    let pods: Api<Pod> = Api::namespaced(cluster.admin_kubeconfig.client().await.unwrap(), "default");
    let probe = serde_json::from_value(serde_json::json!({
        "metadata": { "name": "probe" },
        "spec": {
            "restartPolicy": "Never",
            "containers": [{
                "name": "curl",
                "image": "nginx:1.27",
                "command": ["sh", "-c", format!(
                    "curl -sk -m 5 https://{own}:6443/livez; echo; curl -sk -m 5 https://{other}:6443/livez || echo unreachable"
                )]
            }]
        }
    }))
    .unwrap();
    pods.create(&PostParams::default(), &probe).await.unwrap();
    eventually("the probe ends", Duration::from_secs(60), || async {
        let pod = pods.get("probe").await.unwrap();
        matches!(
            pod.status.and_then(|s| s.phase).as_deref(),
            Some("Succeeded" | "Failed")
        )
    })
    .await;
    let seen = pods.logs("probe", &LogParams::default()).await.unwrap();
    assert_eq!(seen, "ok\nunreachable\n");

    for spec in [&first, &second] {
        provider.delete(&spec.name).await.unwrap();
    }
    assert_gone(state.path(), &first).await;
    assert_gone(state.path(), &second).await;
}

/// An image that is no kind node (etcd's, with its command) gets the real `kind` as far as its
/// node's boot, where it fails: the error says so and nothing is left.
#[tokio::test]
async fn a_failed_kind_create_is_explained_and_rolled_back() {
    let state = tempfile::tempdir().unwrap();
    let base = format!(
        "ckad-lite/etcd:{}",
        ckad_platform::clusters::LiteVersions::pinned().etcd
    );
    let node_image = "ckad-test/kind-node-stand-in:latest";
    let mut build = std::process::Command::new("docker")
        .args(["build", "--quiet", "--tag", node_image, "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    write!(build.stdin.take().unwrap(), "FROM {base}\nCMD [\"etcd\"]\n").unwrap();
    assert!(build.wait().unwrap().success());
    let provider = kind(state.path(), Some(node_image));
    provider.ready().await.unwrap();
    let spec = spec();

    let error = provider.create(&spec).await.unwrap_err().to_string();
    assert!(error.starts_with("kind failed"), "{error}");
    assert!(error.contains("failed to create cluster"), "{error}");

    assert_gone(state.path(), &spec).await;
    assert!(!provider.list().await.unwrap().contains(&spec.name));
}

#[tokio::test]
async fn a_missing_node_image_is_named_by_ready() {
    let state = tempfile::tempdir().unwrap();
    let provider = kind(state.path(), Some("ckad-test/no-such-node:none"));
    let reason = provider.ready().await.unwrap_err();
    assert!(
        reason.contains("node image ckad-test/no-such-node:none is missing"),
        "{reason}"
    );
}

/// The last line a pod has logged.
async fn last_line(pods: &Api<Pod>, name: &str) -> String {
    let logs = pods.logs(name, &LogParams::default()).await.unwrap_or_default();
    logs.lines().last().unwrap_or_default().to_owned()
}

/// NetworkPolicy is enforced: before a policy both pods reach the server; once a policy lets in
/// only `role=client`, the client still does and the other pod no longer does.
#[tokio::test]
async fn a_network_policy_keeps_out_the_pods_it_does_not_allow() {
    let state = tempfile::tempdir().unwrap();
    let provider = kind(state.path(), None);
    let spec = spec();
    let cluster = provider.create(&spec).await.unwrap();
    let client = cluster.admin_kubeconfig.client().await.unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");

    let server = serde_json::from_value(serde_json::json!({
        "metadata": { "name": "server", "labels": { "app": "server" } },
        "spec": { "containers": [{ "name": "nginx", "image": "nginx:1.27" }] }
    }))
    .unwrap();
    pods.create(&PostParams::default(), &server).await.unwrap();
    wait_running(&pods, "server").await;
    let address = pods.get("server").await.unwrap().status.unwrap().pod_ip.unwrap();
    // Each caller tries the server once a second and logs the outcome.
    for (name, labels) in [
        ("caller", serde_json::json!({ "role": "client" })),
        ("stranger", serde_json::json!({})),
    ] {
        let caller = serde_json::from_value(serde_json::json!({
            "metadata": { "name": name, "labels": labels },
            "spec": { "containers": [{
                "name": "curl",
                "image": "nginx:1.27",
                "command": ["sh", "-c", format!(
                    "while true; do curl -s -m 2 -o /dev/null http://{address}/ && echo open || echo closed; sleep 1; done"
                )]
            }] }
        }))
        .unwrap();
        pods.create(&PostParams::default(), &caller).await.unwrap();
    }
    for name in ["caller", "stranger"] {
        wait_running(&pods, name).await;
        eventually(
            &format!("{name} reaches the server"),
            Duration::from_secs(30),
            || async { last_line(&pods, name).await == "open" },
        )
        .await;
    }

    let policies: Api<k8s_openapi::api::networking::v1::NetworkPolicy> = Api::namespaced(client, "default");
    let policy = serde_json::from_value(serde_json::json!({
        "metadata": { "name": "clients-only" },
        "spec": {
            "podSelector": { "matchLabels": { "app": "server" } },
            "policyTypes": ["Ingress"],
            "ingress": [{ "from": [{ "podSelector": { "matchLabels": { "role": "client" } } }] }]
        }
    }))
    .unwrap();
    policies.create(&PostParams::default(), &policy).await.unwrap();
    eventually("the stranger is kept out", Duration::from_secs(30), || async {
        last_line(&pods, "stranger").await == "closed"
    })
    .await;
    // And stays out, while the client still gets in.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let stranger = pods.logs("stranger", &LogParams::default()).await.unwrap();
    let tail: Vec<&str> = stranger.lines().rev().take(2).collect();
    assert_eq!(tail, ["closed", "closed"], "{stranger}");
    let caller = pods.logs("caller", &LogParams::default()).await.unwrap();
    let tail: Vec<&str> = caller.lines().rev().take(3).collect();
    assert_eq!(tail, ["open", "open", "open"], "{caller}");

    provider.delete(&spec.name).await.unwrap();
    assert_gone(state.path(), &spec).await;
}

/// A platform of this process whose sessions get `kind` clusters.
fn kind_settings(dir: &std::path::Path) -> ckad_platform::configuration::Settings {
    let mut settings = common::settings(dir, "unix:///var/run/docker.sock");
    settings.clusters.provider = ckad_platform::configuration::ProviderKind::Kind;
    settings.clusters.kind = KindConfig {
        binary: Some(common::lite_bin_dir().join("kind")),
        node_image: None,
        containment: Some(NodeContainment::TrustedLearners),
    };
    settings
}

/// The engine's runtimes and its default one, as `docker info` says.
async fn engine_runtimes() -> (Vec<String>, String) {
    let info = common::docker().await.info().await.unwrap();
    let runtimes = info.runtimes.unwrap().into_keys().collect();
    (runtimes, info.default_runtime.unwrap())
}

/// Privileged nodes are refused until the operator says what contains them: trusted learners,
/// or a sandboxing runtime that the engine has and runs containers with by default. `/readyz`
/// says which is in force.
#[tokio::test]
async fn kind_is_refused_until_the_operator_says_what_contains_its_nodes() {
    let dir = tempfile::tempdir().unwrap();
    let (runtimes, default) = engine_runtimes().await;
    let refused = |containment: Option<NodeContainment>| {
        let mut settings = kind_settings(dir.path());
        settings.clusters.kind.containment = containment;
        async move {
            match ckad_platform::AppState::build(settings).await {
                Ok(_) => panic!("accepted"),
                Err(e) => format!("{e:#}"),
            }
        }
    };

    let reason = refused(None).await;
    assert!(
        reason.starts_with("CLUSTER_PROVIDER=kind refused: kind nodes are privileged"),
        "{reason}"
    );
    assert!(reason.contains("KIND_TRUSTED_LEARNERS=true"), "{reason}");
    assert!(reason.contains("KIND_NODE_RUNTIME"), "{reason}");
    let reason = refused(Some(NodeContainment::Runtime("no-such-sandbox".into()))).await;
    assert!(
        reason.contains("KIND_NODE_RUNTIME=no-such-sandbox: the engine has no such runtime"),
        "{reason}"
    );
    let other = runtimes.iter().find(|r| **r != default).unwrap();
    let reason = refused(Some(NodeContainment::Runtime(other.clone()))).await;
    assert!(
        reason.contains(&format!(
            "KIND_NODE_RUNTIME={other}: the engine's default runtime is {default}"
        )),
        "{reason}"
    );

    for (containment, said) in [
        (
            NodeContainment::Runtime(default.clone()),
            format!("nodes under the engine's runtime {default} (KIND_NODE_RUNTIME)"),
        ),
        (
            NodeContainment::TrustedLearners,
            "privileged nodes, learners trusted by the operator (KIND_TRUSTED_LEARNERS)".into(),
        ),
    ] {
        let mut settings = kind_settings(dir.path());
        settings.clusters.kind.containment = Some(containment);
        let platform = Platform::start(settings).await;
        let readiness: serde_json::Value = platform
            .client
            .get(format!("{}/readyz", platform.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let check = readiness["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "kind")
            .unwrap();
        assert_eq!(check["detail"], said, "{readiness}");
        platform.shut_down().await;
    }
}

/// The binary as an operator starts it: `CLUSTER_PROVIDER=kind` and nothing said about the
/// learners ends the process at once with the reason.
#[tokio::test]
async fn the_binary_refuses_kind_without_an_acknowledgement() {
    let dir = tempfile::tempdir().unwrap();
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_ckad-platform"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("LEPTOS_SITE_ADDR", format!("127.0.0.1:{}", common::free_port()))
        .env(
            "DATABASE_URL",
            format!("sqlite://{}/ckad.db", dir.path().display()),
        )
        .env("STATE_DIR", dir.path().join("state"))
        .env("CLUSTER_PROVIDER", "kind")
        .env_remove("KIND_TRUSTED_LEARNERS")
        .env_remove("KIND_NODE_RUNTIME")
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("CLUSTER_PROVIDER=kind refused: kind nodes are privileged"),
        "{stderr}"
    );
}
