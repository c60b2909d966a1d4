//! Real `kind` clusters on the local Docker engine, from the offline node image that
//! scripts/build-kind-node.sh builds (scripts/setup.sh runs it): pods run, and their logs and
//! exec work through kube-rs; the images tasks name work with no registry; deleting leaves
//! nothing; a failed create rolls back; two clusters cannot reach each other; a learner's session
//! on `kind` works through the app's terminal and leaves nothing; a platform killed mid-create
//! has the half-made cluster removed by its successor.

use crate::common;

use common::{eventually, kind, spec, Platform, Terminals};

use std::time::Duration;

use ckad_platform::{
    clusters::{ClusterName, ClusterProvider, ClusterSpec, KindConfig, Kubeconfig, NodeContainment},
    store::bound_on_host,
};
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{Api, AttachParams, LogParams, PostParams};
use tokio::io::AsyncReadExt;

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
        Duration::from_secs(180),
        || async {
            let pod = pods.get(name).await.unwrap();
            pod.status.and_then(|s| s.phase).as_deref() == Some("Running")
        },
    )
    .await;
}

/// Runs a pod that ends by itself: its last phase and its log.
async fn run_to_end(pods: &Api<Pod>, pod: serde_json::Value) -> (String, String) {
    let pod: Pod = serde_json::from_value(pod).unwrap();
    let name = pod.metadata.name.clone().unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let phase = || async {
        let pod = pods.get(&name).await.unwrap();
        pod.status.and_then(|s| s.phase).unwrap_or_default()
    };
    eventually(&format!("pod {name} ends"), Duration::from_secs(60), || async {
        matches!(phase().await.as_str(), "Succeeded" | "Failed")
    })
    .await;
    let logs = pods.logs(&name, &LogParams::default()).await.unwrap();
    (phase().await, logs)
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

    let (phase, page) = run_to_end(
        &pods,
        serde_json::json!({
            "metadata": { "name": "fetch" },
            "spec": {
                "restartPolicy": "Never",
                "containers": [{
                    "name": "wget",
                    "image": "busybox",
                    "command": ["wget", "-q", "-O", "-", "http://web:8080/"]
                }]
            }
        }),
    )
    .await;
    assert!(page.contains("<h1>Welcome to nginx!</h1>"), "{page}");
    assert_eq!(phase, "Succeeded");

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
    let (_, seen) = run_to_end(
        &pods,
        serde_json::json!({
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
        }),
    )
    .await;
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

/// Nothing of a session's cluster is left: its node containers, its network, its files and the
/// ports it published.
async fn assert_session_gone(state: &std::path::Path, cluster: &str, ports: &[u16]) {
    assert_eq!(
        common::containers_labelled(&format!("io.x-k8s.kind.cluster={cluster}")).await,
        Vec::<String>::new()
    );
    assert!(
        !common::network_exists(&format!("kind-{cluster}")).await,
        "network of {cluster} left"
    );
    let files: Vec<_> = std::fs::read_dir(state.join("kind"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(files.is_empty(), "files left behind: {files:?}");
    for port in ports {
        assert!(!bound_on_host(*port), "port {port} left bound");
    }
}

/// The host ports a running cluster's node publishes.
async fn published_ports(cluster: &str) -> Vec<u16> {
    let node = common::docker()
        .await
        .inspect_container(&format!("{cluster}-control-plane"), None)
        .await
        .unwrap();
    let bindings = node.network_settings.unwrap().ports.unwrap();
    bindings
        .values()
        .flatten()
        .flatten()
        .map(|b| b.host_port.as_deref().unwrap().parse().unwrap())
        .collect()
}

/// From Start to Stop on `kind`, as a learner does it: in the terminal (the real WebSocket) a
/// busybox pod runs and prints, `kubectl logs` and `kubectl exec` show it, a task's answer is
/// typed and Check passes it; after Stop nothing of the session is left.
#[tokio::test(flavor = "multi_thread")]
async fn a_learners_session_on_kind_runs_pods_from_the_terminal_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let instance = common::instance(dir.path());
    let platform = Platform::start(kind_settings(dir.path())).await;
    platform.wait_until_ready().await;
    let token = platform.learner("kind@example.com").await;
    let (status, session) = platform.post("/api/session/start", &token).await;
    assert_eq!(status, reqwest::StatusCode::ACCEPTED, "{session}");
    let deadline = std::time::Instant::now() + Duration::from_secs(180);
    loop {
        let (status, now) = platform.get("/api/session/status", &token).await;
        if status == reqwest::StatusCode::OK && now["status"] == "started" {
            break;
        }
        if status == reqwest::StatusCode::NOT_FOUND || std::time::Instant::now() > deadline {
            // Why it failed is in the session's notes.
            let store =
                ckad_platform::store::Store::connect(&format!("sqlite://{}/ckad.db", dir.path().display()))
                    .await
                    .unwrap();
            let failed = store
                .session_by_id(session["id"].as_str().unwrap())
                .await
                .unwrap();
            panic!("the session did not start: {now}; {failed:?}");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let [cluster] = <[String; 1]>::try_from(common::clusters_of_instance(&instance).await).unwrap();
    let ports = published_ports(&cluster).await;
    assert_eq!(ports.len(), 3, "{ports:?}");

    let mut shell = platform
        .connect(&platform.ticket(&token).await, common::ORIGIN)
        .await
        .unwrap();
    shell.type_line("kubectl get nodes --no-headers").await;
    shell
        .read_until(&format!("{cluster}-control-plane   Ready"))
        .await;
    // What the pod prints is computed in the pod, so the typed line's echo never matches it.
    shell
        .type_line(r#"kubectl run talker --image=busybox:1.36 --restart=Never -- sh -c 'echo "pod says $((6*7))"; exec sleep 3600'"#)
        .await;
    shell.read_until("pod/talker created").await;
    // A loaded machine can take longer to start a pod than the screen is watched for.
    let admin = std::fs::read_to_string(dir.path().join(format!("state/kind/{cluster}.kubeconfig"))).unwrap();
    let pods: Api<Pod> = Api::namespaced(
        Kubeconfig::from_yaml(admin).unwrap().client().await.unwrap(),
        "default",
    );
    wait_running(&pods, "talker").await;
    shell.type_line("kubectl logs talker").await;
    shell.read_until("pod says 42").await;
    shell
        .type_line(r#"kubectl exec talker -- sh -c 'echo "exec in $(hostname): $((40+2))"'"#)
        .await;
    shell.read_until("exec in talker: 42").await;

    // A task's answer typed in the terminal, then Check until the pod is Ready.
    common::answer_pod_with_labels(&platform, &token, &mut shell, Duration::from_secs(180)).await;

    // Removing a kind node can outlast the request's 30 s on a loaded machine; the removal then
    // goes on by itself, and the learner sees the session end.
    let (status, body) = platform.post("/api/session/stop", &token).await;
    assert!(
        [
            reqwest::StatusCode::NO_CONTENT,
            reqwest::StatusCode::REQUEST_TIMEOUT
        ]
        .contains(&status),
        "{status} {body}"
    );
    eventually("the session ends", Duration::from_secs(330), || async {
        platform.get("/api/session/status", &token).await.0 == reqwest::StatusCode::NOT_FOUND
    })
    .await;
    let id = session["id"].as_str().unwrap();
    assert_eq!(
        common::containers_labelled(&format!("ckad.session={id}")).await,
        Vec::<String>::new()
    );
    assert_session_gone(&dir.path().join("state"), &cluster, &ports).await;
    assert_eq!(
        common::clusters_of_instance(&instance).await,
        Vec::<String>::new()
    );
    platform.shut_down().await;
}

/// Waits until a platform process answers `/healthz` (a loaded machine can take its time).
async fn answering(platform: &Platform) {
    eventually("the platform answers", Duration::from_secs(120), || async {
        let health = platform
            .client
            .get(format!("{}/healthz", platform.base))
            .send()
            .await;
        health.is_ok_and(|r| r.status() == reqwest::StatusCode::OK)
    })
    .await;
}

/// The real binary on `kind`, as an operator runs it, in `dir`.
/// Its log goes to `platform-<port>-<n>.log` in `dir`, the `n`th of this test.
fn platform_process(
    dir: &std::path::Path,
    port: u16,
    n: u32,
    mail: &[(&str, String)],
) -> tokio::process::Child {
    let log = std::fs::File::create(dir.join(format!("platform-{port}-{n}.log"))).unwrap();
    let ckad_platform::domain::PortSet {
        api,
        ingress,
        ingress_https,
    } = common::ports();
    tokio::process::Command::new(env!("CARGO_BIN_EXE_ckad-platform"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("LEPTOS_SITE_ADDR", format!("127.0.0.1:{port}"))
        .env("DATABASE_URL", format!("sqlite://{}/ckad.db", dir.display()))
        .env("STATE_DIR", dir.join("state"))
        .env("PLATFORM_INSTANCE", common::instance(dir))
        .env("CLUSTER_PROVIDER", "kind")
        .env("KIND_TRUSTED_LEARNERS", "true")
        .env("KIND_BINARY", common::lite_bin_dir().join("kind"))
        .env("API_PORT_RANGE", format!("{api}-{api}"))
        .env("INGRESS_PORT_RANGE", format!("{ingress}-{ingress}"))
        .env(
            "INGRESS_HTTPS_PORT_RANGE",
            format!("{ingress_https}-{ingress_https}"),
        )
        // The learner's token must outlive the first process.
        .env("JWT_SECRET", "a-test-secret-that-is-at-least-32-bytes")
        .env("RECONCILE_EVERY_SECS", "5")
        .envs(mail.iter().cloned())
        .env("RUST_LOG", "info")
        .stdout(log)
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

/// `kill -9` of the platform while `kind` is making a session's cluster: the node container is
/// up but the cluster is not finished. The platform started again fails the session and removes
/// the half-made cluster: node, network, files.
#[tokio::test(flavor = "multi_thread")]
async fn a_half_made_kind_cluster_of_a_killed_platform_is_removed_by_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let instance = common::instance(dir.path());
    let port = common::free_port();
    let sink = common::SmtpSink::start();
    let mail = sink.env();
    let mut first = platform_process(dir.path(), port, 1, &mail);
    let platform = Platform::at(
        &format!("http://127.0.0.1:{port}"),
        Some(common::Mailbox::Smtp(sink)),
    );
    answering(&platform).await;
    let token = platform.learner("killed@example.com").await;
    let (status, session) = platform.post("/api/session/start", &token).await;
    assert_eq!(status, reqwest::StatusCode::ACCEPTED, "{session}");

    // Killed once the node container runs and before the session is started.
    let deadline = std::time::Instant::now() + Duration::from_secs(180);
    let cluster = loop {
        if let [name] = common::clusters_of_instance(&instance).await.as_slice() {
            let nodes = common::containers_labelled(&format!("io.x-k8s.kind.cluster={name}")).await;
            if !nodes.is_empty() {
                break name.clone();
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no node container within 180 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    first.kill().await.unwrap();
    assert!(common::network_exists(&format!("kind-{cluster}")).await);

    let _second = platform_process(dir.path(), port, 2, &mail);
    answering(&platform).await;
    let store = ckad_platform::store::Store::connect(&format!("sqlite://{}/ckad.db", dir.path().display()))
        .await
        .unwrap();
    let id = session["id"].as_str().unwrap();
    eventually("the session is failed", Duration::from_secs(120), || async {
        let now = store.session_by_id(id).await.unwrap().unwrap();
        now.status == ckad_platform::domain::SessionStatus::Failed
    })
    .await;
    let (status, now) = platform.get("/api/session/status", &token).await;
    assert_eq!(status, reqwest::StatusCode::NOT_FOUND, "{now}");
    eventually(
        "the half-made cluster is removed",
        Duration::from_secs(240),
        || async {
            common::containers_labelled(&format!("io.x-k8s.kind.cluster={cluster}"))
                .await
                .is_empty()
                && !common::network_exists(&format!("kind-{cluster}")).await
                && std::fs::read_dir(dir.path().join("state/kind")).unwrap().count() == 0
        },
    )
    .await;
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
                    "while true; do curl -s -m 5 -o /dev/null http://{address}/ && echo open || echo closed; sleep 1; done"
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
            Duration::from_secs(90),
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
    eventually("the stranger is kept out", Duration::from_secs(90), || async {
        last_line(&pods, "stranger").await == "closed"
    })
    .await;
    // And stays out, while the client still gets in.
    let seen = pods
        .logs("stranger", &LogParams::default())
        .await
        .unwrap()
        .lines()
        .count();
    eventually(
        "the stranger tries twice more",
        Duration::from_secs(60),
        || async {
            let logs = pods.logs("stranger", &LogParams::default()).await.unwrap();
            logs.lines().count() >= seen + 2
        },
    )
    .await;
    let stranger = pods.logs("stranger", &LogParams::default()).await.unwrap();
    let tail: Vec<&str> = stranger.lines().rev().take(3).collect();
    assert_eq!(tail, ["closed", "closed", "closed"], "{stranger}");
    eventually("the client still gets in", Duration::from_secs(60), || async {
        last_line(&pods, "caller").await == "open"
    })
    .await;

    provider.delete(&spec.name).await.unwrap();
    assert_gone(state.path(), &spec).await;
}

/// A node container whose cluster's network is gone (what a `docker run` of a killed
/// `kind create` leaves when it lands after the cluster was deleted) is listed, so the
/// reconciler removes it, whichever platform made it.
#[tokio::test]
async fn a_node_stranded_without_its_network_is_listed_and_removed() {
    let state = tempfile::tempdir().unwrap();
    let provider = kind(state.path(), None);
    let name = ClusterName::generate();
    let network = format!("kind-{name}");
    let docker = |args: &[&str]| {
        let status = std::process::Command::new("docker")
            .args(args)
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "docker {args:?}");
    };
    docker(&["network", "create", &network]);
    docker(&[
        "create",
        "--name",
        &format!("{name}-control-plane"),
        "--label",
        &format!("io.x-k8s.kind.cluster={name}"),
        "--network",
        &network,
        &ckad_platform::clusters::default_node_image(),
    ]);
    assert!(!provider.list().await.unwrap().contains(&name));
    docker(&["network", "rm", &network]);

    assert!(provider.list().await.unwrap().contains(&name));
    provider.delete(&name).await.unwrap();
    assert_eq!(
        common::containers_labelled(&format!("io.x-k8s.kind.cluster={name}")).await,
        Vec::<String>::new()
    );
    assert!(!provider.list().await.unwrap().contains(&name));
}
