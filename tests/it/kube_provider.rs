//! The `kubernetes` provider on a real host cluster: an offline `kind` cluster (the `kind`
//! provider's) with `lite`'s images loaded into its node. First its parts: a session's namespace
//! and control plane made through kube-rs, its API answering through a port-forward tunnel with
//! a Ready simulated node and running pods the way `lite` does, the hardened terminal pod
//! reaching its own API and nothing else, a shell typed into through the exec bridge, and the
//! namespace's deletion leaving nothing of the session. Then the platform outside the host with
//! `CLUSTER_PROVIDER=kubernetes` and a warm pool of one, as a learner uses it: Start (claiming
//! the member, and cold once the pool is empty), the terminal's socket, Check, Stop.

use crate::common;

use std::{process::Command, time::Duration};

use crate::{
    pool,
    sessions::{Events, COLD_START_STEPS},
};
use ckad_platform::clusters::{
    kubernetes::{
        bring_up, terminal_pod, ApiTunnel, ControlPlaneImages, HostCluster, Tenant, API_SERVICE,
        CONTROL_PLANE, PLATFORM_SECRET, TERMINAL, TERMINAL_SECRET,
    },
    probe_health, ClusterName, ClusterProvider, Kubeconfig, ProviderKind,
};
use ckad_platform::store::PoolMember;
use ckad_platform::terminals::{
    PodTerminals, Revival, ShellTab, TermSize, TerminalAccess, TerminalHost, TerminalIo, TerminalRuntime,
    TerminalSpec,
};
use common::{eventually, kind, spec, Platform, Terminals, TERMINAL_IMAGE};
use futures_util::{FutureExt, StreamExt};
use k8s_openapi::api::{
    core::v1::{ContainerStatus, Namespace, Pod, Secret, Service},
    networking::v1::NetworkPolicy,
};
use kube::api::{Api, AttachParams, ListParams, LogParams, PostParams};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What `command` prints in the terminal pod, through the host API's exec.
async fn exec<S: AsRef<str>>(pods: &Api<Pod>, command: &[S]) -> String {
    let command: Vec<&str> = command.iter().map(AsRef::as_ref).collect();
    let mut attached = pods
        .exec(TERMINAL, command, &AttachParams::default().stderr(false))
        .await
        .unwrap();
    let mut out = String::new();
    attached.stdout().unwrap().read_to_string(&mut out).await.unwrap();
    attached.join().await.unwrap();
    out
}

