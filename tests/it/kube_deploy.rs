//! The platform on a Kubernetes cluster, as an operator deploys it: a real `kind` host made by the
//! test, the offline app image loaded into its node, `deploy/kubernetes/` applied as written
//! (with the test's Secret, the PostgreSQL of `deploy/kubernetes/postgres-for-tests/`, and the few
//! settings a test must change), both replicas Ready on that database; through a port-forward to
//! each replica on its own, an account registered through one is signed in through the other; the
//! platform's ServiceAccount may do what the provider needs and nothing else (the session role in
//! its sessions' namespaces only, and the admission policy refusing it, for real, any namespace or
//! binding that is not a session's); a session started through one replica is typed into and
//! checked through the other; deleting the app leaves the
//! session on the host, and the next start's replicas serve it again (and remove a namespace that
//! no session owns) until it is stopped and its namespace goes.
//!
//! The app image is built before the tests by scripts/build-app-image.sh (scripts/test.sh does
//! it and exports `CKAD_APP_IMAGE`).

use crate::common::{self, eventually, kind, spec, Mailbox, Platform, Terminals as _};

use std::{
    path::Path,
    process::Command,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use ckad_platform::clusters::{
    kubernetes::{ApiTunnel, ControlPlaneImages, PLATFORM_BINDING},
    ClusterName, ClusterProvider, Kubeconfig, SESSION_ROLE,
};
use futures_util::{io::AsyncBufReadExt as _, FutureExt as _, TryStreamExt as _};
use k8s_openapi::api::{
    apps::v1::{Deployment, StatefulSet},
    authorization::v1::{ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec},
    core::v1::{Namespace, Pod, Secret},
    rbac::v1::{RoleBinding, RoleRef, Subject},
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::{
    api::{Api, DeleteParams, DynamicObject, ListParams, LogParams, Patch, PatchParams, PostParams},
    core::GroupVersionKind,
    discovery::{pinned_kind, Scope},
};
use reqwest::StatusCode;
use serde::Deserialize as _;
use serde_json::{json, Value};

const MANIFESTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/kubernetes");
/// The app's namespace, Deployment, ConfigMap, Secret and ServiceAccount are all named so.
const APP: &str = "ckad-platform";
const POSTGRES_NAMESPACE: &str = "ckad-postgres";
/// The port the app listens on in its pod (`LEPTOS_SITE_ADDR` in the ConfigMap).
const APP_PORT: u16 = 3000;
const RBAC: &str = "rbac.authorization.k8s.io";
/// What a replica logs once its rights in a new session's namespace hold.
const RIGHTS_HOLD: &str = "the platform's rights in the session's namespace hold";

/// Every object of the YAML files `names` (in `dir`), in order.
fn documents(dir: &Path, names: &[&str]) -> Vec<DynamicObject> {
    names
        .iter()
        .flat_map(|name| {
            let text = std::fs::read_to_string(dir.join(name)).unwrap();
            serde_yaml::Deserializer::from_str(&text)
                .map(|document| DynamicObject::deserialize(document).unwrap())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Server-side apply of `object`, whatever its kind, as `kubectl apply --server-side` does.
async fn apply(client: &kube::Client, object: &DynamicObject) {
    let gvk = GroupVersionKind::try_from(object.types.as_ref().unwrap()).unwrap();
    let (resource, capabilities) = pinned_kind(client, &gvk).await.unwrap();
    let api: Api<DynamicObject> = match (&capabilities.scope, &object.metadata.namespace) {
        (Scope::Namespaced, Some(namespace)) => Api::namespaced_with(client.clone(), namespace, &resource),
        _ => Api::all_with(client.clone(), &resource),
    };
    let name = object.metadata.name.as_deref().unwrap();
    let params = PatchParams::apply("ckad-tests").force();
    if let Err(error) = api.patch(name, &params, &Patch::Apply(object)).await {
        panic!("applying {} {name}: {error}", gvk.kind);
    }
}

/// The object of `kind` named `name` among `objects`.
fn find<'a>(objects: &'a mut [DynamicObject], kind: &str, name: &str) -> &'a mut Value {
    let object = objects
        .iter_mut()
        .find(|o| {
            o.types.as_ref().is_some_and(|t| t.kind == kind) && o.metadata.name.as_deref() == Some(name)
        })
        .unwrap_or_else(|| panic!("no {kind} {name} in the manifests"));
    &mut object.data
}

/// A secret value: 32 random bytes in hex.
fn random_hex() -> String {
    rand::random::<[u8; 32]>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn secret(namespace: &str, name: &str, data: &[(&str, &str)]) -> Secret {
    serde_json::from_value(json!({
        "metadata": { "name": name, "namespace": namespace },
        "stringData": data.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
    }))
    .unwrap()
}

/// One replica on its own (the Service would pick either), through a port-forward to its pod;
/// dropping the tunnel ends every connection.
async fn replica(pods: &Api<Pod>, pod: &str, mailbox: Option<Mailbox>) -> (ApiTunnel, Platform) {
    let tunnel = ApiTunnel::to_pod(pods.clone(), pod, APP_PORT, 0).await.unwrap();
    let platform = Platform::at(&format!("http://{}", tunnel.addr()), mailbox);
    (tunnel, platform)
}

/// Follows `pod`'s log into a string, where the development outbox's sign-in codes are read.
fn follow_log(pods: Api<Pod>, pod: &str) -> Arc<Mutex<String>> {
    let log = Arc::new(Mutex::new(String::new()));
    let (pod, into) = (pod.to_owned(), log.clone());
    tokio::spawn(async move {
        let params = LogParams {
            follow: true,
            ..Default::default()
        };
        let mut lines = std::pin::pin!(pods.log_stream(&pod, &params).await.unwrap().lines());
        while let Ok(Some(line)) = lines.try_next().await {
            let mut log = into.lock().unwrap();
            log.push_str(&line);
            log.push('\n');
        }
    });
    log
}

/// The resident memory of each `ckad-platform` process on the host's node, in MiB.
fn replicas_rss_mib(host: &ClusterName) -> Vec<u64> {
    let out = Command::new("docker")
        .args([
            "exec",
            &format!("{host}-control-plane"),
            "ps",
            "-C",
            APP,
            "-o",
            "rss=",
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(|kib| kib.parse::<u64>().unwrap() / 1024)
        .collect()
}

/// Whether the platform's ServiceAccount may do what `attributes` ask, as the host's RBAC answers.
async fn platform_may(client: &kube::Client, attributes: ResourceAttributes) -> bool {
    let review = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(format!("system:serviceaccount:{APP}:{APP}")),
            resource_attributes: Some(attributes),
            ..Default::default()
        },
        ..Default::default()
    };
    let answer = Api::<SubjectAccessReview>::all(client.clone())
        .create(&PostParams::default(), &review)
        .await
        .unwrap();
    answer.status.unwrap().allowed
}

/// A question for [`platform_may`]: `verb` on `resource` (group, resource, subresource) in
/// `namespace` (none: cluster-wide).
fn asked(
    verb: &str,
    (group, resource, subresource): (&str, &str, &str),
    namespace: Option<&str>,
) -> ResourceAttributes {
    ResourceAttributes {
        verb: Some(verb.into()),
        group: Some(group.into()),
        resource: Some(resource.into()),
        subresource: (!subresource.is_empty()).then(|| subresource.into()),
        namespace: namespace.map(str::to_owned),
        ..Default::default()
    }
}

/// A client of the host acting as the platform's ServiceAccount (the admin impersonates it): what
/// a stolen token of a replica could do.
async fn as_the_platform(admin: &Kubeconfig) -> kube::Client {
    let file = kube::config::Kubeconfig::from_yaml(admin.yaml()).unwrap();
    let mut config = kube::Config::from_custom_kubeconfig(file, &Default::default())
        .await
        .unwrap();
    config.auth_info.impersonate = Some(format!("system:serviceaccount:{APP}:{APP}"));
    kube::Client::try_from(config).unwrap()
}

/// A RoleBinding of the ClusterRole `role` to `subjects`.
fn binding_of(role: &str, subjects: &[Subject]) -> RoleBinding {
    RoleBinding {
        metadata: ObjectMeta {
            name: Some("taken".into()),
            ..Default::default()
        },
        role_ref: RoleRef {
            api_group: RBAC.into(),
            kind: "ClusterRole".into(),
            name: role.into(),
        },
        subjects: Some(subjects.to_vec()),
    }
}

/// That the API refused (403) what the platform's ServiceAccount asked, saying `why`.
fn assert_refused<T>(result: Result<T, kube::Error>, why: &str) {
    match result {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 403, "{}", status.message);
            assert!(status.message.contains(why), "{}", status.message);
        }
        Ok(_) => panic!("the platform's ServiceAccount was let through ({why})"),
        Err(other) => panic!("{other}"),
    }
}

fn ready_pods(pods: &[Pod]) -> Vec<String> {
    pods.iter()
        .filter(|pod| {
            let conditions = pod.status.as_ref().and_then(|s| s.conditions.as_ref());
            conditions.is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        })
        .filter_map(|pod| pod.metadata.name.clone())
        .collect()
}

/// The pods' states and the end of their logs, for a failure's message.
async fn what_the_pods_say(pods: &Api<Pod>) -> String {
    let mut said = String::new();
    for pod in pods.list(&ListParams::default()).await.unwrap() {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let statuses = pod.status.and_then(|s| s.container_statuses).unwrap_or_default();
        said += &format!(
            "== {name}: {:?}\n",
            statuses.iter().map(|s| &s.state).collect::<Vec<_>>()
        );
        let params = LogParams {
            tail_lines: Some(20),
            ..Default::default()
        };
        said += &pods.logs(&name, &params).await.unwrap_or_default();
    }
    said
}

#[tokio::test(flavor = "multi_thread")]
async fn the_platform_runs_on_a_host_cluster_as_two_replicas_on_postgres() {
    let app_image = std::env::var("CKAD_APP_IMAGE").expect(
        "CKAD_APP_IMAGE names the image built by scripts/build-app-image.sh (scripts/test.sh exports it)",
    );
    let state = tempfile::tempdir().unwrap();
    let host = kind(state.path(), None);
    host.ready().await.unwrap();
    let host_spec = spec();
    let started = Instant::now();
    let host_cluster = host.create(&host_spec).await.unwrap();
    eprintln!("host cluster made in {:?}", started.elapsed());

    // Whatever happens below, the host cluster goes.
    let outcome = std::panic::AssertUnwindSafe(on_host(
        &host_spec.name,
        &host_cluster.admin_kubeconfig,
        &app_image,
        &common::instance(state.path()),
    ))
    .catch_unwind()
    .await;
    host.delete(&host_spec.name).await.unwrap();
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

async fn on_host(host_name: &ClusterName, kubeconfig: &Kubeconfig, app_image: &str, instance: &str) {
    // The app, and what its sessions run: `lite`'s control plane and the terminal.
    let control_plane = ControlPlaneImages::pinned("");
    let started = Instant::now();
    common::load_images(
        host_name,
        &[&[app_image, common::TERMINAL_IMAGE][..], &control_plane.all()].concat(),
    );
    eprintln!("images loaded into the host in {:?}", started.elapsed());
    let client = kubeconfig.client().await.unwrap();
    let manifests = Path::new(MANIFESTS);

    // The test's PostgreSQL, and the Secrets an operator makes.
    let password = random_hex();
    for object in documents(&manifests.join("postgres-for-tests"), &["postgres.yaml"]) {
        apply(&client, &object).await;
    }
    Api::<Secret>::namespaced(client.clone(), POSTGRES_NAMESPACE)
        .create(
            &PostParams::default(),
            &secret(POSTGRES_NAMESPACE, "postgres", &[("password", password.as_str())]),
        )
        .await
        .unwrap();
    let mut app = documents(
        manifests,
        &[
            "00-namespace.yaml",
            "10-rbac.yaml",
            "20-config.yaml",
            "30-app.yaml",
            "40-ingress.yaml",
        ],
    );
    // What a test changes: the image by its content's tag; the site's origin (the tests' own);
    // sign-in codes to the log (the outbox, allowed on http); its own instance name; rate limits
    // that a test polling a start once a second never meets; and the state volume's access mode,
    // since the test host's storage (local-path, one node) offers ReadWriteOnce only, which pods
    // on one node share.
    find(&mut app, "Deployment", APP)["spec"]["template"]["spec"]["containers"][0]["image"] =
        app_image.into();
    let config = &mut find(&mut app, "ConfigMap", APP)["data"];
    config["PUBLIC_URL"] = common::ORIGIN.into();
    config["EMAIL_PROVIDER"] = "outbox".into();
    config["PLATFORM_INSTANCE"] = instance.into();
    config["RATE_LIMIT_API_PER_MINUTE"] = "1000".into();
    find(&mut app, "PersistentVolumeClaim", "ckad-platform-state")["spec"]["accessModes"] =
        json!(["ReadWriteOnce"]);
    apply(&client, &app[0]).await;
    let database_url = format!("postgres://ckad@postgres.{POSTGRES_NAMESPACE}.svc.cluster.local:5432/ckad");
    Api::<Secret>::namespaced(client.clone(), APP)
        .create(
            &PostParams::default(),
            &secret(
                APP,
                APP,
                &[
                    ("JWT_SECRET", random_hex().as_str()),
                    ("DATABASE_URL", database_url.as_str()),
                    ("PGPASSWORD", password.as_str()),
                ],
            ),
        )
        .await
        .unwrap();

    let postgres: Api<StatefulSet> = Api::namespaced(client.clone(), POSTGRES_NAMESPACE);
    eventually("PostgreSQL Ready", Duration::from_secs(120), || async {
        let status = postgres.get("postgres").await.unwrap().status.unwrap_or_default();
        status.ready_replicas == Some(1)
    })
    .await;

    let started = Instant::now();
    for object in &app[1..] {
        apply(&client, object).await;
    }
    let pods: Api<Pod> = Api::namespaced(client.clone(), APP);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), APP);
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let status = deployments.get(APP).await.unwrap().status.unwrap_or_default();
        if status.ready_replicas == Some(2) {
            break;
        }
        if Instant::now() > deadline {
            panic!(
                "the replicas were not Ready within 180 s: {status:?}\n{}",
                what_the_pods_say(&pods).await
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    eprintln!(
        "both replicas Ready {:?} after the Deployment was applied",
        started.elapsed()
    );

    // Each replica on its own, through a port-forward to its pod.
    let ready = ready_pods(&pods.list(&ListParams::default()).await.unwrap().items);
    let [a, b] = &ready[..] else {
        panic!("expected two Ready pods: {ready:?}")
    };
    let log_a = follow_log(pods.clone(), a);
    let (to_a, replica_a) = replica(&pods, a, Some(Mailbox::Log(log_a.clone()))).await;
    let (to_b, replica_b) = replica(&pods, b, None).await;
    replica_a.wait_until_ready().await;
    replica_b.wait_until_ready().await;

    // Registered through A (its code in A's log), proven and signed in through B, known to both.
    let email = "ada@example.com";
    let account = json!({ "email": email, "password": "correct horse battery", "name": "Ada" });
    let (status, body) = replica_a
        .call(
            reqwest::Method::POST,
            "/api/auth/register",
            "",
            Some(account.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let mut proven = account.clone();
    proven["code"] = replica_a.mailbox.as_ref().unwrap().code_for(email).await.into();
    let (status, body) = replica_b
        .call(reqwest::Method::POST, "/api/auth/password", "", Some(proven))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let token = body["access_token"].as_str().unwrap().to_owned();
    for replica in [&replica_a, &replica_b] {
        let (status, me) = replica.get("/api/auth/me", &token).await;
        assert_eq!(
            (status, me["email"].as_str()),
            (StatusCode::OK, Some(email)),
            "{me}"
        );
    }
    let login = json!({ "email": email, "password": "correct horse battery" });
    let (status, body) = replica_b
        .call(reqwest::Method::POST, "/api/auth/login", "", Some(login))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let rss = replicas_rss_mib(host_name);
    assert_eq!(rss.len(), 2, "{rss:?}");
    eprintln!("replicas' resident memory after sign-ins: {rss:?} MiB");

    // The ServiceAccount's rights cluster-wide: the sessions' namespaces, and binding the session
    // role; nothing of any namespace's content but the lists of pods and network policies (a
    // terminal's, found by label).
    let not_bound = Some("ckad-0123456789");
    for (verb, resource, namespace) in [
        ("create", ("", "namespaces", ""), None),
        ("delete", ("", "namespaces", ""), None),
        ("list", ("", "pods", ""), None),
        ("list", ("networking.k8s.io", "networkpolicies", ""), None),
        ("create", (RBAC, "rolebindings", ""), not_bound),
    ] {
        assert!(
            platform_may(&client, asked(verb, resource, namespace)).await,
            "the platform may not {verb} {resource:?} in {namespace:?}"
        );
    }
    let bind = |role: &str| ResourceAttributes {
        name: Some(role.into()),
        ..asked("bind", (RBAC, "clusterroles", ""), None)
    };
    assert!(platform_may(&client, bind(SESSION_ROLE)).await);
    for role in ["admin", "cluster-admin", "edit"] {
        assert!(
            !platform_may(&client, bind(role)).await,
            "the platform may bind {role}"
        );
    }
    let never = [
        ("get", ("", "secrets", ""), Some("kube-system")),
        ("get", ("", "secrets", ""), Some(APP)),
        ("list", ("", "secrets", ""), None),
        ("get", ("", "pods", ""), Some("kube-system")),
        ("create", ("", "pods", "exec"), Some("kube-system")),
        ("list", ("", "nodes", ""), None),
        ("update", ("", "namespaces", ""), None),
        ("create", (RBAC, "clusterrolebindings", ""), None),
        ("create", (RBAC, "roles", ""), not_bound),
        ("escalate", (RBAC, "clusterroles", ""), None),
        ("patch", ("apps", "deployments", ""), Some(APP)),
    ];
    // The session role is held in no namespace but the sessions'.
    let session_role = [
        ("get", ("", "secrets", "")),
        ("create", ("", "pods", "")),
        ("create", ("", "pods", "exec")),
        ("get", ("", "pods", "exec")),
        ("create", ("", "pods", "portforward")),
        ("create", ("networking.k8s.io", "networkpolicies", "")),
        ("create", ("", "resourcequotas", "")),
    ];
    let beyond_the_session_role = [
        ("patch", ("", "pods", "")),
        ("create", ("", "pods", "attach")),
        ("create", ("", "serviceaccounts", "")),
        ("create", ("apps", "deployments", "")),
    ];
    for (verb, resource, namespace) in never
        .into_iter()
        .chain(session_role.map(|(verb, resource)| (verb, resource, not_bound)))
    {
        assert!(
            !platform_may(&client, asked(verb, resource, namespace)).await,
            "the platform may {verb} {resource:?} in {namespace:?}"
        );
    }

    // A session started through A, typed into and checked through B.
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ours = ListParams::default().labels(&format!("ckad.platform=kubernetes,ckad.instance={instance}"));
    let sessions_on_host = || async {
        let list = namespaces.list(&ours).await.unwrap().items;
        list.into_iter()
            .filter_map(|n| n.metadata.name)
            .collect::<Vec<_>>()
    };
    let started = Instant::now();
    let start = std::panic::AssertUnwindSafe(replica_a.start_session(&token))
        .catch_unwind()
        .await;
    if let Err(panic) = start {
        // Why, as replica A logged it.
        eprintln!("replica A's log:\n{}", log_a.lock().unwrap());
        std::panic::resume_unwind(panic);
    }
    eprintln!("session started through A in {:?}", started.elapsed());
    let on_host = sessions_on_host().await;
    let [session_namespace] = &on_host[..] else {
        panic!("expected one session namespace: {on_host:?}")
    };
    let bound = log_a
        .lock()
        .unwrap()
        .lines()
        .find(|line| line.contains(RIGHTS_HOLD))
        .map(str::to_owned);
    eprintln!("the session's rights after its binding: {bound:?}");

    // In the session's namespace the platform holds the session role, bound to it there alone.
    for (verb, resource) in session_role {
        let namespace = Some(session_namespace.as_str());
        assert!(
            platform_may(&client, asked(verb, resource, namespace)).await,
            "the platform may not {verb} {resource:?} in its session's namespace"
        );
    }
    for (verb, resource, namespace) in beyond_the_session_role
        .map(|(verb, resource)| (verb, resource, Some(session_namespace.as_str())))
        .into_iter()
        .chain(never)
    {
        assert!(
            !platform_may(&client, asked(verb, resource, namespace)).await,
            "the platform may {verb} {resource:?} in {namespace:?}"
        );
    }
    let bindings: Api<RoleBinding> = Api::namespaced(client.clone(), session_namespace);
    let binding = bindings.get(PLATFORM_BINDING).await.unwrap();
    assert_eq!(binding.role_ref.name, SESSION_ROLE);
    let subjects = binding.subjects.unwrap();
    let service_account = format!("system:serviceaccount:{APP}:{APP}");
    assert_eq!(
        subjects
            .iter()
            .map(|s| (s.kind.as_str(), s.name.as_str()))
            .collect::<Vec<_>>(),
        [("User", service_account.as_str())]
    );

    // With the ServiceAccount's token, RBAC would let it bind the session role anywhere and make
    // or delete any namespace: the admission policy refuses what is not a session's.
    let platform = as_the_platform(kubeconfig).await;
    let escalation = Api::<RoleBinding>::namespaced(platform.clone(), "kube-system")
        .create(&PostParams::default(), &binding_of(SESSION_ROLE, &subjects))
        .await;
    assert_refused(
        escalation,
        "the platform binds roles only in its sessions' namespaces",
    );
    let others = Api::<RoleBinding>::namespaced(platform.clone(), session_namespace);
    let kube_system_default: Vec<Subject> = serde_json::from_value(json!([
        { "kind": "ServiceAccount", "name": "default", "namespace": "kube-system" }
    ]))
    .unwrap();
    assert_refused(
        others
            .create(
                &PostParams::default(),
                &binding_of(SESSION_ROLE, &kube_system_default),
            )
            .await,
        "the platform binds only the session role (ckad-platform-sessions), to itself",
    );
    // Another role: RBAC refuses first (no `bind` on it, and it holds less than `admin` grants).
    assert_refused(
        others
            .create(&PostParams::default(), &binding_of("admin", &subjects))
            .await,
        "not currently held",
    );
    let platform_namespaces: Api<Namespace> = Api::all(platform.clone());
    let unlabelled: Namespace =
        serde_json::from_value(json!({ "metadata": { "name": "ckad-unlabelled" } })).unwrap();
    assert_refused(
        platform_namespaces
            .create(&PostParams::default(), &unlabelled)
            .await,
        "the platform makes only its sessions' namespaces",
    );
    assert_refused(
        platform_namespaces
            .delete(POSTGRES_NAMESPACE, &DeleteParams::default())
            .await,
        "the platform deletes only its sessions' namespaces",
    );

    let mut shell = replica_b
        .connect(&replica_b.ticket(&token).await, common::ORIGIN)
        .await
        .unwrap();
    shell
        .type_line("kubectl run front -n web --image=nginx:1.27 --labels=app=front,tier=web --port=80")
        .await;
    shell.read_until("pod/front created").await;
    shell.socket.close(None).await.unwrap();
    // kwok makes the pod Ready within moments; Check says so once it has.
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let (status, report) = replica_b.post("/api/tasks/pod-with-labels/check", &token).await;
        assert_eq!(status, StatusCode::OK, "{report}");
        if report["passed"] == true {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Check through B never passed: {report}"
        );
        // A replica lets a task be checked once in 5 s.
        tokio::time::sleep(Duration::from_secs(6)).await;
    }

    // Deleting the app stops its replicas and leaves the session (and the database) on the host;
    // the next start's reconciler keeps the session and removes what no session owns.
    drop((to_a, to_b));
    deployments.delete(APP, &DeleteParams::default()).await.unwrap();
    eventually("the replicas gone", Duration::from_secs(60), || async {
        pods.list(&ListParams::default()).await.unwrap().items.is_empty()
    })
    .await;
    assert_eq!(sessions_on_host().await, std::slice::from_ref(session_namespace));
    let orphan = ClusterName::generate();
    let labels = json!({
        "ckad.platform": "kubernetes", "ckad.instance": instance, "ckad.cluster": orphan.as_str(),
    });
    let namespace: Namespace =
        serde_json::from_value(json!({ "metadata": { "name": orphan.as_str(), "labels": labels } })).unwrap();
    namespaces
        .create(&PostParams::default(), &namespace)
        .await
        .unwrap();

    let deployment = app
        .iter()
        .find(|o| o.types.as_ref().is_some_and(|t| t.kind == "Deployment"))
        .unwrap();
    apply(&client, deployment).await;
    eventually("both replicas Ready again", Duration::from_secs(180), || async {
        let status = deployments.get(APP).await.unwrap().status.unwrap_or_default();
        status.ready_replicas == Some(2)
    })
    .await;
    eventually(
        "the orphan namespace removed",
        Duration::from_secs(120),
        || async { sessions_on_host().await == std::slice::from_ref(session_namespace) },
    )
    .await;
    let ready = ready_pods(&pods.list(&ListParams::default()).await.unwrap().items);
    let [c, d] = &ready[..] else {
        panic!("expected two Ready pods: {ready:?}")
    };
    let (_to_c, replica_c) = replica(&pods, c, None).await;
    let (_to_d, replica_d) = replica(&pods, d, None).await;
    let (status, session) = replica_c.get("/api/session/status", &token).await;
    assert_eq!(
        (status, session["status"].as_str()),
        (StatusCode::OK, Some("started")),
        "{session}"
    );
    let mut shell = replica_c
        .connect(&replica_c.ticket(&token).await, common::ORIGIN)
        .await
        .unwrap();
    shell.type_line("kubectl get pod front -n web -o name").await;
    shell.read_until("pod/front").await;
    shell.socket.close(None).await.unwrap();

    // Stopped through the other new replica: the session's namespace goes.
    assert_eq!(
        replica_d.post("/api/session/stop", &token).await.0,
        StatusCode::NO_CONTENT
    );
    eventually(
        "the session's namespace gone",
        Duration::from_secs(150),
        || async {
            sessions_on_host().await.is_empty()
                && namespaces.get_opt(session_namespace).await.unwrap().is_none()
        },
    )
    .await;
    assert_eq!(
        postgres
            .get("postgres")
            .await
            .unwrap()
            .status
            .unwrap_or_default()
            .ready_replicas,
        Some(1)
    );
}