/// The summed resident memory of the host node's processes of `uid` (the session's control
/// plane runs as 65532, which nothing of the host's own uses).
fn rss_kib(host: &ClusterName, uid: &str) -> u64 {
    let out = Command::new("docker")
        .args([
            "exec",
            &format!("{host}-control-plane"),
            "ps",
            "-u",
            uid,
            "-o",
            "rss=",
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|kib| kib.parse::<u64>().ok())
        .sum()
}

/// Reads the shell's output until it shows `needle`.
async fn read_until(io: &mut TerminalIo, needle: &str) {
    let mut seen = Vec::new();
    let read = async {
        while let Some(chunk) = io.output.next().await {
            seen.extend_from_slice(&chunk.unwrap());
            if String::from_utf8_lossy(&seen).contains(needle) {
                return;
            }
        }
        panic!("the shell ended before {needle:?}");
    };
    if tokio::time::timeout(Duration::from_secs(20), read).await.is_err() {
        panic!(
            "no {needle:?} within 20 s; the shell showed {:?}",
            String::from_utf8_lossy(&seen)
        );
    }
}

/// The control plane's container states and the end of each one's log, for a failure's message.
async fn what_the_control_plane_says(pods: &Api<Pod>) -> String {
    let mut said = String::new();
    let pod = match pods.get(CONTROL_PLANE).await {
        Ok(pod) => pod,
        Err(e) => return format!("no control-plane pod: {e}"),
    };
    for status in statuses(&pod) {
        said += &format!(
            "== {} (restarts {}): {:?}\n",
            status.name, status.restart_count, status.state
        );
        let params = LogParams {
            container: Some(status.name.clone()),
            tail_lines: Some(15),
            ..Default::default()
        };
        said += &pods.logs(CONTROL_PLANE, &params).await.unwrap_or_default();
    }
    said
}

/// Every container's status, the sidecars' (etcd, the API server) first.
fn statuses(pod: &Pod) -> Vec<ContainerStatus> {
    let status = pod.status.clone().unwrap_or_default();
    let sidecars = status.init_container_statuses.unwrap_or_default();
    sidecars
        .into_iter()
        .chain(status.container_statuses.unwrap_or_default())
        .collect()
}

fn pod_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// One host for both parts: a `kind` host with the images loaded takes minutes and gigabytes.
#[tokio::test(flavor = "multi_thread")]
async fn sessions_run_as_namespaces_of_a_host_cluster_and_go_with_them() {
    let state = tempfile::tempdir().unwrap();
    let host = kind(state.path(), None);
    host.ready().await.unwrap();
    let host_spec = spec();
    let host_cluster = host.create(&host_spec).await.unwrap();

    // Whatever happens below, the host cluster goes.
    let outcome = std::panic::AssertUnwindSafe(async {
        let (name, kubeconfig) = (&host_spec.name, &host_cluster.admin_kubeconfig);
        on_host(name, kubeconfig, &common::instance(state.path())).await;
        platform_on_host(kubeconfig).await;
    })
    .catch_unwind()
    .await;
    host.delete(&host_spec.name).await.unwrap();
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

async fn on_host(host_name: &ClusterName, host_kubeconfig: &Kubeconfig, instance: &str) {
    let images = ControlPlaneImages::pinned("");
    let started = std::time::Instant::now();
    common::load_images(host_name, &[&images.all()[..], &[TERMINAL_IMAGE]].concat());
    eprintln!("images loaded into the host in {:?}", started.elapsed());

    let client = host_kubeconfig.client().await.unwrap();
    let sessions = HostCluster::new(client.clone(), instance, images, None);
    let name = ClusterName::generate();
    let started = std::time::Instant::now();
    let made = sessions.create(&name).await.unwrap();
    assert_eq!(made.namespace, name.as_str());
    assert_eq!(
        made.terminal_kubeconfig.server(),
        Some(format!("https://{}:443", made.service_ip))
    );
    assert!(sessions.list().await.unwrap().contains(&name));

    // The platform outside the host reaches the session's API through a port-forward, with
    // the kubeconfig any replica would read from the namespace.
    let secret = Api::<Secret>::namespaced(client.clone(), &made.namespace)
        .get(PLATFORM_SECRET)
        .await
        .unwrap();
    let stored = String::from_utf8(secret.data.unwrap()["config"].0.clone()).unwrap();
    assert_eq!(stored, made.platform_kubeconfig.yaml());
    let tunnel = ApiTunnel::open(client.clone(), &made.namespace, 0).await.unwrap();
    let session = made
        .platform_kubeconfig
        .with_server(&tunnel.server())
        .unwrap()
        .client()
        .await
        .unwrap();
    let host_pods: Api<Pod> = Api::namespaced(client.clone(), &made.namespace);
    if let Err(error) = bring_up(&session).await {
        panic!(
            "the session's API did not come up: {error}\n{}",
            what_the_control_plane_says(&host_pods).await
        );
    }
    eprintln!("session API ready with a Ready node in {:?}", started.elapsed());
    let health = probe_health(&session).await;
    assert!(health.api_ready);
    assert_eq!(health.ready_nodes, 1);

    // The controller manager works: it makes the ServiceAccount every pod needs.
    let accounts: Api<k8s_openapi::api::core::v1::ServiceAccount> =
        Api::namespaced(session.clone(), "default");
    eventually("the default ServiceAccount", Duration::from_secs(30), || async {
        accounts.get_opt("default").await.unwrap().is_some()
    })
    .await;

    // The session cluster schedules and "runs" pods as `lite` does.
    let pods: Api<Pod> = Api::namespaced(session.clone(), "default");
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": { "name": "web" },
        "spec": { "containers": [{ "name": "web", "image": "nginx:1.27" }] }
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    eventually("the learner's pod Running", Duration::from_secs(60), || async {
        let pod = pods.get("web").await.unwrap();
        pod.status.and_then(|s| s.phase).as_deref() == Some("Running")
    })
    .await;

    // On the host: the control plane is one pod, Ready, within the namespace's quota.
    eventually("the control-plane pod Ready", Duration::from_secs(60), || async {
        pod_ready(&host_pods.get(CONTROL_PLANE).await.unwrap())
    })
    .await;
    let control_plane = statuses(&host_pods.get(CONTROL_PLANE).await.unwrap());
    assert_eq!(control_plane.len(), 5);
    if control_plane.iter().any(|status| status.restart_count > 0) {
        panic!(
            "a component restarted:\n{}",
            what_the_control_plane_says(&host_pods).await
        );
    }

    // The learner's terminal reaches its own API, by the address its kubeconfig names, and
    // nothing else: not the host's API, not a name.
    let terminals = PodTerminals::new(client.clone(), TERMINAL_IMAGE, instance);
    let spec = TerminalSpec {
        cluster: &name,
        network: "",
        access: TerminalAccess::Cluster(&made.terminal_kubeconfig),
        session_id: "session-1",
        user_id: "user-1",
    };
    terminals.create(&spec).await.unwrap();
    assert_eq!(terminals.list().await.unwrap(), std::slice::from_ref(&name));
    assert_eq!(terminals.revive(&name).await.unwrap(), Revival::Running);
    // The fences hold on the host: a pod below Pod Security `restricted` is refused, and so is a
    // third pod that meets it (the quota holds the session's two).
    let root: Pod = serde_json::from_value(serde_json::json!({
        "metadata": { "name": "root" },
        "spec": { "containers": [{ "name": "c", "image": TERMINAL_IMAGE, "command": ["sleep", "60"] }] }
    }))
    .unwrap();
    let refused = host_pods.create(&PostParams::default(), &root).await.unwrap_err();
    assert!(
        matches!(&refused, kube::Error::Api(s) if s.code == 403 && s.message.contains("PodSecurity")),
        "{refused}"
    );
    let tenant = Tenant {
        cluster: &name,
        instance,
    };
    let files = [("config".to_owned(), &made.terminal_kubeconfig)];
    let mut third = terminal_pod(&tenant, TERMINAL_IMAGE, &files);
    third.metadata.name = Some("third".into());
    let refused = host_pods
        .create(&PostParams::default(), &third)
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, kube::Error::Api(s) if s.code == 403 && s.message.contains("exceeded quota")),
        "{refused}"
    );

    let nodes = exec(&host_pods, &["kubectl", "get", "nodes", "-o", "name"]).await;
    assert_eq!(nodes, "node/node01\n");
    let host_api = Api::<Service>::namespaced(client.clone(), "default")
        .get("kubernetes")
        .await
        .unwrap()
        .spec
        .unwrap()
        .cluster_ip
        .unwrap();
    let probe = |url: String| {
        vec![
            "sh".to_owned(),
            "-c".to_owned(),
            format!("curl -sk --max-time 3 -o /dev/null {url} && echo reached || echo blocked"),
        ]
    };
    let own = probe(format!("https://{}:443/livez", made.service_ip));
    assert_eq!(exec(&host_pods, &own).await, "reached\n");
    let host = probe(format!("https://{host_api}:443/livez"));
    assert_eq!(exec(&host_pods, &host).await, "blocked\n");
    let by_name = probe("https://kubernetes.default.svc.cluster.local/livez".to_owned());
    assert_eq!(exec(&host_pods, &by_name).await, "blocked\n");
    // Nor another session's API, though it answers.
    let other = ClusterName::generate();
    let other_made = sessions.create(&other).await.unwrap();
    let other_tunnel = ApiTunnel::open(client.clone(), &other_made.namespace, 0)
        .await
        .unwrap();
    let other_session = other_made
        .platform_kubeconfig
        .with_server(&other_tunnel.server())
        .unwrap()
        .client()
        .await
        .unwrap();
    eventually(
        "the other session's API answers",
        Duration::from_secs(120),
        || async { probe_health(&other_session).await.api_ready },
    )
    .await;
    let others = probe(format!("https://{}:443/livez", other_made.service_ip));
    assert_eq!(exec(&host_pods, &others).await, "blocked\n");
    drop(other_tunnel);
    sessions.delete(&other).await.unwrap();

    eprintln!(
        "control plane RSS on the host node: {} MiB",
        rss_kib(host_name, "65532") / 1024
    );
    // The learner's files, as the grader reads and tasks write them.
    let path = "/home/ckad/answers/one.txt";
    assert_eq!(terminals.read_file(&name, path, 100).await.unwrap(), None);
    terminals
        .write_file(&name, path, "it's 'quoted' $HOME")
        .await
        .unwrap();
    assert_eq!(
        terminals.read_file(&name, path, 100).await.unwrap().as_deref(),
        Some(&b"it's 'quoted' $HOME"[..])
    );
    assert_eq!(
        terminals.read_file(&name, path, 4).await.unwrap().as_deref(),
        Some(&b"it's"[..])
    );

    // The exec bridge: keys typed reach the shell, the shell survives its connection, and the
    // window follows the browser's size.
    let size = TermSize { cols: 100, rows: 30 };
    let mut first = terminals.attach(&name, ShellTab::FIRST, size).await.unwrap();
    first
        .input
        .write_all(b"export MARK=kept; echo typed-$((6*7))\r")
        .await
        .unwrap();
    read_until(&mut first, "typed-42").await;
    first.control.detach().await;
    drop(first);
    let size = TermSize { cols: 120, rows: 40 };
    let mut second = terminals.attach(&name, ShellTab::FIRST, size).await.unwrap();
    // One command at a time: a read stops at the chunk that shows what it waits for.
    second.input.write_all(b"echo $MARK-again\r").await.unwrap();
    read_until(&mut second, "kept-again").await;
    // The shell's window takes the new size once tmux has resized it (a moment after the
    // attach: one run's first `stty size` still said 24 80), so it is asked until it has.
    let mut seen = String::new();
    let sized = async {
        loop {
            second.input.write_all(b"stty size\r").await.unwrap();
            let pause = tokio::time::sleep(Duration::from_millis(500));
            tokio::pin!(pause);
            loop {
                tokio::select! {
                    chunk = second.output.next() => {
                        seen.push_str(&String::from_utf8_lossy(&chunk.unwrap().unwrap()));
                        if seen.contains("40 120") {
                            return;
                        }
                    }
                    () = &mut pause => break,
                }
            }
        }
    };
    if tokio::time::timeout(Duration::from_secs(20), sized)
        .await
        .is_err()
    {
        panic!("the window never became 40 rows of 120: {seen:?}");
    }
    second.control.detach().await;
    drop(second);

    terminals.remove(&name).await.unwrap();
    eventually("the terminal pod gone", Duration::from_secs(30), || async {
        host_pods.get_opt(TERMINAL).await.unwrap().is_none()
    })
    .await;
    assert_eq!(terminals.list().await.unwrap(), Vec::<ClusterName>::new());
    assert_eq!(terminals.revive(&name).await.unwrap(), Revival::Gone);

    // An exam's terminal that fails half-way leaves nothing: its second host's namespace does
    // not exist, so that host's policy is refused after the terminal's own one was made.
    let gone = ClusterName::generate();
    let host = |host_name, namespace| TerminalHost {
        name: host_name,
        network: namespace,
        kubeconfig: &made.terminal_kubeconfig,
    };
    let hosts = [host("ckad1111", name.as_str()), host("ckad2222", gone.as_str())];
    let exam = TerminalSpec {
        access: TerminalAccess::Hosts(&hosts),
        ..spec
    };
    assert!(terminals.create(&exam).await.is_err());
    let policies = Api::<NetworkPolicy>::namespaced(client.clone(), &made.namespace)
        .list(&ListParams::default().labels(&format!("ckad.component={TERMINAL}")))
        .await
        .unwrap();
    assert!(policies.items.is_empty(), "{:?}", policies.items);
    let secrets = Api::<Secret>::namespaced(client.clone(), &made.namespace);
    assert!(secrets.get_opt(TERMINAL_SECRET).await.unwrap().is_none());
    assert!(host_pods.get_opt(TERMINAL).await.unwrap().is_none());

    drop(tunnel);
    let started = std::time::Instant::now();
    sessions.delete(&name).await.unwrap();
    eprintln!("session namespace deleted in {:?}", started.elapsed());
    assert!(!sessions.list().await.unwrap().contains(&name));
    let namespaces: Api<Namespace> = Api::all(client.clone());
    assert!(namespaces.get_opt(name.as_str()).await.unwrap().is_none());
    let left = Api::<Pod>::all(client.clone())
        .list(&ListParams::default().labels(&format!("ckad.cluster={name}")))
        .await
        .unwrap();
    assert!(left.items.is_empty(), "pods left behind");
    // Deleting what is gone is fine.
    sessions.delete(&name).await.unwrap();
}

/// The platform outside the host (`HOST_KUBECONFIG`), as a learner uses it, once its reconciler
/// has removed an orphaned session, with a warm pool of one: the first Start claims the member
/// made ahead, the terminal's socket reaches a shell in its terminal pod whose kubectl sees the
/// session's Ready node, Check grades what was typed, and the pool refills with a new namespace;
/// a second learner's Start meanwhile finds the pool empty and starts cold with the same steps;
/// another learner's exam with hosts runs beside, neither terminal reaching the other session's
/// APIs; Stop leaves nothing of the sessions on the host, and a platform started with no pool
/// removes the member left.
async fn platform_on_host(host_kubeconfig: &Kubeconfig) {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("host.kubeconfig");
    std::fs::write(&kubeconfig, host_kubeconfig.yaml()).unwrap();
    let mut settings = common::settings(dir.path(), "unix:///var/run/docker.sock");
    settings.clusters.provider = ProviderKind::Kubernetes;
    settings.clusters.kubernetes.kubeconfig = Some(kubeconfig);
    // An API port (its tunnel) each: the warm session, its refilled member, a cold session, and
    // an exam's two hosts.
    settings.clusters.ports = common::port_block(54500, 5);
    settings.tasks_dir = tasks_with_a_small_exam(dir.path());
    settings.sessions.pool.size = 1;
    let instance = settings.clusters.instance.clone();
    let host = host_kubeconfig.client().await.unwrap();
    // A session of this instance that no database row owns (as a crash between its making and
    // its record would leave): the reconciler's first pass finds it by its labels and removes it.
    let orphan = ClusterName::generate();
    HostCluster::new(host.clone(), &instance, ControlPlaneImages::pinned(""), None)
        .create(&orphan)
        .await
        .unwrap();
    let platform = Platform::start(settings.clone()).await;
    // Ready with the host cluster; no Docker engine or host firewall is asked for.
    platform.wait_until_ready().await;
    let (_, readiness) = platform.get("/readyz", "").await;
    let checks: Vec<&str> = readiness["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|check| check["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        checks,
        ["database", "kubernetes", "terminal", "pool"],
        "{readiness}"
    );
    let namespaces: Api<Namespace> = Api::all(host.clone());
    eventually(
        "the orphan's namespace removed",
        Duration::from_secs(90),
        || async { namespaces.get_opt(orphan.as_str()).await.unwrap().is_none() },
    )
    .await;
    let sessions_of_instance = || async {
        let selector = format!("ckad.platform=kubernetes,ckad.instance={instance}");
        let listed = namespaces
            .list(&ListParams::default().labels(&selector))
            .await
            .unwrap();
        let mut names: Vec<String> = listed
            .items
            .into_iter()
            .filter_map(|ns| ns.metadata.name)
            .collect();
        names.sort();
        names
    };

    let store = pool::store(dir.path()).await;
    let [member] = <[_; 1]>::try_from(pool::ready_members(&store, 1).await).unwrap();
    eprintln!("{}", made_in("the first pool member", &member));
    assert_eq!(
        sessions_of_instance().await,
        std::slice::from_ref(&member.cluster_name)
    );
    // Made for no one: its terminal knows the session it will be, not the learner.
    let pods: Api<Pod> = Api::namespaced(host.clone(), &member.cluster_name);
    let annotations = pods.get(TERMINAL).await.unwrap().metadata.annotations.unwrap();
    assert_eq!(annotations["ckad.session"], member.id);
    assert_eq!(annotations["ckad.user"], "");

    // The first Start claims it: the same steps as a cold start, ready in about a second.
    let (token, cold_token) = (
        platform.learner("host@example.com").await,
        platform.learner("cold@example.com").await,
    );
    let (mut events, mut cold_events) = (
        Events::open(&platform, &token).await,
        Events::open(&platform, &cold_token).await,
    );
    let started = std::time::Instant::now();
    let (status, session) = platform.post("/api/session/start", &token).await;
    assert_eq!(status, reqwest::StatusCode::ACCEPTED, "{session}");
    assert_eq!(session["id"].as_str(), Some(member.id.as_str()));
    let (steps, warm) = events.steps_until_started().await;
    let warm_took = started.elapsed();
    eprintln!("warm platform session started on the host in {warm_took:?}");
    assert_eq!(steps, COLD_START_STEPS);
    assert_eq!(warm["id"], session["id"]);
    assert_eq!(pool::metric(&platform, "ckad_pool_claims_total").await, 1.0);
    let namespace = member.cluster_name.clone();

    // Another learner's Start finds the pool empty (its next member not made yet): cold, with
    // the same steps.
    let started = std::time::Instant::now();
    let (status, cold) = platform.post("/api/session/start", &cold_token).await;
    assert_eq!(status, reqwest::StatusCode::ACCEPTED, "{cold}");
    let (cold_steps, _) = cold_events.steps_until_started().await;
    let cold_took = started.elapsed();
    eprintln!("cold platform session started on the host in {cold_took:?}");
    assert_eq!(cold_steps, COLD_START_STEPS);
    assert_eq!(pool::metric(&platform, "ckad_pool_misses_total").await, 1.0);
    assert!(
        warm_took < cold_took / 3,
        "warm {warm_took:?}, cold {cold_took:?}"
    );
    let took = stop(&platform, &cold_token).await;
    eprintln!("cold platform session stopped in {took:?}");

    let mut shell = platform
        .connect(&platform.ticket(&token).await, common::ORIGIN)
        .await
        .unwrap();
    // Computed in the shell, so the typed line's echo never matches it.
    shell
        .type_line(r#"echo "nodes: $(kubectl get nodes --no-headers | awk '{print $1"="$2}')""#)
        .await;
    shell.read_until("nodes: node01=Ready").await;

    // Check until kwok has the pod Running.
    common::answer_pod_with_labels(&platform, &token, &mut shell, Duration::from_secs(60)).await;

    // The pool refilled: a new member's namespace of this instance, not a session's.
    let [refilled] = <[_; 1]>::try_from(pool::ready_members(&store, 1).await).unwrap();
    eprintln!("{}", made_in("the refilled pool member", &refilled));
    assert_ne!(refilled.id, member.id);
    let mut expected = vec![namespace.clone(), refilled.cluster_name.clone()];
    expected.sort();
    assert_eq!(sessions_of_instance().await, expected);

    exam_beside(&platform, &host, &instance, &namespace, &token, &expected).await;
    assert_eq!(sessions_of_instance().await, expected);

    // Stop ends the session; the member outlives it, as it outlives the platform.
    let took = stop(&platform, &token).await;
    eprintln!("platform session stopped in {took:?}");
    assert_eq!(
        sessions_of_instance().await,
        std::slice::from_ref(&refilled.cluster_name)
    );
    assert!(namespaces.get_opt(&namespace).await.unwrap().is_none());
    platform.shut_down().await;
    assert_eq!(
        sessions_of_instance().await,
        std::slice::from_ref(&refilled.cluster_name)
    );

    // A platform started with no pool removes it, as an operator's would: nothing is left.
    settings.sessions.pool.size = 0;
    let removing = std::time::Instant::now();
    let platform = Platform::start(settings).await;
    eventually("the pool removed", Duration::from_secs(90), || async {
        store.pool_members().await.unwrap().is_empty() && sessions_of_instance().await.is_empty()
    })
    .await;
    eprintln!(
        "the pool member removed by a platform with no pool in {:?}",
        removing.elapsed()
    );
    platform.shut_down().await;
}

/// How long `member` took to make, for the log.
fn made_in(what: &str, member: &PoolMember) -> String {
    let ready = member.ready_at.expect("a ready member");
    format!(
        "{what} made in {:?}",
        (ready - member.created_at).to_std().unwrap()
    )
}

/// Stop, as the learner presses it, until the session has ended; how long that took.
async fn stop(platform: &Platform, token: &str) -> Duration {
    let started = std::time::Instant::now();
    let (status, body) = platform.post("/api/session/stop", token).await;
    assert_eq!(status, reqwest::StatusCode::NO_CONTENT, "{body}");
    eventually("the session ends", Duration::from_secs(150), || async {
        platform.get("/api/session/status", token).await.0 == reqwest::StatusCode::NOT_FOUND
    })
    .await;
    started.elapsed()
}

/// The exam [`tasks_with_a_small_exam`] adds: two hosts, a task on each. The catalog's own
/// exams have three hosts and 15-20 tasks, whose setup through the tunnels would take minutes.
const SMALL_EXAM: &str = "\
- id: two-hosts
  title: Two hosts
  type: ckad
  category: mock
  minutes: 30
  access: free
  hosts: [ckad1111, ckad2222]
  tasks:
    - {task: pod-with-labels, host: ckad1111}
    - {task: configmap-env, host: ckad2222}
";

/// A tasks folder of `dir`: the repository's tasks (linked) with [`SMALL_EXAM`] as its exams.
fn tasks_with_a_small_exam(dir: &std::path::Path) -> std::path::PathBuf {
    let tasks = dir.join("tasks");
    std::fs::create_dir(&tasks).unwrap();
    let ours = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tasks");
    for entry in std::fs::read_dir(ours).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() != "exams.yaml" {
            std::os::unix::fs::symlink(entry.path(), tasks.join(entry.file_name())).unwrap();
        }
    }
    std::fs::write(tasks.join("exams.yaml"), SMALL_EXAM).unwrap();
    tasks
}

/// The address of the API of the session whose namespace is `namespace`.
async fn api_address(host: &kube::Client, namespace: &str) -> String {
    let api = Api::<Service>::namespaced(host.clone(), namespace)
        .get(API_SERVICE)
        .await
        .unwrap();
    api.spec.unwrap().cluster_ip.unwrap()
}

/// A line that prints `label: ` and, for each address, whether the terminal reaches an API
/// there (computed in the shell: the typed line's echo never matches what it prints).
fn reaching(label: &str, addresses: &[String]) -> String {
    let probes: Vec<String> = addresses
        .iter()
        .map(|ip| {
            format!("$(curl -sk --max-time 3 -o /dev/null https://{ip}:443/livez && echo reached || echo blocked)")
        })
        .collect();
    format!(r#"echo "{label}: {}""#, probes.join("-"))
}

/// Another learner's exam with hosts, started while the session in `practice` (of
/// `practice_token`) runs beside the namespaces `others` (that session's and a pool member's): each host is a namespace of the host cluster; the terminal starts on
/// a base machine with no cluster, `ssh <host>` reaches that host's cluster (its node Ready, its
/// task's namespace there and not on the other); the terminal reaches its hosts' APIs and not
/// the practice session's, whose terminal reaches neither of the exam's. Stopped, it leaves
/// nothing of it on the host.
async fn exam_beside(
    platform: &Platform,
    host: &kube::Client,
    instance: &str,
    practice: &str,
    practice_token: &str,
    others: &[String],
) {
    let token = platform.learner("exam@example.com").await;
    let started = std::time::Instant::now();
    let (code, session) = platform.post("/api/exams/two-hosts/start", &token).await;
    assert_eq!(code, reqwest::StatusCode::ACCEPTED, "{session}");
    platform.wait_started(&token).await;
    eprintln!(
        "an exam with 2 hosts started on the host in {:?}",
        started.elapsed()
    );
    // Two namespaces, one terminal pod in one of them.
    let ours = format!("ckad.instance={instance}");
    let namespaces: Vec<String> = Api::<Namespace>::all(host.clone())
        .list(&ListParams::default().labels(&ours))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|ns| ns.metadata.name)
        .filter(|ns| !others.contains(ns))
        .collect();
    assert_eq!(namespaces.len(), 2, "{namespaces:?}");
    let (mut exam_apis, mut terminals) = (Vec::new(), 0);
    for namespace in &namespaces {
        exam_apis.push(api_address(host, namespace).await);
        let pods: Api<Pod> = Api::namespaced(host.clone(), namespace);
        terminals += usize::from(pods.get_opt(TERMINAL).await.unwrap().is_some());
    }
    assert_eq!(terminals, 1, "one terminal for both hosts");

    let ticket = platform.ticket(&token).await;
    let mut shell = common::open_shell(platform.socket_url(&ticket), common::ORIGIN, "ckad@base")
        .await
        .unwrap();
    // The hosts are the kubeconfigs under ~/.kube/hosts, as in the Docker terminal, and there
    // is no ~/.kube/config.
    shell
        .type_line(r#"echo "kube: $(ls ~/.kube | paste -sd,) hosts: $(ls ~/.kube/hosts | paste -sd,)""#)
        .await;
    shell.read_until("kube: hosts hosts: ckad1111,ckad2222").await;
    // The base machine has no cluster.
    shell.type_line("kubectl get namespaces").await;
    shell.read_until("localhost:8080").await;
    for (on, here, elsewhere) in [("ckad1111", "web", "config"), ("ckad2222", "config", "web")] {
        shell.type_line(&format!("ssh {on}")).await;
        shell.read_until(&format!("ckad@{on}")).await;
        shell
            .type_line(r#"echo "nodes: $(kubectl get nodes --no-headers | awk '{print $1"="$2}')""#)
            .await;
        shell.read_until("nodes: node01=Ready").await;
        shell
            .type_line(&format!("kubectl get namespace {here} -o name"))
            .await;
        shell.read_until(&format!("namespace/{here}")).await;
        shell
            .type_line(&format!("kubectl get namespace {elsewhere}"))
            .await;
        shell
            .read_until(&format!(r#"namespaces "{elsewhere}" not found"#))
            .await;
        shell.type_line("exit").await;
        shell.read_until("ckad@base").await;
    }
    // Its hosts' APIs answer it; another session's API, answering too, does not.
    shell.type_line(&reaching("exam hosts", &exam_apis)).await;
    shell.read_until("exam hosts: reached-reached").await;
    let practice_api = api_address(host, practice).await;
    shell
        .type_line(&reaching("other session", std::slice::from_ref(&practice_api)))
        .await;
    shell.read_until("other session: blocked").await;
    // Nor does the practice session's terminal reach the exam's hosts.
    let mut practice_shell = platform
        .connect(&platform.ticket(practice_token).await, common::ORIGIN)
        .await
        .unwrap();
    practice_shell
        .type_line(&reaching("own", std::slice::from_ref(&practice_api)))
        .await;
    practice_shell.read_until("own: reached").await;
    practice_shell
        .type_line(&reaching("exam hosts", &exam_apis))
        .await;
    practice_shell.read_until("exam hosts: blocked-blocked").await;

    let took = stop(platform, &token).await;
    eprintln!("exam with 2 hosts stopped in {took:?}");
    let (code, result) = platform
        .get(
            &format!("/api/exams/results/{}", session["id"].as_str().unwrap()),
            &token,
        )
        .await;
    assert_eq!(code, reqwest::StatusCode::OK, "{result}");
    assert_eq!(result["tasks"].as_array().unwrap().len(), 2, "{result}");
    // Its terminal's policies went with it, in every namespace.
    let left = Api::<NetworkPolicy>::all(host.clone())
        .list(&ListParams::default().labels(&format!("ckad.component={TERMINAL},{ours}")))
        .await
        .unwrap();
    assert!(left.items.is_empty(), "{:?}", left.items);
}
